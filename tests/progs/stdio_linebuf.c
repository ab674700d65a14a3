/* A line-buffered stream given several lines in one call: glibc writes a line a syscall (the
 * first call, whose buffer is not yet made, and printf) -- several write syscalls in one stdio
 * call, whose bytes the trace holds.  Writes to argv[1]. */
#include <stdio.h>

int main(int argc, char **argv)
{
    FILE *f = fopen(argc > 1 ? argv[1] : "linebuf.out", "w");
    if (!f)
        return 1;
    setvbuf(f, NULL, _IOLBF, 0);
    fwrite("one\ntwo\n", 1, 8, f);
    fwrite("three\nfour\nfive", 1, 15, f);
    fprintf(f, "\nsix\nseven\n");
    return fclose(f) != 0;
}
