/* Linux AIO with raw syscalls (no libaio): the kernel moves the bytes; the stracer must decode
 * each iocb from memory.  Two writes and one read, then their events. */
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int fd = open(argc > 1 ? argv[1] : "aio.out", O_RDWR | O_CREAT | O_TRUNC, 0644);
    aio_context_t ctx = 0;
    if (fd < 0 || syscall(SYS_io_setup, 8, &ctx) != 0)
        return 3;
    static char a[4096], b[1000], r[3000];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    struct iocb cbs[3] = {
        {.aio_lio_opcode = IOCB_CMD_PWRITE, .aio_fildes = fd, .aio_buf = (unsigned long)a,
         .aio_nbytes = sizeof a, .aio_offset = 0},
        {.aio_lio_opcode = IOCB_CMD_PWRITE, .aio_fildes = fd, .aio_buf = (unsigned long)b,
         .aio_nbytes = sizeof b, .aio_offset = 8192},
    };
    struct iocb *list[2] = {&cbs[0], &cbs[1]};
    if (syscall(SYS_io_submit, ctx, 2, list) != 2)
        return 4;
    struct io_event ev[2];
    int got = 0;
    while (got < 2) {
        long n = syscall(SYS_io_getevents, ctx, 1, 2 - got, ev, NULL);
        if (n <= 0)
            return 5;
        got += (int)n;
    }
    cbs[2] = (struct iocb){.aio_lio_opcode = IOCB_CMD_PREAD, .aio_fildes = fd,
                           .aio_buf = (unsigned long)r, .aio_nbytes = sizeof r,
                           .aio_offset = 2048};
    struct iocb *one[1] = {&cbs[2]};
    if (syscall(SYS_io_submit, ctx, 1, one) != 1 ||
        syscall(SYS_io_getevents, ctx, 1, 1, ev, NULL) != 1 || ev[0].res != 3000)
        return 6;
    syscall(SYS_io_destroy, ctx);
    close(fd);
    return 0;
}
