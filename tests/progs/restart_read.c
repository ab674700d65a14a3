/* A raw read(2) (no libc wrapper: the stracer records it) on a pipe that a SA_RESTART SIGALRM
 * interrupts: the kernel restarts it, and it gets the bytes a child writes later.
 * restart_read [wait]: "wait" reads a byte from stdin first (time to attach); then the alarm
 * comes at 100 ms, the data at 400 ms. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void nap(long ms) /* a nanosleep the attach may cut: slept to the end */
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts))
        ;
}

int main(int argc, char **argv)
{
    char buf[64];
    if (argc > 1 && strcmp(argv[1], "wait") == 0 && read(0, buf, 1) != 1)
        return 2;
    int p[2];
    if (pipe(p))
        return 1;
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    pid_t kid = fork();
    if (kid == 0) {
        nap(400);
        _exit(syscall(SYS_write, p[1], "hello", 5) != 5);
    }
    struct itimerval it = {{0, 0}, {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
    long n = syscall(SYS_read, p[0], buf, sizeof buf);
    int st;
    waitpid(kid, &st, 0);
    printf("read %ld alarms %d\n", n, (int)alarms);
    return n != 5 || alarms != 1 || st != 0;
}
