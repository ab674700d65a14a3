/* A timer signal's handler writes while the main loop writes too: every write must succeed and
 * land, traced or not, whatever the shim was doing when the signal came.  `sig_handler N M U`:
 * each timer signal's handler starts a run of N more, back to back (each raises the next,
 * delivered as it returns), as a frequent timer under a tracer's signal stops does: the
 * interrupted code does not go on meanwhile; until M handlers ran (300); the timer every U us
 * (100). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static int hfd;
static volatile int handled, handler_failures, storm, left;

static void on_alarm(int sig)
{
    (void)sig;
    int e = errno;
    if (write(hfd, "h", 1) != 1)
        handler_failures++;
    handled++;
    left = left > 0 ? left - 1 : storm;
    if (left > 0)
        raise(SIGALRM); /* pending until this handler returns */
    errno = e;
}

int main(int argc, char **argv)
{
    storm = argc > 1 ? atoi(argv[1]) : 0;
    int total = argc > 2 ? atoi(argv[2]) : 300;
    int fd = open("main.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    hfd = open("handler.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    int usec = argc > 3 ? atoi(argv[3]) : 100;
    struct itimerval it = {{0, usec}, {0, usec}};
    setitimer(ITIMER_REAL, &it, NULL);
    int failures = 0, n = 200000;
    for (int i = 0; i < n && handled < total; i++)
        if (write(fd, "m", 1) != 1)
            failures++;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("handled=%d handler_failures=%d main_failures=%d\n", handled, handler_failures,
           failures);
    return failures || handler_failures;
}
