/* Per-call cost of the calls the iotrace shim wraps.  Run natively and under `iotrace run`;
 * bench/run.py compares the two.  Build: gcc -O2 -o shim_bench shim_bench.c
 *
 *   shim_bench [-n ITERS] [-r ROUNDS] [-w WARMUP] [-d NEST] [-t] CASE DATAFILE
 *
 * CASE is one of
 *   write1     write(fd, buf, 1) to /dev/null
 *   pwrite4k   pwrite(fd, buf, 4096, off) to DATAFILE, off cycling over its first 64 KiB
 *              (the page cache serves it: no disk I/O after the warm-up)
 *   fwrite16   fwrite(buf, 1, 16, f) to DATAFILE (stdio buffered: one write(2) per 256 calls);
 *              the stream is reopened ("w") between rounds, outside the timed loop
 *   openclose  open(DATAFILE, O_RDONLY) + close(fd); one iteration is the pair
 *   seekwrite4k  lseek(fd, off, SEEK_SET) + write(fd, buf, 4096) to DATAFILE, off cycling as
 *              pwrite4k's (IOR's POSIX transfer; issue 19's comparison with Darshan); one
 *              iteration is the pair
 *   seekread4k   lseek(fd, off, SEEK_SET) + read(fd, buf, 4096) from DATAFILE, off as
 *              seekwrite4k's (IOR's POSIX read phase, from the page cache); per pair
 *   stat       stat(DATAFILE)
 *
 * -t starts an idle thread first (it sleeps until the end): the process is then multi-threaded,
 * as an MPI rank is (Open MPI's progress threads), which changes what libc and the shim do around
 * a cancellation point.
 *
 * Each round times ITERS calls around the whole loop, with CLOCK_MONOTONIC (wall) and with
 * CLOCK_THREAD_CPUTIME_ID (the CPU time this thread used, user and system).  The timed loop runs
 * NEST frames deep (noinline calls), so that a stack capture of depth 8 has real frames to walk,
 * as it would in an application.  The result is one JSON line on stdout, written with a raw
 * write syscall so that reporting it is not itself a traced event:
 *
 *   {"case": "write1", "iters": N, "warmup": W, "rounds_ns": [wall ns per call, ...],
 *    "rounds_cpu_ns": [CPU ns per call, ...], "calls": {"write": W + ROUNDS * N}}
 *
 * `calls` counts the calls of the timed function(s) the program made (warm-up included): a
 * traced run must log exactly that many events of those functions.  DATAFILE must exist and be
 * at least 64 KiB (run.py creates it).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS 64
#define SPAN (64 * 1024) /* pwrite offsets cycle within this many bytes */

static char buf[4096] __attribute__((aligned(4096)));
static const char *datafile;
static volatile long sink; /* keeps results alive */

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Wall time and this thread's CPU time (user + system: the syscalls and page faults the
 * thread pays for, but not the time other processes of a busy machine take the CPU away). */
typedef struct {
    uint64_t wall, cpu;
} stamp;

static stamp now(void)
{
    return (stamp){clock_ns(CLOCK_MONOTONIC), clock_ns(CLOCK_THREAD_CPUTIME_ID)};
}

static stamp since(stamp t0)
{
    stamp t1 = now();
    return (stamp){t1.wall - t0.wall, t1.cpu - t0.cpu};
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

/* ---- the timed loops: each returns the time n iterations took ---- */

static __attribute__((noinline)) stamp loop_write1(int fd, long n)
{
    stamp t0 = now();
    for (long i = 0; i < n; i++)
        if (write(fd, buf, 1) != 1)
            die("write");
    return since(t0);
}

static __attribute__((noinline)) stamp loop_pwrite4k(int fd, long n)
{
    stamp t0 = now();
    for (long i = 0; i < n; i++)
        if (pwrite(fd, buf, 4096, (off_t)((i & (SPAN / 4096 - 1)) * 4096)) != 4096)
            die("pwrite");
    return since(t0);
}

static __attribute__((noinline)) stamp loop_seekwrite4k(int fd, long n)
{
    stamp t0 = now();
    for (long i = 0; i < n; i++) {
        if (lseek(fd, (off_t)((i & (SPAN / 4096 - 1)) * 4096), SEEK_SET) < 0)
            die("lseek");
        if (write(fd, buf, 4096) != 4096)
            die("write");
    }
    return since(t0);
}

static __attribute__((noinline)) stamp loop_seekread4k(int fd, long n)
{
    stamp t0 = now();
    for (long i = 0; i < n; i++) {
        if (lseek(fd, (off_t)((i & (SPAN / 4096 - 1)) * 4096), SEEK_SET) < 0)
            die("lseek");
        if (read(fd, buf, 4096) != 4096)
            die("read");
    }
    return since(t0);
}

static __attribute__((noinline)) stamp loop_fwrite16(FILE *f, long n)
{
    stamp t0 = now();
    for (long i = 0; i < n; i++)
        if (fwrite(buf, 1, 16, f) != 16)
            die("fwrite");
    return since(t0);
}

static __attribute__((noinline)) stamp loop_openclose(long n)
{
    stamp t0 = now();
    for (long i = 0; i < n; i++) {
        int fd = open(datafile, O_RDONLY);
        if (fd < 0)
            die("open");
        if (close(fd) != 0)
            die("close");
    }
    return since(t0);
}

static __attribute__((noinline)) stamp loop_stat(long n)
{
    struct stat st;
    stamp t0 = now();
    for (long i = 0; i < n; i++) {
        if (stat(datafile, &st) != 0)
            die("stat");
        sink += st.st_size;
    }
    return since(t0);
}

/* ---- one case: warm-up, then rounds ---- */

enum { WRITE1, PWRITE4K, FWRITE16, OPENCLOSE, STAT, SEEKWRITE4K, SEEKREAD4K, NCASES };
static const char *const case_names[NCASES] = {"write1", "pwrite4k",    "fwrite16",  "openclose",
                                                "stat",   "seekwrite4k", "seekread4k"};

typedef struct {
    int which;
    long iters, warmup;
    int rounds;
    double ns[MAX_ROUNDS], cpu_ns[MAX_ROUNDS];
} run_t;

static FILE *open_stream(void)
{
    FILE *f = fopen(datafile, "w");
    if (!f)
        die("fopen");
    return f;
}

static void run_case(run_t *r)
{
    int fd = -1;
    FILE *f = NULL;
    if (r->which == WRITE1 && (fd = open("/dev/null", O_WRONLY)) < 0)
        die("/dev/null");
    if ((r->which == PWRITE4K || r->which == SEEKWRITE4K) && (fd = open(datafile, O_WRONLY)) < 0)
        die(datafile);
    if (r->which == SEEKREAD4K && (fd = open(datafile, O_RDONLY)) < 0)
        die(datafile);
    memset(buf, 'x', sizeof buf);

    for (int round = -1; round < r->rounds; round++) { /* round -1: warm-up */
        long n = round < 0 ? r->warmup : r->iters;
        stamp dt = {0, 0};
        switch (r->which) {
        case WRITE1: dt = loop_write1(fd, n); break;
        case PWRITE4K: dt = loop_pwrite4k(fd, n); break;
        case FWRITE16:
            f = open_stream();
            dt = loop_fwrite16(f, n);
            fclose(f);
            break;
        case OPENCLOSE: dt = loop_openclose(n); break;
        case STAT: dt = loop_stat(n); break;
        case SEEKWRITE4K: dt = loop_seekwrite4k(fd, n); break;
        case SEEKREAD4K: dt = loop_seekread4k(fd, n); break;
        }
        if (round >= 0) {
            r->ns[round] = (double)dt.wall / (double)n;
            r->cpu_ns[round] = (double)dt.cpu / (double)n;
        }
    }
    if (fd >= 0)
        close(fd);
}

/* Run the case NEST noinline frames deep. */
static __attribute__((noinline)) void nest(run_t *r, int depth)
{
    if (depth > 0) {
        nest(r, depth - 1);
        __asm__ volatile("" ::: "memory"); /* not a tail call: the frame stays */
    } else {
        run_case(r);
    }
}

static void report(const run_t *r)
{
    char out[4096];
    int len = snprintf(out, sizeof out, "{\"case\": \"%s\", \"iters\": %ld, \"warmup\": %ld, "
                       "\"rounds_ns\": [", case_names[r->which], r->iters, r->warmup);
    for (int i = 0; i < r->rounds; i++)
        len += snprintf(out + len, sizeof out - (size_t)len, "%s%.2f", i ? ", " : "", r->ns[i]);
    long calls = r->warmup + (long)r->rounds * r->iters;
    static const char *const fns[NCASES] = {"\"write\": %ld", "\"pwrite\": %ld",
                                            "\"fwrite\": %ld", "\"open\": %ld, \"close\": %ld",
                                            "\"stat\": %ld", "\"lseek\": %ld, \"write\": %ld",
                                            "\"lseek\": %ld, \"read\": %ld"};
    len += snprintf(out + len, sizeof out - (size_t)len, "], \"rounds_cpu_ns\": [");
    for (int i = 0; i < r->rounds; i++)
        len += snprintf(out + len, sizeof out - (size_t)len, "%s%.2f", i ? ", " : "",
                        r->cpu_ns[i]);
    len += snprintf(out + len, sizeof out - (size_t)len, "], \"calls\": {");
    len += snprintf(out + len, sizeof out - (size_t)len, fns[r->which], calls, calls);
    len += snprintf(out + len, sizeof out - (size_t)len, "}}\n");
    syscall(SYS_write, 1, out, (size_t)len);
}

static void *idle(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: shim_bench [-n ITERS] [-r ROUNDS] [-w WARMUP] [-d NEST] [-t] "
                    "write1|pwrite4k|fwrite16|openclose|stat|seekwrite4k|seekread4k DATAFILE\n");
    exit(2);
}

int main(int argc, char **argv)
{
    run_t r = {.which = -1, .iters = 100000, .warmup = -1, .rounds = 5};
    int depth = 10, threaded = 0, opt;
    while ((opt = getopt(argc, argv, "n:r:w:d:t")) != -1) {
        switch (opt) {
        case 'n': r.iters = atol(optarg); break;
        case 'r': r.rounds = atoi(optarg); break;
        case 'w': r.warmup = atol(optarg); break;
        case 'd': depth = atoi(optarg); break;
        case 't': threaded = 1; break;
        default: usage();
        }
    }
    if (argc - optind != 2 || r.iters <= 0 || r.rounds <= 0 || r.rounds > MAX_ROUNDS)
        usage();
    for (int i = 0; i < NCASES; i++)
        if (!strcmp(argv[optind], case_names[i]))
            r.which = i;
    if (r.which < 0)
        usage();
    datafile = argv[optind + 1];
    if (r.warmup < 0)
        r.warmup = r.iters / 5 > 0 ? r.iters / 5 : 1;
    pthread_t t;
    if (threaded && pthread_create(&t, NULL, idle, NULL) != 0)
        die("pthread_create");
    nest(&r, depth);
    report(&r);
    return 0;
}
