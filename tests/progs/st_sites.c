/* The same libc-internal syscalls reached from different libc functions and callers: fts_open,
 * fts_read and fts_close under one caller; sysconf's /sys reads (get_nprocs_conf, get_nprocs)
 * under two; tzset's zone file read ($TZ).  Each must be named by its own function and caller
 * (the stracer's old key, the ip and one stack word, named them all after the first). */
#define _GNU_SOURCE
#include <fts.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) static long cpus(void) { return sysconf(_SC_NPROCESSORS_CONF); }

__attribute__((noinline)) static long online(void) { return sysconf(_SC_NPROCESSORS_ONLN); }

__attribute__((noinline)) static int walk(char *dir)
{
    char *argv[] = {dir, NULL};
    FTS *f = fts_open(argv, FTS_PHYSICAL, NULL);
    int n = 0;
    while (fts_read(f))
        n++;
    fts_close(f);
    return n;
}

__attribute__((noinline)) static void zone(void) { tzset(); }

int main(int argc, char **argv)
{
    int n = walk(argv[1]);
    long c = cpus(), o = online();
    c += cpus(); /* the same site again: from the C loop's cache */
    zone();
    printf("%d %ld %ld %ld\n", n, c / 2, o, timezone);
    return 0;
}
