/* Raw syscalls (missed: the stracer records them) whose unsigned arguments are past INT64_MAX
 * as the registers hold them: write(fd, buf, (size_t)-1) (EFAULT), pwrite64 at offset -5
 * (EINVAL), lseek to INT64_MAX (EINVAL).  Exits 0 when the write failed, as it must. */
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void)
{
    int fd = open("out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char buf[16] = "hello";
    long r = syscall(SYS_write, fd, buf, (unsigned long)-1);
    syscall(SYS_pwrite64, fd, buf, 5L, (long)-5);
    syscall(SYS_lseek, fd, (long)0x7fffffffffffffffL, 0);
    return r < 0 ? 0 : 1;
}
