/* Wrappers: sigaction (signal, sigset), no event of their own (the shim alone).  A read or write that a caught
 * signal interrupts before it moved anything is restarted by the kernel after the handler when
 * the handler is SA_RESTART, and the kernel counts it in syscr or syscw each time it runs: the
 * shim records the call once, so the trace left one call unexplained per restart.  Under the
 * stracer it sees the restart itself (stracer/tracer.py _restarted).  With the shim alone a
 * handler the app installs runs behind the shim's (`behind`): the kernel has rewound the
 * thread to its syscall instruction, with the syscall's number again in rax, in the signal
 * frame it saved (arch/x86/kernel/signal.c, handle_signal); inside a wrapper's real call, not
 * a call measured with the thread's counters (those count the restart already), a read- or
 * write-type syscall found so is counted once more, with the thread's events (kio.c).  The app
 * sees its own handler, flags and mask through sigaction (the kernel's SigCgt is the same);
 * its handler is called as it asked (with or without SA_SIGINFO).  Not seen: handlers set by
 * signal() or sigset() (glibc calls its own sigaction inside), by a raw rt_sigaction, or in a
 * vfork child (its memory is the parent's). */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include "shim.h"

typedef void (*handler_fn)(int, siginfo_t *, void *);

/* the app's handler of each signal, and whether it asked for SA_SIGINFO */
static handler_fn app[NSIG];
static unsigned char app_info[NSIG];

/* A fault's signal comes in user mode, never amid a syscall: its handler (a crash report) is
 * left as it is, with no frame of the shim's before it. */
static int fault(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP ||
           sig == SIGSYS;
}

static void behind(int sig, siginfo_t *si, void *ucv)
{
    const ucontext_t *uc = ucv;
    const unsigned char *ip = (const unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
    unsigned kind = iot_kio_syscall_mode((long)uc->uc_mcontext.gregs[REG_RAX]);
    if (kind && iot_t.in_wrapper > 0 && !iot_t.kio_in_ok && !iot_t.busy && ip[0] == 0x0f &&
        ip[1] == 0x05) {
        uint64_t d[4] = {0, 0, kind == IOT_KIO_MODE_R, kind == IOT_KIO_MODE_W};
        iot_kio_inner(d);
    }
    handler_fn h = __atomic_load_n(&app[sig], __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&app_info[sig], __ATOMIC_RELAXED))
        h(sig, si, ucv);
    else
        ((void (*)(int))(void (*)(void))h)(sig);
}

IOT_API int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    IOT_REAL(sigaction);
    struct sigaction mine;
    const struct sigaction *give = act;
    int ours = sig > 0 && sig < NSIG;
    handler_fn was = ours ? app[sig] : NULL;
    unsigned char was_info = ours ? app_info[sig] : 0;
    if (ours && act && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN &&
        !fault(sig) && iot_p.state == IOT_READY && !iot_stracing && !iot_t.vforked) {
        mine = *act;
        mine.sa_sigaction = behind;
        mine.sa_flags |= SA_SIGINFO;
        give = &mine;
        __atomic_store_n(&app_info[sig], (act->sa_flags & SA_SIGINFO) != 0, __ATOMIC_RELAXED);
        __atomic_store_n(&app[sig], act->sa_sigaction, __ATOMIC_RELEASE);
    }
    int r = real_sigaction(sig, give, old);
    if (r != 0 && give == &mine) { /* refused: as it was */
        int e = errno;
        __atomic_store_n(&app_info[sig], was_info, __ATOMIC_RELAXED);
        __atomic_store_n(&app[sig], was, __ATOMIC_RELEASE);
        errno = e;
    }
    if (r == 0 && old && old->sa_sigaction == behind) { /* the app's, as it set it */
        old->sa_sigaction = was;
        if (!was_info)
            old->sa_flags &= ~SA_SIGINFO;
    }
    return r;
}

/* signal() and sigset() set a handler through glibc's own sigaction, not the one above (their
 * handler runs with no frame of the shim's before it): the old one they give back is the app's,
 * not `behind` (signal(SIGUSR1, SIG_DFL) after sigaction's handler gave the shim's). */
static __sighandler_t as_set(int sig, __sighandler_t r)
{
    if (r == (__sighandler_t)(void (*)(void))behind && sig > 0 && sig < NSIG)
        return (__sighandler_t)(void (*)(void))__atomic_load_n(&app[sig], __ATOMIC_ACQUIRE);
    return r;
}

IOT_API __sighandler_t signal(int sig, __sighandler_t handler)
{
    IOT_REAL(signal);
    return as_set(sig, real_signal(sig, handler));
}

IOT_API __sighandler_t sigset(int sig, __sighandler_t disp)
{
    IOT_REAL(sigset);
    return as_set(sig, real_sigset(sig, disp));
}
