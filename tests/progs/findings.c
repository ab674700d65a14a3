/* Programs with one planted I/O problem each (tests/test_findings.py):
 *   findings fsync    200 writes of 8 KiB to journal.dat, an fsync after each
 *   findings onesync  the same writes, one fsync at the end (fine)
 *   findings reopen   64 writes of 1 MiB to B/big.dat (fine), then 2,000 records of 200 bytes
 *                     appended to A/log.dat, the file opened and closed for each
 *   findings search   300 modules looked for along a search path of 6 directories: a stat and
 *                     an open of each missing path/N/modI.so (3,600 calls fail with ENOENT) */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1 << 20)

static char buf[MIB];

static int journal(int every)
{
    int rc = 0, fd = open("journal.dat", O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0)
        return 1;
    for (int i = 0; i < 200; i++) {
        if (write(fd, buf, 8192) != 8192)
            rc = 1;
        if ((every || i == 199) && fsync(fd) != 0)
            rc = 1;
    }
    return close(fd) != 0 || rc;
}

static int reopen(void)
{
    int rc = 0, fd;
    mkdir("A", 0755);
    mkdir("B", 0755);
    if ((fd = open("B/big.dat", O_CREAT | O_TRUNC | O_WRONLY, 0644)) < 0)
        return 1;
    for (int i = 0; i < 64; i++)
        if (write(fd, buf, MIB) != MIB)
            rc = 1;
    if (close(fd) != 0)
        rc = 1;
    for (int i = 0; i < 2000; i++) {
        if ((fd = open("A/log.dat", O_CREAT | O_WRONLY | O_APPEND, 0644)) < 0)
            return 1;
        if (write(fd, buf, 200) != 200 || close(fd) != 0)
            rc = 1;
    }
    return rc;
}

static int search(void)
{
    char p[64];
    struct stat st;
    int rc = 0;
    for (int d = 0; d < 6; d++) {
        snprintf(p, sizeof p, "path%d", d);
        mkdir(p, 0755);
    }
    for (int i = 0; i < 300; i++)
        for (int d = 0; d < 6; d++) {
            snprintf(p, sizeof p, "path%d/mod%d.so", d, i);
            if (stat(p, &st) == 0 || open(p, O_RDONLY) >= 0)
                rc = 1;
        }
    return rc;
}

int main(int argc, char **argv)
{
    memset(buf, 'x', sizeof buf);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "fsync") == 0 || strcmp(mode, "onesync") == 0)
        return journal(mode[0] == 'f');
    if (strcmp(mode, "reopen") == 0)
        return reopen();
    if (strcmp(mode, "search") == 0)
        return search();
    return 2;
}
