/* stdio calls that make more than one read or write syscall, or one that moves nothing:
 * fgets of a line longer than the buffer, reading on to end of file (its 0-byte read); a
 * getc after it (no read: end of file is sticky); fread of more than the buffer (whole blocks
 * straight into the caller's memory, then a refill, then end of file); fwrite of more than
 * the buffer (the buffer flushed, then whole blocks straight from the caller's memory); a
 * seek past the end.  argv[1]: a file of a few blocks with a long line (the test writes it);
 * argv[2]: the file to write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    static char buf[5 * BUFSIZ], line[3 * BUFSIZ];
    FILE *f = fopen(argv[1], "r");
    if (!f)
        return 3;
    size_t lines = 0;
    while (fgets(line, sizeof line, f))
        lines++;
    int c = getc(f); /* EOF, no read */
    rewind(f);
    size_t got = fread(buf, 1, sizeof buf, f);
    fseek(f, 10 * (long)sizeof buf, SEEK_SET); /* past the end: its block reads nothing */
    got += fread(buf, 1, 10, f);
    fclose(f);
    FILE *o = fopen(argv[2], "w");
    if (!o)
        return 4;
    fputs("head\n", o);
    memset(buf, 'x', sizeof buf);
    fwrite(buf, 1, 3 * BUFSIZ + 100, o);
    fputs("tail\n", o);
    fclose(o);
    printf("%zu lines, %zu bytes, %d\n", lines, got, c);
    return 0;
}
