/* The header map at the start of every log: who this process is and how to read the rest. */
#include <fcntl.h>
#include <limits.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../src/iotrace/_clockpair.h"
#include "shim.h"
#include "sysraw.h"

static void key(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str_with_body(pk, k, strlen(k));
}

static void str(msgpack_packer *pk, const char *s)
{
    if (s)
        msgpack_pack_str_with_body(pk, s, strlen(s));
    else
        msgpack_pack_nil(pk);
}

/* The first of these set in the environment is the MPI rank (or world size). */
static const char *const RANK_VARS[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK",
                                        "SLURM_PROCID", NULL};
static const char *const SIZE_VARS[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS",
                                        NULL};

static void first_int(msgpack_packer *pk, const char *const *vars)
{
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        char *end;
        if (v && *v) {
            long n = strtol(v, &end, 10);
            if (*end == '\0') {
                msgpack_pack_long(pk, n);
                return;
            }
        }
    }
    msgpack_pack_nil(pk);
}

/* The image's argument strings as the kernel laid them out at the exec ([start, end): what
 * /proc/self/cmdline reads) and the end of its environment strings, from the constructor. */
static struct {
    const char *start, *end, *env_end;
} args;

void iot_header_args(int argc, char **argv, char **envp)
{
    if (argc <= 0 || !argv || !argv[0] || !argv[argc - 1])
        return; /* not given (a loader that passes none): /proc/self/cmdline is read */
    args.start = argv[0];
    args.end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
    args.env_end = args.end;
    for (int i = 0; envp && envp[i]; i++) {
        const char *end = envp[i] + strlen(envp[i]) + 1;
        if (end > args.env_end)
            args.env_end = end;
    }
}

/* A fork child's command line from its memory, as the kernel reads it (get_mm_cmdline): the
 * argument area, or, when the program wrote over the area's last NUL (setproctitle), up to the
 * first NUL, into the environment's area if need be.  Not a read of /proc/self/cmdline: a child
 * killed before its log exists (moreutils parallel SIGKILLs its children at once) left that
 * read's bytes in no log. */
static size_t argv_from_memory(char *buf, size_t size)
{
    size_t n = (size_t)(args.end - args.start);
    if (n > size)
        n = size;
    memcpy(buf, args.start, n);
    if (n && buf[n - 1] != '\0') {
        const char *e = memchr(args.start, '\0', (size_t)(args.env_end - args.start));
        n = (size_t)((e ? e + 1 : args.env_end) - args.start);
        if (n > size)
            n = size;
        memcpy(buf, args.start, n);
    }
    return n;
}

/* /proc/self/cmdline into buf (the shim's own read, counted as such) */
static size_t argv_read(char *buf, size_t size)
{
    size_t n = 0;
    int fd = (int)IOT_SYSRAW(openat, AT_FDCWD, "/proc/self/cmdline", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    /* the kernel copies as much of the command line as asked: a short read is its end */
    ssize_t r;
    while (n < size && (r = IOT_SYSRAW(read, fd, buf + n, size - n)) > 0) {
        iot_own_io(0, r);
        n += (size_t)r;
        if ((size_t)r < size - (n - (size_t)r))
            break;
    }
    IOT_SYSRAW(close, fd);
    return n;
}

static void argv_list(msgpack_packer *pk, int forked)
{
    char buf[64 * 1024];
    size_t n = forked && args.start ? argv_from_memory(buf, sizeof buf)
                                    : argv_read(buf, sizeof buf);
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += buf[i] == '\0';
    msgpack_pack_array(pk, count);
    for (size_t i = 0, s = 0; i < n; i++)
        if (buf[i] == '\0') {
            msgpack_pack_str_with_body(pk, buf + s, i - s);
            s = i + 1;
        }
}

static void build(struct msgpack_sbuffer *sb, pid_t pid, pid_t ppid, int forked, uint64_t t);

void iot_header_build(struct msgpack_sbuffer *sb)
{
    build(sb, iot_p.pid, getppid(), iot_p.gen > 1, 0);
}

/* A child that ran on this process's memory (its copy of argv, exe, cwd) from mono time t. */
void iot_header_build_child(struct msgpack_sbuffer *sb, pid_t pid, uint64_t t)
{
    build(sb, pid, iot_p.pid, 1, t);
}

static void build(struct msgpack_sbuffer *sb, pid_t pid, pid_t ppid, int forked, uint64_t t)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char exe[PATH_MAX] = "";
    long n = IOT_SYSRAW(readlinkat, AT_FDCWD, "/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    char cwd[PATH_MAX] = "";
    if (!getcwd(cwd, sizeof cwd))
        cwd[0] = '\0';
    uint64_t mono, real;
    clock_pair(iot_mono, &mono, &real);
    if (t && t < mono) { /* the pair as it was at t */
        real -= mono - t;
        mono = t;
    }

    msgpack_pack_map(&pk, 16);
    key(&pk, "format"), str(&pk, IOT_FORMAT_NAME);
    key(&pk, "version"), msgpack_pack_int(&pk, IOT_FORMAT_VERSION);
    key(&pk, "host"), str(&pk, host);
    key(&pk, "pid"), msgpack_pack_int(&pk, (int)pid);
    key(&pk, "ppid"), msgpack_pack_int(&pk, (int)ppid);
    key(&pk, "rank"), first_int(&pk, RANK_VARS);
    key(&pk, "size"), first_int(&pk, SIZE_VARS);
    key(&pk, "job"), str(&pk, getenv("IOTRACE_JOB"));
    /* a fork child of this image: its memory (iot_header_build_child: the parent's, read by
     * the parent, whose log exists) */
    key(&pk, "argv"), argv_list(&pk, forked && !t && iot_p.gen > 1);
    key(&pk, "exe"), str(&pk, exe);
    key(&pk, "cwd"), str(&pk, cwd);
    /* a (monotonic, realtime) pair (_clockpair.h): aligns processes and hosts */
    key(&pk, "clock");
    msgpack_pack_map(&pk, 2);
    key(&pk, "mono"), msgpack_pack_uint64(&pk, mono);
    key(&pk, "real"), msgpack_pack_uint64(&pk, real);
    key(&pk, "forked"), forked ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    key(&pk, "stack_depth"), msgpack_pack_int(&pk, iot_p.stack_depth);
    key(&pk, "chunk_size"), msgpack_pack_int(&pk, IOT_CHUNK_SIZE);
    key(&pk, "functions");
    msgpack_pack_array(&pk, IOT_FN_COUNT);
    for (int i = 0; i < IOT_FN_COUNT; i++)
        str(&pk, iot_fn_names[i]);
}
