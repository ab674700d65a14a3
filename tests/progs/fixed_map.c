/* mmap(ADDR, 1 MiB, MAP_FIXED_NOREPLACE) at an address the app chose (argv[1], hex), then
 * stdio through a file: "mapped" (the address given, the memory usable) or why not. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    void *want = (void *)strtoull(argv[1], NULL, 16);
    char *m = mmap(want, 1 << 20, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == MAP_FAILED) {
        printf("failed: %s\n", strerror(errno));
        return 1;
    }
    memset(m, 'x', 1 << 20);
    FILE *f = fopen("out", "w+");
    if (!f || fprintf(f, "%.*s", 1000, m) != 1000 || fflush(f) != 0)
        return 3;
    rewind(f);
    char buf[1001] = "";
    size_t n = fread(buf, 1, 1000, f);
    printf("%s %zu\n", m == want ? "mapped" : "elsewhere", n);
    return fclose(f) != 0;
}
