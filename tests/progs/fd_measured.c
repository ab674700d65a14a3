/* One thread makes calls the shim measures with the thread's own kernel counters (setlocale
 * queries, dlopen of a library already loaded: mode "in-shim" and "in", calls.py) while the
 * main thread opens and closes /dev/null in a loop.  Untraced every open gets the same, lowest
 * free descriptor; the count of those that did not is printed, then, the worker joined and
 * one more measured call made by the main thread, a close of the number of the soft
 * RLIMIT_NOFILE (EBADF: no descriptor of the app's can be there), the descriptors open
 * (/proc/self/fd's entries) and that limit.  The worker makes one
 * measured call before the main thread starts opening (a descriptor the shim keeps for the
 * thread is then open already).  fd_measured CALLS */
#include <dirent.h>
#include <errno.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static long calls;
static volatile int started, done;

static void measured(void)
{
    setlocale(LC_ALL, NULL);
    void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (h)
        dlclose(h);
}

static void *worker(void *arg)
{
    (void)arg;
    measured();
    __atomic_store_n(&started, 1, __ATOMIC_RELEASE);
    for (long i = 0; i < calls; i++)
        measured();
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    return NULL;
}

int main(int argc, char **argv)
{
    calls = argc > 1 ? atol(argv[1]) : 10000;
    int lowest = open("/dev/null", O_RDONLY);
    close(lowest);
    pthread_t w;
    if (lowest < 0 || pthread_create(&w, NULL, worker, NULL) != 0)
        return 1;
    while (!__atomic_load_n(&started, __ATOMIC_ACQUIRE))
        sched_yield();
    long opens = 0, other = 0;
    while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
        int fd = open("/dev/null", O_RDONLY);
        opens++;
        other += fd != lowest;
        close(fd);
    }
    pthread_join(w, NULL);
    measured(); /* the main thread's, in a process that had two */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    errno = 0;
    int closed = close((int)rl.rlim_cur); /* the first number above the app's: none open */
    printf("close %d %s\n", closed, strerror(errno));
    long fds = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        fds += e->d_name[0] != '.';
    if (d)
        closedir(d);
    printf("other %ld\nfds %ld\nnofile %ld\n", other, fds, (long)rl.rlim_cur);
    fprintf(stderr, "opens %ld\n", opens);
    return 0;
}
