/* dlopen a library (argv[1]) and close it (test_cost.py: the loader's mappings of it do not
 * stop under the stracer). */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    void *h = dlopen(argc > 1 ? argv[1] : "libm.so.6", RTLD_NOW);
    if (!h)
        return 1;
    puts("loaded");
    return dlclose(h) != 0;
}
