/* libaio's io_cancel of a request that was never submitted (the kernel answers -EINVAL),
 * between io_setup and io_destroy:  aio_cancel FILE.  Prints io_cancel's result. */
#include <fcntl.h>
#include <libaio.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    io_context_t ctx = 0;
    if (fd < 0 || io_setup(4, &ctx) != 0)
        return 1;
    char buf[100];
    struct iocb cb;
    struct io_event ev;
    io_prep_pread(&cb, fd, buf, sizeof buf, 512);
    printf("%d\n", io_cancel(ctx, &cb, &ev));
    io_destroy(ctx);
    close(fd);
    return 0;
}
