/* io_uring through liburing: the ring's syscalls are missed (the write itself is done by the
 * kernel from the submission queue, no syscall of its own). */
#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int fd = open(argc > 1 ? argv[1] : "uring.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct io_uring ring;
    if (io_uring_queue_init(4, &ring, 0) < 0)
        return 3;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_write(sqe, fd, "uring\n", 6, 0);
    io_uring_submit(&ring);
    struct io_uring_cqe *cqe;
    io_uring_wait_cqe(&ring, &cqe);
    int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    io_uring_queue_exit(&ring);
    close(fd);
    return res == 6 ? 0 : 4;
}
