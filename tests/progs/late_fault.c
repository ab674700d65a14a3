/* Preloaded into `iotrace run` itself (tests/test_faults.py): a shim's fault line that comes
 * just as the run ends, between the launcher's look at the empty fault file and its rename of
 * that file into the run record (a process the command left behind, whose log write failed).
 * Appends "PID 28 log" to the fault file, then renames as asked. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
              unsigned int flags)
{
    const char *base = strrchr(oldpath, '/');
    base = base ? base + 1 : oldpath;
    if (!strncmp(base, "iotrace-faults", 14)) {
        int fd = openat(olddirfd, oldpath, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd >= 0) {
            char line[64];
            int n = snprintf(line, sizeof line, "%d 28 log\n", (int)getpid());
            if (write(fd, line, (size_t)n) != n)
                n = -1;
            close(fd);
        }
    }
    int (*real)(int, const char *, int, const char *, unsigned) =
        (int (*)(int, const char *, int, const char *, unsigned))dlsym(RTLD_NEXT, "renameat2");
    return real(olddirfd, oldpath, newdirfd, newpath, flags);
}
