/* I/O inside a libc function the shim does not wrap (tzset reading the zone file TZ names:
 * libc-internal, recorded, not missed) next to a raw syscall(2) write (a bypass: missed). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) static void load_zone(void)
{
    tzset(); /* reads the file $TZ names */
}

__attribute__((noinline)) static void raw_write(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    syscall(SYS_write, fd, "raw\n", 4);
    close(fd);
}

int main(int argc, char **argv)
{
    load_zone();
    raw_write(argc > 1 ? argv[1] : "raw.out");
    printf("%ld\n", timezone);
    return 0;
}
