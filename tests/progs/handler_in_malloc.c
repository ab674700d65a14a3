/* A signal handler's write, recorded while the handler interrupted glibc's malloc with its
 * arena locked: malloc_stats() holds main_arena's lock around its fprintf to stderr, which
 * blocks here on a full pipe until the SIGALRM handler empties it.  The shim must record the
 * handler's write without malloc (a second thread makes glibc's malloc lock).  argv[1]:
 * "intern" (the handler's write is the first on its descriptor: its path is new), "unwind" (a
 * write through a function with no unwind table first needs libunwind there, in a handler
 * installed SA_RESETHAND: its signal no longer caught).  The setup is raw syscalls: no event. */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static int rd;

__attribute__((noinline, used)) void do_write(void)
{
    if (write(1, "handler\n", 8) != 8)
        _exit(3);
}

void nocfi_write(void);
__asm__(".text\n.globl nocfi_write\n.type nocfi_write,@function\nnocfi_write:\n"
        "push %rbp\nmov %rsp, %rbp\ncall do_write\npop %rbp\nret\n"
        ".size nocfi_write, .-nocfi_write\n");

static void (*in_handler)(void) = do_write;

static void on_alrm(int sig)
{
    (void)sig;
    in_handler();
    char buf[4096];
    while (syscall(SYS_read, rd, buf, sizeof buf) > 0) /* malloc_stats' write goes on */
        ;
}

static void *idle(void *arg)
{
    pause();
    return arg;
}

int main(int argc, char **argv)
{
    int unwind = argc > 1 && !strcmp(argv[1], "unwind");
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, NULL); /* the handler runs on main's thread */
    pthread_t t;
    pthread_create(&t, NULL, idle, NULL);
    pthread_sigmask(SIG_UNBLOCK, &alrm, NULL);
    if (unwind) {
        in_handler = nocfi_write;
        do_write(); /* its descriptor's path known before */
    }
    int p[2];
    if (syscall(SYS_pipe2, p, O_NONBLOCK) != 0)
        return 2;
    rd = p[0];
    char fill[4096] = {0};
    while (syscall(SYS_write, p[1], fill, sizeof fill) > 0)
        ;
    syscall(SYS_fcntl, p[1], F_SETFL, 0);
    syscall(SYS_dup2, p[1], 2);
    struct sigaction act = {.sa_handler = on_alrm, .sa_flags = SA_RESTART | SA_RESETHAND};
    sigaction(SIGALRM, &act, NULL);
    struct itimerval it = {{0, 0}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
    malloc_stats();
    if (write(1, "done\n", 5) != 5)
        return 3;
    return 0;
}
