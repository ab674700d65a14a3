/* The `iotrace` command: what it was given for SIGPIPE and SIGXFSZ, then the Python command.
 *
 * Python sets SIGPIPE and SIGXFSZ to SIG_IGN before any of its code runs, so `iotrace run`
 * alone cannot know whether it was given them ignored (`trap '' PIPE`, nohup-like launchers);
 * the traced command must start with what iotrace was given (src/iotrace/run.py, SignalState).
 * This launcher reads the two dispositions first and passes them in IOTRACE_GIVEN_SIGIGN (a
 * hex signal set, as /proc's SigIgn; run.py takes it out of the environment), then execs the
 * Python console script installed beside it (iotrace-py).  Nothing else: every other signal,
 * the mask and the limits pass through execve as they are. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    (void)argc;
    unsigned long long ign = 0;
    const int sigs[] = {SIGPIPE, SIGXFSZ};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        if (sigaction(sigs[i], NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            ign |= 1ull << (sigs[i] - 1);
    }
    char val[32];
    snprintf(val, sizeof val, "%llx", ign);
    setenv("IOTRACE_GIVEN_SIGIGN", val, 1);

    /* the console script beside this file, wherever pip put both (venv, --user, system) */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 16);
    if (n <= 0) {
        fprintf(stderr, "iotrace: cannot find where iotrace is installed: %s\n", strerror(errno));
        return 127;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    strcpy(slash + 1, "iotrace-py");
    execv(self, argv);
    fprintf(stderr, "iotrace: %s: %s\n", self, strerror(errno));
    return 127;
}
