/* The run's end gives back the room of the logs whose process did not trim its own: a shim
 * sizes its log 32 MiB at its creation (sparse, preload/writer.c RESERVE) and trims it at its
 * exit or exec; a process killed before (SIGKILL, the OOM killer) leaves 32 MiB of apparent size,
 * mostly holes, which `ls -l` shows and `tar`, `scp` or `rsync` without sparse handling copy
 * whole.  Each such log of this host is cut after its last written chunk, as the readers read it
 * (tracefile.data_end), unless some process may still write it: a log is written through a
 * shared mapping, and a process taking its next chunk past the cut would lose its records (or
 * die of SIGBUS, writing where the mapping has no file any more).  So a log is left as it is
 * while a process of its pid runs, or any process maps its inode (a pid namespace names the
 * writer otherwise), or an OFD lock is held on it: the shim takes one as it makes its log, which
 * its first mapping holds until its last process unmaps it, seen from any pid namespace (a writer
 * in another run's namespace, `mpirun -np 2 iotrace run -o job` with a container per rank, is
 * in none of our /proc) and through a mapping hidden from us (PR_SET_DUMPABLE 0). */
#define _GNU_SOURCE /* SEEK_DATA, SEEK_HOLE */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iot_format.h"
#include "launch.h"

#define ROOM_MIN ((off_t)1 << 20)

/* The end of the file's last data (a hole-less file: its size); 0: none or not known.  As
 * tracefile._data_end (launcher/end.c's data_end), from the start of the file. */
static off_t last_data(int fd, off_t size)
{
    off_t hi = size, step = 1 << 18;
    while (hi > 0) { /* back from the end by doubling steps, to the last region with data */
        off_t pos = hi > step ? hi - step : 0;
        off_t data = lseek(fd, pos, SEEK_DATA);
        if (data < 0) {
            if (errno != ENXIO)
                return 0;
            hi = pos;
            step *= 2;
            continue;
        }
        off_t end = lseek(fd, data, SEEK_HOLE); /* forward to the last hole */
        while (end >= 0 && end < size && (data = lseek(fd, end, SEEK_DATA)) >= 0)
            end = lseek(fd, data, SEEK_HOLE);
        return end < 0 ? 0 : end;
    }
    return 0;
}

/* 1 if a process of this pid runs (or is a zombie: its pid is not free yet) */
static int pid_runs(long pid)
{
    char p[32];
    snprintf(p, sizeof p, "/proc/%ld", pid);
    return access(p, F_OK) == 0;
}

static int cmp_ino(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return x < y ? -1 : x > y;
}

/* 1 if a lock of another open file description is held on fd's file (the shim's: it writes
 * it still); 0 none, or not known (no OFD locks there: the other guards decide) */
static int locked(int fd)
{
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    return fcntl(fd, F_OFD_GETLK, &lk) == 0 && lk.l_type != F_UNLCK;
}

/* Every inode some process maps (from /proc/PID/maps, any device: an overlay shows the one
 * below), sorted, into *out; their count, or -1. */
static long mapped_inodes(unsigned long **out)
{
    DIR *proc = opendir("/proc");
    unsigned long *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    char path[64], line[4600];
    while (proc && (e = readdir(proc))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/maps", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f) /* gone, or not ours to read (nor its mappings of our logs) */
            continue;
        while (fgets(line, sizeof line, f)) {
            unsigned long ino = 0;
            if (sscanf(line, "%*s %*s %*s %*s %lu", &ino) == 1 && ino) {
                unsigned long *w = v;
                if (n == cap && !(w = realloc(v, (cap = cap ? 2 * cap : 1024) * sizeof *v))) {
                    fclose(f);
                    closedir(proc);
                    free(v);
                    return -1;
                }
                v = w;
                v[n++] = ino;
            }
        }
        fclose(f);
    }
    if (!proc)
        return -1;
    closedir(proc);
    qsort(v, n, sizeof *v, cmp_ino);
    *out = v;
    return (long)n;
}

void iot_trim_logs(int dfd, const char *host)
{
    int d = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* a position of its own */
    DIR *dir = d >= 0 ? fdopendir(d) : NULL;
    if (!dir) {
        if (d >= 0)
            close(d);
        return;
    }
    size_t hl = strlen(host);
    unsigned long *inodes = NULL;
    long ninodes = -2; /* read once, at the first log to cut */
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t l = strlen(e->d_name);
        if (l < 4 || strcmp(e->d_name + l - 4, ".iot") || strncmp(e->d_name, host, hl) ||
            e->d_name[hl] != '.')
            continue;
        /* a log worth a look: 1 MiB of holes or more (a process's exit leaves a few pages of
         * them at most: its header's and chunks' padding), without opening it */
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
            st.st_size - (off_t)st.st_blocks * 512 < ROOM_MIN)
            continue;
        char *rest;
        long pid = strtol(e->d_name + hl + 1, &rest, 10);
        if (pid <= 0 || (*rest != '.') || pid_runs(pid))
            continue;
        int fd = openat(dfd, e->d_name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        off_t end;
        /* a log of ours, not a hard link to another file */
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
            st.st_nlink == 1 && st.st_size - (off_t)st.st_blocks * 512 >= ROOM_MIN &&
            !locked(fd) && (end = last_data(fd, st.st_size)) > 0 &&
            (end = (end + IOT_CHUNK_SIZE - 1) / IOT_CHUNK_SIZE * IOT_CHUNK_SIZE) < st.st_size) {
            if (ninodes == -2)
                ninodes = mapped_inodes(&inodes);
            unsigned long ino = (unsigned long)st.st_ino;
            if (ninodes >= 0 &&
                !bsearch(&ino, inodes, (size_t)ninodes, sizeof *inodes, cmp_ino))
                (void)ftruncate(fd, end);
        }
        close(fd);
    }
    closedir(dir);
    free(inodes);
}
