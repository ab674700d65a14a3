/* A stdio write that SIGPIPE cuts short after one of its flushes went through: stdout is a
 * pipe of one page whose reader never reads; a byte waits in the buffer, then one fwrite of
 * three pages fills the buffer, flushes it (4,096 B: the pipe is full), and writes the rest
 * straight from the caller's buffer, which blocks until the reader leaves: EPIPE, SIGPIPE.
 * The kernel counted the flush; the fwrite never returned. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    static char buf[3 * 4096];
    if (fcntl(1, F_SETPIPE_SZ, 4096) < 0)
        return 2;
    memset(buf, 'x', sizeof buf);
    putchar('a');
    fwrite(buf, 1, sizeof buf, stdout);
    return 3; /* not reached: SIGPIPE */
}
