/* Calls that return a FILE * or DIR * (tests/test_show_strace.py): `iotrace show` prints the
 * stream's descriptor as strace -y prints the open inside, `= 3</path>`, and NULL for a failure;
 * fcntl's results strace names. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void)
{
    FILE *w = fopen("out.txt", "w");
    if (!w || fopen("missing/none.txt", "r") || fputs("hi\n", w) < 0 || fclose(w))
        return 1;
    int fd = open("out.txt", O_RDONLY);
    FILE *r = fd < 0 ? NULL : fdopen(fd, "r");
    if (!r || !(r = freopen("out.txt", "a", r)) || fclose(r))
        return 1;
    if (mkdir("d", 0755))
        return 1;
    DIR *d = opendir("d");
    int dfd = open("d", O_RDONLY | O_DIRECTORY);
    DIR *e = dfd < 0 ? NULL : fdopendir(dfd);
    if (!d || !e || opendir("missing") || closedir(d) || closedir(e))
        return 1;
    FILE *t = tmpfile();
    FILE *p = popen("true", "r");
    if (!t || !p || fclose(t) || pclose(p))
        return 1;
    /* fcntl's results that strace names: F_GETFL's open flags, F_GETFD's FD_CLOEXEC */
    int a = open("out.txt", O_RDWR | O_APPEND);
    if (a < 0 || fcntl(a, F_GETFL) < 0 || fcntl(a, F_GETFD) || fcntl(a, F_SETFD, FD_CLOEXEC) ||
        fcntl(a, F_GETFD) != FD_CLOEXEC || fcntl(-1, F_GETFL) != -1 || close(a))
        return 1;
    return 0;
}
