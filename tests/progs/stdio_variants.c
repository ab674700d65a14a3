/* The entry points a plain -O1 call does not reach: _unlocked functions the headers inline,
 * getchar/putchar/vprintf as functions, _IO_getc/_IO_putc, the GNU scanf symbols, freopen of
 * stdout, open modes, a stream with no descriptor.  Called through volatile pointers so gcc
 * keeps each call a call to that very symbol.  stdin is "5\nQR" from the test. */
#define _GNU_SOURCE /* fgets_unlocked, fputs_unlocked */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int _IO_getc(FILE *);
extern int _IO_putc(int, FILE *);
extern int gnu_fscanf(FILE *, const char *, ...) __asm__("fscanf");
extern int gnu_vfscanf(FILE *, const char *, va_list) __asm__("vfscanf");
extern int gnu_scanf(const char *, ...) __asm__("scanf");

#define P(name) static __typeof__(name) *volatile p_##name = name
P(fputc_unlocked);
P(putc_unlocked);
P(_IO_putc);
P(fwrite_unlocked);
P(fputs_unlocked);
P(fflush_unlocked);
P(fgetc_unlocked);
P(getc_unlocked);
P(_IO_getc);
P(fread_unlocked);
P(fgets_unlocked);
P(getchar);
P(getchar_unlocked);
P(putchar);
P(putchar_unlocked);
P(vprintf);
P(vfprintf);

static int vf(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = p_vfprintf(f, fmt, ap);
    va_end(ap);
    return r;
}

static int vp(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = p_vprintf(fmt, ap);
    va_end(ap);
    return r;
}

static int vs(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = gnu_vfscanf(f, fmt, ap);
    va_end(ap);
    return r;
}

int main(void)
{
    FILE *f = fopen("v.txt", "w+e");
    p_fputc_unlocked('a', f);                   /* 0 */
    p_putc_unlocked('b', f);                    /* 1 */
    p__IO_putc('c', f);                         /* 2 */
    p_fwrite_unlocked("def", 1, 3, f);          /* 3..5 */
    p_fputs_unlocked(" 12 ", f);                /* 6..9 */
    vf(f, "%d\n", 345);                         /* 10..13 */
    p_fflush_unlocked(f);
    rewind(f);
    char buf[16];
    int c1 = p_fgetc_unlocked(f);               /* 'a' at 0 */
    int c2 = p_getc_unlocked(f);                /* 'b' at 1 */
    int c3 = p__IO_getc(f);                     /* 'c' at 2 */
    size_t r = p_fread_unlocked(buf, 1, 3, f);  /* "def" at 3 */
    int n1 = 0, n2 = 0;
    int s1 = gnu_fscanf(f, "%d", &n1);          /* " 12" at 6: 3 bytes */
    int s2 = vs(f, "%d", &n2);                  /* " 345" at 9: 4 bytes */
    char *l = p_fgets_unlocked(buf, sizeof buf, f); /* "\n" at 13 */
    fclose(f);

    errno = 0;
    FILE *x = fopen("v.txt", "wx");             /* exists: EEXIST */
    int x_errno = errno;
    FILE *rw = fopen("v.txt", "r+");
    fclose(rw);

    char *ms = NULL;
    size_t msz = 0;
    FILE *m = open_memstream(&ms, &msz);        /* no descriptor */
    fputs("memory", m);
    fclose(m);

    int k = 0;
    int s3 = gnu_scanf("%d", &k);               /* stdin "5" */
    int c4 = p_getchar();                       /* '\n' */
    int c5 = p_getchar_unlocked();              /* 'Q' */
    fprintf(stderr, "c=%c%c%c r=%zu s=%d,%d,%d n=%d,%d,%d l=%d x=%d,%d ms=%s c4=%d c5=%c\n",
            c1, c2, c3, r, s1, s2, s3, n1, n2, k, l && l[0] == '\n', x == NULL, x_errno, ms,
            c4, c5);
    free(ms);

    if (!freopen("stdout.txt", "w", stdout))    /* fd 1 is now a file: offsets */
        return 1;
    vp("%s|", "vp");                            /* 0..2 */
    p_putchar('P');                             /* 3 */
    p_putchar_unlocked('U');                    /* 4 */
    puts("end");                                /* 5..8 */
    if (!freopen(NULL, "a", stdout))            /* same file, appending: no offsets */
        return 1;
    puts("more");
    return 0;
}
