/* What is recorded: `iotrace run -e trace=SET` and `--path GLOB` (docs/filters.md), and with
 * `-s N` (IOTRACE_DATA) how many bytes of each read/write buffer (record.c, docs/format.md).
 *
 * IOTRACE_CALLS: the functions to record, as a hex bitmask by function id (bit i of the number
 * is id i; iotrace.calls.trace_mask).  The others are "quiet": their wrapper still runs (the fd
 * table, positions and the stracer's in-wrapper marker stay right, so their syscalls are still
 * covered, never missed) but takes no time stamp and no stack and writes nothing.
 * IOTRACE_PATHS: globs, one a line (fnmatch, no FNM_PATHNAME: `*` spans `/`); an event is
 * recorded if its path or its second one (rename's new name, sendfile's end read) matches one.  An fd event's path is the one its
 * descriptor was opened with: each path (string id) is matched once per process, its verdict
 * kept in a table by id. */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

#define MAX_GLOBS 64
#define VERDICTS (1u << 22) /* string ids with a cached verdict (4 MiB reserved, touched as used) */

static char *globs[MAX_GLOBS];
static uint8_t *verdict; /* string id -> 0 unknown, 1 kept, 2 dropped */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

void iot_filter_init(void)
{
    const char *data = getenv("IOTRACE_DATA"); /* -s N */
    if (data && *data) {
        long n = atol(data);
        iot_p.data_max = n < 0 ? 0 : n > IOT_DATA_MAX ? IOT_DATA_MAX : (int)n;
    }
    const char *calls = getenv("IOTRACE_CALLS");
    if (calls && *calls) {
        size_t n = strlen(calls);
        memset(iot_p.quiet, 0xff, sizeof iot_p.quiet);
        for (size_t i = 0; i < n; i++) { /* the last hex digit is bits 0-3 */
            int v = hexval(calls[n - 1 - i]);
            if (v < 0) { /* not from iotrace: record everything */
                memset(iot_p.quiet, 0, sizeof iot_p.quiet);
                break;
            }
            for (unsigned b = 0; b < 4; b++) {
                unsigned fn = (unsigned)(i * 4 + b);
                if (fn < IOT_FN_COUNT && (v >> b & 1))
                    iot_p.quiet[fn >> 6] &= ~(1ull << (fn & 63));
            }
        }
    }
    const char *paths = getenv("IOTRACE_PATHS");
    if (!paths || !*paths)
        return;
    char *copy = strdup(paths);
    for (char *save = NULL, *g = copy ? strtok_r(copy, "\n", &save) : NULL;
         g && iot_p.npaths < MAX_GLOBS; g = strtok_r(NULL, "\n", &save))
        globs[iot_p.npaths++] = g;
    void *m = (void *)syscall(SYS_mmap, NULL, VERDICTS, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    verdict = m == MAP_FAILED ? NULL : m;
}

void iot_filter_fork_child(void)
{
    if (verdict) /* the child's string ids start again: forget the parent's verdicts */
        syscall(SYS_madvise, verdict, VERDICTS, MADV_DONTNEED);
}

static int matches(uint32_t id)
{
    if (!id)
        return 0;
    if (verdict && id < VERDICTS && verdict[id])
        return verdict[id] == 1;
    const char *s = iot_string(id);
    int ok = 0;
    for (int i = 0; s && !ok && i < iot_p.npaths; i++)
        ok = fnmatch(globs[i], s, 0) == 0;
    if (verdict && id < VERDICTS)
        verdict[id] = ok ? 1 : 2; /* a byte: another thread writes the same */
    return ok;
}

int iot_path_kept(const iot_ev *ev)
{
    return matches(ev->path) || ((ev->has & IOT_HAS_END2) && matches(ev->path2)) ||
           (iot_aux_path[ev->fn] && ev->naux && matches((uint32_t)ev->aux[0]));
}
