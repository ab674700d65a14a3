/* Wrappers: setrlimit, setrlimit64, prlimit, prlimit64, no event of their own.  A finite
 * RLIMIT_AS the app sets on itself counts every byte of address space, the shim's too: the stdio
 * arena's reservation, made at start-up when there was no limit, then gives back what it has
 * not committed (stdio_arena.c).  The log's windows are small already (writer.c). */
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

static void limiting(pid_t pid, int resource, rlim_t cur)
{
    if (resource == RLIMIT_AS && cur != RLIM_INFINITY &&
        (pid == 0 || pid == (pid_t)syscall(SYS_getpid)))
        iot_arena_limit();
}

IOT_API int setrlimit(__rlimit_resource_t resource, const struct rlimit *rl)
{
    IOT_REAL(setrlimit);
    if (rl)
        limiting(0, (int)resource, rl->rlim_cur);
    return real_setrlimit(resource, rl);
}

IOT_API int setrlimit64(__rlimit_resource_t resource, const struct rlimit64 *rl)
{
    IOT_REAL(setrlimit64);
    if (rl)
        limiting(0, (int)resource, (rlim_t)rl->rlim_cur);
    return real_setrlimit64(resource, rl);
}

IOT_API int prlimit(pid_t pid, __rlimit_resource_t resource, const struct rlimit *rl,
                    struct rlimit *old)
{
    IOT_REAL(prlimit);
    if (rl)
        limiting(pid, (int)resource, rl->rlim_cur);
    return real_prlimit(pid, resource, rl, old);
}

IOT_API int prlimit64(pid_t pid, __rlimit_resource_t resource, const struct rlimit64 *rl,
                      struct rlimit64 *old)
{
    IOT_REAL(prlimit64);
    if (rl)
        limiting(pid, (int)resource, (rlim_t)rl->rlim_cur);
    return real_prlimit64(pid, resource, rl, old);
}
