/* pthread_getattr_np of the initial thread (glibc reads /proc/self/maps for its stack, as
 * Rust's std does at every program's start) and of a thread it started (no I/O). */
#include <pthread.h>
#include <stdio.h>

static size_t stack_size(pthread_t th)
{
    pthread_attr_t a;
    size_t n = 0;
    if (pthread_getattr_np(th, &a) == 0) {
        pthread_attr_getstacksize(&a, &n);
        pthread_attr_destroy(&a);
    }
    return n;
}

static void *run(void *arg)
{
    (void)arg;
    return (void *)stack_size(pthread_self());
}

int main(void)
{
    pthread_t t;
    void *got = NULL;
    if (pthread_create(&t, NULL, run, NULL) || pthread_join(t, &got))
        return 1;
    printf("%d %d\n", stack_size(pthread_self()) > 0, got != NULL);
    return 0;
}
