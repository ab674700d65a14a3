/* A known I/O pattern for the analyzer's tests (tests/test_analyzer.py checks every number).
 *
 *   seq.dat : 100 write(1000 B) from offset 0, then 40 read(2500 B) from offset 0
 *   rand.dat: 64 pwrite(4096 B) at offsets ((i * 37) % 64) * 4096, lseek(0), 8 read(8192 B),
 *             1 pwrite(10 B) at offset 100
 *   small.dat: 300 write(16 B)
 * Descriptor calls only (open/read/write/pread/pwrite/lseek/close). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char buf[8192];

static void must(int ok, const char *what)
{
    if (!ok) {
        perror(what);
        exit(1);
    }
}

static void write_seq(void)
{
    int fd = open("seq.dat", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    must(fd >= 0, "open seq.dat");
    for (int i = 0; i < 100; i++)
        must(write(fd, buf, 1000) == 1000, "write");
    must(close(fd) == 0, "close");
}

static void read_seq(void)
{
    int fd = open("seq.dat", O_RDONLY);
    must(fd >= 0, "open seq.dat");
    for (int i = 0; i < 40; i++)
        must(read(fd, buf, 2500) == 2500, "read");
    must(close(fd) == 0, "close");
}

static void random_blocks(void)
{
    int fd = open("rand.dat", O_CREAT | O_RDWR | O_TRUNC, 0644);
    must(fd >= 0, "open rand.dat");
    for (int i = 0; i < 64; i++)
        must(pwrite(fd, buf, 4096, (off_t)((i * 37) % 64) * 4096) == 4096, "pwrite");
    must(lseek(fd, 0, SEEK_SET) == 0, "lseek");
    for (int i = 0; i < 8; i++)
        must(read(fd, buf, 8192) == 8192, "read");
    must(pwrite(fd, buf, 10, 100) == 10, "pwrite");
    must(close(fd) == 0, "close");
}

static void small_writes(void)
{
    int fd = open("small.dat", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    must(fd >= 0, "open small.dat");
    for (int i = 0; i < 300; i++)
        must(write(fd, buf, 16) == 16, "write");
    must(close(fd) == 0, "close");
}

int main(void)
{
    memset(buf, 'x', sizeof buf);
    write_seq();
    read_seq();
    random_blocks();
    small_writes();
    return 0;
}
