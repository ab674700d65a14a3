/* The `iotrace` command.  `run --no-stracer` is done here, in C (run.c): a Python interpreter
 * and the modules `run` needs cost ~55 ms of CPU before anything is done, against a target of
 * +20 ms per traced run (issue 19).  Every other command, full tracing, and any option this
 * file does not know go to the Python command installed beside it (iotrace-py), after noting
 * what iotrace was given for SIGPIPE and SIGXFSZ: Python sets both to SIG_IGN before any of its
 * code runs, so it could not know; the traced command must start with what iotrace was given
 * (run.py SignalState).  They go in IOTRACE_GIVEN_SIGIGN (a hex signal set, as /proc's SigIgn;
 * run.py takes it out of the environment). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launch.h"

char iot_self_dir[4096];
int iot_console = 2;

void iot_say(const char *fmt, ...)
{
    char line[16384];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
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

int iot_exec_python(char **argv)
{
    unsigned long long ign = 0;
    const int sigs[] = {SIGPIPE, SIGXFSZ};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        if (sigaction(sigs[i], NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            ign |= 1ull << (sigs[i] - 1);
    }
    char val[32], py[4200];
    snprintf(val, sizeof val, "%llx", ign);
    setenv("IOTRACE_GIVEN_SIGIGN", val, 1);
    snprintf(py, sizeof py, "%s/iotrace-py", iot_self_dir);
    execv(py, argv);
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
    if (argc > 1 && !strcmp(argv[1], "run")) {
        int status = iot_run(argc - 1, argv + 1);
        if (status >= 0)
            return status;
    }
    return iot_exec_python(argv);
}
