/* One chain of calls, 12 deep, reaching write(2) from the main thread, from a thread's first
 * wrapped call, from a signal handler, and through stdio: every event's stack of depth 8 is the
 * same 8 frames of the chain (test_proc.py::test_stack_depth_is_exact_on_every_path). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static int fd;
static FILE *out;

#define LINK(n, next)                                                                           \
    __attribute__((noinline)) static void f##n(int how)                                         \
    {                                                                                           \
        next(how);                                                                              \
        __asm__ volatile("" ::: "memory"); /* not a tail call: a frame of its own */            \
    }

__attribute__((noinline)) static void f11(int how)
{
    if (how == 0) {
        if (write(fd, "x", 1) != 1)
            _exit(2);
    } else if (how == 1) {
        fputc('y', out);
        fflush(out);
    }
    __asm__ volatile("" ::: "memory");
}
LINK(10, f11)
LINK(9, f10)
LINK(8, f9)
LINK(7, f8)
LINK(6, f7)
LINK(5, f6)
LINK(4, f5)
LINK(3, f4)
LINK(2, f3)
LINK(1, f2)
LINK(0, f1)

static void *thread(void *arg)
{
    (void)arg;
    f0(0); /* the thread's first wrapped call */
    return NULL;
}

static void on_usr1(int sig)
{
    (void)sig;
    f0(0);
}

int main(void)
{
    fd = 1;
    out = stdout;
    f0(0);
    pthread_t t;
    if (pthread_create(&t, NULL, thread, NULL) || pthread_join(t, NULL))
        return 1;
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);
    f0(1);
    f0(0);
    return 0;
}
