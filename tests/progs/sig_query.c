/* What sigaction gives back of the handlers the program set (with and without SA_SIGINFO,
 * SA_RESTART), and each handler called as set, with its arguments; a pipe
 * read that SIGALRM's handler interrupts fails with EINTR, or with SA_RESTART is restarted until
 * the handler's second call writes a byte into the pipe (however late the read starts, its
 * result is that byte). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

static volatile sig_atomic_t plain_sig, info_sig, info_ok, alarms;
static int pipe_w = -1;

static void plain(int sig) { plain_sig = sig; }

static void alarm_fn(int sig)
{
    (void)sig;
    if (++alarms == 2 && pipe_w >= 0)
        write(pipe_w, "x", 1);
}

static void with_info(int sig, siginfo_t *si, void *uc)
{
    info_sig = sig;
    info_ok = si && si->si_signo == sig && uc != NULL;
}

static void show(int sig, const char *name, void *want)
{
    struct sigaction old;
    sigaction(sig, NULL, &old);
    printf("%s: same %d flags %#x\n", name, (void *)old.sa_sigaction == want,
           (unsigned)old.sa_flags & (SA_SIGINFO | SA_RESTART | SA_ONSTACK | SA_NODEFER));
}

/* a read of an empty pipe that SIGALRM interrupts (every 20 ms until it returns); its result
 * and errno.  Without SA_RESTART nothing is written: the read fails at whichever alarm comes
 * while it waits. */
static void cut_read(const char *name, int flags)
{
    int p[2];
    char c = '-';
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = alarm_fn;
    sa.sa_flags = flags;
    sigaction(SIGALRM, &sa, NULL);
    pipe(p);
    alarms = 0;
    pipe_w = flags & SA_RESTART ? p[1] : -1;
    struct itimerval it = {{0, 20000}, {0, 20000}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
    long r = read(p[0], &c, 1);
    int e = errno;
    setitimer(ITIMER_REAL, &off, NULL);
    pipe_w = -1;
    printf("%s: read %ld %c errno %s\n", name, r, c, r < 0 ? strerror(e) : "-");
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = plain;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = with_info;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGUSR2, &sa, NULL);
    show(SIGUSR1, "usr1", (void *)plain);
    show(SIGUSR2, "usr2", (void *)with_info);
    sa.sa_handler = plain;
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    show(SIGUSR1, "usr1 again", (void *)plain);
    raise(SIGUSR1);
    raise(SIGUSR2);
    printf("called %d %d info %d\n", plain_sig, info_sig, info_ok);
    cut_read("eintr", 0);
    cut_read("restart", SA_RESTART);
    struct sigaction old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGALRM, &sa, &old);
    printf("alrm back: same %d\n", (void *)old.sa_handler == (void *)alarm_fn);
    return 0;
}
