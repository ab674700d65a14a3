/* POSIX semaphores and shared memory by name (preload/wrap_shm.c): argv[1] is a unique name.
 * Prints each call's result and errno, for comparison untraced vs traced. */
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    char name[200];
    snprintf(name, sizeof name, "/%s", argv[1]);
    for (int i = 0; i < 3; i++) { /* created, then opened while it exists */
        errno = 0;
        sem_t *s = sem_open(name, O_CREAT, 0600, 1);
        printf("sem_open %d %d\n", s != SEM_FAILED, errno);
        int v = -1;
        if (s != SEM_FAILED) {
            sem_wait(s);
            sem_post(s);
            sem_getvalue(s, &v);
            sem_close(s);
        }
        printf("value %d\n", v);
    }
    errno = 0;
    printf("sem_open excl %d %d\n", sem_open(name, O_CREAT | O_EXCL, 0600, 1) != SEM_FAILED, errno);
    printf("sem_unlink %d %d\n", sem_unlink(name), errno);
    errno = 0;
    printf("sem_unlink again %d %d\n", sem_unlink(name), errno);
    errno = 0;
    printf("sem_open bad %d %d\n", sem_open("a/b", 0) != SEM_FAILED, errno);
    errno = 0;
    printf("sem_open missing %d %d\n", sem_open(name, 0) != SEM_FAILED, errno);
    char longname[260]; /* "sem." + 252 bytes: too long a file name, left to glibc (its open) */
    memset(longname, 'x', sizeof longname);
    longname[0] = '/';
    longname[253] = 0;
    for (int i = 0; i < 3; i++) {
        errno = 0;
        sem_t *s = sem_open(longname, O_CREAT, 0600, 1);
        printf("sem_open long %d %d\n", s != SEM_FAILED, errno);
    }

    int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
    printf("shm_open %d %d\n", fd >= 0, errno);
    printf("write %zd\n", write(fd, "shared\n", 7));
    printf("cloexec %d\n", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    close(fd);
    errno = 0;
    fd = shm_open(name, O_RDONLY, 0);
    char buf[16] = {0};
    printf("read %zd %s", read(fd, buf, sizeof buf - 1), buf);
    close(fd);
    printf("shm_unlink %d %d\n", shm_unlink(name), errno);
    errno = 0;
    printf("shm_unlink again %d %d\n", shm_unlink(name), errno);
    errno = 0;
    printf("shm_open dir %d %d\n", shm_open("/", O_RDONLY, 0), errno);
    return 0;
}
