/* Results and addresses a strace -y user reads in `iotrace show` (tests/test_show_strace.py):
 * a new descriptor with its file (`= 3</path>`) from open, openat, creat, dup, dup2, dup3 and
 * fcntl F_DUPFD; mmap's address hint; munmap, msync and mremap on the mapping's address; readdir's
 * entries and its NULL at the end of the directory. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void)
{
    if (mkdir("dd", 0755))
        return 1;
    int fd = open("f.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    int dfd = open("dd", O_RDONLY | O_DIRECTORY);
    int g = openat(dfd, "g.txt", O_WRONLY | O_CREAT, 0600);
    int c = creat("c.txt", 0644);
    if (fd < 0 || dfd < 0 || g < 0 || c < 0 || open("nope/x", O_RDONLY) != -1)
        return 1;
    if (dup(fd) < 0 || dup2(fd, 40) != 40 || dup3(fd, 41, O_CLOEXEC) != 41 ||
        fcntl(fd, F_DUPFD, 50) != 50 || ftruncate(fd, 8192))
        return 1;
    /* the hint: a free place the kernel takes as asked (strace prints it the same) */
    void *m = mmap((void *)0x700000000000ULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    void *n = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 4096);
    if (m == MAP_FAILED || n == MAP_FAILED || msync(m, 4096, MS_SYNC))
        return 1;
    m = mremap(m, 8192, 16384, MREMAP_MAYMOVE);
    if (m == MAP_FAILED || munmap(m, 16384) || munmap(n, 4096))
        return 1;
    DIR *d = opendir("dd");
    if (!d)
        return 1;
    while (readdir(d))
        ;
    return closedir(d) || unlinkat(dfd, "g.txt", 0);
}
