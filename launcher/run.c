/* `iotrace run`, with the shim alone or full (the stracer: stracer.c): the options, the shim's
 * environment, fork/exec/wait with the job's signals passed on, the run record, and the closing
 * lines.  Returns -1 for what it does not do, which the Python command then does. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <ctype.h>
#include <time.h>
#include <unistd.h>

#include "../src/iotrace/_clockpair.h"
#include "launch.h"

#ifndef IOTRACE_VERSION
#define IOTRACE_VERSION "0.0.0"
#endif

extern int iot_console;
extern char **environ;

/* What the Python command decided when it handed a run over (run.py hand_over): taken out of
 * the environment before anything is started. */
static struct {
    int on;
    char *pkg, *calls, *paths, *data;
} handover;

static void take_handover(void)
{
    static const char *names[] = {"IOTRACE_HANDOVER_PKG", "IOTRACE_HANDOVER_CALLS",
                                  "IOTRACE_HANDOVER_PATHS", "IOTRACE_HANDOVER_DATA"};
    char **into[] = {&handover.pkg, &handover.calls, &handover.paths, &handover.data};
    handover.on = getenv("IOTRACE_HANDOVER") != NULL;
    unsetenv("IOTRACE_HANDOVER");
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *v = getenv(names[i]);
        *into[i] = v && handover.on ? strdup(v) : NULL;
        unsetenv(names[i]);
    }
}

struct opts {
    const char *out, *mpi, *console;
    int stack, share, reuse, stracer;
    char **command;
    int ncommand;
};

/* a plain decimal int (argparse's type=int takes more: those go to Python) */
static int plain_int(const char *s, int *v)
{
    if (!*s || strlen(s) > 6 || strspn(s, "0123456789") != strlen(s))
        return 0;
    *v = atoi(s);
    return 1;
}

/* -1: not ours (hand it over); 0: parsed */
static int parse(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->stack = 8;
    o->stracer = 1;
    o->mpi = "auto";
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (a[0] != '-' || !strcmp(a, "-")) /* the command */
            break;
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        const char *eq = strchr(a, '=');
        size_t name = eq && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
        if (eq && a[1] == '-')
            val = eq + 1;
#define IS(opt) (name == sizeof(opt) - 1 && !strncmp(a, opt, name))
#define VALUE()                                                                                    \
    do {                                                                                           \
        if (!val) {                                                                                \
            if (i + 1 >= argc || (argv[i + 1][0] == '-' && argv[i + 1][1]))                        \
                return -1;                                                                         \
            val = argv[++i];                                                                       \
        }                                                                                          \
    } while (0)
        if (!strncmp(a, "-o", 2) && a[1] == 'o' && a[2] && a[2] != '-') {
            o->out = a + 2;
        } else if (IS("-o") || IS("--output")) {
            VALUE();
            o->out = val;
        } else if (IS("--force") && !val) {
            if (o->reuse == 'a')
                return -1;
            o->reuse = 'f';
        } else if (IS("--append") && !val) {
            if (o->reuse == 'f')
                return -1;
            o->reuse = 'a';
        } else if (IS("--share-with-group") && !val) {
            o->share = 1;
        } else if (IS("--no-stracer") && !val) {
            o->stracer = 0;
        } else if (IS("--stack")) {
            VALUE();
            if (!plain_int(val, &o->stack))
                return -1;
        } else if (IS("--mpi")) {
            VALUE();
            if (strcmp(val, "auto") && strcmp(val, "openmpi") && strcmp(val, "mpich"))
                return -1;
            o->mpi = val;
        } else if (IS("--console")) {
            VALUE();
            o->console = val;
        } else {
            return -1; /* -e, --path, -s, -h, an abbreviation, a mistake: Python says it */
        }
#undef IS
#undef VALUE
    }
    o->command = argv + i;
    o->ncommand = argc - i;
    return 0;
}

/* iotrace/shim.py shim_path: IOTRACE_SHIM, else the package's libiotrace[-FAMILY].so.  The
 * package is found from this file: SCRIPTS/../lib/pythonX.Y/{site,dist}-packages/iotrace, one
 * such (else Python decides); 0: not found. */
static int shim_path(const char *mpi, char *out, size_t cap)
{
    const char *over = getenv("IOTRACE_SHIM"), *pkg = handover.pkg;
    struct stat st;
    if (over && *over)
        return realpath(over, out) && stat(out, &st) == 0 && S_ISREG(st.st_mode);
    char dir[PATH_MAX], lib[PATH_MAX + 32];
    if (pkg)
        snprintf(dir, sizeof dir, "%s", pkg);
    else if (!iot_package_dir(dir, sizeof dir))
        return 0;
    snprintf(lib, sizeof lib, "%s/libiotrace.so", dir);
    if (!realpath(lib, out) || stat(out, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    if (mpi) {
        char variant[PATH_MAX + 64];
        snprintf(variant, sizeof variant, "%.*s/libiotrace-%s.so",
                 (int)(strrchr(out, '/') - out), out, mpi);
        if (stat(variant, &st) == 0 && S_ISREG(st.st_mode) && strlen(variant) < cap)
            strcpy(out, variant);
    }
    return 1;
}

static char *env_entry(const char *k, const char *v)
{
    char *e = malloc(strlen(k) + strlen(v) + 2);
    sprintf(e, "%s=%s", k, v);
    return e;
}

/* The CLOCK_MONOTONIC offset (ns) of the time namespace the run is in, the stracer's clock:
 * 0 in the host's.  A shim in a namespace of its own puts its times on this clock
 * (preload/clock.c), told by IOTRACE_TIMENS when it is not the host's. */
static long long timens_offset(void)
{
    FILE *f = fopen("/proc/self/timens_offsets", "re");
    long long sec, nsec, off = 0;
    char name[32];
    while (f && fscanf(f, "%31s %lld %lld", name, &sec, &nsec) == 3)
        if (!strcmp(name, "monotonic"))
            off = sec * 1000000000ll + nsec;
    if (f)
        fclose(f);
    return off;
}

/* the command's environment: the one given, the shim first in LD_PRELOAD, where it writes */
static char **traced_env(const char *shim, struct iot_dir *d, int stack, const char *faults)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 12, sizeof *env);
    size_t k = 0;
    const char *preload = getenv("LD_PRELOAD"), *job = getenv("IOTRACE_JOB");
    static const char *drop[] = {"IOTRACE_CALLS=", "IOTRACE_PATHS=", "IOTRACE_DATA=",
                                 "LD_PRELOAD=", "IOTRACE_OUT=", "IOTRACE_STACK=",
                                 "IOTRACE_FAULTS=", "IOTRACE_SHARE=", "IOTRACE_GIVEN_SIGIGN=",
                                 "IOTRACE_TIMENS="};
    for (size_t i = 0; i < n; i++) {
        int keep = 1;
        for (size_t j = 0; j < sizeof drop / sizeof *drop && keep; j++)
            keep = strncmp(environ[i], drop[j], strlen(drop[j])) != 0;
        if (keep)
            env[k++] = environ[i];
    }
    char *lp = malloc(strlen(shim) + (preload ? strlen(preload) : 0) + 2);
    if (preload && *preload && !strstr(preload, shim))
        sprintf(lp, "%s:%s", shim, preload);
    else
        strcpy(lp, shim);
    char num[16];
    snprintf(num, sizeof num, "%d", stack);
    env[k++] = env_entry("LD_PRELOAD", lp);
    env[k++] = env_entry("IOTRACE_OUT", d->real);
    env[k++] = env_entry("IOTRACE_STACK", num);
    env[k++] = env_entry("IOTRACE_FAULTS", faults);
    if (handover.calls) /* -e trace=, --path, -s: the shim's filter (run.py Recording) */
        env[k++] = env_entry("IOTRACE_CALLS", handover.calls);
    if (handover.paths)
        env[k++] = env_entry("IOTRACE_PATHS", handover.paths);
    if (handover.data)
        env[k++] = env_entry("IOTRACE_DATA", handover.data);
    if (!job)
        env[k++] = env_entry("IOTRACE_JOB", strrchr(d->real, '/') + 1);
    if (d->share)
        env[k++] = env_entry("IOTRACE_SHARE", "group");
    char off[24];
    snprintf(off, sizeof off, "%lld", timens_offset());
    if (strcmp(off, "0"))
        env[k++] = env_entry("IOTRACE_TIMENS", off);
    env[k] = NULL;
    return env;
}

/* The signals a batch system or a user sends to the job: passed on to the command.  SIGCONT
 * too: it resumes `iotrace run` itself whatever its handler, and a command stopped on its own
 * (SIGSTOP, SIGTSTP) would otherwise stay stopped when the job is resumed through this pid. */
static const int forwarded[] = {SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT};
#define NFWD (sizeof forwarded / sizeof *forwarded)
volatile pid_t iot_app;
static volatile pid_t end_rest; /* the stracer, once the command exited leaving processes */
static struct sigaction given[NFWD + 2]; /* forwarded, SIGINT, SIGCHLD: as iotrace got them */

static void forward(int sig)
{
    int e = errno;
    if (end_rest > 0) {
        if (sig != SIGCONT) /* a resume ends nothing */
            kill(end_rest, SIGUSR1); /* stracer/launch.py END_REST */
    } else if (iot_app > 0)
        kill(iot_app, sig);
    errno = e;
}

/* SIGTSTP to iotrace (`kill -TSTP` of this pid; Ctrl-Z reaches the command too) stopped iotrace
 * alone and left the command running: the command is told, then iotrace stops as its job would
 * (the shell waiting sees it stopped), and the SIGCONT that resumes it is passed on (forward).
 * In an orphaned process group the kernel drops both stops, as it would untraced. */
static void suspend(int sig)
{
    int e = errno;
    if (end_rest == 0 && iot_app > 0)
        kill(iot_app, sig);
    struct sigaction dfl = {.sa_handler = SIG_DFL}, me = {.sa_handler = suspend};
    me.sa_flags = SA_NODEFER; /* the stop below is delivered inside this handler */
    sigemptyset(&me.sa_mask);
    sigaction(SIGTSTP, &dfl, NULL);
    raise(SIGTSTP);
    sigaction(SIGTSTP, &me, NULL);
    errno = e;
}

void iot_end_rest(pid_t stracer)
{
    end_rest = stracer;
    if (stracer > 0 && given[NFWD].sa_handler != SIG_IGN) { /* Ctrl-C ends them too */
        struct sigaction fwd = {.sa_handler = forward};
        sigemptyset(&fwd.sa_mask);
        sigaction(SIGINT, &fwd, NULL);
    }
}

pid_t iot_spawn(const char *exe, char **argv, char **env, const int *keep, int nkeep, int deaf)
{
    /* vfork: this process waits until the child has exec'd, and learns an exec's failure in
     * memory they share -- no pipe, so a command given a tiny RLIMIT_NOFILE (4 or 5: this
     * process holds the trace directory too) runs as untraced instead of "Too many open
     * files" (126).  The child only sets its own signal dispositions and descriptor flags. */
    volatile int err = 0;
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old); /* no handler of ours runs in the child */
    pid_t pid = vfork();
    if (pid == 0) {
        /* the stracer waits for its children whatever iotrace was given (the command gets
         * that back from IOTRACE_GIVEN_SIGIGN) */
        struct sigaction ign = {.sa_handler = SIG_IGN}, dfl = {.sa_handler = SIG_DFL};
        for (size_t i = 0; i < NFWD; i++)
            sigaction(forwarded[i], deaf ? &ign : &given[i], NULL);
        sigaction(SIGINT, deaf ? &ign : &given[NFWD], NULL);
        sigaction(SIGCHLD, deaf ? &dfl : &given[NFWD + 1], NULL);
        sigaction(SIGXFSZ, strtoull(iot_given_sigign, NULL, 16) >> (SIGXFSZ - 1) & 1 ? &ign : &dfl,
                  NULL); /* main.c ignores it for its own writes */
        sigprocmask(SIG_SETMASK, &old, NULL);
        for (int i = 0; i < nkeep; i++)
            fcntl(keep[i], F_SETFD, 0);
        if (!deaf)
            iot_std_release();
        execve(exe, argv, env);
        err = errno;
        _exit(127);
    }
    int e = errno;
    if (pid > 0 && !deaf && !err) /* a signal from now on is the command's */
        iot_app = pid;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return -e;
    if (err) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return -err;
    }
    return pid;
}

/* the JSON string of bytes as Python's json.dumps has sys.argv's (surrogateescape, ASCII) */
static void json_str(FILE *f, const unsigned char *s)
{
    fputc('"', f);
    while (*s) {
        unsigned c = *s, cp = 0, len = 0;
        if (c < 0x80)
            cp = c, len = 1;
        else if ((c & 0xe0) == 0xc0 && c >= 0xc2)
            cp = c & 0x1f, len = 2;
        else if ((c & 0xf0) == 0xe0)
            cp = c & 0x0f, len = 3;
        else if ((c & 0xf8) == 0xf0 && c <= 0xf4)
            cp = c & 0x07, len = 4;
        int ok = len > 0;
        for (unsigned i = 1; ok && i < len; i++)
            ok = (s[i] & 0xc0) == 0x80, cp = cp << 6 | (s[i] & 0x3f);
        if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
                   (len == 4 && (cp < 0x10000 || cp > 0x10ffff))))
            ok = 0;
        if (!ok) { /* a byte that is not UTF-8: U+DC80..U+DCFF */
            fprintf(f, "\\udc%02x", c);
            s++;
            continue;
        }
        s += len;
        if (cp == '"' || cp == '\\')
            fprintf(f, "\\%c", cp);
        else if (cp == '\n')
            fputs("\\n", f);
        else if (cp == '\r')
            fputs("\\r", f);
        else if (cp == '\t')
            fputs("\\t", f);
        else if (cp == '\b')
            fputs("\\b", f);
        else if (cp == '\f')
            fputs("\\f", f);
        else if (cp < 0x20 || (cp >= 0x7f && cp < 0x10000))
            fprintf(f, "\\u%04x", cp);
        else if (cp >= 0x10000)
            fprintf(f, "\\u%04x\\u%04x", 0xd800 + ((cp - 0x10000) >> 10),
                    0xdc00 + ((cp - 0x10000) & 0x3ff));
        else
            fputc((int)cp, f);
    }
    fputc('"', f);
}


/* the run record (docs/format.md "Run record"), as json.dumps(indent=1) writes it; errno or 0 */
static int run_record(struct iot_dir *d, const char *host, pid_t pid, struct opts *o,
                      int64_t real, int64_t mono, int returncode, int status, const char *faults)
{
    char stem[512], name[600];
    snprintf(stem, sizeof stem, "iotrace-run.%s.%d", host, (int)pid);
    int fd = iot_take_reservation(d, faults, stem, ".json", name, sizeof name);
    if (fd < 0)
        fd = iot_create_unique(d, stem, ".json", name, sizeof name);
    if (fd < 0)
        return errno ? errno : EIO;
    FILE *f = fdopen(fd, "w");
    fprintf(f, "{\n \"iotrace\": \"%s\",\n \"host\": ", IOTRACE_VERSION);
    json_str(f, (const unsigned char *)host);
    fprintf(f, ",\n \"pid\": %d,\n \"argv\": [\n", (int)pid);
    for (int i = 0; i < o->ncommand; i++) {
        fputs("  ", f);
        json_str(f, (const unsigned char *)o->command[i]);
        fputs(i + 1 < o->ncommand ? ",\n" : "\n", f);
    }
    fprintf(f, " ],\n \"start_real_ns\": %lld,\n \"start_mono_ns\": %lld,\n"
               " \"end_mono_ns\": %lld,\n \"returncode\": %d,\n \"status\": %d\n}\n",
            (long long)real, (long long)mono, (long long)clock_pair_ns(CLOCK_MONOTONIC), returncode,
            status);
    int e = ferror(f) ? (errno ? errno : EIO) : 0;
    if (fclose(f) != 0 && !e)
        e = errno ? errno : EIO;
    if (e)
        unlinkat(d->fd, name, 0);
    return e;
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* the one line that says what could not be recorded, or 0 */
static int fault_line(struct iot_dir *d, const char *faults, int stracer_errno, int record_errno,
                      char *out, size_t cap)
{
    struct stat st;
    if (stat(d->path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        /* moved (a `mv` of the caller's or root's: no one else may) rather than removed: the
         * trace is where it went, which its descriptor still names */
        char fdpath[64], where[4096];
        ssize_t n = -1;
        snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", d->fd);
        if (fstat(d->fd, &st) == 0 && st.st_nlink > 0)
            n = readlink(fdpath, where, sizeof where - 1);
        if (n > 0) {
            where[n] = '\0';
            snprintf(out, cap, "iotrace: the trace directory %s was moved to %s during the run: "
                     "the trace is there, without its run record", d->path, where);
        } else {
            snprintf(out, cap, "iotrace: the trace directory %s was removed during the run: "
                     "no trace was kept", d->path);
        }
        return 1;
    }
    int pids[4096], errs[4096], n = 0;
    FILE *f = fopen(faults, "re");
    if (f) {
        char line[512];
        int any = 0;
        while (fgets(line, sizeof line, f)) {
            any = 1;
            int pid, err;
            char c1, c2;
            /* "PID ERRNO ...": two runs of digits */
            if (sscanf(line, "%d%c%d%c", &pid, &c1, &err, &c2) >= 3 && c1 == ' ' &&
                isdigit((unsigned char)line[0]) && n < 4096)
                pids[n] = pid, errs[n++] = err;
        }
        fclose(f);
        if (!any)
            unlink(faults);
    }
    size_t o = (size_t)snprintf(out, cap, "iotrace: could not record everything in %s: ",
                                d->path);
    int what = 0;
    int order[4096];
    for (int i = 0; i < n; i++)
        order[i] = errs[i];
    qsort(order, (size_t)n, sizeof *order, cmp_int);
    for (int i = 0; i < n; i++) {
        if (i && order[i] == order[i - 1])
            continue;
        int count = 0; /* distinct pids with this errno */
        for (int j = 0; j < n; j++) {
            if (errs[j] != order[i])
                continue;
            int dup = 0;
            for (int k = 0; k < j && !dup; k++)
                dup = errs[k] == order[i] && pids[k] == pids[j];
            count += !dup;
        }
        o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%d process log%s (%s)",
                              what++ ? ", " : "", count, count > 1 ? "s" : "",
                              strerror(order[i]));
    }
    if (stracer_errno)
        o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%sthe stracer's log (%s)",
                              what++ ? ", " : "", strerror(stracer_errno));
    if (record_errno)
        o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%sthe run record (%s)",
                              what++ ? ", " : "", strerror(record_errno));
    if (!what)
        return 0;
    snprintf(out + o, o < cap ? cap - o : 0,
             " stopped early; the trace keeps what was written before");
    return 1;
}

/* the program's path; else the line and status */
/* The command died by signal SIG: iotrace dies by it too, as strace does, so that whoever
 * waits for iotrace (a shell, mpirun, Slurm) sees what it would have seen untraced: killed by
 * SIG, not an exit of 128+SIG.  No core of iotrace's own over the command's.  A signal that
 * does not end iotrace (SIGCHLD, SIGCONT...: the command cannot have died by those) leaves the
 * shell's 128+SIG. */
static int die_as(int returncode)
{
    if (returncode >= 0)
        return returncode;
    int sig = -returncode;
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    fflush(NULL);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(sig, &dfl, NULL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    return 128 + sig;
}

static int resolve(const char *word, char *exe, size_t cap)
{
    struct stat st;
    if (strchr(word, '/'))
        snprintf(exe, cap, "%s", word);
    else if (!iot_which(word, getenv("PATH"), exe, cap))
        exe[0] = '\0';
    if (!exe[0] || stat(exe, &st) != 0) {
        iot_say("iotrace: %s: command not found", word);
        return 127;
    }
    if (S_ISDIR(st.st_mode) || access(exe, X_OK) != 0) {
        iot_say("iotrace: %s: permission denied (not an executable file)", word);
        return 126;
    }
    return 0;
}

/* A character device the console may be: /dev/null or a terminal (the tty class in sysfs, or
 * a pseudo-terminal's slave: majors 136-143, which sysfs does not list).  Any other one is not
 * even opened: opening some acts (a watchdog starts, a tape rewinds) and writing to others
 * reaches memory, the kernel's log or a disk. */
static int console_device(dev_t rdev)
{
    if ((major(rdev) == 1 && minor(rdev) == 3) || (major(rdev) >= 136 && major(rdev) <= 143))
        return 1;
    char link[64], to[PATH_MAX];
    snprintf(link, sizeof link, "/sys/dev/char/%u:%u/subsystem", major(rdev), minor(rdev));
    ssize_t n = readlink(link, to, sizeof to - 1);
    if (n <= 0)
        return 0;
    to[n] = '\0';
    const char *base = strrchr(to, '/');
    return !strcmp(base ? base + 1 : to, "tty");
}

/* --console FILE: created (0600), or an existing file, terminal, FIFO with a reader of the
 * caller's or root's, or /dev/null.  A file or FIFO another user made there first is not written
 * (theirs to read: the run's paths and command lines) nor waited on (a FIFO no one reads: a
 * hang); a device is looked at before it is opened (O_PATH opens no driver).  fd, else -1 and
 * why. */
static int open_console(const char *path, char *why, size_t cap)
{
    struct stat st;
    int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISCHR(st.st_mode)) {
        char again[64];
        snprintf(again, sizeof again, "/proc/self/fd/%d", fd);
        int ok = console_device(st.st_rdev) && (st.st_uid == 0 || st.st_uid == geteuid());
        int dev = ok ? open(again, O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC) : -1;
        close(fd);
        if (!ok)
            snprintf(why, cap, "a character device that is neither a terminal of yours nor "
                     "/dev/null: refusing to write there");
        else if (dev < 0)
            snprintf(why, cap, "%s", strerror(errno));
        return dev;
    }
    if (fd >= 0)
        close(fd);
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY,
              0600);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(why, cap, "%s", errno == ENXIO ? "a FIFO no one reads" : strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (S_ISCHR(st.st_mode)) { /* put there since it was looked at */
        snprintf(why, cap, "changed while it was opened: refusing to write there");
        close(fd);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        snprintf(why, cap, "owned by uid %u, not by you (uid %u): refusing to write there",
                 st.st_uid, geteuid());
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_APPEND);
    return fd;
}

int iot_run(int argc, char **argv)
{
    struct opts o;
    take_handover();
    if (iot_rank()) /* the value as the launcher gave it: no longer than a tag */
        snprintf(iot_tag, sizeof iot_tag, "rank %.32s", iot_rank());
    if (parse(argc, argv, &o) != 0) {
        if (!handover.on)
            return -1;
        iot_say("iotrace: run: the Python command handed over options the launcher does not "
                "know: reinstall iotrace");
        return 2;
    }
    if (!o.ncommand) {
        iot_say("iotrace: run: no command given (iotrace run -- CMD [ARGS...])");
        return 2;
    }
    if (o.stack < 0 || o.stack > 64) {
        iot_say("iotrace: run: --stack must be between 0 and 64");
        return 2;
    }
    if (o.console) {
        char why[256];
        int fd = open_console(o.console, why, sizeof why);
        if (fd < 0) {
            iot_say("iotrace: run: --console %s: %s", o.console, why);
            return 2;
        }
        iot_console = fd;
    }
    const char *mpi = strcmp(o.mpi, "auto") ? o.mpi : iot_command_family(o.command, o.ncommand);
    char shim[PATH_MAX];
    if (!shim_path(mpi, shim, sizeof shim)) {
        if (!handover.on)
            return -1; /* not where this file expects the package: Python finds it */
        iot_say("iotrace: the preload shim is missing: reinstall iotrace (pip install .)");
        return 2;
    }
    /* the code this run loads as the caller: the shim, the stracer and the package */
    char pkg[PATH_MAX], why[PATH_MAX + 128];
    int known = handover.pkg ? realpath(handover.pkg, pkg) != NULL
                             : iot_package_dir(pkg, sizeof pkg);
    if (iot_install_check(known ? pkg : NULL, why, sizeof why) ||
        iot_install_exposed(shim, why, sizeof why)) {
        iot_say(IOT_INSTALL_REFUSED, why, geteuid());
        return 2;
    }
    char exe[PATH_MAX];
    int bad = resolve(o.command[0], exe, sizeof exe);
    if (bad)
        return bad;

    struct utsname u;
    uname(&u);
    struct iot_dir d;
    char msg[9000], faults[PATH_MAX];
    int traced = 1;
    int r = iot_trace_dir(&d, o.out, o.command[0], o.share, o.reuse, msg, sizeof msg);
    if (r == DIR_REFUSED) {
        iot_say("iotrace: %s", msg);
        return 2;
    }
    if (r == DIR_OK && (errno = iot_prepare_dir(&d, u.nodename, faults, sizeof faults))) {
        close(d.fd);
        r = DIR_OSERR;
    }
    if (r == DIR_OSERR) { /* the job matters more than its trace: run it as if untraced */
        iot_say("iotrace: cannot write a trace in %s (%s): the command runs untraced",
                o.out ? o.out : "the current directory", strerror(errno));
        traced = 0;
    }
    unsetenv("IOTRACE_GIVEN_SIGIGN");
    char **env = traced ? traced_env(shim, &d, o.stack, faults) : environ;

    uint64_t mono_ns, real_ns;
    clock_pair(clock_pair_mono, &mono_ns, &real_ns);
    int64_t real = (int64_t)real_ns, mono = (int64_t)mono_ns;
    /* iotrace waits for its children whatever it was given (the command gets it back); Ctrl-C
     * reaches the whole foreground group, the command included: iotrace waits as a shell does */
    struct sigaction dfl = {.sa_handler = SIG_DFL}, ign = {.sa_handler = SIG_IGN};
    struct sigaction fwd = {.sa_handler = forward};
    sigemptyset(&fwd.sa_mask);
    for (size_t i = 0; i < NFWD; i++) {
        sigaction(forwarded[i], NULL, &given[i]);
        if (given[i].sa_handler != SIG_IGN)
            sigaction(forwarded[i], &fwd, NULL);
    }
    sigaction(SIGINT, &ign, &given[NFWD]);
    sigaction(SIGCHLD, &dfl, &given[NFWD + 1]);
    struct sigaction tstp = {.sa_handler = suspend, .sa_flags = SA_NODEFER};
    sigemptyset(&tstp.sa_mask);
    if (!(strtoull(iot_given_sigign, NULL, 16) >> (SIGTSTP - 1) & 1))
        sigaction(SIGTSTP, &tstp, NULL); /* ignored as given: ignored by the command too */

    /* argv[0] as given, as a shell passes it: programs print it in their messages */
    char **cargv = calloc((size_t)o.ncommand + 1, sizeof *cargv);
    for (int i = 0; i < o.ncommand; i++)
        cargv[i] = o.command[i];
    struct iot_traced t = {0};
    if (o.stracer && traced) {
        /* what ends the processes the command leaves behind, as the stracer's line says */
        char ender[96] = "Ctrl-C";
        if (given[NFWD].sa_handler == SIG_IGN)
            snprintf(ender, sizeof ender, given[0].sa_handler != SIG_IGN
                     ? "SIGTERM to iotrace run (pid %d)" : "", (int)getpid());
        iot_stracer(exe, cargv, env, &d, shim, ender, &t);
        if (t.unavailable)
            iot_say("iotrace: no stracer: %s; tracing with the shim alone", t.why);
        sigaction(SIGINT, &ign, NULL); /* as while the command ran */
    }
    if (t.exec_errno) {
        iot_say("iotrace: %s: %s", o.command[0], strerror(t.exec_errno));
        close(d.fd);
        return 126;
    }
    int returncode;
    pid_t pid = t.app;
    if (o.stracer && traced && !t.unavailable) {
        returncode = t.returncode;
    } else {
        pid = iot_spawn(exe, cargv, env, NULL, 0, 0);
        if (pid < 0) {
            iot_say("iotrace: %s: %s", o.command[0], strerror((int)-pid));
            return 126;
        }
        int ws;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
            ;
        iot_app = 0;
        returncode = WIFSIGNALED(ws) ? -WTERMSIG(ws) : WEXITSTATUS(ws);
    }
    int status = returncode < 0 ? 128 - returncode : returncode;
    if (!traced)
        return die_as(returncode);

    struct stat st;
    int record_errno = 0;
    iot_trim_logs(d.fd, u.nodename);
    if (stat(d.path, &st) == 0 && S_ISDIR(st.st_mode))
        record_errno = run_record(&d, u.nodename, pid, &o, real, mono, returncode, status,
                                  faults);
    char line[9000];
    int fault = fault_line(&d, faults, t.log_errno, record_errno, line, sizeof line);
    close(d.fd);
    if (fault)
        iot_say("%s", line);
    if (stat(d.path, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (!fault) {
            if (t.has_end)
                snprintf(line, sizeof line, "%s", t.end);
            else if (o.stracer && !t.unavailable) /* the stracer died: its code for the line */
                iot_stracer_end_line(d.path, u.nodename, (int)pid, line, sizeof line);
            else
                iot_end_line(d.path, u.nodename, (int)pid, line, sizeof line);
            iot_say("iotrace: %s", line);
        }
        iot_say("iotrace: trace written to %s", d.path);
    }
    return die_as(returncode);
}
