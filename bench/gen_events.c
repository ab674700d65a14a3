/* A synthetic I/O workload for the analyzer's scale bench: PROCS processes (fork), each making
 * about EVENTS wrapped calls on its own file in DIR (pwrites of varied sizes and offsets, reads,
 * seeks, some stats and reopens), so that every table of the report has rows; at most JOBS
 * (default: PROCS) run at once, so that a trace of many processes does not crowd the machine.
 *
 *     gen_events DIR PROCS EVENTS_PER_PROC [JOBS]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int work(const char *dir, int id, long events)
{
    char path[4096], buf[8192] = {0};
    struct stat st;
    snprintf(path, sizeof path, "%s/f%d", dir, id);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 1;
    for (long i = 0; i < events; i++) {
        long k = i % 16;
        size_t n = (size_t)(1 + (i * 37) % 8192);
        if (k < 8) {
            if (pwrite(fd, buf, n, (off_t)((i % 512) * 4096)) < 0)
                return 1;
        } else if (k < 12) {
            if (pread(fd, buf, n, (off_t)((i * 7) % 512 * 4096)) < 0)
                return 1;
        } else if (k < 14) {
            if (write(fd, buf, 16) < 0)
                return 1;
        } else if (k == 14) {
            lseek(fd, 0, SEEK_SET);
        } else if (i % 4096 == 15) {
            close(fd);
            fd = open(path, O_RDWR);
            if (fd < 0)
                return 1;
        } else {
            fstat(fd, &st);
        }
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s DIR PROCS EVENTS_PER_PROC [JOBS]\n", argv[0]);
        return 2;
    }
    int procs = atoi(argv[2]);
    long events = atol(argv[3]);
    int jobs = argc == 5 ? atoi(argv[4]) : procs;
    int bad = 0, status, running = 0;
    for (int p = 0; p < procs; p++) {
        if (running >= jobs && wait(&status) > 0) {
            bad |= !WIFEXITED(status) || WEXITSTATUS(status);
            running--;
        }
        pid_t pid = fork();
        if (pid == 0)
            _exit(work(argv[1], p, events));
        if (pid < 0)
            return 1;
        running++;
    }
    while (wait(&status) > 0)
        bad |= !WIFEXITED(status) || WEXITSTATUS(status);
    return bad;
}
