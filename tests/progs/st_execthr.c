/* A non-leader thread execs while others sleep: the tracer must not hang on vanished threads. */
#include <pthread.h>
#include <unistd.h>

static void *sleeper(void *arg)
{
    (void)arg;
    sleep(30);
    return NULL;
}

static void *execer(void *arg)
{
    (void)arg;
    usleep(20000);
    execl("/bin/true", "true", (char *)NULL);
    return NULL;
}

int main(void)
{
    pthread_t t[4];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, sleeper, NULL);
    pthread_create(&t[3], NULL, execer, NULL);
    pthread_join(t[3], NULL);
    return 1;
}
