/* Faults test: clone() children that are not threads.  Mode "vm": CLONE_VM children (sharing
 * memory, and so the parent thread's TLS) write files through libc while the parent does too;
 * "vfork": CLONE_VM|CLONE_VFORK children write then exec true; "fork": clone without CLONE_VM
 * (a fork that runs no atfork handler) writes while the parent does.  Prints what the files
 * hold, exits 0 if all is as expected. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 2000
#define KIDS 4

static const char *dir;
static int vfork_exec;

static void writes(const char *name, int n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    for (int i = 0; i < n; i++) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0 || write(fd, "0123456789", 10) != 10)
            _exit(3);
        close(fd);
    }
}

static int child(void *arg)
{
    char name[32];
    snprintf(name, sizeof name, "kid%ld", (long)arg);
    writes(name, N);
    if (vfork_exec) {
        char *argv[] = {"true", NULL};
        execvp("true", argv);
    }
    return 0;
}

static long size_of(const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    dir = argv[2];
    int flags = SIGCHLD;
    if (!strcmp(argv[1], "vm"))
        flags |= CLONE_VM;
    else if (!strcmp(argv[1], "vfork"))
        flags |= CLONE_VM | CLONE_VFORK, vfork_exec = 1;
    else if (strcmp(argv[1], "fork"))
        return 2;
    pid_t kids[KIDS];
    for (long k = 0; k < KIDS; k++) {
        char *stack = malloc(1 << 20);
        kids[k] = clone(child, stack + (1 << 20), flags, (void *)k);
        if (kids[k] < 0)
            return 4;
        writes("parent", N / KIDS);
    }
    int bad = 0;
    for (int k = 0; k < KIDS; k++) {
        int st;
        if (waitpid(kids[k], &st, 0) != kids[k] || !WIFEXITED(st) || WEXITSTATUS(st))
            bad++;
    }
    printf("parent %ld\n", size_of("parent"));
    for (int k = 0; k < KIDS; k++) {
        char name[32];
        snprintf(name, sizeof name, "kid%d", k);
        printf("%s %ld\n", name, size_of(name));
    }
    printf("bad %d\n", bad);
    return bad;
}
