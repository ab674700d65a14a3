/* Calls reached along varied paths, for comparing the shim's stack walk with a full unwind
 * (test_stack.py): recursion of several depths through frames with and without a frame
 * pointer (a variable-length array makes one), a signal handler, threads, a forked child, and
 * two libraries loaded one after the other at the same address (argv[1], argv[2]: the same
 * code but for their frame sizes).  Prints "same-address=1" when the second library did land
 * where the first one was. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int fd;
static volatile int sink;

static __attribute__((noinline)) void leaf_plain(int k)
{
    sink += write(fd, "p", 1) + k;
}

static __attribute__((noinline)) void leaf_vla(int k)
{
    char buf[k + 16]; /* rbp-based frame */
    memset(buf, 'v', sizeof buf);
    sink += write(fd, buf, 1) + buf[k];
}

static __attribute__((noinline)) void leaf_stdio(int k)
{
    FILE *f = fdopen(dup(fd), "w");
    fprintf(f, "s%d", k);
    fclose(f);
}

static void (*const leaves[])(int) = {leaf_plain, leaf_vla, leaf_stdio};

static __attribute__((noinline)) void rec(int depth, int leaf)
{
    if (depth == 0) {
        leaves[leaf](leaf);
        return;
    }
    if (depth % 3 == 0) {
        char big[depth * 8 + 1]; /* some levels rbp-based, some not */
        big[0] = (char)depth;
        rec(depth - 1, leaf);
        sink += big[0];
    } else {
        rec(depth - 1, leaf);
    }
    sink++;
}

/* the same stack depth (a memo of a walk is found by it) reached along other paths */
static __attribute__((noinline)) void site(int which)
{
    if (which)
        sink += write(fd, "a", 1);
    else
        sink += write(fd, "b", 1);
}

static __attribute__((noinline)) void via_a(int which)
{
    site(which);
    sink++;
}

static __attribute__((noinline)) void via_b(int which)
{
    site(which);
    sink += 2;
}

static void all_paths(void)
{
    for (int i = 0; i < 8; i++) {
        via_a(i & 1);
        via_b(i >> 1 & 1);
    }
    for (int depth = 0; depth < 14; depth++)
        for (int leaf = 0; leaf < 3; leaf++)
            rec(depth, leaf);
}

static void on_signal(int sig)
{
    (void)sig;
    rec(10, 0); /* deep enough that 8 frames end before the signal frame */
    rec(1, 1);  /* the signal frame within 8 frames */
}

static void *thread_main(void *arg)
{
    (void)arg;
    all_paths();
    return NULL;
}

static uintptr_t base_of(void *h)
{
    struct link_map *m = NULL;
    return dlinfo(h, RTLD_DI_LINKMAP, &m) == 0 && m ? (uintptr_t)m->l_addr : 0;
}

int main(int argc, char **argv)
{
    fd = open("/dev/null", O_WRONLY);
    all_paths();
    signal(SIGUSR1, on_signal);
    for (int i = 0; i < 3; i++) {
        rec(5, 0);
        raise(SIGUSR1);
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, thread_main, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pid_t pid = fork();
    if (pid == 0) {
        all_paths();
        exit(0);
    }
    waitpid(pid, NULL, 0);
    uintptr_t base[2] = {0, 0};
    for (int i = 0; i < 2 && i + 1 < argc; i++) {
        void *h = dlopen(argv[i + 1], RTLD_NOW);
        if (!h)
            return 1;
        base[i] = base_of(h);
        void (*run)(int) = (void (*)(int))dlsym(h, "lib_run");
        for (int k = 0; k < 3; k++)
            run(fd);
        dlclose(h);
    }
    printf("same-address=%d\n", argc > 2 && base[0] && base[0] == base[1]);
    return 0;
}
