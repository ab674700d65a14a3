/* cost_bench.py's dlopen case: what ld.so's syscalls inside dlopen cost under the stracer (they
 * carry no cookie: openat, read, fstat, close of each library stop, covered, and are resumed
 * by the C loop; its mmaps pass).  dlopen + dlclose of LIB, N times (dlclose unloads it, so each
 * dlopen loads it again).  Usage: dlloop LIB N */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    for (int i = 0, n = atoi(argv[2]); i < n; i++) {
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "dlloop: %s\n", dlerror());
            return 1;
        }
        dlclose(h);
    }
    return 0;
}
