/* libunwind loaded by the shim only for a stack its fast walk cannot take (preload/stack.c).
 * argv[1]: "plain" (writes through frames with unwind tables), "nocfi" (a write through a
 * function with none: libunwind's frame-pointer fallback walks it), "handler" (that write from
 * a signal handler first, then from main; "resethand" and "sysv": so with a handler installed
 * SA_RESETHAND, and SA_RESETHAND|SA_NODEFER as a strict-ISO signal() does: in either handler the
 * signal is no longer caught, in the latter not blocked either); "blocked": 200 such writes
 * while a caught SIGUSR2 is blocked (no load: a handler might run), then one after unblocking
 * it); "context": a write on a makecontext stack (a coroutine's, on the heap), then one from
 * main.  Prints whether libunwind is mapped at the end. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

__attribute__((noinline, used)) void do_write(void)
{
    if (write(1, "w\n", 2) != 2)
        _exit(3);
}

/* No .cfi directives: no unwind table covers it; it keeps a frame pointer for libunwind. */
void nocfi_write(void);
__asm__(".text\n.globl nocfi_write\n.type nocfi_write,@function\nnocfi_write:\n"
        "push %rbp\nmov %rsp, %rbp\ncall do_write\npop %rbp\nret\n"
        ".size nocfi_write, .-nocfi_write\n");

static void on_usr1(int sig)
{
    (void)sig;
    nocfi_write();
}

static ucontext_t main_ctx, co_ctx;

static void co_body(void)
{
    do_write();
}

static int unwind_mapped(void)
{
    char line[512];
    int found = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    while (f && fgets(line, sizeof line, f))
        found |= strstr(line, "/libunwind.so") != NULL;
    if (f)
        fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "plain";
    if (!strcmp(mode, "plain")) {
        do_write();
    } else if (!strcmp(mode, "nocfi")) {
        nocfi_write();
    } else if (!strcmp(mode, "context")) {
        getcontext(&co_ctx);
        co_ctx.uc_stack.ss_sp = malloc(1 << 16);
        co_ctx.uc_stack.ss_size = 1 << 16;
        co_ctx.uc_link = &main_ctx;
        makecontext(&co_ctx, co_body, 0);
        swapcontext(&main_ctx, &co_ctx);
        do_write();
    } else if (!strcmp(mode, "blocked")) {
        struct sigaction act = {.sa_handler = on_usr1};
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR2);
        sigaction(SIGUSR2, &act, NULL);
        sigprocmask(SIG_BLOCK, &set, NULL);
        for (int i = 0; i < 200; i++)
            nocfi_write();
        printf("blocked: unwind=%d\n", unwind_mapped());
        fflush(stdout);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        nocfi_write();
    } else {
        struct sigaction act = {.sa_handler = on_usr1};
        if (!strcmp(mode, "resethand"))
            act.sa_flags = SA_RESETHAND;
        else if (!strcmp(mode, "sysv"))
            act.sa_flags = SA_RESETHAND | SA_NODEFER;
        sigaction(SIGUSR1, &act, NULL);
        raise(SIGUSR1);
        printf("after handler: unwind=%d\n", unwind_mapped());
        fflush(stdout);
        nocfi_write();
    }
    printf("unwind=%d\n", unwind_mapped());
    return 0;
}
