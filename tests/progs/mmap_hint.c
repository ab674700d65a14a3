/* What the shim's file mappings rely on (preload/sysraw.h iot_sysraw_mmap, wrap_mmap.c
 * iot_mmap_hint_ok): an address hint in the cookie's form (bit 63 set, bit 62 clear, random
 * bits) is placed by the kernel as for no address, and the shim's probe tells where it is not
 * (5-level paging: such a hint opens the 57-bit address space).  argv[1]: a directory on a
 * disk's file system; /dev/shm is the tmpfs.  Prints, for each mapping, whether the hinted one
 * was placed where the unhinted one was (the same mapping made again after an unmap, so the
 * kernel's choice is the same unless the hint changed it); then the probe's answer and whether
 * the kernel runs 5-level paging (a valid hint above 47 bits is taken as asked). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

static uintptr_t cookie_hint(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != sizeof v)
        v = 0x0123456789abcdefULL;
    return (uintptr_t)((v & ~(1ULL << 62)) | (1ULL << 63));
}

static void same(const char *what, size_t len, int prot, int flags, int fd, off_t off)
{
    int n = 0, tries = 20;
    for (int i = 0; i < tries; i++) {
        void *a = mmap(NULL, len, prot, flags, fd, off);
        if (a == MAP_FAILED) {
            printf("%s: mmap failed\n", what);
            return;
        }
        munmap(a, len);
        void *b = mmap((void *)cookie_hint(), len, prot, flags, fd, off);
        n += a == b && (uintptr_t)b < (1ULL << 47);
        if (b != MAP_FAILED)
            munmap(b, len);
    }
    printf("%s: %d of %d at the same address\n", what, n, tries);
}

static int file(const char *dir, const char *name, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
        exit(3);
    unlink(path);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    long pg = sysconf(_SC_PAGESIZE);
    size_t big = 8 << 20; /* huge-page sized: the file systems' THP alignment paths */
    int disk = file(argv[1], "hint.dat", big), shm = file("/dev/shm", "iotrace-hint.dat", big);
    int rw = PROT_READ | PROT_WRITE;
    same("disk page shared", (size_t)pg, rw, MAP_SHARED, disk, 0);
    same("disk page private", (size_t)pg, PROT_READ, MAP_PRIVATE, disk, pg);
    same("disk 8 MiB shared", big, rw, MAP_SHARED, disk, 0);
    same("disk 4 MiB at 2 MiB", big / 2, PROT_READ, MAP_PRIVATE, disk, 2 << 20);
    same("tmpfs page shared", (size_t)pg, rw, MAP_SHARED, shm, 0);
    same("tmpfs 8 MiB shared", big, rw, MAP_SHARED, shm, 0);
    same("tmpfs 4 MiB at 2 MiB", big / 2, rw, MAP_SHARED, shm, 2 << 20);
    /* MAP_32BIT: placed at random in the low 2 GiB at each call, hinted or not */
    int low = 0;
    for (int i = 0; i < 20; i++) {
        void *b = mmap((void *)cookie_hint(), (size_t)pg, PROT_READ, MAP_PRIVATE | MAP_32BIT,
                       disk, 0);
        low += b != MAP_FAILED && (uintptr_t)b < (1ULL << 31);
        if (b != MAP_FAILED)
            munmap(b, (size_t)pg);
    }
    printf("32-bit: %d of 20 in the low 2 GiB\n", low);

    /* the shim's probe (wrap_mmap.c iot_mmap_hint_ok), and the paging it is to detect */
    void *p = mmap((void *)(1UL << 63), (size_t)pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int probe_ok = p != MAP_FAILED && (uintptr_t)p < (1UL << 47);
    void *want = (void *)(1UL << 50);
    void *q = mmap(want, (size_t)pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("probe %s; 5-level paging %s\n", probe_ok ? "hints" : "no hints",
           q == want ? "yes" : "no");
    return 0;
}
