/* Programs with one planted I/O problem each (tests/test_findings.py):
 *   findings fsync    200 writes of 8 KiB to journal.dat, an fsync after each
 *   findings onesync  the same writes, one fsync at the end (fine)
 *   findings reopen   64 writes of 1 MiB to B/big.dat (fine), then 2,000 records of 200 bytes
 *                     appended to A/log.dat, the file opened and closed for each
 *   findings search   300 modules looked for along a search path of 6 directories: a stat and
 *                     an open of each missing path/N/modI.so (3,600 calls fail with ENOENT)
 *   findings spread   300 empty files created (open, close) and stat'd in each of 6
 *                     directories store/dN: 900 metadata operations in each, 5,400 in all
 *   findings records  1 MiB written to records.dat in 1 MiB, then 2,000 records of 100 bytes
 *                     read with fseek + fread at offsets scattered over it: stdio reads a
 *                     4 KiB block for each (8 MiB from the file for 200,000 bytes asked)
 *   findings threads  16 MiB written to big.dat in 1 MiB writes, then 4 threads each pread
 *                     1,000 pieces of 512 bytes at scattered offsets of it
 *   findings logline  a log of 3,000 lines of 60 bytes written to run.log through an
 *                     unbuffered stream (setvbuf _IONBF): a write per line
 *   findings msync    a 4 MiB file mapped MAP_SHARED, each of its 1,024 pages stored to and
 *                     msync'd (MS_SYNC) alone
 *   findings ckpt     3 checkpoints ckpt.N of 1 MiB in 256 KiB pwrites, each fsync'd once
 *                     after its last write (make demo's examples/checkpoint.c, smaller: the
 *                     page cache takes the writes whatever the load), and a stat of a missing
 *                     file
 *   findings outputs  2 outputs mesh.dat and fields.dat of 1 MiB in 256 KiB pwrites, each
 *                     fsync'd once after its last write (each sync one a restart needs)
 *   findings reread   a 1 MiB input opened and read whole in 64 KiB reads 40 times (40 MiB
 *                     read for 1 MiB), and a 4 MiB output written once in 1 MiB writes
 *   findings statpoll 5,000 stats of flag.done in dir poll/ (a wait for a file polled), beside
 *                     4 MiB written to out.dat in 1 MiB writes */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1 << 20)

static char buf[MIB];

static int journal(int every)
{
    int rc = 0, fd = open("journal.dat", O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0)
        return 1;
    for (int i = 0; i < 200; i++) {
        if (write(fd, buf, 8192) != 8192)
            rc = 1;
        if ((every || i == 199) && fsync(fd) != 0)
            rc = 1;
    }
    return close(fd) != 0 || rc;
}

static int reopen(void)
{
    int rc = 0, fd;
    mkdir("A", 0755);
    mkdir("B", 0755);
    if ((fd = open("B/big.dat", O_CREAT | O_TRUNC | O_WRONLY, 0644)) < 0)
        return 1;
    for (int i = 0; i < 64; i++)
        if (write(fd, buf, MIB) != MIB)
            rc = 1;
    if (close(fd) != 0)
        rc = 1;
    for (int i = 0; i < 2000; i++) {
        if ((fd = open("A/log.dat", O_CREAT | O_WRONLY | O_APPEND, 0644)) < 0)
            return 1;
        if (write(fd, buf, 200) != 200 || close(fd) != 0)
            rc = 1;
    }
    return rc;
}

static int search(void)
{
    char p[64];
    struct stat st;
    int rc = 0;
    for (int d = 0; d < 6; d++) {
        snprintf(p, sizeof p, "path%d", d);
        mkdir(p, 0755);
    }
    for (int i = 0; i < 300; i++)
        for (int d = 0; d < 6; d++) {
            snprintf(p, sizeof p, "path%d/mod%d.so", d, i);
            if (stat(p, &st) == 0 || open(p, O_RDONLY) >= 0)
                rc = 1;
        }
    return rc;
}

static int spread(void)
{
    char p[64];
    struct stat st;
    int rc = 0, fd;
    mkdir("store", 0755);
    for (int d = 0; d < 6; d++) {
        snprintf(p, sizeof p, "store/d%d", d);
        mkdir(p, 0755);
        for (int i = 0; i < 300; i++) {
            snprintf(p, sizeof p, "store/d%d/f%d", d, i);
            if ((fd = open(p, O_CREAT | O_WRONLY, 0644)) < 0 || close(fd) != 0 || stat(p, &st))
                rc = 1;
        }
    }
    return rc;
}

/* name made anew, 1 MiB of buf: 0, else 1 */
static int input(const char *name)
{
    int fd = open(name, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    return fd < 0 || write(fd, buf, MIB) != MIB || close(fd) != 0;
}

static int records(void)
{
    int rc = 0;
    if (input("records.dat"))
        return 1;
    FILE *f = fopen("records.dat", "r");
    if (!f)
        return 1;
    char rec[100];
    for (long i = 0; i < 2000; i++) { /* record i at a scattered slot: (i * 4099) % 10,000 */
        long slot = (i * 4099) % 10000;
        if (fseek(f, slot * 100, SEEK_SET) != 0 || fread(rec, 1, 100, f) != 100)
            rc = 1;
    }
    return fclose(f) != 0 || rc;
}

struct part {
    int fd, id, rc;
};

static void *reader(void *arg)
{
    struct part *p = arg;
    char piece[512];
    for (long i = 0; i < 1000; i++) { /* slot (i * 7919 + id * 131) % 32,768 of 512 B */
        long slot = (i * 7919 + p->id * 131) % 32768;
        if (pread(p->fd, piece, sizeof piece, slot * 512) != sizeof piece)
            p->rc = 1;
    }
    return NULL;
}

static int threads(void)
{
    int rc = 0, fd = open("big.dat", O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0)
        return 1;
    for (int i = 0; i < 16; i++)
        if (write(fd, buf, MIB) != MIB)
            rc = 1;
    pthread_t t[4];
    struct part p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = (struct part){fd, i, 0};
        pthread_create(&t[i], NULL, reader, &p[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        rc |= p[i].rc;
    }
    return close(fd) != 0 || rc;
}

static int logline(void)
{
    FILE *f = fopen("run.log", "w");
    if (!f || setvbuf(f, NULL, _IONBF, 0) != 0)
        return 1;
    int rc = 0;
    for (int i = 0; i < 3000; i++) /* 60 bytes a line */
        if (fprintf(f, "step %06d: residual 1.000000e-03 converged no rank 000 ok\n", i) != 60)
            rc = 1;
    return fclose(f) != 0 || rc;
}

static int msyncs(void)
{
    const long pg = 4096, n = 1024;
    int rc = 0, fd = open("mapped.dat", O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0 || ftruncate(fd, pg * n) != 0)
        return 1;
    char *m = mmap(NULL, pg * n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return 1;
    for (long i = 0; i < n; i++) {
        memset(m + i * pg, 'm', pg);
        if (msync(m + i * pg, pg, MS_SYNC) != 0)
            rc = 1;
    }
    return munmap(m, pg * n) != 0 || close(fd) != 0 || rc;
}

static int checkpoints(void)
{
    int rc = 0;
    for (int c = 0; c < 3; c++) {
        char name[16];
        snprintf(name, sizeof name, "ckpt.%d", c);
        int fd = open(name, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        if (fd < 0)
            return 1;
        for (int b = 0; b < 4; b++)
            if (pwrite(fd, buf, MIB / 4, (off_t)b * (MIB / 4)) != MIB / 4)
                rc = 1;
        if (fsync(fd) != 0 || close(fd) != 0)
            rc = 1;
    }
    struct stat st;
    return stat("missing.cfg", &st) == 0 || rc;
}

static int outputs(void)
{
    int rc = 0;
    const char *names[] = {"mesh.dat", "fields.dat"};
    for (int o = 0; o < 2; o++) {
        int fd = open(names[o], O_CREAT | O_TRUNC | O_WRONLY, 0644);
        if (fd < 0)
            return 1;
        for (int b = 0; b < 4; b++)
            if (pwrite(fd, buf, MIB / 4, (off_t)b * (MIB / 4)) != MIB / 4)
                rc = 1;
        if (fsync(fd) != 0 || close(fd) != 0)
            rc = 1;
    }
    return rc;
}

/* out.dat made anew, 4 MiB of buf (the program's own output beside what it reads): 0, else 1 */
static int output(void)
{
    int rc = 0, fd = open("out.dat", O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0)
        return 1;
    for (int i = 0; i < 4; i++)
        if (write(fd, buf, MIB) != MIB)
            rc = 1;
    return close(fd) != 0 || rc;
}

static int reread(void)
{
    int rc = 0, fd;
    if (input("input.dat"))
        return 1;
    for (int pass = 0; pass < 40; pass++) {
        if ((fd = open("input.dat", O_RDONLY)) < 0)
            return 1;
        for (int i = 0; i < 16; i++)
            if (read(fd, buf, MIB / 16) != MIB / 16)
                rc = 1;
        if (close(fd) != 0)
            rc = 1;
    }
    return output() || rc;
}

static int statpoll(void)
{
    struct stat st;
    int rc = 0, fd;
    mkdir("poll", 0755);
    if ((fd = open("poll/flag.done", O_CREAT | O_WRONLY, 0644)) < 0 || close(fd) != 0)
        return 1;
    for (int i = 0; i < 5000; i++)
        if (stat("poll/flag.done", &st) != 0)
            rc = 1;
    return output() || rc;
}

int main(int argc, char **argv)
{
    memset(buf, 'x', sizeof buf);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "fsync") == 0 || strcmp(mode, "onesync") == 0)
        return journal(mode[0] == 'f');
    if (strcmp(mode, "reopen") == 0)
        return reopen();
    if (strcmp(mode, "search") == 0)
        return search();
    if (strcmp(mode, "spread") == 0)
        return spread();
    if (strcmp(mode, "records") == 0)
        return records();
    if (strcmp(mode, "threads") == 0)
        return threads();
    if (strcmp(mode, "logline") == 0)
        return logline();
    if (strcmp(mode, "ckpt") == 0)
        return checkpoints();
    if (strcmp(mode, "msync") == 0)
        return msyncs();
    if (strcmp(mode, "outputs") == 0)
        return outputs();
    if (strcmp(mode, "reread") == 0)
        return reread();
    if (strcmp(mode, "statpoll") == 0)
        return statpoll();
    return 2;
}
