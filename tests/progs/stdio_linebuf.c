/* A line-buffered stream given several lines in one call: glibc writes a line a syscall (the
 * first call, whose buffer is not yet made), or a call's lines up to its last newline at once
 * -- several write syscalls in one stdio call, whose bytes the trace holds.  Writes to argv[1];
 * with "die", then killed by SIGTERM (no exit: the stream flushed, the shim's last reading not
 * taken). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    FILE *f = fopen(argc > 1 ? argv[1] : "linebuf.out", "w");
    if (!f)
        return 1;
    setvbuf(f, NULL, _IOLBF, 0);
    fwrite("one\ntwo\n", 1, 8, f);
    fwrite("three\nfour\nfive", 1, 15, f);
    fprintf(f, "\nsix\nseven\n");
    fprintf(f, "%s|%d\n", "eight\nnine", 9); /* a string with a newline: two writes */
    fprintf(f, "ten %d\n", 10);                /* one */
    fprintf(f, "eleven\n%ctwelve\n", 'x');     /* two runs of text with one each: two */
    if (argc > 2 && !strcmp(argv[2], "die"))
        raise(SIGTERM);
    return fclose(f) != 0;
}
