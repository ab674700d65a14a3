/* io_uring whose SQ ring mask, head and tail the app rewrote (the rings are its memory): the
 * stracer decodes with the sizes the kernel gave, never reading past the rings */
#include <linux/io_uring.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int fd = (int)syscall(__NR_io_uring_setup, 8, &p);
    if (fd < 0) {
        perror("io_uring_setup");
        return 2;
    }
    size_t len = p.sq_off.array + p.sq_entries * 4;
    char *sq = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                    IORING_OFF_SQ_RING);
    if (sq == MAP_FAILED) {
        perror("mmap");
        return 3;
    }
    *(unsigned *)(sq + p.sq_off.ring_mask) = 0xffffffffu;
    *(unsigned *)(sq + p.sq_off.head) = 0x40000000u;
    *(unsigned *)(sq + p.sq_off.tail) = 0x40000001u;
    long r = syscall(__NR_io_uring_enter, fd, 1, 0, 0, NULL, 0);
    printf("enter %ld\n", r);
    fflush(stdout);
    write(1, "still here\n", 11);
    return 0;
}
