/* The module map (what is loaded where), for symbolising stacks after the run.  Written at start
 * and again for what each dlopen adds. */
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

#define MAX_KNOWN 4096
static uintptr_t known[MAX_KNOWN];
static unsigned nknown;
static unsigned long long seen_adds;
static int liburing; /* liburing was loaded in this image (it may be dlclose'd since) */

int iot_modules_liburing(void)
{
    return liburing;
}

/* The GNU build-id note of a loaded object, read from its PT_NOTE segments in memory: the
 * analyzer symbolises a module only with the file that has the same id (docs/format.md). */
static const void *build_id(const struct dl_phdr_info *info, size_t *len)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof *n;
            const char *desc = name + ((n->n_namesz + 3) & ~3u);
            if (desc + n->n_descsz > end)
                break;
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
                *len = n->n_descsz;
                return desc;
            }
            p = desc + ((n->n_descsz + 3) & ~3u);
        }
    }
    return NULL;
}

/* The path of the file mapped at addr, from /proc/self/maps ("" if none).  Called with the
 * loader's lock held (dl_iterate_phdr): the buffer is not the app's stack. */
static void mapped_file(uintptr_t addr, char *out, size_t cap)
{
    static char buf[8192];
    size_t have = 0; /* a line not yet complete, at the start of buf */
    out[0] = '\0';
    int fd = (int)IOT_SYSRAW(openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return;
    for (;;) {
        long n = IOT_SYSRAW(read, fd, buf + have, sizeof buf - have);
        iot_own_io(0, n);
        if (n <= 0)
            break;
        char *p = buf, *end = buf + have + n, *nl;
        while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
            char *dash, *path = memchr(p, '/', (size_t)(nl - p));
            uintptr_t lo = strtoul(p, &dash, 16), hi = strtoul(dash + 1, NULL, 16);
            if (path && lo <= addr && addr < hi && (size_t)(nl - path) < cap) {
                memcpy(out, path, (size_t)(nl - path));
                out[nl - path] = '\0';
                IOT_SYSRAW(close, fd);
                return;
            }
            p = nl + 1;
        }
        have = (size_t)(end - p);
        if (have == sizeof buf) /* a line longer than the buffer: not one of a path we keep */
            have = 0;
        memmove(buf, p, have);
    }
    IOT_SYSRAW(close, fd);
}

static int one(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size, (void)data;
    for (unsigned i = 0; i < nknown; i++)
        if (known[i] == info->dlpi_addr + 1)
            return 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    if (hi == 0)
        return 0;
    const char *name = info->dlpi_name;
    char exe[PATH_MAX];
    if ((!name || !*name) && !getauxval(AT_BASE)) {
        /* the main program, not the file exec'd: the kernel mapped no interpreter, the loader
         * was exec'd as `ld.so PROG` (/proc/self/exe is ld.so, whose name would be put on
         * PROG's frames) */
        mapped_file(lo, exe, sizeof exe);
        name = exe;
    } else if (!name || !*name) { /* the main program */
        long n = IOT_SYSRAW(readlinkat, AT_FDCWD, "/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
        name = exe;
    }
    if (strstr(name, "/liburing.so"))
        liburing = 1;
    size_t id_len = 0;
    const void *id = build_id(info, &id_len);
    if (id_len > 64) /* no build-id is that long: not one */
        id = NULL;
    char *p = iot_log_reserve(64 + strlen(name) + 72);
    if (p)
        iot_log_commit(iot_pack_module(p, info->dlpi_addr, lo, hi, name, id, id_len));
    if (nknown < MAX_KNOWN)
        known[nknown++] = info->dlpi_addr + 1; /* +1: the main program's base may be 0 */
    seen_adds = info->dlpi_adds;
    return 0;
}

void iot_modules_emit(void)
{
    dl_iterate_phdr(one, NULL);
}

void iot_modules_reset(void)
{
    nknown = 0;
    seen_adds = 0;
    liburing = 0;
}
