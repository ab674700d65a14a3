/* Deterministic stdio writes, seeks and opens whose every call the tests know.  Exit status 3;
 * one summary line on stdout (a printf: traced too). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Hides a value from gcc, which turns fputs("lit", f) into fwrite, fprintf(f, "%s", s) into
 * fputs, and checks constant sizes at compile time under _FORTIFY_SOURCE. */
static const char *S(const char *s)
{
    __asm__("" : "+r"(s));
    return s;
}
static size_t N(size_t n)
{
    __asm__("" : "+r"(n));
    return n;
}

int main(void)
{
    char buf[100];
    memset(buf, 'a', sizeof buf);

    FILE *f = fopen("out.txt", "w");
    size_t items = fwrite(buf, 10, 5, f);       /* 50 bytes at 0 */
    fputs(S("hello\n"), f);                /* 6 at 50 */
    fputc('x', f);                              /* 1 at 56 */
    putc('y', f);                               /* 1 at 57 */
    int k = fprintf(f, "%d-%s\n", 42, S("z")); /* 5 at 58 */
    fflush(f);
    fseek(f, 3, SEEK_SET);
    fwrite(buf, 1, N(2), f);               /* 2 at 3 */
    long t1 = ftell(f);                         /* 5 */
    fseeko(f, -4, SEEK_END);                    /* 63 - 4 = 59 */
    fwrite(buf, 2, 2, f);                       /* 4 at 59 */
    long t2 = ftello(f);                        /* 63 */
    fclose(f);

    FILE *a = fopen("log.txt", "a");            /* appends: no offset */
    fputs(S("one\n"), a);
    fclose(a);
    a = fopen("log.txt", "a+");
    fputs(S("two\n"), a);
    fclose(a);

    errno = 0;
    FILE *bad = fopen("missing/none.txt", "r");
    int bad_errno = errno;

    int fd = open("out.txt", O_RDONLY);
    lseek(fd, 10, SEEK_SET);
    FILE *d = fdopen(fd, "r");                  /* the stream starts at the descriptor's 10 */
    int c = fgetc(d);
    fclose(d);

    char mem[64];
    FILE *m = fmemopen(mem, sizeof mem, "w");   /* no descriptor: fd and path nil */
    errno = 0;
    fprintf(m, "%d", 12345);
    int mem_errno = errno;                      /* 0: fileno's EBADF must not leak */
    fclose(m);

    printf("items=%zu k=%d t1=%ld t2=%ld bad=%d errno=%d c=%c mem=%s,%d\n", items, k, t1,
           t2, bad == NULL, bad_errno, c, mem, mem_errno);
    return 3;
}
