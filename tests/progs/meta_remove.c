/* remove() on a file, an empty directory, a missing name and a directory that is not empty
 * (test_meta.py): glibc unlinks, and removes a directory as rmdir when unlinking says EISDIR. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHOW(name, call)                                                \
    do {                                                                \
        errno = 0;                                                      \
        int r_ = (call);                                                \
        printf("%s=%d errno=%d\n", name, r_, r_ < 0 ? errno : 0);       \
    } while (0)

int main(void)
{
    close(open("f", O_WRONLY | O_CREAT | O_TRUNC, 0600));
    mkdir("d", 0700);
    mkdir("full", 0700);
    close(open("full/x", O_WRONLY | O_CREAT | O_TRUNC, 0600));
    SHOW("file", remove("f"));
    SHOW("dir", remove("d"));
    SHOW("missing", remove("f"));   /* ENOENT */
    SHOW("notempty", remove("full")); /* ENOTEMPTY */
    return 0;
}
