/* The module map (what is loaded where), for symbolising stacks after the run.  Written at start
 * and again for what each dlopen adds. */
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

#define MAX_KNOWN 4096
static uintptr_t known[MAX_KNOWN];
static unsigned nknown;
static unsigned long long seen_adds;

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
    if (!name || !*name) { /* the main program */
        long n = IOT_SYSRAW(readlinkat, AT_FDCWD, "/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
        name = exe;
    }
    char *p = iot_log_reserve(64 + strlen(name));
    if (p)
        iot_log_commit(iot_pack_module(p, info->dlpi_addr, lo, hi, name));
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
}
