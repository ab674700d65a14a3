/* Wrappers: setrlimit, setrlimit64, prlimit, prlimit64, getrlimit, getrlimit64, no event of
 * their own.  A finite RLIMIT_AS the app sets on itself counts every byte of address space, the
 * shim's too: the stdio arena's reservation, made at start-up when there was no limit, then
 * gives back what it has not committed (stdio_arena.c).  The log's windows are small already
 * (writer.c).  Those of
 * RLIMIT_NOFILE wait while the shim has raised the soft limit for a moment (kio.c keep_high),
 * so that they neither see its raised value nor have theirs undone. */
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

/* return CALL, made under kio.c's rl_lock when it is this process's RLIMIT_NOFILE */
#define NOFILE_LOCKED(pid, resource, call)                                                   \
    do {                                                                                      \
        int lock_ = (int)(resource) == RLIMIT_NOFILE &&                                       \
                    ((pid) == 0 || (pid) == (pid_t)syscall(SYS_getpid));                      \
        if (lock_)                                                                            \
            iot_rlimit_lock(1);                                                               \
        int r_ = call;                                                                        \
        if (lock_) {                                                                          \
            int e_ = errno;                                                                   \
            iot_rlimit_lock(0);                                                               \
            errno = e_;                                                                       \
        }                                                                                     \
        return r_;                                                                            \
    } while (0)

IOT_API int setrlimit(__rlimit_resource_t resource, const struct rlimit *rl)
{
    IOT_REAL(setrlimit);
    if (rl)
        limiting(0, (int)resource, rl->rlim_cur);
    NOFILE_LOCKED(0, resource, real_setrlimit(resource, rl));
}

IOT_API int setrlimit64(__rlimit_resource_t resource, const struct rlimit64 *rl)
{
    IOT_REAL(setrlimit64);
    if (rl)
        limiting(0, (int)resource, (rlim_t)rl->rlim_cur);
    NOFILE_LOCKED(0, resource, real_setrlimit64(resource, rl));
}

IOT_API int prlimit(pid_t pid, __rlimit_resource_t resource, const struct rlimit *rl,
                    struct rlimit *old)
{
    IOT_REAL(prlimit);
    if (rl)
        limiting(pid, (int)resource, rl->rlim_cur);
    NOFILE_LOCKED(pid, resource, real_prlimit(pid, resource, rl, old));
}

IOT_API int prlimit64(pid_t pid, __rlimit_resource_t resource, const struct rlimit64 *rl,
                      struct rlimit64 *old)
{
    IOT_REAL(prlimit64);
    if (rl)
        limiting(pid, (int)resource, (rlim_t)rl->rlim_cur);
    NOFILE_LOCKED(pid, resource, real_prlimit64(pid, resource, rl, old));
}

IOT_API int getrlimit(__rlimit_resource_t resource, struct rlimit *rl)
{
    IOT_REAL(getrlimit);
    NOFILE_LOCKED(0, resource, real_getrlimit(resource, rl));
}

IOT_API int getrlimit64(__rlimit_resource_t resource, struct rlimit64 *rl)
{
    IOT_REAL(getrlimit64);
    NOFILE_LOCKED(0, resource, real_getrlimit64(resource, rl));
}
