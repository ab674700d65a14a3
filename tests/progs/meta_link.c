/* readlink, readlinkat and posix_fallocate, each result printed (fortified with -O2
 * -D_FORTIFY_SOURCE=2: __readlink_chk, __readlinkat_chk). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char buf[64]; /* "l" -> "target-file" is made by the test */
    ssize_t n = readlink("l", buf, sizeof buf);
    printf("readlink %zd %.*s\n", n, (int)(n > 0 ? n : 0), buf);
    n = readlinkat(AT_FDCWD, "l", buf, 3);
    printf("readlinkat %zd %.*s\n", n, (int)(n > 0 ? n : 0), buf);
    n = readlink("missing", buf, sizeof buf);
    printf("readlink missing %zd %s\n", n, n < 0 ? strerrorname_np(errno) : "-");
    int fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    printf("posix_fallocate %d\n", posix_fallocate(fd, 0, 8192));
    printf("posix_fallocate bad %s\n", strerrorname_np(posix_fallocate(-1, 0, 1)));
    close(fd);
    return 0;
}
