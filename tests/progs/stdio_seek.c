/* ld's pattern: fseek + small fread over a large file (stdio reads whole blocks underneath),
 * then fwrite of small records with an fseek back to patch a header, and fputc through a
 * line-buffered stream.  Usage: stdio_seek IN OUT */
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    FILE *in = fopen(argv[1], "r"), *out = fopen(argv[2], "w");
    if (!in || !out)
        return 1;
    char buf[100];
    long sum = 0;
    for (int i = 0; i < 10; i++) {
        if (fseek(in, (long)i * 6000 + 123, SEEK_SET) || fread(buf, 1, sizeof buf, in) != 100)
            return 1;
        sum += buf[0];
    }
    fwrite("HEADER..", 1, 8, out);
    for (int i = 0; i < 2000; i++)
        fwrite(buf, 1, 10, out);
    fseek(out, 0, SEEK_SET);
    fwrite("header", 1, 6, out);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < 3; i++)
        fputc('a' + i, stdout), fputc('\n', stdout);
    return fclose(in) || fclose(out) || sum == 12345;
}
