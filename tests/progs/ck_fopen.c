/* fopen and fclose as the app sees them, for the stracer's way of doing them without a stop
 * (wrap_stdio.c: fopen_raw, fclose with NOCLOSE): results, errno, positions, flags. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void say(const char *what, long v)
{
    printf("%-22s %ld %s\n", what, v, v < 0 || v == EOF ? strerrorname_np(errno) : "-");
    errno = 0;
}

int main(void)
{
    FILE *f = fopen("exists", "w");
    fputs("0123456789", f);
    say("fclose w", fclose(f));

    f = fopen("exists", "a");
    say("ftell a", ftell(f));
    fputs("abc", f);
    say("ftell a after", ftell(f));
    say("fclose a", fclose(f));

    f = fopen("exists", "a+");
    say("ftell a+", ftell(f));
    char buf[32] = {0};
    say("fread a+", (long)fread(buf, 1, 4, f));
    say("fclose a+", fclose(f));

    f = fopen("exists", "rb+");
    say("fread rb+", (long)fread(buf, 1, 5, f));
    fseek(f, 0, SEEK_CUR);
    fputs("XY", f);
    say("fclose rb+", fclose(f));

    say("fopen wx new", fopen("new", "wx") ? (fclose(fopen("new", "r")), 1) : -1);
    say("fopen wx again", fopen("new", "wx") ? 1 : -1);
    say("fopen missing", fopen("missing", "r") ? 1 : -1);
    say("fopen bad mode", fopen("exists", "z") ? 1 : -1);
    say("fopen dir w", fopen(".", "w") ? 1 : -1);

    f = fopen("exists", "re");
    say("cloexec re", fcntl(fileno(f), F_GETFD) & FD_CLOEXEC);
    fclose(f);
    f = fopen("exists", "r");
    say("cloexec r", fcntl(fileno(f), F_GETFD) & FD_CLOEXEC);
    int fd = fileno(f);
    close(fd);
    say("fclose closed fd", fclose(f));

    f = fopen("/dev/full", "w");
    fputs("x", f);
    say("fclose full", fclose(f));

    f = fopen("exists", "r");
    say("fgets", fgets(buf, sizeof buf, f) ? (long)strlen(buf) : -1);
    printf("content %s\n", buf);
    say("fclose r", fclose(f));
    f = fopen("exists", "r");
    say("fd reused", fileno(f));
    fclose(f);
    return 0;
}
