/* Which MPI family's shim `run` preloads (one per family: Open MPI's handles are pointers,
 * MPICH's ints; iotrace/mpi.py FAMILIES): the family of the first command word that is a
 * program linking an MPI (`mpirun -np 4 ./app`: the app's), read from the ELF files alone
 * through its libraries resolved as the loader does (RUNPATH, LD_LIBRARY_PATH, ld.so.conf);
 * else a launcher known by name (a Python rank loads MPI itself); else none. */
#define _GNU_SOURCE
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"

#define MAX_OBJECTS 64
#define MAX_ARGS 32
#define MAX_DIRS 64

static const char *soname_family(const char *so)
{
    if (!strncmp(so, "libmpich.so", 11) || !strcmp(so, "libmpi.so.12"))
        return "mpich";
    if (!strncmp(so, "libmpi.so", 9))
        return "openmpi";
    return NULL;
}

static int executable_file(const char *f)
{
    struct stat st;
    return access(f, X_OK) == 0 && stat(f, &st) == 0 && !S_ISDIR(st.st_mode);
}

int iot_which(const char *name, const char *path, char *out, size_t cap)
{
    const char *p = path ? path : "/bin:/usr/bin";
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        /* os.path.join("", name) is name itself: an empty entry is the current directory */
        int n = len ? snprintf(out, cap, "%.*s/%s", (int)len, p, name)
                    : snprintf(out, cap, "%s", name);
        if (n > 0 && (size_t)n < cap && executable_file(out))
            return 1;
        if (!colon)
            return 0;
        p = colon + 1;
    }
}

static int ndirs;
static char *dirs[MAX_DIRS];

static void add_dir(const char *d, size_t len)
{
    if (ndirs < MAX_DIRS && len)
        dirs[ndirs++] = strndup(d, len);
}

static void conf_dirs(const char *path, int depth)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = line, *e = line + strlen(line);
        while (*s == ' ' || *s == '\t')
            s++;
        while (e > s && (e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            *--e = '\0';
        if (!strncmp(s, "include ", 8) && depth < 4) {
            char *pat = s + 8;
            while (*pat == ' ' || *pat == '\t')
                pat++;
            glob_t g;
            if (glob(pat, 0, NULL, &g) == 0) /* sorted */
                for (size_t i = 0; i < g.gl_pathc; i++)
                    conf_dirs(g.gl_pathv[i], depth + 1);
            globfree(&g);
        } else if (*s == '/') {
            add_dir(s, strlen(s));
        }
    }
    fclose(f);
}

static void search_dirs(void)
{
    if (ndirs)
        return;
    const char *lp = getenv("LD_LIBRARY_PATH");
    for (const char *p = lp ? lp : ""; *p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        add_dir(p, len);
        p += len + (colon != NULL);
    }
    conf_dirs("/etc/ld.so.conf", 0);
    static const char *std[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64",
                                "/usr/lib64", "/lib", "/usr/lib"};
    for (size_t i = 0; i < sizeof std / sizeof *std; i++)
        add_dir(std[i], strlen(std[i]));
}

static const char *linked_family(const char *path)
{
    static char todo[MAX_OBJECTS + 1][PATH_MAX], seen[MAX_OBJECTS + 1][PATH_MAX];
    static char needed[256][128];
    int ntodo = 0, head = 0, nseen = 0;
    search_dirs();
    snprintf(todo[ntodo++], PATH_MAX, "%s", path);
    if (!realpath(path, seen[nseen]))
        snprintf(seen[nseen], PATH_MAX, "%s", path);
    nseen++;
    while (head < ntodo && nseen <= MAX_OBJECTS) {
        char runpath[8192];
        int nn;
        if (iot_elf_dynamic(todo[head++], needed, 256, &nn, runpath, sizeof runpath) != 0)
            continue;
        for (int i = 0; i < nn; i++) {
            const char *fam = soname_family(needed[i]);
            if (fam)
                return fam;
            /* the first directory holding it: RUNPATH's, then the loader's */
            char lib[PATH_MAX];
            int found = 0;
            for (const char *p = runpath; *p && !found;) {
                const char *colon = strchr(p, ':');
                size_t len = colon ? (size_t)(colon - p) : strlen(p);
                struct stat st;
                if (len && snprintf(lib, sizeof lib, "%.*s/%s", (int)len, p, needed[i]) > 0 &&
                    stat(lib, &st) == 0 && S_ISREG(st.st_mode))
                    found = 1;
                p += len + (colon != NULL);
            }
            for (int k = 0; k < ndirs && !found; k++) {
                struct stat st;
                if (snprintf(lib, sizeof lib, "%s/%s", dirs[k], needed[i]) > 0 &&
                    stat(lib, &st) == 0 && S_ISREG(st.st_mode))
                    found = 1;
            }
            if (!found)
                continue;
            char real[PATH_MAX];
            if (!realpath(lib, real))
                continue;
            int known = 0;
            for (int k = 0; k < nseen && !known; k++)
                known = !strcmp(seen[k], real);
            if (!known && nseen <= MAX_OBJECTS && ntodo <= MAX_OBJECTS) {
                snprintf(seen[nseen++], PATH_MAX, "%s", real);
                snprintf(todo[ntodo++], PATH_MAX, "%s", lib);
            }
        }
    }
    return NULL;
}

const char *iot_command_family(char **command, int n)
{
    static const struct { const char *name, *family; } launchers[] = {
        {"mpiexec.hydra", "mpich"}, {"hydra_pmi_proxy", "mpich"},
        {"orterun", "openmpi"}, {"prterun", "openmpi"}};
    const char *path = getenv("PATH");
    const char *launcher = NULL;
    for (int i = 0; i < n && i < MAX_ARGS; i++) {
        char exe[PATH_MAX];
        struct stat st;
        if (strchr(command[i], '/'))
            snprintf(exe, sizeof exe, "%s", command[i]);
        else if (!iot_which(command[i], path, exe, sizeof exe))
            continue;
        if (stat(exe, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        /* a launcher known by name links no MPI (Open MPI's orterun: 11 libraries, Hydra's
         * none): its libraries are not read (orterun's were ~40% of this command's system
         * calls before a run, on the wall path of `iotrace run -- mpirun`, issue 19) */
        char real[PATH_MAX];
        const char *known = NULL;
        if (realpath(exe, real)) {
            const char *base = strrchr(real, '/') + 1;
            for (size_t k = 0; k < sizeof launchers / sizeof *launchers; k++)
                if (!strcmp(base, launchers[k].name))
                    known = launchers[k].family;
        }
        if (known) {
            launcher = launcher ? launcher : known;
            continue;
        }
        const char *fam = linked_family(exe);
        if (fam)
            return fam;
    }
    return launcher;
}
