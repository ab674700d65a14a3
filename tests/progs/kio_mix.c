/* A mix the completeness check must explain to the byte: descriptor and stdio I/O, output left
 * in stdio buffers at exit (and inherited by a forked child), setlocale and dlopen (their inner
 * reads), a child that is reaped and one that execs, a popen stream flushed by pclose. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    char buf[8192];
    memset(buf, 'k', sizeof buf);
    setlocale(LC_ALL, "");
    if (!dlopen("libm.so.6", RTLD_NOW))
        return 1;
    int fd = open("mix.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    for (int i = 0; i < 8; i++)
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
            return 1;
    pread(fd, buf, 5000, 100);
    close(fd);
    FILE *f = fopen("mix.txt", "w");
    for (int i = 0; i < 500; i++)
        fprintf(f, "line %d\n", i);
    fclose(f);
    f = fopen("mix.txt", "r");
    while (fgets(buf, sizeof buf, f))
        ;
    fclose(f);
    FILE *o = fopen("mix.out", "w");
    fputs("buffered when the child forks; flushed by both at their exits\n", o);
    pid_t c = fork();
    if (c == 0) {
        fputs("the child's own line\n", o);
        exit(0);
    }
    waitpid(c, NULL, 0);
    c = fork();
    if (c == 0) {
        execl("/bin/cat", "cat", "mix.txt", (char *)NULL);
        _exit(127);
    }
    waitpid(c, NULL, 0);
    FILE *p = popen("cat > /dev/null", "w");
    if (!p || fputs("flushed into the pipe by pclose\n", p) < 0 || pclose(p) != 0)
        return 1;
    fputs("and the parent's, still buffered at exit", o);
    return 0;
}
