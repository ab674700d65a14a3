/* Known events for the read filters:
 *   sel_mix
 * a.dat: open, 3 writes of 100 B, close; then a failed open (missing/x) and a failed stat
 * (missing), both ENOENT; 300 ms of sleep; then b.dat: open, 2 writes of 50 B, close. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int put(const char *name, int n, int size)
{
    char buf[100];
    memset(buf, 'x', sizeof buf);
    int fd = open(name, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0)
        return 1;
    for (int k = 0; k < n; k++)
        if (write(fd, buf, (size_t)size) != size)
            return 1;
    return close(fd);
}

int main(void)
{
    struct stat st;
    if (put("a.dat", 3, 100))
        return 1;
    if (open("missing/x", O_RDONLY) >= 0 || stat("missing", &st) == 0)
        return 1;
    usleep(300000);
    return put("b.dat", 2, 50);
}
