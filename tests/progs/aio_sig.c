/* Completions collected in a signal handler, the classic SIGEV_SIGNAL pattern: each aio_write's
 * SIGRTMIN carries its aiocb, and the handler calls aio_error and aio_return on it (both
 * async-signal-safe) while the main thread posts the next requests.  20,000 requests posted
 * first and never collected keep the shim's table of outstanding ones long.  Prints how many
 * were collected in the handler.  aio_sig ROUNDS */
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IDLE 20000
#define SLOTS 64

static struct aiocb idle[IDLE], cbs[SLOTS];
static volatile sig_atomic_t busy[SLOTS], collected;

static void on_done(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    struct aiocb *cb = si->si_value.sival_ptr;
    if (cb < cbs || cb >= cbs + SLOTS || aio_error(cb) == EINPROGRESS)
        return;
    if (aio_return(cb) == 1)
        collected++;
    busy[cb - cbs] = 0;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 2000;
    int fd = open("/dev/null", O_WRONLY);
    static char byte = 'x';
    for (int i = 0; i < IDLE; i++) {
        idle[i] = (struct aiocb){.aio_fildes = fd, .aio_buf = &byte, .aio_nbytes = 1};
        idle[i].aio_sigevent.sigev_notify = SIGEV_NONE;
        if (aio_write(&idle[i]) != 0)
            return 2;
    }
    struct sigaction sa = {.sa_sigaction = on_done, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGRTMIN, &sa, NULL);
    for (long r = 0; r < rounds; r++) {
        int k = (int)(r % SLOTS);
        while (busy[k])
            usleep(100);
        cbs[k] = (struct aiocb){.aio_fildes = fd, .aio_buf = &byte, .aio_nbytes = 1};
        cbs[k].aio_sigevent.sigev_notify = SIGEV_SIGNAL;
        cbs[k].aio_sigevent.sigev_signo = SIGRTMIN;
        cbs[k].aio_sigevent.sigev_value.sival_ptr = &cbs[k];
        busy[k] = 1;
        if (aio_write(&cbs[k]) != 0)
            return 3;
    }
    for (int k = 0; k < SLOTS; k++)
        while (busy[k])
            usleep(100);
    printf("collected %ld\n", (long)collected);
    return 0;
}
