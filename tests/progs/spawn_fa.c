#define _GNU_SOURCE
/* posix_spawn's file actions (issue 11): the child's opens, dup2s, closes and chdir before its
 * exec, a failing addopen and a failing adddup2 (posix_spawn returns their errno), then popen
 * (glibc's dup2 of the pipe's end in its child) and system.  Usage: spawn_fa DIR (with DIR/sub) */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int wait_ok(pid_t pid)
{
    int st;
    return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || chdir(argv[1]))
        return 2;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    /* stdout to a new file, stderr its dup, stdin closed, then a relative open in sub/ */
    char *echo[] = {"sh", "-c", "echo out; echo err >&2; cat <&3", NULL};
    int fd = open("in.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "sub\n", 4) != 4 || close(fd))
        return 3;
    if (rename("in.txt", "sub/in.txt"))
        return 3;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addclose(&fa, 0);
    posix_spawn_file_actions_addchdir_np(&fa, "sub");
    posix_spawn_file_actions_addopen(&fa, 3, "in.txt", O_RDONLY, 0);
    int r = posix_spawn(&pid, "/bin/sh", &fa, NULL, echo, environ);
    posix_spawn_file_actions_destroy(&fa);
    printf("spawn %d %d\n", r, r == 0 && wait_ok(pid));
    /* a failing addopen: posix_spawnp returns open's errno, the program never runs */
    char *t[] = {"true", NULL};
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 5, "no/such/dir", O_RDONLY, 0);
    r = posix_spawnp(&pid, "true", &fa, NULL, t, environ);
    posix_spawn_file_actions_destroy(&fa);
    printf("addopen %d\n", r);
    /* a failing adddup2: descriptor 40 is not open */
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 6, "made.txt", O_WRONLY | O_CREAT, 0600);
    posix_spawn_file_actions_adddup2(&fa, 40, 7);
    r = posix_spawn(&pid, "/bin/true", &fa, NULL, t, environ);
    posix_spawn_file_actions_destroy(&fa);
    printf("adddup2 %d\n", r);
    fflush(stdout);
    FILE *p = popen("echo popen", "r");
    char line[64] = "";
    if (!p || !fgets(line, sizeof line, p) || pclose(p) != 0)
        return 4;
    printf("popen %s", line);
    printf("system %d\n", system("echo system > sys.txt"));
    return 0;
}
