/* Completeness test: a process whose end counters the shim cannot read.  argv[1] "ids": drops to
 * uid/gid 65534 (nobody) and writes a line (its /proc/self is root's from then on); "nofd": opens
 * /dev/null up to EMFILE and writes how many (no descriptor left at its exit). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <grp.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char line[64];
    int n = 0;
    if (argc > 1 && !strcmp(argv[1], "ids")) {
        if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
            setresuid(65534, 65534, 65534))
            return 2;
        n = snprintf(line, sizeof line, "dropped %d\n", (int)geteuid());
    } else {
        int k = 0;
        while (open("/dev/null", O_RDONLY) >= 0)
            k++;
        n = snprintf(line, sizeof line, "opened %d %s\n", k, strerror(errno));
    }
    return write(1, line, (size_t)n) == n ? 0 : 3;
}
