/* One libc function that does I/O inside glibc, N times (bench/cost_bench.py --cases libc):
 * the stracer's summary of a run with N = 0 and one with N > 0 gives the stops left per call.
 *     libcloop FUNCTION N */
#define _GNU_SOURCE
#include <dirent.h>
#include <grp.h>
#include <libintl.h>
#include <limits.h>
#include <locale.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int call(const char *fn)
{
    char buf[PATH_MAX];
    time_t t = time(NULL);
    struct tm tm;
    if (!strcmp(fn, "getpwuid"))
        return getpwuid(0) != NULL;
    if (!strcmp(fn, "getgrgid"))
        return getgrgid(0) != NULL;
    if (!strcmp(fn, "getgrouplist")) {
        gid_t g[64];
        int n = 64;
        return getgrouplist("root", 0, g, &n) >= 0;
    }
    if (!strcmp(fn, "getaddrinfo")) {
        struct addrinfo *ai;
        if (getaddrinfo("localhost", NULL, NULL, &ai))
            return 0;
        freeaddrinfo(ai);
        return 1;
    }
    if (!strcmp(fn, "gethostbyname"))
        return gethostbyname("localhost") != NULL;
    if (!strcmp(fn, "getservbyname"))
        return getservbyname("http", "tcp") != NULL;
    if (!strcmp(fn, "gettext"))
        return dgettext("coreutils", "write error") != NULL;
    if (!strcmp(fn, "localtime"))
        return localtime(&t) != NULL;
    if (!strcmp(fn, "mktime"))
        return (tm = *gmtime(&t), mktime(&tm) != -1);
    if (!strcmp(fn, "strftime"))
        return localtime_r(&t, &tm) && strftime(buf, sizeof buf, "%c %Z", &tm) > 0;
    if (!strcmp(fn, "realpath"))
        return realpath("/usr/lib/../bin/./ls", buf) != NULL;
    if (!strcmp(fn, "mkstemp")) {
        strcpy(buf, "/tmp/libcloopXXXXXX");
        int fd = mkstemp(buf);
        return fd >= 0 && close(fd) == 0 && unlink(buf) == 0;
    }
    if (!strcmp(fn, "tmpfile")) {
        FILE *f = tmpfile();
        return f && fclose(f) == 0;
    }
    if (!strcmp(fn, "opendir")) {
        DIR *d = opendir("/usr");
        while (d && readdir(d))
            ;
        return d && closedir(d) == 0;
    }
    if (!strcmp(fn, "sysconf"))
        return sysconf(_SC_NPROCESSORS_ONLN) > 0;
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    setlocale(LC_ALL, "");
    int n = atoi(argv[2]);
    for (int i = 0; i < n; i++) {
        int r = call(argv[1]);
        if (r <= 0)
            return r < 0 ? 2 : 1;
    }
    return 0;
}
