/* A mix the completeness check must explain to the byte: descriptor and stdio I/O, output left
 * in stdio buffers at exit (and inherited by a forked child), setlocale and dlopen (their inner
 * reads), a child that is reaped and one that execs, a popen stream flushed by pclose; a
 * copy_file_range before them (the calls measured around after it were not measured). */
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
    int a = open("mix.src", O_RDWR | O_CREAT | O_TRUNC, 0644);
    int b = open("mix.dst", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (write(a, buf, 100) != 100 || copy_file_range(a, &(off_t){0}, b, NULL, 100, 0) != 100)
        return 1;
    close(a);
    close(b);
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
