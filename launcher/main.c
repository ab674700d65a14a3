/* The `iotrace` command.  `iotrace run` is done here, in C (run.c): a Python interpreter and
 * the modules `run` needs cost ~55 ms of CPU before anything is done, against a target of +20 ms
 * per traced run (issue 19); a full run starts the stracer (Python, stracer.c) only to trace.
 * Every other command, and any option this file does not know, go to the Python command
 * installed beside it (iotrace-py).  The Python processes started here learn what iotrace was
 * given to ignore from IOTRACE_GIVEN_SIGIGN (a hex signal set, as /proc's SigIgn): Python sets
 * SIGPIPE and SIGXFSZ to SIG_IGN before any of its code runs, so it could not know, and the
 * stracer starts with the job's signals ignored; the traced command must start with what
 * iotrace was given (run.py SignalState takes the variable out of the environment). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launch.h"

extern char **environ;

char iot_self_dir[4096];
char iot_given_sigign[32];
int iot_console = 2;
int iot_std_closed;

/* Descriptors 0-2 closed when iotrace started (cron, a daemon's child): /dev/null holds them
 * meanwhile, else the descriptors iotrace opens would land there -- the stracer's pipe as its
 * own stdin, the trace directory as the command's -- and the command gets them closed again
 * (iot_std_release, the stracer from IOTRACE_GIVEN_CLOSED). */
static void hold_std(void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int got = open("/dev/null", O_RDWR);
            if (got == fd)
                iot_std_closed |= 1 << fd;
            else if (got >= 0)
                close(got);
        }
}

/* `iotrace run` inside a batch script that preloads the shim itself (`iotrace env`, docs/batch.md):
 * this process, and through it the stracer, would run traced into the batch job's directory,
 * and the shim's exec wrapper here would put the job's IOTRACE_OUT back over the run's, sending
 * the command's logs there too.  Exec'd again without the shim (a raw execve: past that
 * wrapper); the command gets it back first in LD_PRELOAD (run.c traced_env). */
static void unpreload_self(char **argv)
{
    const char *pre = getenv("LD_PRELOAD");
    if (!pre || !strstr(pre, "libiotrace.so") || strlen(pre) >= 8192)
        return;
    char rest[8192], copy[8192];
    size_t k = 0;
    strcpy(copy, pre);
    for (char *save, *e = strtok_r(copy, ": ", &save); e; e = strtok_r(NULL, ": ", &save)) {
        const char *base = strrchr(e, '/');
        if (!strcmp(base ? base + 1 : e, "libiotrace.so"))
            continue;
        k += (size_t)snprintf(rest + k, sizeof rest - k, "%s%s", k ? ":" : "", e);
    }
    if (k)
        setenv("LD_PRELOAD", rest, 1);
    else
        unsetenv("LD_PRELOAD");
    unsetenv("IOTRACE_OUT"); /* the batch job's, set by the shim here: not this run's */
    unsetenv("IOTRACE_JOB");
    syscall(SYS_execve, "/proc/self/exe", argv, environ);
}

void iot_std_release(void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (iot_std_closed & 1 << fd)
            close(fd);
}

char iot_tag[64];

void iot_say(const char *fmt, ...)
{
    char line[16384], body[sizeof line];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (iot_tag[0] && !strncmp(body, "iotrace: ", 9))
        n = snprintf(line, sizeof line - 1, "iotrace: %s: %s", iot_tag, body + 9);
    else
        memcpy(line, body, (size_t)n + 1 < sizeof line ? (size_t)n + 1 : sizeof line);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    for (int off = 0; off < n;) { /* one write: a line of ours never inside one of the app's */
        ssize_t w = write(iot_console, line + off, (size_t)(n - off));
        if (w <= 0)
            break; /* a closed or full console never costs the command anything */
        off += (int)w;
    }
}

#define PYTHON_MIN_FDS 5

int iot_exec_python(char **argv)
{
    char py[4200], pkg[4096], why[8192];
    /* the Python command runs the package as the caller too (report, attach...), and a shim
     * named by IOTRACE_SHIM is one it preloads (`env`'s LD_PRELOAD) or injects (`attach`), as
     * `run` checks it (run.c) */
    const char *shim = getenv("IOTRACE_SHIM");
    if (iot_install_check(iot_package_dir(pkg, sizeof pkg) ? pkg : NULL, why, sizeof why) ||
        (shim && *shim && iot_install_exposed(shim, why, sizeof why))) {
        iot_say(IOT_INSTALL_REFUSED, why, geteuid());
        return 2;
    }
    /* the interpreter cannot start with fewer descriptors (a traceback of its site module) */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < PYTHON_MIN_FDS) {
        iot_say("iotrace: the open-file limit (ulimit -n %llu) is below the %d iotrace's Python "
                "commands need", (unsigned long long)nofile.rlim_cur, PYTHON_MIN_FDS);
        return 2;
    }
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(2 * n + 8, sizeof *env); /* each PYTHON* entry may give two */
    if (!env) {
        fprintf(stderr, "iotrace: %s\n", strerror(errno));
        return 127;
    }
    size_t k = iot_python_env(env, 1);
    char sigign[64];
    snprintf(sigign, sizeof sigign, "IOTRACE_GIVEN_SIGIGN=%s", iot_given_sigign);
    env[k++] = sigign;
    env[k] = NULL;
    iot_std_release();
    snprintf(py, sizeof py, "%s/iotrace-py", iot_self_dir);
    execve(py, argv, env);
    fprintf(stderr, "iotrace: %s: %s\n", py, strerror(errno));
    return 127;
}

int main(int argc, char **argv)
{
    /* the console script beside this file, wherever pip put both (venv, --user, system) */
    ssize_t n = readlink("/proc/self/exe", iot_self_dir, sizeof iot_self_dir - 1);
    if (n <= 0) {
        fprintf(stderr, "iotrace: cannot find where iotrace is installed: %s\n", strerror(errno));
        return 127;
    }
    iot_self_dir[n] = '\0';
    *strrchr(iot_self_dir, '/') = '\0';
    unsigned long long ign = 0; /* as given, before anything here changes one */
    for (int sig = 1; sig <= 64; sig++) {
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            ign |= 1ull << (sig - 1);
    }
    snprintf(iot_given_sigign, sizeof iot_given_sigign, "%llx", ign);
    if (argc > 1 && !strcmp(argv[1], "_trace-dir"))
        return iot_trace_dir_command(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "_way"))
        return iot_way_command(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "_private-group"))
        return iot_private_group_command();
    if (argc > 1 && !strcmp(argv[1], "run")) {
        unpreload_self(argv);
        hold_std();
        /* iotrace's own files (marker, run record, fault file) under a small RLIMIT_FSIZE: a
         * write that fails, said once, never SIGXFSZ here; the command gets it as given */
        signal(SIGXFSZ, SIG_IGN);
        int status = iot_run(argc - 1, argv + 1);
        if (status >= 0)
            return status;
    }
    return iot_exec_python(argv);
}
