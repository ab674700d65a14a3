/* mkstemp and its variants, every case whose result glibc decides (preload/wrap_tmp.c does
 * them itself under a stracer): results, errno (kept on success), the names made, the open
 * flags and mode, for comparison untraced vs traced.  argv[1]: a directory to make them in. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the result, errno, whether the template is unchanged, whether six letters were made where
 * the X were (alphanumeric, not X) and the rest kept */
static void show(const char *what, int fd, const char *tmpl, const char *before, int suffix)
{
    int e = errno;
    size_t len = strlen(tmpl);
    const char *x = len >= 6 + (size_t)suffix ? tmpl + len - 6 - suffix : tmpl;
    int made = strncmp(x, "XXXXXX", 6) != 0;
    for (int i = 0; i < 6 && x[i]; i++)
        made &= isalnum((unsigned char)x[i]) != 0;
    int kept = strlen(before) == len && !strncmp(before, tmpl, (size_t)(x - tmpl)) &&
               !strcmp(before + (x - tmpl) + 6, x + 6);
    printf("%s: %d errno %d unchanged %d made %d kept %d", what, fd >= 0 ? 1 : fd, e,
           !strcmp(before, tmpl), made, kept);
    if (fd >= 0) {
        struct stat st;
        fstat(fd, &st);
        int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
        printf(" mode %o acc %d append %d cloexec %d", (unsigned)st.st_mode,
               fl & O_ACCMODE, (fl & O_APPEND) != 0, (fdfl & FD_CLOEXEC) != 0);
        close(fd);
        unlink(tmpl);
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    umask(077);
    char t[4096], before[4096];
#define TRY(what, suffix, call, fmt, ...)                                                     \
    do {                                                                                    \
        snprintf(t, sizeof t, fmt, __VA_ARGS__);                                            \
        strcpy(before, t);                                                                  \
        errno = 77;                                                                         \
        int fd_ = call;                                                                     \
        show(what, fd_, t, before, suffix);                                                 \
    } while (0)
    TRY("mkstemp", 0, mkstemp(t), "%s/aXXXXXX", argv[1]);
    TRY("mkstemp more X", 0, mkstemp(t), "%s/XXXXXXXXX", argv[1]);
    TRY("mkostemp", 0, mkostemp(t, O_CLOEXEC | O_APPEND | O_WRONLY), "%s/bXXXXXX", argv[1]);
    TRY("mkstemps", 2, mkstemps(t, 2), "%s/cXXXXXX.c", argv[1]);
    TRY("mkostemps", 4, mkostemps(t, 4, O_CLOEXEC), "%s/dXXXXXXdata", argv[1]);
    TRY("missing dir", 0, mkstemp(t), "%s/none/eXXXXXX", argv[1]);
    TRY("a file as dir", 0, mkstemp(t), "%s/fXXXXXX", "/etc/passwd");
    TRY("five X", 0, mkstemp(t), "%s/gXXXXX", argv[1]);
    TRY("X not last", 0, mkstemp(t), "%s/hXXXXXXi", argv[1]);
    TRY("bad", 0, mkstemp(t), "%s", "bad");
    TRY("empty", 0, mkstemp(t), "%s", "");
    TRY("suffix negative", 0, mkstemps(t, -1), "%s/jXXXXXX", argv[1]);
    TRY("suffix too long", 0, mkstemps(t, 12), "%s", "XXXXXXab");
    TRY("suffix not after X", 2, mkstemps(t, 2), "%s/kXXXXX.ab", argv[1]);
    return 0;
}
