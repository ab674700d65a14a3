/* The trace directory of a process preloaded without `iotrace run` (docs/batch.md): $IOTRACE_DIR
 * is a central directory, as Darshan's log directory is, and each job gets one trace directory
 * in it, named by the batch or MPI job's id (calls.py JOB_VARS, the names `iotrace run` uses),
 * else a name of its own.  The first process of a job creates it; every other one joins it.
 *
 * The central directory may be shared (mode 1777, like /tmp): the job's directory in it is
 * created 0700 and opened O_NOFOLLOW, and must then be a directory of the caller's that no one
 * else may write, as `iotrace run -o` demands (launcher/dir.c).  Its `iotrace-job` marker (created
 * O_EXCL|O_NOFOLLOW and linked into place: one creator wins) must hold this job's key: a
 * directory of another run or job is never joined.  The way to the central directory must be
 * one only root and the caller can change (as `iotrace run -o`'s): else nothing is made there. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

#define MARK "iotrace-job"

/* launcher/dir.c job_id(): "PREFIX ID" of the job this process is part of, or 0. */
static int job_id(char *key, size_t cap)
{
    for (int i = 0; iot_job_vars[i].var; i++) {
        const char *v = getenv(iot_job_vars[i].var);
        if (!v || !*v)
            continue;
        const char *step = !strcmp(iot_job_vars[i].var, "SLURM_JOB_ID") ? getenv("SLURM_STEP_ID")
                                                                          : NULL;
        int n = step && *step ? snprintf(key, cap, "%s %s.%s", iot_job_vars[i].prefix, v, step)
                              : snprintf(key, cap, "%s %s", iot_job_vars[i].prefix, v);
        return n > 0 && (size_t)n < cap;
    }
    return 0;
}

/* The directory's name from a job key: "iotrace-PREFIX-ID", characters other than letters,
 * digits, "_.-" as "_" (launcher/dir.c default_dir). */
static void dir_name(const char *key, char *out, size_t cap)
{
    int n = snprintf(out, cap, "iotrace-%s", key);
    char *sp = n > 0 ? strchr(out, ' ') : NULL;
    if (sp)
        *sp = '-';
    for (char *c = out + 8; n > 0 && *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                   (*c >= '0' && *c <= '9') || *c == '_' || *c == '.' || *c == '-'))
            *c = '_';
}

static int read_mark(int dfd, char *buf, size_t cap)
{
    int fd = (int)IOT_SYSRAW(openat, dfd, MARK, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    long n = IOT_SYSRAW(read, fd, buf, cap - 1);
    IOT_SYSRAW(close, fd);
    buf[n > 0 ? n : 0] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    return 0;
}

/* The marker holds `key` (installed now if there is none): 0, else -1. */
static int claim(int dfd, const char *key)
{
    char have[256];
    for (int tries = 0; tries < 3; tries++) {
        if (read_mark(dfd, have, sizeof have) == 0)
            return strcmp(have, key) ? -1 : 0;
        char tmp[64];
        uint64_t r = 0;
        getrandom(&r, sizeof r, 0);
        snprintf(tmp, sizeof tmp, "." MARK ".%016llx", (unsigned long long)r);
        int fd = (int)IOT_SYSRAW(openat, dfd, tmp,
                                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            return -1;
        char line[300];
        int n = snprintf(line, sizeof line, "%s\n", key);
        long w = IOT_SYSRAW(write, fd, line, (size_t)n);
        IOT_SYSRAW(close, fd);
        long l = w == n ? IOT_SYSRAW(linkat, dfd, tmp, dfd, MARK, 0) : -1;
        IOT_SYSRAW(unlinkat, dfd, tmp, 0);
        if (l == 0)
            return 0;
        if (w != n)
            return -1;
    }
    return -1;
}

/* A directory of ours that no one else may write (launcher/dir.c, tracedir.py _check). */
int iot_dir_ours(int dfd)
{
    struct stat st;
    return IOT_SYSRAW(fstat, dfd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
           !(st.st_mode & 022);
}

/* The caller's primary group as one no one else is in: `iotrace env` found it so
 * (IOTRACE_PRIVATE_GID, launcher/dir.c group_private: the user's own private group).  Who is in
 * a group is NSS's to say, which the shim does not call; a primary group alone says nothing of
 * it (`users` on many clusters; nogroup here is nobody's, _apt's and sync's). */
static int private_group(gid_t gid)
{
    const char *v = getenv("IOTRACE_PRIVATE_GID");
    char *end;
    unsigned long g = v && *v ? strtoul(v, &end, 10) : 0;
    return v && *v && !*end && g == gid && gid == getegid();
}

/* Who besides root and the caller may change entries of a directory: its owner, anyone if it is
 * writable by all, its group if group-writable and not root's (for root) or the caller's own
 * (private_group). */
static int others_may_change(const struct stat *st)
{
    uid_t me = geteuid();
    return (st->st_uid != 0 && st->st_uid != me) || (st->st_mode & 002) ||
           ((st->st_mode & 020) && !(me == 0 ? st->st_gid == 0 : private_group(st->st_gid)));
}

/* Every directory from / to `abs` (absolute) is one only root and the caller can change, or a
 * sticky one of theirs whose entry on the way is root's or the caller's (launcher/dir.c
 * way_changeable): else its owner, or whoever may write it, could rename the job's directory
 * away and put theirs in its place.  1: ours. */
static int way_ours(const char *abs)
{
    char d[PATH_MAX];
    size_t n = strlen(abs);
    if (abs[0] != '/' || n >= sizeof d)
        return 0;
    uid_t me = geteuid();
    for (size_t i = 0; i < n;) { /* d = abs[0..i] is the directory, the next part its entry */
        size_t len = i ? i : 1;
        memcpy(d, abs, len);
        d[len] = '\0';
        struct stat st, e;
        if (IOT_SYSRAW(stat, d, &st) != 0)
            return 0;
        size_t next = i + 1;
        while (next < n && abs[next] != '/')
            next++;
        if (others_may_change(&st)) {
            if (!(st.st_mode & S_ISVTX) || (st.st_uid != 0 && st.st_uid != me))
                return 0;
            memcpy(d, abs, next);
            d[next] = '\0';
            if (next > i + 1 && (IOT_SYSRAW(lstat, d, &e) != 0 || (e.st_uid != 0 && e.st_uid != me)))
                return 0;
        }
        i = next;
    }
    struct stat st; /* the central directory itself: the job's directory is its entry */
    if (IOT_SYSRAW(stat, abs, &st) != 0)
        return 0;
    return !others_may_change(&st) || ((st.st_mode & S_ISVTX) && (st.st_uid == 0 || st.st_uid == me));
}

/* The way to the central directory as given (from the working directory if relative) and as
 * the kernel resolves it (its symbolic links followed: another user's directory may be
 * behind one). */
static int central_ours(const char *central)
{
    char given[PATH_MAX], real[PATH_MAX], fdpath[64];
    if (central[0] == '/') {
        if (strlen(central) >= sizeof given)
            return 0;
        strcpy(given, central);
    } else {
        long k = IOT_SYSRAW(readlinkat, AT_FDCWD, "/proc/self/cwd", given, sizeof given - 1);
        if (k <= 0 || (size_t)k + 1 + strlen(central) >= sizeof given)
            return 0;
        given[k] = '\0';
        snprintf(given + k, sizeof given - (size_t)k, "/%s", central);
    }
    int fd = (int)IOT_SYSRAW(openat, AT_FDCWD, given, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
    long k = IOT_SYSRAW(readlinkat, AT_FDCWD, fdpath, real, sizeof real - 1);
    IOT_SYSRAW(close, fd);
    if (k <= 0 || real[0] != '/')
        return 0;
    real[k] = '\0';
    return way_ours(given) && way_ours(real);
}

int iot_jobdir(const char *central, char *out, size_t cap)
{
    if (!central_ours(central))
        return -1;
    char key[256], name[300];
    int job = job_id(key + 4, sizeof key - 4);
    if (job)
        memcpy(key, "job ", 4);
    for (int tries = 0; tries < 100; tries++) {
        if (!job) { /* a name no one else can have taken first: created exclusively */
            char host[64] = "localhost";
            uint64_t r = 0;
            gethostname(host, sizeof host - 1);
            getrandom(&r, sizeof r, 0);
            time_t now = time(NULL);
            struct tm tm;
            char stamp[32];
            strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime_r(&now, &tm));
            snprintf(key, sizeof key, "run %s.%d.%s.%08llx", host, (int)getpid(), stamp,
                     (unsigned long long)(r & 0xffffffffu));
        }
        dir_name(key + 4, name, sizeof name);
        int n = snprintf(out, cap, "%s/%s", central, name);
        if (n <= 0 || (size_t)n >= cap)
            return -1;
        if (IOT_SYSRAW(mkdirat, AT_FDCWD, out, 0700) != 0) {
            if (errno != EEXIST)
                return -1;
            if (!job)
                continue; /* a random name taken: draw another (a job's name: join it) */
        }
        int dfd = (int)IOT_SYSRAW(openat, AT_FDCWD, out,
                                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
        if (dfd < 0)
            return -1;
        int ok = iot_dir_ours(dfd) && claim(dfd, key) == 0;
        IOT_SYSRAW(close, dfd);
        return ok ? 0 : -1;
    }
    return -1;
}
