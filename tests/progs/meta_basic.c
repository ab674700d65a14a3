/* Metadata calls whose every event the tests know: paths relative to the cwd, to a dirfd, after
 * chdir and fchdir; failures with their errno; results printed so traced and untraced runs can
 * be compared. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHOW(name, call)                                                \
    do {                                                                \
        errno = 0;                                                      \
        long r_ = (long)(call);                                         \
        printf("%s=%ld errno=%d\n", name, r_, r_ < 0 ? errno : 0);      \
    } while (0)

int main(void)
{
    struct stat st;
    struct statx stx;
    char buf[100];
    memset(buf, 'x', sizeof buf);

    SHOW("mkdir", mkdir("d", 0750));
    SHOW("mkdir-again", mkdir("d", 0750)); /* EEXIST */
    int fd = open("d/f", O_WRONLY | O_CREAT | O_TRUNC, 0640);
    write(fd, buf, sizeof buf);
    SHOW("stat", stat("d/f", &st));
    printf("size=%lld\n", (long long)st.st_size);
    SHOW("stat-missing", stat("missing", &st)); /* ENOENT */
    SHOW("lstat", lstat("./d/../d/f", &st));
    SHOW("fstat", fstat(fd, &st));
    printf("fsize=%lld\n", (long long)st.st_size);
    close(fd);

    int dfd = open("d", O_RDONLY | O_DIRECTORY);
    SHOW("fstatat", fstatat(dfd, "f", &st, 0));
    SHOW("fstatat-empty", fstatat(dfd, "", &st, AT_EMPTY_PATH)); /* the directory itself */
    SHOW("fstatat-nofollow", fstatat(AT_FDCWD, "d/f", &st, AT_SYMLINK_NOFOLLOW));
    SHOW("statx", statx(dfd, "f", 0, STATX_SIZE, &stx));
    printf("xsize=%lld\n", (long long)stx.stx_size);
    SHOW("access", access("d/f", R_OK));
    SHOW("access-missing", access("nope", F_OK)); /* ENOENT */
    SHOW("faccessat", faccessat(dfd, "f", W_OK, 0));
    SHOW("euidaccess", euidaccess("d/f", R_OK));

    SHOW("rename", rename("d/f", "d/g"));
    SHOW("renameat", renameat(dfd, "g", AT_FDCWD, "h"));
    SHOW("renameat2", renameat2(AT_FDCWD, "h", dfd, "f", RENAME_NOREPLACE));
    SHOW("rename-missing", rename("d/nothing", "d/other")); /* ENOENT */
    SHOW("truncate", truncate("d/f", 10));
    SHOW("stat-truncated", stat("d/f", &st));
    printf("size=%lld\n", (long long)st.st_size);

    SHOW("chdir", chdir("d"));
    SHOW("stat-in-d", stat("f", &st));
    SHOW("chdir-up", chdir(".."));
    SHOW("fchdir", fchdir(dfd));
    SHOW("access-in-d", access("f", F_OK));
    SHOW("chdir-back", chdir(".."));

    SHOW("mkdirat", mkdirat(dfd, "sub", 0700));
    SHOW("rmdir-notempty", rmdir("d")); /* ENOTEMPTY */
    SHOW("unlinkat-dir", unlinkat(dfd, "sub", AT_REMOVEDIR));
    SHOW("unlinkat-missing", unlinkat(dfd, "zzz", 0)); /* ENOENT */
    SHOW("unlink", unlink("d/f"));
    close(dfd);
    SHOW("rmdir", rmdir("d"));
    SHOW("stat-empty", stat("", &st));                               /* ENOENT */
    SHOW("fstatat-cwd", fstatat(AT_FDCWD, "", &st, AT_EMPTY_PATH)); /* the cwd */
    return 3;
}
