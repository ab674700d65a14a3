/* One write through io_uring with liburing linked statically (-static-liburing: liburing.a) or
 * loaded with dlopen (-DDLOPEN), the ways the shim's module map does not show it.
 * `uring_keep FILE [keep|close|dlclose [N]]`: with `keep` the ring is still open when the
 * program exits (the kernel cleans it up), else it is torn down first (and with `dlclose` a
 * dlopen'd liburing unloaded: nothing of it left at the exit); N one-byte writes to /dev/null before the
 * ring and after it (a log of several chunks: liburing's module record in none of its first
 * and last ones). */
#include <dlfcn.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef DLOPEN
static void *lib;
#define CALL(fn) ((__typeof__(&fn))dlsym(lib, #fn))
#else
#define CALL(fn) fn
#endif

static void chatter(int n)
{
    int fd = open("/dev/null", O_WRONLY);
    for (int i = 0; i < n; i++)
        if (write(fd, "x", 1) != 1)
            break;
    close(fd);
}

int main(int argc, char **argv)
{
    int n = argc > 3 ? atoi(argv[3]) : 0;
    chatter(n);
#ifdef DLOPEN
    lib = dlopen("liburing.so.2", RTLD_NOW);
    if (!lib)
        return 2;
#endif
    int fd = open(argc > 1 ? argv[1] : "uring.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct io_uring ring;
    if (CALL(io_uring_queue_init)(4, &ring, 0) < 0)
        return 3;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_write(sqe, fd, "uring\n", 6, 0);
    CALL(io_uring_submit)(&ring);
    struct io_uring_cqe *cqe;
    if (CALL(__io_uring_get_cqe)(&ring, &cqe, 0, 1, NULL) < 0)
        return 4;
    int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    if (argc < 3 || strcmp(argv[2], "keep"))
        CALL(io_uring_queue_exit)(&ring);
#ifdef DLOPEN
    if (argc > 2 && !strcmp(argv[2], "dlclose") && dlclose(lib))
        return 6;
#endif
    close(fd);
    chatter(n);
    return res == 6 ? 0 : 5;
}
