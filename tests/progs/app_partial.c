/* A line to stderr written in pieces by raw syscalls (missed by the shim, so the stracer
 * announces them): iotrace's own lines must land around it, never inside it. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void piece(const char *s)
{
    syscall(SYS_write, 2, s, strlen(s));
}

int main(void)
{
    for (int i = 0; i < 3; i++) {
        piece("app: part one, ");
        piece("part two, ");
        piece("part three\n");
    }
    return 0;
}
