/* Under RLIMIT_AS: "size" prints the program's address space at main (KiB, /proc/self/status
 * VmSize); a number N mallocs N MiB (its own mapping: RLIMIT_AS counts it untouched) and
 * prints whether that worked; "set KIB N" first sets RLIMIT_AS to KIB itself. */
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "size")) {
        char line[256];
        FILE *f = fopen("/proc/self/status", "r");
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, "VmSize:", 7))
                printf("%ld\n", atol(line + 7));
        return 0;
    }
    if (argc > 3 && !strcmp(argv[1], "set")) {
        struct rlimit rl = {(rlim_t)atol(argv[2]) << 10, (rlim_t)atol(argv[2]) << 10};
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            return 2;
        argv += 2;
    }
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 1;
    char *p = malloc(mib << 20);
    if (p)
        p[0] = 1;
    printf("malloc %zu MiB %s\n", mib, p ? "ok" : "failed");
    return p == NULL;
}
