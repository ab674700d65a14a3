/* glob and the mount table (preload/wrap_scan.c):  scan_calls DIR
 * DIR holds a.txt, b.txt, c.dat.  Prints what each call returned, so runs compare as text. */
#include <errno.h>
#include <glob.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>

/* libc's glob of before glibc 2.27 (an old binary's reference): the shim leaves it alone */
extern int glob_old(const char *, int, int (*)(const char *, int), glob_t *);
__asm__(".symver glob_old, glob@GLIBC_2.2.5");

static int on_error(const char *path, int err)
{
    (void)path;
    (void)err;
    return 0;
}

static void show(const char *what, int r, glob_t *g)
{
    printf("%s %d %zu", what, r, r == 0 ? g->gl_pathc : 0);
    for (size_t i = 0; r == 0 && i < g->gl_pathc; i++)
        printf(" %s", strrchr(g->gl_pathv[i], '/') + 1);
    printf("\n");
    if (r == 0)
        globfree(g);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    char pat[4096];
    glob_t g;
    snprintf(pat, sizeof pat, "%s/*.txt", argv[1]);
    show("glob", glob(pat, 0, NULL, &g), &g);
    snprintf(pat, sizeof pat, "%s/*.none", argv[1]);
    show("nomatch", glob(pat, 0, NULL, &g), &g);
    snprintf(pat, sizeof pat, "%s/*.dat", argv[1]);
    show("errfunc", glob(pat, 0, on_error, &g), &g);
    show("old", glob_old(pat, 0, NULL, &g), &g);

    int n = 0, n_r = 0, proc = 0;
    FILE *f = setmntent("/proc/self/mounts", "r");
    struct mntent *m;
    while ((m = getmntent(f)))
        n++, proc += strcmp(m->mnt_type, "proc") == 0;
    printf("setmntent %d entries %d proc %d end %d\n", f != NULL, n, proc > 0, endmntent(f));
    f = setmntent("/proc/self/mounts", "r");
    struct mntent mb;
    char buf[4096];
    while (getmntent_r(f, &mb, buf, sizeof buf))
        n_r++;
    printf("getmntent_r %d same %d end %d\n", n_r, n_r == n, endmntent(f));
    errno = 0;
    f = setmntent("/nonexistent/mounts", "r");
    printf("missing %d errno %d\n", f != NULL, errno);
    return 0;
}
