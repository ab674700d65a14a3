/* File mappings whose every event the tests know: write through a shared mapping, msync,
 * munmap; a mapping at a file offset; a hole punched in the middle of a mapping; mremap;
 * anonymous mappings (not logged); a failing mmap.  Prints what it read back. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096

int main(void)
{
    char buf[3 * PG];
    memset(buf, '.', sizeof buf);
    int fd = open("m.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    write(fd, buf, sizeof buf);

    /* 1: the whole file, written through memory */
    char *p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memcpy(p + 100, "mapped!", 7);
    printf("msync=%d\n", msync(p, 2 * PG, MS_SYNC));
    printf("munmap=%d\n", munmap(p, 2 * PG));

    /* 2: at file offset PG, msync of its second half page */
    char *q = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PG);
    memcpy(q, "second", 6);
    printf("msync2=%d\n", msync(q, PG, MS_ASYNC));
    munmap(q, PG);

    /* 3: three pages, the middle one unmapped first, then the other two */
    char *r = mmap(NULL, 3 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    munmap(r + PG, PG);
    munmap(r, PG);
    munmap(r + 2 * PG, PG);

    /* 4: mremap grows a mapping (maybe moving it); the new range is still the file's */
    char *s = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
    char *s2 = mremap(s, PG, 2 * PG, MREMAP_MAYMOVE);
    printf("mremap=%d\n", s2 != MAP_FAILED);
    printf("read-through=%.7s\n", s2 + 100);
    munmap(s2, 2 * PG);

    /* anonymous memory: not I/O, nothing logged */
    char *a = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    a[0] = 1;
    msync(a, PG, MS_SYNC);
    munmap(a, 4 * PG);

    /* a file mapping that fails: EBADF */
    errno = 0;
    void *bad = mmap(NULL, PG, PROT_READ, MAP_SHARED, -1, 0);
    printf("bad=%d errno=%d\n", bad == MAP_FAILED, errno);
    close(fd);

    fd = open("m.bin", O_RDONLY);
    pread(fd, buf, sizeof buf, 0);
    printf("file=%.7s %.6s\n", buf + 100, buf + PG);
    close(fd);
    return 0;
}
