/* Python's own variables in the environment of iotrace's Python processes: the stracer
 * (stracer.c) and the Python command iotrace-py (main.c: report, show, export, attach, run -e).
 * `iotrace` as root with a user's environment (`su` without `-`, `sudo -E`) ran that user's
 * sitecustomize.py from PYTHONPATH as root.  Of Python's variables (PYTHONPATH, PYTHONHOME,
 * PYTHONWARNINGS, PYTHONINSPECT, PYTHONPYCACHEPREFIX...) only PYTHONPATH's and PYTHONHOME's
 * directories that no other user could change are kept, and so is the caller's user site
 * directory (user_site_own), with no script directory on the path: -I's isolation but for
 * those (a module system's root-owned install stays found), so only code no other user could
 * change runs.  A command these processes start gets its environment whole (the stracer: from its
 * spec; iotrace-py: Python's variables as given, IOTRACE_GIVEN_PY_*, run.py hand_over). */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "launch.h"

/* var=value for PYTHONPATH/PYTHONHOME with only the absolute directories of value that exist
 * and no other user could change (iot_install_exposed), NULL if none */
static char *safe_path_var(const char *var, const char *value)
{
    size_t n = strlen(var), len = strlen(value);
    char *out = malloc(n + len + 2), *dirs = strdup(value), msg[PATH_MAX + 128];
    if (!out || !dirs) {
        free(out);
        free(dirs);
        return NULL;
    }
    size_t k = (size_t)sprintf(out, "%s=", var);
    int kept = 0;
    struct stat st;
    for (char *save, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save))
        if (d[0] == '/' && stat(d, &st) == 0 && S_ISDIR(st.st_mode) &&
            !iot_install_exposed(d, msg, sizeof msg))
            k += (size_t)sprintf(out + k, "%s%s", kept++ ? ":" : "", d);
    free(dirs);
    if (!kept)
        free(out);
    return kept ? out : NULL;
}

/* The caller's user site (~/.local/lib/python3.X/site-packages: their `pip install --user`
 * packages, iotrace itself or an extra such as dask's for --scheduler) is kept where no other
 * user could change the way to it, as PYTHONPATH's directories are: their own code, run as
 * them.  Root given another user's HOME (`sudo -E`) finds it theirs and leaves it out.  It was
 * left out whenever iotrace itself was not installed there: `iotrace report --scheduler` of a
 * system-wide iotrace did not find the caller's own dask. */
static int user_site_own(void)
{
    const char *home = getenv("HOME");
    char lib[PATH_MAX + 16], msg[PATH_MAX + 128];
    struct stat st;
    if (!home || home[0] != '/')
        return 0;
    snprintf(lib, sizeof lib, "%s/.local/lib", home);
    return stat(lib, &st) == 0 && S_ISDIR(st.st_mode) && !iot_install_exposed(lib, msg, sizeof msg);
}

size_t iot_python_env(char **env, int given)
{
    extern char **environ;
    size_t k = 0;
    for (char **e = environ; *e; e++) {
        if (!strncmp(*e, "IOTRACE_GIVEN_", 14)) /* each Python process is given its own */
            continue;
        if (strncmp(*e, "PYTHON", 6)) {
            env[k++] = *e;
            continue;
        }
        if (given && asprintf(&env[k], "IOTRACE_GIVEN_PY_%s", *e) > 0)
            k++;
        if (!strncmp(*e, "PYTHONPATH=", 11) || !strncmp(*e, "PYTHONHOME=", 11)) {
            char var[11] = {0};
            memcpy(var, *e, 10);
            char *kept = safe_path_var(var, *e + 11);
            if (kept)
                env[k++] = kept;
        } else if (!strncmp(*e, "PYTHONPROFILEIMPORTTIME=", 24) ||
                   !strncmp(*e, "PYTHONIOENCODING=", 17) || !strncmp(*e, "PYTHONUTF8=", 11)) {
            /* these load nothing: the imports' times printed (bench/cost_bench.py reads the
             * stracer's), the encoding of a report's output (a codec of the standard library) */
            env[k++] = *e;
        }
    }
    if (given) {
        env[k++] = (char *)"IOTRACE_GIVEN_PY=1";
        /* nor LC_CTYPE=C.UTF-8 put into its environment, and so the command's, under the C
         * locale (PEP 538; PEP 540's UTF-8 mode still applies) */
        env[k++] = (char *)"PYTHONCOERCECLOCALE=0";
    }
    if (!user_site_own())
        env[k++] = (char *)"PYTHONNOUSERSITE=1";
    env[k++] = (char *)"PYTHONSAFEPATH=1";
    env[k] = NULL;
    return k;
}
