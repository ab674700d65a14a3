/* A handler set with sigaction, then replaced with signal(): signal() gives back the handler
 * the app set ("old 1"), as does sigset() ("sigset 1").  sig_signal_old */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>

static void handler(int sig) { (void)sig; }

int main(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = handler;
    sigaction(SIGUSR1, &sa, NULL);
    printf("old %d\n", signal(SIGUSR1, SIG_DFL) == handler);
    sigaction(SIGUSR2, &sa, NULL);
    printf("sigset %d\n", sigset(SIGUSR2, SIG_DFL) == handler);
    return 0;
}
