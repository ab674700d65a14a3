/* Four threads write 500 lines each through one shared FILE, then the main thread reads the
 * file back line by line: every call is recorded once, in the thread that made it. */
#include <pthread.h>
#include <stdio.h>

static FILE *shared;

static void *writer(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < 500; i++)
        fprintf(shared, "thread %ld line %03d\n", id, i); /* 18 bytes */
    return NULL;
}

int main(void)
{
    shared = fopen("threads.txt", "w");
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, writer, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    fclose(shared);
    FILE *f = fopen("threads.txt", "r");
    char line[64];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n++;
    fclose(f);
    printf("%d\n", n);
    return 0;
}
