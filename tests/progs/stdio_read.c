/* Deterministic stdio reads of lines.txt (written by the test: "alpha\nbeta beta\n12 34 gamma\n
 * tail end", 36 bytes), every call and stream position known.  Prints what it read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hides a value from gcc: under _FORTIFY_SOURCE a size it cannot check at compile time makes
 * fgets/fread the __*_chk entries. */
static int I(int n)
{
    __asm__("" : "+r"(n));
    return n;
}

int main(void)
{
    char line[64], buf[64];
    FILE *f = fopen("lines.txt", "r");
    char *l1 = fgets(line, I(sizeof line), f);       /* "alpha\n" at 0 */
    int c1 = fgetc(f);                               /* 'b' at 6 */
    int c2 = getc(f);                                /* 'e' at 7 */
    char *lp = NULL;
    size_t cap = 0;
    ssize_t g1 = getline(&lp, &cap, f);              /* "ta beta\n" at 8 */
    int a = 0, b = 0;
    char w[16] = "";
    int s = fscanf(f, "%d %d %15s", &a, &b, w);      /* "12 34 gamma" at 16: 11 bytes */
    ssize_t g2 = getdelim(&lp, &cap, ' ', f);        /* "\ntail " at 27 */
    size_t r1 = fread(buf, 4, I(10), f);             /* "end" at 33: 0 items, 3 bytes */
    int c3 = fgetc(f);                               /* EOF at 36 */
    ssize_t g3 = getline(&lp, &cap, f);              /* EOF */
    char *n1 = fgets(line, I(sizeof line), f);       /* EOF: NULL */
    rewind(f);
    size_t r2 = fread(buf, 1, I(5), f);              /* "alpha" at 0 */
    long t = ftello(f);                              /* 5 */
    fseeko(f, 6, SEEK_SET);
    fpos_t p;
    fgetpos(f, &p);                                  /* 6 */
    size_t r4 = fread(buf, 1, I(4), f);              /* "beta" at 6 */
    fsetpos(f, &p);
    int c4 = fgetc(f);                               /* 'b' at 6 again */
    ungetc(c4, f);                                   /* no event: back to 6 */
    int c5 = fgetc(f);                               /* 'b' at 6 */
    int c6 = fgetc(f);                               /* 'e' at 7 */
    fclose(f);

    FILE *wo = fopen("wo.txt", "w");
    size_t r3 = fread(buf, 1, I(1), wo);             /* not readable: EBADF */
    fclose(wo);
    free(lp);
    printf("l1=%.5s c=%c%c%c%c%c%c g=%zd,%zd,%zd s=%d a=%d b=%d w=%s r=%zu,%zu,%zu,%zu t=%ld n1=%d\n",
           l1, c1, c2, c3 == EOF ? '$' : c3, c4, c5, c6, g1, g2, g3, s, a, b, w, r1, r2, r3, r4, t,
           n1 == NULL);
    return 0;
}
