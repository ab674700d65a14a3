/* Streams whose stdio buffers the shim places in the stracer's window (preload/stdio_arena.c):
 * buffering as glibc chooses it (size, line buffering) is printed so the test can compare it
 * with an untraced run, and each stream moves enough small records for dozens of flushes and
 * refills.  With the window, none of them stops under the stracer. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 20000

static void show(const char *what, FILE *f)
{
    printf("%-8s size %zu line %d\n", what, __fbufsize(f), __flbf(f) != 0);
}

int main(void)
{
    char rec[16], back[16];
    memset(rec, 'r', sizeof rec);

    FILE *w = fopen("a", "w");
    fputc('x', w);
    show("file-w", w);
    for (int i = 0; i < N; i++)
        fwrite(rec, 1, sizeof rec, w);
    fclose(w);

    FILE *r = fopen("a", "r");
    long total = 0;
    while (fread(back, 1, sizeof back, r) > 0)
        total += (long)sizeof back;
    show("file-r", r);
    fclose(r);
    printf("read back %ld\n", total);

    FILE *n = fopen("/dev/null", "w");
    fputc('x', n);
    show("devnull", n);
    fclose(n);

    /* freopen onto another file: the old buffer goes back, the stream gets a new one */
    FILE *g = fopen("c", "w");
    fputs("first\n", g);
    g = freopen("d", "w", g);
    for (int i = 0; i < N / 4; i++)
        fwrite(rec, 1, sizeof rec, g);
    show("freopen", g);
    fclose(g);

    int fd = open("e", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    FILE *e = fdopen(fd, "w");
    for (int i = 0; i < N / 4; i++)
        fprintf(e, "line %d\n", i);
    show("fdopen", e);
    fclose(e);

    /* many streams open at once, then closed: buffers are reused, not leaked */
    FILE *many[50];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 50; i++) {
            many[i] = fopen("a", "r");
            if (!many[i] || fgetc(many[i]) != 'x')
                return 1;
        }
        for (int i = 0; i < 50; i++)
            fclose(many[i]);
    }

    /* the headers' inline putc/getc (any -O): the shim sees only __overflow and __uflow */
    FILE *p = fopen("g", "w");
    for (int i = 0; i < N; i++)
        putc_unlocked('a' + i % 26, p);
    fclose(p);
    p = fopen("g", "r");
    long got = 0;
    while (getc_unlocked(p) != EOF)
        got++;
    fclose(p);
    printf("inline getc %ld\n", got);

    show("stdout", stdout);
    for (int i = 0; i < N / 4; i++)
        printf("stdout line %d\n", i);
    return 0;
}
