/* Calls whose `iotrace show` lines a strace user compares with `strace -f`'s
 * (tests/test_show_strace.py): each argument and flag as strace prints it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    int p[2], q[2], r[2], s[2];
    if (pipe2(p, 0) || pipe2(q, O_CLOEXEC | O_NONBLOCK) || pipe(r))
        return 1;
    if (syscall(SYS_pipe2, s, 0)) /* raw: the stracer's record (full tracing) */
        return 1;
    if (dup3(p[0], 40, 0) != 40 || dup3(p[1], 41, O_CLOEXEC) != 41)
        return 1;
    if (syscall(SYS_dup3, q[0], 42, O_CLOEXEC) != 42)
        return 1;
    return 0;
}
