/* stdio on the standard streams: stdin is "7 8\nrest of line\nX" from the test, stdout and
 * stderr are pipes (no offsets).  gcc makes printf("literal\n") a puts and putchar a putc. */
#include <stdio.h>
#include <stdlib.h>

static const char *S(const char *s)
{
    __asm__("" : "+r"(s));
    return s;
}

int main(void)
{
    int x = 0, y = 0;
    int s = scanf("%d %d", &x, &y);             /* fscanf on fd 0: 2 items */
    int c1 = getchar();                         /* '\n' */
    char *lp = NULL;
    size_t cap = 0;
    ssize_t g = getline(&lp, &cap, stdin);      /* "rest of line\n": 13 */
    int c2 = getchar();                         /* 'X' */
    int c3 = getchar();                         /* end of file */
    printf("%d+%d=%d\n", x, y, x + y);          /* 7 bytes */
    puts(S("plain"));                           /* 6 */
    printf("literal\n");                        /* a puts: 8 */
    putchar('!');
    putchar('\n');
    fprintf(stderr, "err %d %d %d %zd %d %d\n", s, c1, c2, g, c3, c3 == EOF);
    fflush(NULL);                               /* every stream: fd nil */
    free(lp);
    return 0;
}
