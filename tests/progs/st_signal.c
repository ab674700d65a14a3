/* A write from a signal handler: the raw one is missed, the libc one covered. */
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fd;

static void handler(int sig)
{
    (void)sig;
    syscall(SYS_write, fd, "raw\n", 4);
    write(fd, "libc\n", 5);
}

int main(int argc, char **argv)
{
    fd = open(argc > 1 ? argv[1] : "signal.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    signal(SIGUSR1, handler);
    raise(SIGUSR1);
    close(fd);
    return 0;
}
