/* POSIX AIO: 4 aio_write, then aio_read of them back, then lio_listio of 2 writes (LIO_WAIT),
 * each collected with aio_return.  glibc runs the transfers in helper threads with internal
 * pwrite/pread: the shim records posting and completion (wrap_aio.c), the stracer counts the
 * helpers' syscalls as covered. */
#define _GNU_SOURCE
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define N 4
#define SZ 4096

static void wait_all(struct aiocb *cbs, int n)
{
    for (int i = 0; i < n; i++) {
        const struct aiocb *one[1] = {&cbs[i]};
        while (aio_error(&cbs[i]) == EINPROGRESS)
            aio_suspend(one, 1, NULL);
    }
}

int main(void)
{
    static char out[N][SZ], back[N][SZ];
    struct aiocb cbs[N];
    int fd = open("aio.out", O_RDWR | O_CREAT | O_TRUNC, 0644);
    for (int i = 0; i < N; i++) {
        memset(out[i], 'a' + i, SZ);
        memset(&cbs[i], 0, sizeof cbs[i]);
        cbs[i].aio_fildes = fd;
        cbs[i].aio_buf = out[i];
        cbs[i].aio_nbytes = SZ;
        cbs[i].aio_offset = (off_t)i * SZ;
        if (aio_write(&cbs[i]) != 0)
            return 1;
    }
    wait_all(cbs, N);
    long total = 0;
    for (int i = 0; i < N; i++)
        total += aio_return(&cbs[i]);
    for (int i = 0; i < N; i++) {
        cbs[i].aio_buf = back[i];
        if (aio_read(&cbs[i]) != 0)
            return 2;
    }
    wait_all(cbs, N);
    for (int i = 0; i < N; i++)
        total += aio_return(&cbs[i]);
    struct aiocb l[2], *list[3] = {&l[0], NULL, &l[1]};
    for (int i = 0; i < 2; i++) {
        memset(&l[i], 0, sizeof l[i]);
        l[i].aio_fildes = fd;
        l[i].aio_buf = out[i];
        l[i].aio_nbytes = SZ;
        l[i].aio_offset = (off_t)(N + i) * SZ;
        l[i].aio_lio_opcode = LIO_WRITE;
    }
    if (lio_listio(LIO_WAIT, list, 3, NULL) != 0)
        return 3;
    for (int i = 0; i < 2; i++)
        total += aio_return(&l[i]);
    close(fd);
    printf("%ld %d\n", total, memcmp(out, back, sizeof out) == 0);
    return 0;
}
