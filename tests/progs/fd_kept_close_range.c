/* A worker thread makes a measured call (dlopen: the shim keeps its counters descriptor above
 * the soft RLIMIT_NOFILE, kio.c), then the app closes a low range of its descriptors
 * (close_range 3..100) and lists what is open: untraced "fds 0 1 2 3" (3: the listing's
 * own).  fd_kept_close_range */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int state; /* 1: the worker measured, 2: the range closed */

static void *worker(void *arg)
{
    void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD); /* measured with its own counters */
    if (h)
        dlclose(h);
    pthread_mutex_lock(&m);
    state = 1;
    pthread_cond_broadcast(&cv);
    while (state != 2)
        pthread_cond_wait(&cv, &m);
    pthread_mutex_unlock(&m);
    return arg;
}

int main(void)
{
    pthread_t w;
    if (pthread_create(&w, NULL, worker, NULL))
        return 1;
    pthread_mutex_lock(&m);
    while (state != 1)
        pthread_cond_wait(&cv, &m);
    int r = close_range(3, 100, 0); /* the worker alive, its descriptor kept */
    state = 2;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&m);
    if (r || pthread_join(w, NULL))
        return 1;
    printf("fds");
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.')
            printf(" %s", e->d_name);
    printf("\n");
    return 0;
}
