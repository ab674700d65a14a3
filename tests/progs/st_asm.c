/* An inline `syscall` instruction writing to a file the shim opened: the write is missed. */
#include <fcntl.h>
#include <unistd.h>

__attribute__((noinline)) static long asm_write(int fd, const void *buf, unsigned long n)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"(1L), "D"((long)fd), "S"(buf), "d"(n)
                     : "rcx", "r11", "memory");
    return r;
}

int main(int argc, char **argv)
{
    int fd = open(argc > 1 ? argv[1] : "asm.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    asm_write(fd, "asm\n", 4);
    close(fd);
    return 0;
}
