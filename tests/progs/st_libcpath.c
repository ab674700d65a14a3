/* Libc-internal I/O with paths and descriptors, several times at each call site (the C loop
 * records the repeats: tests/test_stracer.py test_libc_internal_paths_in_the_c_loop): NSS
 * (sockets to nscd, /etc/passwd: open, fstat, lseek, read, close), the time zone's stat,
 * sysconf's /sys file, and scandir/scandirat on relative paths to normalise ("..", ".", a
 * directory descriptor, a name that is not UTF-8, one that does not exist).
 *     st_libcpath N */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int scan(int dirfd, const char *path)
{
    struct dirent **list;
    int n = dirfd < 0 ? scandir(path, &list, NULL, alphasort)
                      : scandirat(dirfd, path, &list, NULL, alphasort);
    for (int i = 0; i < n; i++)
        free(list[i]);
    if (n >= 0)
        free(list);
    return n;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3;
    if (mkdir("sub", 0755) || mkdir("sub/inner", 0755) || mkdir("sub/\xff\xfe", 0755))
        return 1;
    int dirfd = open("sub", O_RDONLY | O_DIRECTORY);
    time_t t = time(NULL);
    long found = 0;
    for (int i = 0; i < n; i++) {
        found += getpwuid(0) != NULL;
        found += localtime(&t) != NULL;
        found += sysconf(_SC_NPROCESSORS_ONLN) > 0;
        found += scan(-1, "sub/../sub/./inner/") == 2;
        found += scan(-1, "../work//sub/\xff\xfe") == 2;
        found += scan(dirfd, "inner/.") == 2;
        found += scan(-1, "missing/..") < 0;
    }
    close(dirfd);
    rmdir("sub/inner");
    rmdir("sub/\xff\xfe");
    rmdir("sub");
    printf("%ld\n", found);
    return found == 7L * n ? 0 : 1;
}
