/* The code iotrace runs or loads as the caller (root on a shared node): this launcher, the
 * console scripts beside it (iotrace-py, iotrace-stracer) and the interpreter their first line
 * names, and every file and directory of the package (the shims, the stracer's C loop, each
 * Python module and its cached bytecode).  Another user who could change any of them -- an
 * install made under umask 000, a group's directory for root -- would run their code as the
 * caller: iotrace refuses to start, in one line (dir.c's rules: iot_install_exposed). */
#define _GNU_SOURCE
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "launch.h"

static char *walk_msg;
static size_t walk_cap;

/* each entry under the package, itself (the way to the package is checked once): a link,
 * its target and the way there */
static int visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    char why[64];
    if (flag == FTW_SL)
        return iot_install_exposed(path, walk_msg, walk_cap);
    if (flag == FTW_NS || !iot_others_may_change(st, why, sizeof why))
        return 0;
    snprintf(walk_msg, walk_cap, "%s is %s", path, why);
    return 1;
}

/* the interpreter a script's "#!" line names, or "" */
static void interpreter(const char *script, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen(script, "re");
    char line[PATH_MAX + 8];
    if (f && fgets(line, sizeof line, f) && !strncmp(line, "#!", 2)) {
        char *p = line + 2 + strspn(line + 2, " \t");
        snprintf(out, cap, "%.*s", (int)strcspn(p, " \t\n"), p);
    }
    if (f)
        fclose(f);
}

int iot_install_check(const char *pkg, char *msg, size_t cap)
{
    static const char *scripts[] = {"iotrace-py", "iotrace-stracer"};
    char path[PATH_MAX + 64], interp[PATH_MAX];
    if (iot_install_exposed("/proc/self/exe", msg, cap))
        return 1;
    for (size_t i = 0; i < sizeof scripts / sizeof *scripts; i++) {
        snprintf(path, sizeof path, "%s/%s", iot_self_dir, scripts[i]);
        if (iot_install_exposed(path, msg, cap))
            return 1;
        interpreter(path, interp, sizeof interp);
        if (interp[0] && iot_install_exposed(interp, msg, cap))
            return 1;
    }
    if (!pkg)
        return 0;
    if (iot_install_exposed(pkg, msg, cap))
        return 1;
    walk_msg = msg, walk_cap = cap;
    return nftw(pkg, visit, 16, FTW_PHYS) == 1;
}

int iot_package_dir(char *out, size_t cap)
{
    char pat[PATH_MAX + 64];
    snprintf(pat, sizeof pat, "%s/../lib/python3*/*-packages/iotrace", iot_self_dir);
    glob_t g;
    char real[PATH_MAX];
    int ok = glob(pat, GLOB_ONLYDIR, NULL, &g) == 0 && g.gl_pathc == 1 &&
             realpath(g.gl_pathv[0], real) && strlen(real) < cap;
    globfree(&g);
    if (ok)
        strcpy(out, real);
    return ok;
}
