/* The app raises its soft RLIMIT_NOFILE and dup2s a file of its own onto the number of the old
 * soft limit, where the shim keeps a thread's counters descriptor (kio.c): a worker thread has
 * made measured calls (setlocale's query, dlopen) first.  Then the worker exits and the app writes to
 * its descriptor and closes it: untraced "dup2 N / write 5 / close 0".  fd_kept_dup2 FILE */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int ready[2], go[2];

static void *worker(void *arg)
{
    (void)arg;
    char c = 0;
    setlocale(LC_ALL, NULL); /* measured with the thread's own counters (the shim alone) */
    void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD); /* so is dlopen (both modes) */
    if (h)
        dlclose(h);
    if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
        return NULL;
    return NULL;
}

int main(int argc, char **argv)
{
    char c = 1;
    pthread_t w;
    if (argc < 2 || pipe(ready) || pipe(go) || pthread_create(&w, NULL, worker, NULL))
        return 1;
    if (read(ready[0], &c, 1) != 1)
        return 1;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int n = (int)rl.rlim_cur;
    rl.rlim_cur = rl.rlim_cur + 16 <= rl.rlim_max ? rl.rlim_cur + 16 : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl))
        return 1;
    int f = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    printf("dup2 %d\n", dup2(f, n) == n);
    close(f);
    if (write(go[1], &c, 1) != 1 || pthread_join(w, NULL))
        return 1;
    errno = 0;
    long wr = write(n, "data\n", 5);
    printf("write %ld %s\n", wr, strerror(errno));
    errno = 0;
    int cl = close(n);
    printf("close %d %s\n", cl, strerror(errno));
    return 0;
}
