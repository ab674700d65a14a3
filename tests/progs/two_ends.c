/* Calls with two ends: copy_file_range, sendfile, splice, tee, each moving bytes from one file
 * to another (through pipes for splice and tee).  With "raw" the same syscalls are made through
 * syscall(2), behind the shim's back (the stracer records them as missed).
 * Usage: two_ends SRC DIR [raw].  SRC must hold at least 12 KiB. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

static int raw;

static ssize_t cfr(int in, loff_t *io, int out, loff_t *oo, size_t n)
{
    return raw ? syscall(SYS_copy_file_range, in, io, out, oo, n, 0)
               : copy_file_range(in, io, out, oo, n, 0);
}
static ssize_t sf(int out, int in, off_t *off, size_t n)
{
    return raw ? syscall(SYS_sendfile, out, in, off, n) : sendfile(out, in, off, n);
}
static ssize_t spl(int in, loff_t *io, int out, loff_t *oo, size_t n)
{
    return raw ? syscall(SYS_splice, in, io, out, oo, n, 0) : splice(in, io, out, oo, n, 0);
}
static ssize_t te(int in, int out, size_t n)
{
    return raw ? syscall(SYS_tee, in, out, n, 0) : tee(in, out, n, 0);
}

static int create(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        perror(p), exit(1);
    return fd;
}

#define CHECK(what, got, want) \
    do { ssize_t g_ = (got); if (g_ != (want)) { fprintf(stderr, "%s: %zd\n", what, g_); return 1; } } while (0)

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    raw = argc > 3 && !strcmp(argv[3], "raw");
    int src = open(argv[1], O_RDONLY);
    if (src < 0)
        return perror(argv[1]), 1;
    /* copy_file_range: 1000 bytes at input offset 100 (pointer), output at its position */
    int a = create(argv[2], "cfr.out");
    loff_t io = 100;
    CHECK("copy_file_range", cfr(src, &io, a, NULL, 1000), 1000);
    /* sendfile: 2000 bytes from the input's position (0), then 500 at offset 4096 (pointer) */
    int b = create(argv[2], "sendfile.out");
    CHECK("sendfile", sf(b, src, NULL, 2000), 2000);
    off_t so = 4096;
    CHECK("sendfile off", sf(b, src, &so, 500), 500);
    /* splice: file (offset 8192) -> pipe -> file; tee: pipe -> pipe, then drained by splice */
    int p1[2], p2[2];
    if (pipe(p1) || pipe(p2))
        return 1;
    loff_t po = 8192;
    CHECK("splice in", spl(src, &po, p1[1], NULL, 3000), 3000);
    CHECK("tee", te(p1[0], p2[1], 3000), 3000);
    int c = create(argv[2], "splice.out"), d = create(argv[2], "tee.out");
    CHECK("splice out", spl(p1[0], NULL, c, NULL, 3000), 3000);
    CHECK("splice tee", spl(p2[0], NULL, d, NULL, 3000), 3000);
    return close(a) || close(b) || close(c) || close(d) || close(src);
}
