/* A full run's stracer: run.c does everything before and after the command for both modes
 * (the trace directory, the environment, the signals, the run record, the closing lines); the
 * stracer (Python, stracer/launch.py main) only traces.  It gets the command, its environment
 * and the trace directory in a memfd (the spec), starts with the job's signals ignored (they
 * are the command's: run.c passes them on), and says what happens one line each on a pipe:
 * `started PID`, `unavailable REASON`, `execfail ERRNO`, `lost ERRNO`, `status RETURNCODE` (the
 * command exited: its status, which the stracer alone reaped, kept if the stracer dies later),
 * `exited RETURNCODE` (the command exited, traced processes it left behind still run: SIGUSR1
 * to the stracer ends them), `end LINE` (the completeness line, from its log and the shim logs), `done RETURNCODE`.
 * This process is a child subreaper while the stracer runs: if the stracer dies,
 * PTRACE_O_EXITKILL kills the command, which is reparented here to be reaped.  Not after: a
 * command started here when the stracer was unavailable has its orphans reparented as untraced
 * (to init or the caller's subreaper), not to iotrace. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"

extern int iot_console;
extern char **environ;

/* spec_err: the first write into the spec that failed (errno); the stracer is then not started */
static int spec_err;

static void put(int fd, const char *s)
{
    size_t n = strlen(s) + 1; /* with its NUL */
    while (n && !spec_err) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) {
            spec_err = w < 0 ? errno : EIO;
            return;
        }
        s += w, n -= (size_t)w;
    }
}

static void put_int(int fd, long v)
{
    char num[32];
    snprintf(num, sizeof num, "%ld", v);
    put(fd, num);
}

/* the stracer's own environment: ours (the user's) with Python's variables as pyenv.c keeps
 * them (the command gets its environment whole, from the spec); what iotrace was given to
 * ignore, which of descriptors 0-2 closed (the command gets them so) and the tag of its lines
 * (iot_tag) */
static char **stracer_env(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 8, sizeof *env), *given = malloc(64), *closed = malloc(64);
    char *tag = malloc(96);
    size_t k = iot_python_env(env, 0);
    snprintf(given, 64, "IOTRACE_GIVEN_SIGIGN=%s", iot_given_sigign);
    env[k++] = given;
    snprintf(closed, 64, "IOTRACE_GIVEN_CLOSED=%x", iot_std_closed);
    env[k++] = closed;
    if (iot_tag[0]) {
        snprintf(tag, 96, "IOTRACE_GIVEN_TAG=%s", iot_tag);
        env[k++] = tag;
    }
    env[k] = NULL;
    return env;
}

/* one line of the stracer's pipe into t */
static void line(char *l, struct iot_traced *t, pid_t spid)
{
    char *rest = strchr(l, ' ');
    if (rest)
        *rest++ = '\0';
    else
        rest = l + strlen(l);
    if (!strcmp(l, "started")) {
        t->app = atoi(rest);
        iot_app = t->app;
    } else if (!strcmp(l, "unavailable")) {
        t->unavailable = 1;
        snprintf(t->why, sizeof t->why, "%s", rest);
    } else if (!strcmp(l, "execfail")) {
        t->exec_errno = atoi(rest);
    } else if (!strcmp(l, "lost")) {
        t->log_errno = atoi(rest);
    } else if (!strcmp(l, "status")) {
        t->root_done = 1, t->root_rc = atoi(rest);
    } else if (!strcmp(l, "exited")) {
        t->exited = 1, t->exited_rc = atoi(rest);
        iot_end_rest(spid);
    } else if (!strcmp(l, "end")) {
        t->has_end = 1;
        snprintf(t->end, sizeof t->end, "%s", rest);
    } else if (!strcmp(l, "done")) {
        t->done = 1, t->returncode = atoi(rest);
    }
}

static pid_t wait_for(pid_t pid, int *ws)
{
    pid_t r;
    while ((r = waitpid(pid, ws, 0)) < 0 && errno == EINTR)
        ;
    return r;
}

/* 1 if the command line (NUL-separated, n bytes) of a process holds the arguments a, b in a row */
static int runs(const char *cmd, size_t n, const char *a, const char *b)
{
    for (size_t at = 0; at < n;) {
        size_t len = strnlen(cmd + at, n - at), next = at + len + 1;
        if (!strcmp(cmd + at, a) && next < n && !strcmp(cmd + next, b))
            return 1;
        at = next;
    }
    return 0;
}

/* The stracer died before it said `started`: the child it forked for the command, its seccomp
 * filter in place, stops itself before its execve and stays stopped for good (it execs only
 * once seized and let go, and a seized one dies with its stracer: PTRACE_O_EXITKILL) -- its
 * command line still the stracer's (path spec).  Reparented here: ended and reaped, as the
 * command never ran; the command a seized child became is left to the caller. */
static void end_unstarted(const char *path, const char *spec)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return;
    for (struct dirent *de; (de = readdir(proc));) {
        pid_t pid = (pid_t)atoi(de->d_name);
        char name[64], buf[4096];
        if (pid <= 0)
            continue;
        snprintf(name, sizeof name, "/proc/%d/stat", (int)pid);
        int fd = open(name, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0)
            close(fd);
        char *end = n > 0 ? (buf[n] = '\0', strrchr(buf, ')')) : NULL;
        int ppid = 0;
        if (!end || sscanf(end + 1, " %*c %d", &ppid) != 1 || ppid != getpid())
            continue; /* not ours: our children cannot go (nor their pids be reused) unreaped */
        snprintf(name, sizeof name, "/proc/%d/cmdline", (int)pid);
        fd = open(name, O_RDONLY | O_CLOEXEC);
        n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
        if (fd >= 0)
            close(fd);
        if (n > 0 && runs(buf, (size_t)n, path, spec)) {
            kill(pid, SIGKILL);
            wait_for(pid, NULL);
        }
    }
    closedir(proc);
}

void iot_stracer(const char *exe, char **argv, char **env, struct iot_dir *d, const char *shim,
                 const char *ender, struct iot_traced *t)
{
    memset(t, 0, sizeof *t);
    char path[4200];
    snprintf(path, sizeof path, "%s/iotrace-stracer", iot_self_dir);
    int spec = memfd_create("iotrace-stracer", MFD_CLOEXEC), rep[2];
    if (spec < 0 || pipe2(rep, O_CLOEXEC) != 0) {
        t->unavailable = 1;
        snprintf(t->why, sizeof t->why, "cannot start it (%s)", strerror(errno));
        if (spec >= 0)
            close(spec);
        return;
    }
    spec_err = 0;
    put_int(spec, rep[1]);
    put_int(spec, d->fd);
    put(spec, d->path);
    put_int(spec, d->share);
    put_int(spec, iot_console);
    put(spec, shim);
    put(spec, ender);
    put(spec, exe);
    int argc = 0;
    while (argv[argc])
        argc++;
    put_int(spec, argc);
    for (int i = 0; i < argc; i++)
        put(spec, argv[i]);
    for (char **e = env; *e; e++)
        put(spec, *e);
    if (spec_err) {
        /* a memfd counts against RLIMIT_FSIZE (`ulimit -f 1`): a stracer given part of the
         * environment would start the command with part of it */
        t->unavailable = 1;
        snprintf(t->why, sizeof t->why, "the command and its environment do not fit in the "
                 "spec it is given (%s: the file size limit iotrace was given?)",
                 strerror(spec_err));
        close(spec);
        close(rep[0]);
        close(rep[1]);
        return;
    }
    lseek(spec, 0, SEEK_SET);

    char specfd[16];
    snprintf(specfd, sizeof specfd, "%d", spec);
    char *sargv[] = {path, specfd, NULL};
    int keep[] = {spec, rep[1], d->fd, iot_console};
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    pid_t spid = iot_spawn(path, sargv, stracer_env(), keep, 4, 1);
    close(spec);
    close(rep[1]);
    if (spid < 0) {
        prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
        close(rep[0]);
        t->unavailable = 1;
        snprintf(t->why, sizeof t->why, "%s: %s", path, strerror((int)-spid));
        return;
    }
    char buf[16384];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(rep[0], buf + have, sizeof buf - 1 - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *nl, *at = buf;
        while ((nl = strchr(at, '\n'))) {
            *nl = '\0';
            line(at, t, spid);
            at = nl + 1;
        }
        have -= (size_t)(at - buf);
        memmove(buf, at, have);
        if (have == sizeof buf - 1) /* a line longer than any the stracer writes */
            have = 0;
    }
    close(rep[0]);
    int ws = 0;
    wait_for(spid, &ws);
    iot_end_rest(0);
    if (!t->done && !t->unavailable && !t->app)
        end_unstarted(path, specfd);
    if (!t->done && !t->unavailable) {
        char how[64];
        if (WIFSIGNALED(ws))
            snprintf(how, sizeof how, "was killed by SIG%s", sigabbrev_np(WTERMSIG(ws)));
        else
            snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(ws));
        /* it ended before it started the command (an import failed: a broken install) and no
         * process of it is left (its children would be ours now): nothing was traced yet, the
         * command runs with the shim alone, as when the stracer is unavailable */
        if (!t->app && !t->exited && !t->exec_errno && waitpid(-1, NULL, WNOHANG) < 0 &&
            errno == ECHILD) {
            t->unavailable = 1;
            snprintf(t->why, sizeof t->why, "the stracer (pid %d) %s before it started the "
                     "command", (int)spid, how);
            prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
            return;
        }
        if (t->root_done && !t->exited)
            iot_say("iotrace: ERROR: the stracer (pid %d) %s after the command exited. The "
                    "trace holds everything recorded up to then.", (int)spid, how);
        else
            iot_say("iotrace: ERROR: the stracer (pid %d) %s; %s killed with it "
                    "(PTRACE_O_EXITKILL) rather than let its I/O fail unseen. The trace holds "
                    "everything recorded up to then.", (int)spid, how,
                    t->exited ? "the processes the command left behind were"
                              : "the traced command was");
        if (t->exited) {
            t->returncode = t->exited_rc;
        } else if (t->root_done) { /* reaped by the stracer: its status as it said it */
            t->returncode = t->root_rc;
        } else if (t->app > 0) {
            int as;
            if (wait_for(t->app, &as) < 0) /* already reaped: a kill */
                t->returncode = -SIGKILL;
            else
                t->returncode = WIFSIGNALED(as) ? -WTERMSIG(as) : WEXITSTATUS(as);
        } else {
            t->returncode = -SIGKILL;
        }
    }
    iot_app = 0;
    while (waitpid(-1, NULL, WNOHANG) > 0) /* orphans of the run, reparented here */
        ;
    prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
}

/* The completeness line when the stracer could not say it (it died): the stracer's code for it
 * (`iotrace-stracer --end-line`, reading the log it left), else the shim logs' alone. */
void iot_stracer_end_line(const char *dir, const char *host, int root, char *out, size_t cap)
{
    char path[4200], num[16];
    snprintf(path, sizeof path, "%s/iotrace-stracer", iot_self_dir);
    snprintf(num, sizeof num, "%d", root);
    char *argv[] = {path, "--end-line", (char *)dir, (char *)host, num, NULL};
    int p[2];
    out[0] = '\0';
    if (pipe2(p, O_CLOEXEC) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            dup2(p[1], 1);
            execve(path, argv, stracer_env());
            _exit(127);
        }
        close(p[1]);
        size_t have = 0;
        ssize_t r;
        while (have < cap - 1 && ((r = read(p[0], out + have, cap - 1 - have)) > 0 ||
                                  (r < 0 && errno == EINTR)))
            have += r > 0 ? (size_t)r : 0;
        out[have] = '\0';
        close(p[0]);
        int ws = 0;
        if (pid > 0)
            wait_for(pid, &ws);
        if (pid < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
            out[0] = '\0';
        char *nl = strchr(out, '\n');
        if (nl)
            *nl = '\0';
    }
    if (!out[0])
        iot_end_line(dir, host, root, out, cap);
}
