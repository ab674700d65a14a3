/* Wrapped calls on descriptors the shim never saw opened: a raw openat, a raw dup of it, and a
 * stale number (the shim knew fd N as one file; a raw close and raw openat made it another). */
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    char a[4096], b[4096], c[4096];
    snprintf(a, sizeof a, "%s/a.out", dir);
    snprintf(b, sizeof b, "%s/b.out", dir);
    snprintf(c, sizeof c, "%s/c.out", dir);
    int fa = (int)syscall(SYS_openat, AT_FDCWD, a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fa, "a\n", 2);                      /* carries a.out */
    int fd2 = (int)syscall(SYS_dup, fa);
    write(fd2, "a2\n", 3);                    /* carries a.out */
    int fc = dup(fa);
    write(fc, "a3\n", 3);                     /* carries a.out */
    int fb = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fb, "b\n", 2);                      /* carries b.out */
    syscall(SYS_close, fb);
    int again = (int)syscall(SYS_openat, AT_FDCWD, c, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (again != fb)
        return 3;
    write(again, "c\n", 2);                   /* the same number: must carry c.out */
    close(fa), close(fd2), close(fc), close(again);
    return 0;
}
