/* The labelled corpus (tests/test_corpus.py): one known I/O pathology per mode, in the current
 * directory:
 *   corpus small   20,000 write()s of 64 bytes to small.dat (many small writes to a data file)
 *   corpus random  4 MiB written to random.dat in 1 MiB writes, then 4,000 pread()s of 512 bytes
 *                  at pseudo-random offsets (random small reads)
 *   corpus seq     32 MiB written to seq.dat in 1 MiB writes, fsync (clean)
 *   corpus eof     a reader following eof.dat as a writer appends it (as tail -f): 200 times,
 *                  4 KiB appended, read() by the reader, then 2 more read()s of 0 bytes (end of
 *                  file) (clean: a 0-byte read at the end of a file is no small access) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (1 << 20)

static char buf[MIB];

static int big_writes(const char *path, int mib, int sync)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0)
        return perror(path), 1;
    for (int i = 0; i < mib; i++)
        if (write(fd, buf, MIB) != MIB)
            return perror("write"), 1;
    if (sync && fsync(fd) != 0)
        return perror("fsync"), 1;
    return close(fd);
}

int main(int argc, char **argv)
{
    memset(buf, 'x', sizeof buf);
    if (argc < 2)
        return 2;
    if (strcmp(argv[1], "small") == 0) {
        int fd = open("small.dat", O_CREAT | O_TRUNC | O_WRONLY, 0644);
        if (fd < 0)
            return perror("small.dat"), 1;
        for (int i = 0; i < 20000; i++)
            if (write(fd, buf, 64) != 64)
                return perror("write"), 1;
        return close(fd);
    }
    if (strcmp(argv[1], "random") == 0) {
        if (big_writes("random.dat", 4, 0))
            return 1;
        int fd = open("random.dat", O_RDONLY);
        if (fd < 0)
            return perror("random.dat"), 1;
        unsigned x = 12345;
        for (int i = 0; i < 4000; i++) {
            x = x * 1103515245u + 12345u;
            off_t off = (off_t)((x >> 8) % (4 * MIB / 512)) * 512;
            if (pread(fd, buf, 512, off) != 512)
                return perror("pread"), 1;
        }
        return close(fd);
    }
    if (strcmp(argv[1], "seq") == 0)
        return big_writes("seq.dat", 32, 1);
    if (strcmp(argv[1], "eof") == 0) {
        int w = open("eof.dat", O_CREAT | O_TRUNC | O_WRONLY, 0644);
        int r = open("eof.dat", O_RDONLY);
        if (w < 0 || r < 0)
            return perror("eof.dat"), 1;
        for (int i = 0; i < 200; i++)
            if (write(w, buf, 4096) != 4096 || read(r, buf, 8192) != 4096 ||
                read(r, buf, 8192) != 0 || read(r, buf, 8192) != 0)
                return perror("eof.dat"), 1;
        return close(w) | close(r);
    }
    return 2;
}
