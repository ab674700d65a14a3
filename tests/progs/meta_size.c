/* A program that uses what stat returns: sizes of its arguments, or errno, printed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0) {
            printf("%s %lld %o\n", argv[i], (long long)st.st_size, st.st_mode & 07777);
        } else {
            printf("%s: %s\n", argv[i], strerror(errno));
            bad++;
        }
    }
    return bad;
}
