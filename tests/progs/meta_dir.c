/* Directory streams: opendir/readdir/closedir over a directory of argv[1] files, fdopendir, the
 * stream's descriptor used for fstat and openat, and readdir's errno idiom (errno = 0 before the
 * call tells the end from an error; at the end errno must be left as the app set it). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 5;
    char name[64];
    mkdir("dd", 0755);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "dd/f%d", i);
        close(open(name, O_WRONLY | O_CREAT, 0644));
    }

    DIR *d = opendir("dd");
    int entries = 0;
    struct dirent *e;
    for (;;) {
        errno = 0;
        if (!(e = readdir(d)))
            break;
        entries++;
    }
    printf("entries=%d errno_at_end=%d\n", entries, errno);
    errno = 42; /* readdir at the end leaves errno alone */
    e = readdir(d);
    printf("again=%d errno=%d\n", e != NULL, errno);
    struct stat st;
    int sr = fstat(dirfd(d), &st);
    int fd = openat(dirfd(d), "f0", O_RDONLY);
    printf("fstat=%d isdir=%d openat=%d\n", sr, S_ISDIR(st.st_mode), fd >= 0);
    close(fd);
    printf("closedir=%d\n", closedir(d));

    DIR *m = opendir("no-such-dir");
    printf("opendir-missing=%d errno=%d\n", m != NULL, errno);

    int dfd = open("dd", O_RDONLY | O_DIRECTORY);
    DIR *d2 = fdopendir(dfd);
    int entries2 = 0;
    while (readdir(d2))
        entries2++;
    printf("entries2=%d\n", entries2);
    closedir(d2);

    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "dd/f%d", i);
        unlink(name);
    }
    rmdir("dd");
    return 0;
}
