/* A timer signal's handler writes while the main loop writes too: every write must succeed and
 * land, traced or not, whatever the shim was doing when the signal came. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static int hfd;
static volatile int handled, handler_failures;

static void on_alarm(int sig)
{
    (void)sig;
    int e = errno;
    if (write(hfd, "h", 1) != 1)
        handler_failures++;
    handled++;
    errno = e;
}

int main(void)
{
    int fd = open("main.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    hfd = open("handler.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 100}, {0, 100}};
    setitimer(ITIMER_REAL, &it, NULL);
    int failures = 0, n = 200000;
    for (int i = 0; i < n && handled < 300; i++)
        if (write(fd, "m", 1) != 1)
            failures++;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("handled=%d handler_failures=%d main_failures=%d\n", handled, handler_failures,
           failures);
    return failures || handler_failures;
}
