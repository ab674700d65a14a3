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
#include <sys/syscall.h>
#include <unistd.h>

#define N 4
#define SZ 4096

static int notes;

static void notified(union sigval v)
{
    syscall(SYS_pwrite64, v.sival_int, "n", 1, (long)(N + 2) * SZ);
    __atomic_store_n(&notes, 1, __ATOMIC_RELEASE);
}

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
    /* a list the call refuses (bad mode): nothing queued, nothing left pending */
    struct aiocb bad[2], *badlist[2] = {&bad[0], &bad[1]};
    memset(bad, 0, sizeof bad);
    bad[0].aio_lio_opcode = LIO_NOP;
    bad[1] = l[0];
    bad[1].aio_nbytes = 111;
    bad[1].aio_offset = 7777;
    int refused = lio_listio(99, badlist, 2, NULL) == -1 && errno == EINVAL;
    /* the same aiocb posted twice, the first never collected (aio_return is optional) */
    cbs[0].aio_buf = out[0];
    cbs[0].aio_nbytes = 5;
    aio_write(&cbs[0]);
    wait_all(cbs, 1);
    cbs[0].aio_nbytes = 7;
    aio_write(&cbs[0]);
    wait_all(cbs, 1);
    total += aio_return(&cbs[0]);
    /* a SIGEV_THREAD notification runs the app's callback: its raw write is the app's */
    struct aiocb n;
    memset(&n, 0, sizeof n);
    n.aio_fildes = fd;
    n.aio_buf = out[1];
    n.aio_nbytes = 3;
    n.aio_offset = 3 * SZ;
    n.aio_sigevent.sigev_notify = SIGEV_THREAD;
    n.aio_sigevent.sigev_notify_function = notified;
    n.aio_sigevent.sigev_value.sival_int = fd;
    aio_write(&n);
    wait_all(&n, 1);
    total += aio_return(&n);
    while (!__atomic_load_n(&notes, __ATOMIC_ACQUIRE))
        usleep(1000);
    close(fd);
    printf("%ld %d %d\n", total, memcmp(out, back, sizeof out) == 0, refused);
    return 0;
}
