/* errno as the app set it survives calls that succeed (they leave it alone untraced), from the
 * very first traced call on: the shim's own work (stack capture, first-use set-up) must not
 * show through.  Prints the errno seen after each call. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEEP(call)                \
    do {                          \
        errno = 1234;             \
        (void)(call);             \
        seen[n++] = errno;        \
    } while (0)

int main(void)
{
    int seen[16], n = 0;
    struct stat st;
    KEEP(stat(".", &st)); /* the first traced call of the process */
    KEEP(lstat(".", &st));
    KEEP(access(".", F_OK));
    DIR *d;
    KEEP(d = opendir("."));
    KEEP(readdir(d));
    KEEP(closedir(d));
    KEEP(mkdir("x", 0700));
    KEEP(rmdir("x"));
    KEEP(chdir("."));
    void *a;
    KEEP(a = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    KEEP(munmap(a, 4096));
    for (int i = 0; i < n; i++)
        printf("%d%c", seen[i], i + 1 < n ? ' ' : '\n');
    return 0;
}
