/* Wrappers: glibc's error messages -- error, error_at_line, and the err/warn family (warn,
 * warnx, vwarn, vwarnx, err, errx, verr, verrx).  They write stderr (and error() flushes
 * stdout first) through libc's internal calls, which the shim never sees: with the shim alone
 * every message of coreutils' escaped the trace (`cat /nonexistent`), and under the stracer
 * error()'s flush of stdout (a buffer in the stdio window: docs/stracer.md) was nobody's.  Their
 * I/O is measured with the thread's counters around the call (calls.py KERNEL_IO_FUNCS "in",
 * kio.c), inside the wrapper's marker as getaddrinfo's: under the stracer their syscalls are
 * covered stops.  A call that runs the app's code (error_print_progname set) is left alone, as
 * glob's with a callback (wrap_scan.c), and so is one in a vfork child.
 *
 * error() and error_at_line() are variadic with no va_list form, so no C wrapper can hand libc
 * the caller's arguments.  Each of the ten is therefore an assembly stub, the same for all:
 * iot_msg_begin starts the event (the caller's stack unwound through the stub's CFI) and keeps
 * the caller's return address in the thread's frame; the stub puts its own landing address in
 * that stack slot and jumps to libc's function, which finds registers and stack exactly as the
 * caller left them and returns to the landing, where iot_msg_end records the event and gives
 * the caller's address back.  A stack unwound inside libc's function ends at the landing (its
 * return address is not on the stack).
 *
 * The err family and error() with a non-zero status exit inside libc.  Before such a call the
 * wrapper registers an exit handler, the last registered and so the first run: it ends the
 * measurement and the marker before the app's own exit handlers run (their I/O is theirs).
 *
 * Event: ret 0; flags = the exit status asked for (error, error_at_line, err, errx, verr,
 * verrx); error_at_line's path = its file name. */
#include <errno.h>
#include <error.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

enum { M_ERROR, M_ERROR_AT_LINE, M_WARN, M_WARNX, M_VWARN, M_VWARNX, M_ERR, M_ERRX, M_VERR,
       M_VERRX, M_N };

static const char *const names[M_N] = {"error", "error_at_line", "warn", "warnx", "vwarn",
                                       "vwarnx", "err", "errx", "verr", "verrx"};
static const unsigned fns[M_N] = {IOT_FN_error, IOT_FN_error_at_line, IOT_FN_warn,
                                  IOT_FN_warnx, IOT_FN_vwarn, IOT_FN_vwarnx, IOT_FN_err,
                                  IOT_FN_errx, IOT_FN_verr, IOT_FN_verrx};
static void *real[M_N];

/* libc's function to run, and whether to come back to the stub's landing (1) or jump for good
 * (0: untraced) -- returned in rax, rdx */
struct iot_msg_go {
    void *fn;
    long back;
};

static void at_exit(int status, void *unused)
{
    (void)status, (void)unused;
    iot_msg_exit();
}

/* a0..a3: the caller's first four integer arguments */
IOT_HIDDEN struct iot_msg_go iot_msg_begin(unsigned k, void **slot, long a0, long a1, long a2,
                                           long a3)
{
    (void)a1, (void)a3;
    int e = errno;
    if (IOT_UNLIKELY(!real[k]))
        real[k] = iot_dlsym(names[k]);
    struct iot_msg_go go = {real[k], 0};
    int printer = k == M_ERROR || k == M_ERROR_AT_LINE;
    if (iot_t.msg_depth >= IOT_MSG_MAX || !real[k] || iot_t.vforked ||
        (printer && error_print_progname)) /* the app's code inside: its own */
        return go;
    iot_msg_frame *f = &iot_t.msg[iot_t.msg_depth];
    if (!iot_enter(&f->ev, fns[k])) {
        errno = e;
        return go;
    }
    int exits = k >= M_ERR || (printer && (int)a0 != 0);
    if (printer || k >= M_ERR)
        iot_ev_flags(&f->ev, (int)a0);
    if (k == M_ERROR_AT_LINE && a2)
        f->ev.path = iot_intern_string((const char *)a2, strnlen((const char *)a2, 4096));
    f->ret = *slot;
    iot_t.msg_depth++;
    if (exits) { /* first of the exit handlers (see above) */
        int busy = iot_t.busy;
        iot_t.busy = 1;
        on_exit(at_exit, NULL);
        iot_t.busy = busy;
    }
    errno = e;
    go.back = 1;
    return go;
}

/* After libc's function returned (or at exit, for one that exits): the event; the caller's
 * return address. */
IOT_HIDDEN void *iot_msg_end(void)
{
    iot_msg_frame *f = &iot_t.msg[iot_t.msg_depth - 1];
    iot_ev ev = f->ev; /* copied first: a signal handler's message may take the slot after */
    void *ret = f->ret;
    iot_t.msg_depth--;
    iot_done(&ev, 0, 0);
    iot_leave(&ev);
    return ret;
}

void iot_msg_exit(void)
{
    while (iot_t.msg_depth > 0)
        (void)iot_msg_end();
}

#define MSG_STUB(name, k)                                                                    \
    ".globl " name "\n.type " name ", @function\n" name ":\n"                                \
    "    .cfi_startproc\n"                                                                   \
    "    movl $" #k ", %r11d\n"                                                              \
    "    jmp iot_msg_stub\n"                                                                 \
    "    .cfi_endproc\n"                                                                     \
    ".size " name ", .-" name "\n"

__asm__(".text\n"
        ".type iot_msg_stub, @function\n"
        "iot_msg_stub:\n"
        "    .cfi_startproc\n"
        "    pushq %rdi\n    .cfi_adjust_cfa_offset 8\n"
        "    pushq %rsi\n    .cfi_adjust_cfa_offset 8\n"
        "    pushq %rdx\n    .cfi_adjust_cfa_offset 8\n"
        "    pushq %rcx\n    .cfi_adjust_cfa_offset 8\n"
        "    pushq %r8\n    .cfi_adjust_cfa_offset 8\n"
        "    pushq %r9\n    .cfi_adjust_cfa_offset 8\n"
        "    pushq %rax\n    .cfi_adjust_cfa_offset 8\n" /* al: a variadic call's vector regs */
        "    subq $128, %rsp\n    .cfi_adjust_cfa_offset 128\n" /* 16-byte aligned now */
        "    movdqu %xmm0, 0(%rsp)\n    movdqu %xmm1, 16(%rsp)\n"
        "    movdqu %xmm2, 32(%rsp)\n    movdqu %xmm3, 48(%rsp)\n"
        "    movdqu %xmm4, 64(%rsp)\n    movdqu %xmm5, 80(%rsp)\n"
        "    movdqu %xmm6, 96(%rsp)\n    movdqu %xmm7, 112(%rsp)\n"
        "    movl %r11d, %edi\n"
        "    leaq 184(%rsp), %rsi\n" /* the caller's return address */
        "    movq 176(%rsp), %rdx\n    movq 168(%rsp), %rcx\n"
        "    movq 160(%rsp), %r8\n    movq 152(%rsp), %r9\n"
        "    call iot_msg_begin\n"
        "    movq %rax, %r11\n"
        "    movq %rdx, %r10\n"
        "    movdqu 0(%rsp), %xmm0\n    movdqu 16(%rsp), %xmm1\n"
        "    movdqu 32(%rsp), %xmm2\n    movdqu 48(%rsp), %xmm3\n"
        "    movdqu 64(%rsp), %xmm4\n    movdqu 80(%rsp), %xmm5\n"
        "    movdqu 96(%rsp), %xmm6\n    movdqu 112(%rsp), %xmm7\n"
        "    addq $128, %rsp\n    .cfi_adjust_cfa_offset -128\n"
        "    popq %rax\n    .cfi_adjust_cfa_offset -8\n"
        "    popq %r9\n    .cfi_adjust_cfa_offset -8\n"
        "    popq %r8\n    .cfi_adjust_cfa_offset -8\n"
        "    popq %rcx\n    .cfi_adjust_cfa_offset -8\n"
        "    popq %rdx\n    .cfi_adjust_cfa_offset -8\n"
        "    popq %rsi\n    .cfi_adjust_cfa_offset -8\n"
        "    popq %rdi\n    .cfi_adjust_cfa_offset -8\n"
        "    testq %r10, %r10\n"
        "    jz 1f\n"
        "    leaq 2f(%rip), %r10\n"
        "    movq %r10, (%rsp)\n" /* libc's returns to 2: (the caller's address kept) */
        "1:  jmp *%r11\n"
        "    .cfi_undefined rip\n" /* an unwind from inside libc's ends here */
        "    nop\n"
        "2:  call iot_msg_end\n" /* the stack as the caller had it before its call: aligned */
        "    pushq %rax\n"
        "    ret\n"
        "    .cfi_endproc\n"
        ".size iot_msg_stub, .-iot_msg_stub\n"
        MSG_STUB("error", 0) MSG_STUB("error_at_line", 1) MSG_STUB("warn", 2)
        MSG_STUB("warnx", 3) MSG_STUB("vwarn", 4) MSG_STUB("vwarnx", 5) MSG_STUB("err", 6)
        MSG_STUB("errx", 7) MSG_STUB("verr", 8) MSG_STUB("verrx", 9));

/* perror, psignal and psiginfo write their message to stderr inside libc too (the shim alone
 * left perror's "x: No such file or directory" not in the trace, blamed on raw syscalls); not
 * variadic: plain wrappers, measured as the others.  Event: ret 0; psignal's flags = the
 * signal, psiginfo's = si_signo. */
IOT_API void perror(const char *s)
{
    IOT_REAL(perror);
    IOT_ENTER(IOT_FN_perror, real_perror(s));
    IOT_CALL(int, (real_perror(s), 0), 0, 0);
    IOT_LEAVE();
}

IOT_API void psignal(int sig, const char *s)
{
    IOT_REAL(psignal);
    IOT_ENTER(IOT_FN_psignal, real_psignal(sig, s));
    IOT_CALL(int, (real_psignal(sig, s), 0), 0, 0);
    iot_ev_flags(&ev, sig);
    IOT_LEAVE();
}

IOT_API void psiginfo(const siginfo_t *info, const char *s)
{
    IOT_REAL(psiginfo);
    IOT_ENTER(IOT_FN_psignal, real_psiginfo(info, s));
    IOT_CALL(int, (real_psiginfo(info, s), 0), 0, 0);
    iot_ev_flags(&ev, info ? info->si_signo : 0);
    IOT_LEAVE();
}
