/* One write whose bytes strace escapes each its own way (-s N): NUL before a digit and before
 * a letter, a bell, DEL, \t \v \f \r, a quote, a backslash, bytes >= 0x80. */
#include <fcntl.h>
#include <unistd.h>

int main(void)
{
    static const char b[] = "a\0" "12\a\0z\177\t\v\f\r\"\\\200\351\0017";
    int fd = open("esc.bin", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, b, sizeof b - 1) != (ssize_t)(sizeof b - 1))
        return 1;
    return close(fd);
}
