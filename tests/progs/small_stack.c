/* Code that gives itself little stack, where the shim's wrappers must fit in what is left.
 * `small_stack`: a thread of the smallest stack POSIX allows (PTHREAD_STACK_MIN: 16 KiB here,
 * its TLS and thread descriptor taken out of it) opens a file by a relative name, writes, reads
 * it back through stdio, renames it.
 * `small_stack alt N [SIZE]`: a SIGUSR1 handler on an alternate stack of SIZE bytes (8 KiB, the
 * classic SIGSTKSZ, by default) with a guard page below it (an overflow faults at once instead
 * of writing over the heap) opens, writes and closes a file, raised N times; the most of the
 * alternate stack used goes to stderr (painted, scanned after each signal). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void *worker(void *arg)
{
    static char buf[4096];
    memset(buf, 'a', sizeof buf);
    int fd = open("small.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return NULL;
    for (int i = 0; i < 10; i++)
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
            return NULL;
    close(fd);
    FILE *f = fopen("small.out", "r");
    if (!f || fread(buf, 1, sizeof buf, f) != sizeof buf)
        return NULL;
    fclose(f);
    return rename("small.out", "small.done") == 0 ? arg : NULL;
}

static volatile sig_atomic_t handled, failed;

static void on_usr1(int sig)
{
    (void)sig;
    static const char line[] = "written from a handler on the alternate stack\n";
    int fd = open("alt.out", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0 || write(fd, line, sizeof line - 1) != (ssize_t)sizeof line - 1 || close(fd))
        failed = 1;
    handled++;
}

static int alt(int n, size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, (size_t)page + size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED || mprotect(map, (size_t)page, PROT_NONE))
        return 3;
    stack_t ss = {.ss_sp = map + page, .ss_size = size};
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_ONSTACK};
    if (sigaltstack(&ss, NULL) || sigaction(SIGUSR1, &sa, NULL))
        return 3;
    size_t most = 0;
    for (int i = 0; i < n; i++) {
        memset(ss.ss_sp, 0xa5, size);
        raise(SIGUSR1);
        size_t low = 0;
        while (low < size && ((unsigned char *)ss.ss_sp)[low] == 0xa5)
            low++;
        most = size - low > most ? size - low : most;
    }
    fprintf(stderr, "alternate stack used: %zu of %zu B\n", most, size);
    printf("%s %d\n", handled == n && !failed ? "ok" : "failed", (int)handled);
    return handled == n && !failed ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "alt"))
        return alt(atoi(argv[2]), argc > 3 ? (size_t)atol(argv[3]) : 8192);
    pthread_attr_t at;
    pthread_t t;
    void *ok = NULL;
    pthread_attr_init(&at);
    if (pthread_attr_setstacksize(&at, PTHREAD_STACK_MIN) ||
        pthread_create(&t, &at, worker, &at) || pthread_join(t, &ok))
        return 3;
    printf("%s %d\n", ok ? "ok" : "failed", (int)PTHREAD_STACK_MIN);
    return ok ? 0 : 1;
}
