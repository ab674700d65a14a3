/* The trace directory of every run (`iotrace run`, and `iotrace attach` through
 * `iotrace _trace-dir`): iotrace runs as root in shared working directories, so nothing it
 * writes may be steered by another user.  Created 0700 (0750 shared), or an existing one that
 * is a real directory of the caller's no one else may write; every file created through its
 * descriptor with O_EXCL|O_NOFOLLOW (iotrace/tracedir.py writes in it the same way); its
 * `iotrace-job` marker makes it one run's or one job's: the ranks of one MPI job share the
 * job's key and join, any other run refuses it unless told to replace it (--force) or add to
 * it (--append).  The default name is the job's id (ranks agree on it without talking), else
 * one ending in a random part (no other user can create it first). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"
#include "launch.h"

#define MARK "iotrace-job"
#define FAULTS "iotrace-faults"
#define RUN_PREFIX "iotrace-run."
#define NEW (O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC)
#define LOG_NAME_MAX 96

static uint64_t rnd64(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
        r ^= (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    return r;
}

/* pathlib.Path's spelling of a path: repeated slashes and "." parts out, no trailing slash
 * (two leading slashes are kept, as POSIX allows them a meaning) */
int iot_path_clean(const char *in, char *out, size_t cap)
{
    if (strlen(in) >= cap) { /* never a shorter path than given */
        errno = ENAMETOOLONG;
        return -1;
    }
    size_t o = 0;
    const char *p = in;
    if (p[0] == '/') {
        int two = p[1] == '/' && p[2] != '/';
        out[o++] = '/';
        if (two)
            out[o++] = '/';
        while (*p == '/')
            p++;
    }
    size_t root = o;
    while (*p && o + 1 < cap) {
        const char *e = strchrnul(p, '/');
        size_t len = (size_t)(e - p);
        if (!(len == 1 && p[0] == '.')) {
            if (o > root && o + 1 < cap)
                out[o++] = '/';
            for (size_t i = 0; i < len && o + 1 < cap; i++)
                out[o++] = p[i];
        }
        p = e;
        while (*p == '/')
            p++;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
    return 0;
}

/* "PREFIX ID" of the batch or MPI job this process is part of (calls.py JOB_VARS), or "pmi ..."
 * for MPICH's Hydra (no job id: its ranks on one host are children of one hydra_pmi_proxy,
 * whose pid and start time name the job); 0: none */
static int job_id(char *key, size_t cap)
{
    for (int i = 0; iot_job_vars[i].var; i++) {
        const char *v = getenv(iot_job_vars[i].var);
        if (!v || !*v)
            continue;
        const char *step =
            !strcmp(iot_job_vars[i].var, "SLURM_JOB_ID") ? getenv("SLURM_STEP_ID") : NULL;
        if (step && *step)
            snprintf(key, cap, "%s %s.%s", iot_job_vars[i].prefix, v, step);
        else
            snprintf(key, cap, "%s %s", iot_job_vars[i].prefix, v);
        return 1;
    }
    if (getenv("PMI_RANK")) {
        char host[256] = "", stat_path[64], buf[1024], start[32] = "0";
        gethostname(host, sizeof host - 1);
        int ppid = (int)getppid();
        snprintf(stat_path, sizeof stat_path, "/proc/%d/stat", ppid);
        FILE *f = fopen(stat_path, "re");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        char *rp = strrchr(buf, ')');
        if (rp) { /* field 22, the 20th after the name */
            char *tok, *save = NULL;
            int k = 0;
            for (tok = strtok_r(rp + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
                if (k++ == 19) {
                    snprintf(start, sizeof start, "%s", tok);
                    break;
                }
        }
        snprintf(key, cap, "pmi %s.%d.%s", host, ppid, start);
        return 1;
    }
    return 0;
}

const char *iot_rank(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i]))
            return getenv(vars[i]);
    return NULL;
}

/* what `iotrace-job` holds: the job's id for a rank of a parallel launch (two commands of one
 * batch script share the job's id but are two runs), else an id unique to this run */
static void run_key(char *key, size_t cap, const char *host)
{
    char job[512];
    if (iot_rank() && job_id(job, sizeof job)) {
        snprintf(key, cap, "job %s", job);
        return;
    }
    snprintf(key, cap, "run %s %d %016llx", host, (int)getpid(), (unsigned long long)rnd64());
}

/* the default, in $IOTRACE_DIR if set, else here: BASE/iotrace-PREFIX-ID (not new; the shim's
 * preload/jobdir.c names it the same way) or BASE/iotrace-CMD-STAMP-RANDOM (new) */
static int default_dir(char *out, size_t cap, const char *command0)
{
    const char *base = getenv("IOTRACE_DIR");
    if (!base || !*base)
        base = ".";
    char job[512], name[1024];
    int new = 1;
    if (job_id(job, sizeof job) && strncmp(job, "pmi ", 4)) {
        snprintf(name, sizeof name, "iotrace-%s", job);
        name[8 + strcspn(job, " ")] = '-'; /* iotrace-PREFIX-ID */
        for (char *c = name; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || *c == '.' || *c == '-'))
                *c = '_';
        new = 0;
    } else {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime_r(&now, &tm));
        const char *slash = strrchr(command0, '/');
        snprintf(name, sizeof name, "iotrace-%s-%s-%08x", slash ? slash + 1 : command0, stamp,
                 (unsigned)rnd64());
    }
    char joined[8192];
    snprintf(joined, sizeof joined, "%s/%s", base, name);
    if (iot_path_clean(joined, out, cap) != 0)
        return -1;
    return new;
}

static int mkdirs(const char *path)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return 0;
}

static int is_symlink(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

/* A group no one but the caller is in: the caller's own group (Debian's user private group:
 * named as the user, the user's primary group) listing no other member.  Root trusts its own
 * group (gid 0) alone.  Another user's primary group naming this gid is not looked for (that
 * would walk the whole password database, LDAP's on a cluster): such a set-up is the admin's. */
static int group_private(gid_t gid)
{
    uid_t me = geteuid();
    if (me == 0)
        return gid == 0;
    struct passwd *pw = getpwuid(me);
    if (!pw || pw->pw_gid != gid)
        return 0;
    char name[256];
    snprintf(name, sizeof name, "%s", pw->pw_name);
    struct group *gr = getgrgid(gid);
    if (!gr || strcmp(gr->gr_name, name))
        return 0;
    for (char **m = gr->gr_mem; *m; m++)
        if (strcmp(*m, name))
            return 0;
    return 1;
}

/* Who may change an entry of `st` (a directory: its entries; a file: its bytes) besides root and
 * the caller: its owner, anyone when others may write it, its group when someone else may be in
 * it.  NULL: no one; else why, in detail. */
const char *iot_others_may_change(const struct stat *st, char *detail, size_t cap)
{
    uid_t me = geteuid();
    if (st->st_uid != 0 && st->st_uid != me) {
        snprintf(detail, cap, "owned by uid %u", st->st_uid);
        return detail;
    }
    if ((st->st_mode & 002) || ((st->st_mode & 020) && !group_private(st->st_gid))) {
        snprintf(detail, cap, "writable by other users (mode %04o%s)", st->st_mode & 07777,
                 st->st_mode & 002 ? "" : ", a shared group");
        return detail;
    }
    return NULL;
}

/* Every directory on the way to `abs` (absolute) is one only root and the caller can change:
 * else its owner, or whoever may write it, could rename the entry on the way and put a link or
 * a directory of theirs in its place.  A directory others may write is safe when sticky (/tmp)
 * and the entry on the way in it is root's or the caller's.  1 if not: `where` (PATH_MAX) names
 * the directory or entry, `why` (64) says why. */
static int way_changeable(const char *abs, char *where, char *why)
{
    uid_t me = geteuid();
    size_t n = strlen(abs);
    if (n >= PATH_MAX)
        return 0;
    for (size_t i = 1; i <= n; i++) {
        if (abs[i] != '/' && abs[i] != '\0')
            continue;
        /* the entry abs[0..i) in the directory that holds it */
        memcpy(where, abs, i);
        where[i] = '\0';
        struct stat e, st;
        int missing = lstat(where, &e) != 0; /* to be made (the rest of the way is not there) */
        if (missing)
            e.st_uid = me;
        char *slash = strrchr(where, '/');
        slash[slash == where] = '\0';
        if (stat(where, &st) != 0)
            return 0;
        if (iot_others_may_change(&st, why, 64)) {
            if (!(st.st_mode & S_ISVTX) || (st.st_uid != 0 && st.st_uid != me))
                return 1;
            if (i < n && e.st_uid != 0 && e.st_uid != me) {
                memcpy(where, abs, i);
                where[i] = '\0';
                snprintf(why, 64, "owned by uid %u in a shared directory", e.st_uid);
                return 1;
            }
        }
        if (missing)
            return 0;
    }
    return 0;
}

static int exposed_on_the_way(const char *abs, const char *path, char *msg, size_t cap)
{
    char where[PATH_MAX], why[64];
    if (!way_changeable(abs, where, why))
        return 0;
    snprintf(msg, cap, "%s: %s is %s: another user could move the trace elsewhere while it is "
             "written; refusing to write there (give -o a directory whose parents only you and "
             "root can change)", path, where, why);
    return 1;
}

/* An installed file iotrace runs or loads as the caller (the shim, the stracer, the package):
 * 1 (msg: the file or directory, and why) when another user could change it -- an install made
 * under umask 000, a group's directory for root: that user's code would run as the caller. */
int iot_install_exposed(const char *path, char *msg, size_t cap)
{
    char real[PATH_MAX], where[PATH_MAX], why[64];
    struct stat st;
    if (!realpath(path, real) || stat(real, &st) != 0)
        return 0; /* missing: said where it is used */
    if (iot_others_may_change(&st, why, sizeof why))
        snprintf(where, sizeof where, "%s", real);
    else if (!way_changeable(real, where, why))
        return 0;
    snprintf(msg, cap, "%s is %s", where, why);
    return 1;
}

/* the way to the trace directory `path`, as given and as its parent resolves */
static int way_exposed(const char *path, char *msg, size_t cap)
{
    char abs[PATH_MAX], real[PATH_MAX];
    if (path[0] == '/') {
        snprintf(abs, sizeof abs, "%s", path);
    } else {
        if (!getcwd(abs, sizeof abs))
            return 0;
        size_t n = strlen(abs);
        snprintf(abs + n, sizeof abs - n, "%s%s", n > 1 ? "/" : "", path);
    }
    if (exposed_on_the_way(abs, path, msg, cap))
        return 1;
    char *slash = strrchr(abs, '/');
    *slash = '\0';
    if (!realpath(slash == abs ? "/" : abs, real))
        return 0;
    size_t n = strlen(real);
    snprintf(real + n, sizeof real - n, "%s%s", n > 1 ? "/" : "", slash + 1);
    return exposed_on_the_way(real, path, msg, cap);
}

/* create or open the directory and check it is ours alone; -1 with errno (EEXIST: exclusive and taken) or DIR_REFUSED's message */
static int open_dir(struct iot_dir *d, int exclusive, char *msg, size_t cap)
{
    mode_t mode = d->share ? 0750 : 0700;
    int created = 1;
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", d->path);
    char *slash = strrchr(parent, '/');
    if (way_exposed(d->path, msg, cap)) /* the part that exists, before making the rest */
        return DIR_REFUSED;
    if (slash && slash != parent) {
        *slash = '\0';
        if (mkdirs(parent) != 0 || (mkdir(parent, 0777) != 0 && errno != EEXIST))
            goto oserr;
        if (way_exposed(d->path, msg, cap))
            return DIR_REFUSED;
    }
    if (mkdir(d->path, mode) != 0) {
        if (errno != EEXIST)
            goto oserr;
        created = 0;
    }
    if (exclusive && !created) {
        errno = EEXIST;
        return -1;
    }
    d->fd = open(d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d->fd < 0)
        goto oserr;
    struct stat st;
    if (fstat(d->fd, &st) != 0)
        goto oserr_fd;
    if (st.st_uid != geteuid()) {
        snprintf(msg, cap, "%s: owned by uid %u, not by you (uid %u): refusing to write there",
                 d->path, st.st_uid, geteuid());
        close(d->fd);
        return DIR_REFUSED;
    }
    if (st.st_mode & 022) {
        snprintf(msg, cap, "%s: writable by other users (mode %04o): refusing to write there "
                 "(chmod go-w %s)", d->path, st.st_mode & 07777, d->path);
        close(d->fd);
        return DIR_REFUSED;
    }
    if (created && fchmod(d->fd, mode | (st.st_mode & S_ISGID)) != 0)
        goto oserr_fd;
    return DIR_OK;
oserr_fd: {
    int e = errno;
    close(d->fd);
    errno = e;
}
oserr:
    if ((errno == ENOTDIR || errno == ELOOP) && is_symlink(d->path)) {
        snprintf(msg, cap, "%s: a symbolic link: refusing to write there (give the directory "
                 "itself)", d->path);
        return DIR_REFUSED;
    }
    return -1;
}

static int read_mark(int dfd, char *buf, size_t cap)
{
    int fd = openat(dfd, MARK, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    ssize_t n = read(fd, buf, cap - 1 < 4096 ? cap - 1 : 4096);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    /* .strip() */
    size_t len = strlen(buf);
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\t' ||
                   buf[len - 1] == '\r'))
        buf[--len] = '\0';
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int trace_file(const char *name)
{
    return !strcmp(name, MARK) || !strncmp(name, FAULTS ".", sizeof FAULTS) ||
           ends_with(name, ".iot") || ends_with(name, ".stracer") ||
           (!strncmp(name, RUN_PREFIX, sizeof RUN_PREFIX - 1) && ends_with(name, ".json"));
}

/* the trace files in it (regular files named as one); with `remove`: removed, but the marker */
static int held(int dfd, int remove)
{
    int n = 0, fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(dir))) {
        struct stat st;
        if (!trace_file(e->d_name) || fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        n++;
        if (remove && strcmp(e->d_name, MARK))
            unlinkat(dfd, e->d_name, 0);
    }
    closedir(dir);
    return n;
}

/* 1 installed, 0 another's appeared first, -1 errno */
static int write_mark(struct iot_dir *d, const char *key, int replace)
{
    char tmp[64], line[1024];
    snprintf(tmp, sizeof tmp, "." MARK ".%016llx", (unsigned long long)rnd64());
    int fd = openat(d->fd, tmp, O_WRONLY | NEW, d->share ? 0640 : 0600);
    if (fd < 0)
        return -1;
    int n = snprintf(line, sizeof line, "%s\n", key);
    ssize_t w = write(fd, line, (size_t)n);
    int e = errno;
    close(fd);
    int r;
    if (w != n) {
        errno = w < 0 ? e : ENOSPC;
        r = -1;
    } else if (replace) {
        r = renameat(d->fd, tmp, d->fd, MARK) == 0 ? 1 : -1;
    } else {
        r = linkat(d->fd, tmp, d->fd, MARK, 0) == 0 ? 1 : errno == EEXIST ? 0 : -1;
    }
    e = errno;
    unlinkat(d->fd, tmp, 0);
    errno = e;
    return r;
}

/* make it this run's (join the run or job that owns it, take an empty one, else refuse
 * unless --force or --append): DIR_OK, DIR_REFUSED (msg), -1 (errno) */
static int claim(struct iot_dir *d, const char *key, int reuse, char *msg, size_t cap)
{
    int locked = flock(d->fd, LOCK_EX) == 0; /* no flock (some NFS): the link still decides */
    int r = DIR_REFUSED;
    for (int tries = 0; tries < 3; tries++) {
        char mark[4096];
        int have = read_mark(d->fd, mark, sizeof mark);
        if (have < 0) {
            r = -1;
            break;
        }
        if (have && !strcmp(mark, key)) {
            r = DIR_OK;
            break;
        }
        int n = held(d->fd, 0);
        if (n < 0) {
            r = -1;
            break;
        }
        if (!have && !n) {
            int w = write_mark(d, key, 0);
            if (w != 0) {
                r = w > 0 ? DIR_OK : -1;
                break;
            }
            continue; /* someone else's marker appeared: look again */
        }
        if (reuse == 'a') {
            r = DIR_OK;
            break;
        }
        if (reuse == 'f') {
            held(d->fd, 1);
            r = write_mark(d, key, 1) > 0 ? DIR_OK : -1;
            break;
        }
        break;
    }
    int e = errno;
    if (locked)
        flock(d->fd, LOCK_UN);
    errno = e;
    if (r == DIR_REFUSED)
        snprintf(msg, cap, "%s already holds a trace of another run: --force to replace it, "
                 "--append to add this run to it", d->path);
    return r;
}

int iot_trace_dir(struct iot_dir *d, const char *out, const char *command0, int share, int reuse,
                  char *msg, size_t cap)
{
    char host[256] = "", key[1024];
    gethostname(host, sizeof host - 1);
    d->share = share;
    for (int tries = 0; tries < 100; tries++) {
        int new = out ? iot_path_clean(out, d->path, sizeof d->path)
                      : default_dir(d->path, sizeof d->path, command0);
        if (new < 0)
            return DIR_OSERR; /* ENAMETOOLONG */
        int r = open_dir(d, new, msg, cap);
        if (r == -1 && errno == EEXIST && new)
            continue; /* a random name taken: draw another */
        if (r != DIR_OK)
            return r == DIR_REFUSED ? DIR_REFUSED : DIR_OSERR;
        run_key(key, sizeof key, host);
        r = claim(d, key, reuse, msg, cap);
        if (r != DIR_OK) {
            int e = errno;
            close(d->fd);
            errno = e;
            return r == DIR_REFUSED ? DIR_REFUSED : DIR_OSERR;
        }
        if (!realpath(d->path, d->real))
            snprintf(d->real, sizeof d->real, "%s", d->path);
        return DIR_OK;
    }
    snprintf(msg, cap, "cannot create a trace directory here");
    return DIR_REFUSED;
}

int iot_create_unique(struct iot_dir *d, const char *stem, const char *suffix, char *name,
                      size_t cap)
{
    for (int n = 0; n < 1000; n++) {
        if (n)
            snprintf(name, cap, "%s.%d%s", stem, n, suffix);
        else
            snprintf(name, cap, "%s%s", stem, suffix);
        int fd = openat(d->fd, name, O_WRONLY | NEW, d->share ? 0640 : 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* The run record's file, named STEM[.N]SUFFIX, made of the fault file `faults` (a path in d) when
 * it is still empty: its reservation is then kept, not freed.  Freeing blocks on a file system
 * mounted `discard` (ext4's option) sleeps until the device has discarded them, 3-5 ms in most
 * runs on a virtual disk, which every run would pay after its command's exit; the 64 KiB stay
 * with the run record instead (docs/format.md).  fd, or -1: not taken (not there, not empty,
 * not a regular file of ours, no name free), the fault file as it was. */
int iot_take_reservation(struct iot_dir *d, const char *faults, const char *stem,
                         const char *suffix, char *name, size_t cap)
{
    const char *base = strrchr(faults, '/');
    base = base ? base + 1 : faults;
    int fd = openat(d->fd, base, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st, again;
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != 0 || st.st_nlink != 1 ||
        st.st_uid != geteuid()) {
        close(fd);
        return -1;
    }
    for (int n = 0; n < 1000; n++) {
        if (n)
            snprintf(name, cap, "%s.%d%s", stem, n, suffix);
        else
            snprintf(name, cap, "%s%s", stem, suffix);
        if (renameat2(d->fd, base, d->fd, name, RENAME_NOREPLACE) == 0)
            break;
        if (errno != EEXIST) {
            close(fd);
            return -1;
        }
        name[0] = '\0';
    }
    if (!name[0]) {
        close(fd);
        return -1;
    }
    /* the same file, still empty: no shim line came in between (a later one is lost, as it was
     * when the empty file was removed).  A line came: the file gets its name back, for the fault
     * line to sum up (else it was lost, and a run record's name held the shim's lines) */
    int same = fstatat(d->fd, name, &again, AT_SYMLINK_NOFOLLOW) == 0 &&
               again.st_ino == st.st_ino && again.st_dev == st.st_dev;
    if (!same || fstat(fd, &st) != 0 || st.st_size != 0) {
        if (same)
            renameat2(d->fd, name, d->fd, base, RENAME_NOREPLACE);
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, 0); /* O_NONBLOCK off: a plain file's writes */
    return fd;
}

int iot_prepare_dir(struct iot_dir *d, const char *host, char *faults, size_t cap)
{
    char name[512];
    snprintf(name, sizeof name, FAULTS ".%s.%d", host, (int)getpid());
    int n = snprintf(faults, cap, "%s/%s", d->real, name);
    long max = pathconf("/", _PC_PATH_MAX);
    if (n < 0 || (size_t)n >= cap || n + LOG_NAME_MAX >= max)
        return ENAMETOOLONG;
    int fd = openat(d->fd, name, O_WRONLY | NEW, d->share ? 0640 : 0600);
    if (fd < 0)
        return errno;
    /* room for the shim's lines on a full disk; KEEP_SIZE: the file stays empty (kept by the run
     * record at the end: iot_take_reservation) */
    fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 << 16);
    close(fd);
    return 0;
}

/* `iotrace _way DIR`: whether another user could change the way to an entry of DIR (the
 * central directory of `iotrace env`, which the shims make each job's directory in): status 0,
 * else 2 and "WHERE is WHY" on stdout. */
int iot_way_command(int argc, char **argv)
{
    char abs[PATH_MAX], where[PATH_MAX], why[64];
    if (argc != 2 || argv[1][0] != '/' || strlen(argv[1]) + 3 >= sizeof abs)
        return 1;
    snprintf(abs, sizeof abs, "%s/\x01", argv[1]); /* an entry of DIR none has that name */
    if (!way_changeable(abs, where, why)) {
        char real[PATH_MAX];
        if (!realpath(argv[1], real) || strlen(real) + 3 >= sizeof abs)
            return 0; /* not there: made by the caller */
        snprintf(abs, sizeof abs, "%s/\x01", real);
        if (!way_changeable(abs, where, why))
            return 0;
    }
    printf("%s is %s\n", where, why);
    return 2;
}

/* `iotrace _private-group`: status 0 when the caller (not root) is alone in their primary group
 * (group_private), which `iotrace env` tells the shims in IOTRACE_PRIVATE_GID (they call no
 * NSS: preload/jobdir.c), else 1. */
int iot_private_group_command(void)
{
    return geteuid() != 0 && group_private(getegid()) ? 0 : 1;
}

/* `iotrace _trace-dir NAME SHARE REUSE [OUT]`: the trace directory of a run Python starts
 * itself (`iotrace attach`: NAME the default's command word; SHARE 0 or 1; REUSE -, force or
 * append), made and claimed by these rules, its path on stdout (status 0); a refusal's line
 * (status 2) or an errno (status 1) there instead. */
int iot_trace_dir_command(int argc, char **argv)
{
    if (argc < 4 || argc > 5)
        return 2;
    struct iot_dir d;
    char msg[9000];
    int reuse = !strcmp(argv[3], "force") ? 'f' : !strcmp(argv[3], "append") ? 'a' : 0;
    int r = iot_trace_dir(&d, argc > 4 ? argv[4] : NULL, argv[1], argv[2][0] == '1', reuse, msg,
                          sizeof msg);
    if (r == DIR_OK)
        printf("%s\n", d.path);
    else if (r == DIR_REFUSED)
        printf("%s\n", msg);
    else
        printf("%d\n", errno);
    return r == DIR_OK ? 0 : r == DIR_REFUSED ? 2 : 1;
}
