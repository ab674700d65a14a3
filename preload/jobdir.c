/* The trace directory of a process preloaded without `iotrace run` (docs/batch.md): $IOTRACE_DIR
 * is a central directory, as Darshan's log directory is, and each job gets one trace directory
 * in it, named by the batch or MPI job's id (calls.py JOB_VARS, the names `iotrace run` uses),
 * else a name of its own.  The first process of a job creates it; every other one joins it.
 *
 * The central directory may be shared (mode 1777, like /tmp): the job's directory in it is
 * created 0700 and opened O_NOFOLLOW, and must then be a directory of the caller's that no one
 * else may write, as `iotrace run -o` demands (launcher/dir.c).  Its `iotrace-job` marker (created
 * O_EXCL|O_NOFOLLOW and linked into place: one creator wins) must hold this job's key: a
 * directory of another run or job is never joined. */
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

int iot_jobdir(const char *central, char *out, size_t cap)
{
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
