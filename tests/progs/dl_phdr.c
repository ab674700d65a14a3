/* A write made inside a dl_iterate_phdr callback (the loader's lock held, as C++ runtimes and
 * profilers walk the loaded objects) through a function without unwind tables, while another
 * thread loads and unloads a library.  The stack of that write needs libunwind: loading it in
 * the callback would wait for the other thread's dlopen, which waits for the callback's lock.
 * Prints "done". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static volatile int stop, loads;

__attribute__((noinline, used)) void do_write(void)
{
    if (write(1, "w\n", 2) != 2)
        _exit(3);
}

void nocfi_write(void);
__asm__(".text\n.globl nocfi_write\n.type nocfi_write,@function\nnocfi_write:\n"
        "push %rbp\nmov %rsp, %rbp\ncall do_write\npop %rbp\nret\n"
        ".size nocfi_write, .-nocfi_write\n");

static void *loader(void *arg)
{
    while (!stop) {
        void *h = dlopen("libbz2.so.1.0", RTLD_NOW | RTLD_LOCAL);
        if (h)
            dlclose(h);
        loads++;
    }
    return arg;
}

static int each(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info;
    (void)size;
    if (!*(int *)data) {
        *(int *)data = 1;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL); /* the other thread now waits for the lock held here */
        nocfi_write();
    }
    return 0;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, loader, NULL);
    while (loads < 3)
        usleep(100);
    int once = 0;
    dl_iterate_phdr(each, &once);
    stop = 1;
    pthread_join(t, NULL);
    printf("done\n");
    return 0;
}
