/* perror's and psignal's messages, written to stderr inside libc (no stdio call of the app's). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    errno = ENOENT;
    perror("nofile");
    psignal(SIGINT, "sig");
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGTERM;
    psiginfo(&si, "info");
    errno = EACCES; /* errno as the app set it, after the shim's own work in the wrapper */
    perror(NULL);
    return 0;
}
