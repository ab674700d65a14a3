/* A library of stack_paths.c: built twice with different PAD, its code at the same offsets
 * but its frames of different sizes. */
#include <string.h>
#include <unistd.h>

static volatile char sink;

static __attribute__((noinline)) void inner(int fd, int k)
{
    volatile char pad[PAD];
    pad[0] = (char)k;
    sink = pad[0];
    if (write(fd, "l", 1) != 1)
        sink = 0;
}

static __attribute__((noinline)) void middle(int fd, int k)
{
    volatile char pad[PAD];
    pad[PAD - 1] = (char)k;
    inner(fd, k);
    sink = pad[PAD - 1];
}

void lib_run(int fd)
{
    for (int k = 0; k < 2; k++)
        middle(fd, k);
}
