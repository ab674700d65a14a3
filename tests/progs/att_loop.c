/* A running job to attach to: the main thread pwrites 8-byte records at consecutive offsets of
 * argv[1] (record i at 8*i), a second thread appends to argv[2], and every 10th record a child
 * is forked that writes argv[3] and exits.  Runs until killed. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *side;

static void *other(void *unused)
{
    (void)unused;
    int fd = open(side, O_WRONLY | O_CREAT | O_APPEND, 0644);
    for (;;) {
        if (write(fd, "t\n", 2) != 2)
            return NULL;
        usleep(20000);
    }
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    side = argv[2];
    pthread_t t;
    pthread_create(&t, NULL, other, NULL);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (long i = 0;; i++) {
        char rec[9];
        snprintf(rec, sizeof rec, "%07ld\n", i);
        if (pwrite(fd, rec, 8, 8 * i) != 8)
            return 1;
        if (i % 10 == 9) {
            pid_t p = fork();
            if (p == 0) {
                int c = open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0644);
                _exit(write(c, "c\n", 2) == 2 ? 0 : 1);
            }
            waitpid(p, NULL, 0);
        }
        usleep(10000);
    }
}
