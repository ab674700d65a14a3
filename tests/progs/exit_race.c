/* A thread reads a file and exits; the main thread ends the process (exit_group) while the
 * thread is held in its exit stop, as mksquashfs's main thread does by chance (6 of 10 runs):
 * the group's SIGKILL ends the stop before a tracer reads the thread's counters. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static atomic_int tid;

static void *reader(void *path)
{
    char buf[65536];
    int fd = open(path, O_RDONLY);
    while (fd >= 0 && read(fd, buf, sizeof buf) > 0)
        ;
    close(fd);
    atomic_store(&tid, gettid());
    return NULL;
}

static int slurp(int t, const char *what, char *s, size_t n)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/self/task/%d/%s", t, what);
    int fd = open(p, O_RDONLY);
    ssize_t got = fd >= 0 ? read(fd, s, n - 1) : -1;
    if (fd >= 0)
        close(fd);
    s[got > 0 ? got : 0] = 0;
    return got > 0;
}

/* 't' once the thread is held in its exit stop (a tracing stop inside exit(2)), 0 once it is
 * gone, else another state */
static char state(int t)
{
    char s[512];
    if (!slurp(t, "stat", s, sizeof s))
        return 0;
    char *e = strrchr(s, ')');
    if (!e || !e[1] || !e[2])
        return 0;
    if (e[2] != 't')
        return e[2];
    return slurp(t, "syscall", s, sizeof s) && atoi(s) == SYS_exit ? 't' : 'r';
}

int main(int argc, char **argv)
{
    pthread_t t;
    if (argc < 2 || pthread_create(&t, NULL, reader, argv[1]))
        return 1;
    while (!atomic_load(&tid))
        ;
    time_t end = time(NULL) + 2; /* untraced it never stops: until it is gone */
    char c;
    while ((c = state(atomic_load(&tid))) && c != 't' && time(NULL) < end)
        ;
    syscall(SYS_exit_group, 0); /* at once: not through the shim's exit */
}
