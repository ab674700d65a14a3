/* Wrapper: sigaltstack, no event of its own.  The alternate stack a thread sets is noted in its
 * state: a signal handler running on it runs the shim's wrappers there too, and a small one
 * (8 KiB, the classic SIGSTKSZ: crash handlers of MPI runtimes and HPC codes write their reports
 * from one) has no room for a stack walk.  stack.c leaves a call made there with less room
 * than IOT_WALK_ROOM without a stack.  Not seen: an alternate stack set by a raw syscall (the
 * walk is then taken as before).  A forked child keeps its thread's (the kernel's too); a new
 * thread starts with none (nor does the kernel give it one). */
#include <signal.h>
#include <stdint.h>

#include "shim.h"

IOT_API int sigaltstack(const stack_t *ss, stack_t *old)
{
    IOT_REAL(sigaltstack);
    int r = real_sigaltstack(ss, old);
    if (r == 0 && ss) {
        int off = (ss->ss_flags & SS_DISABLE) != 0;
        iot_t.alt_lo = off ? 0 : (uintptr_t)ss->ss_sp;
        iot_t.alt_hi = off ? 0 : (uintptr_t)ss->ss_sp + ss->ss_size;
    }
    return r;
}
