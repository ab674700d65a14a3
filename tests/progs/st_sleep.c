/* Waits: for the stracer-killed, signal, job-control and Ctrl-C tests.  "read": until its
 * standard input ends (a test that must stop it first closes the pipe when it is done). */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "stop"))
        raise(SIGSTOP);
    if (argc > 1 && !strcmp(argv[1], "exit"))
        return atoi(argv[2]);
    if (argc > 1 && !strcmp(argv[1], "kill"))
        raise(atoi(argv[2]));
    if (argc > 1 && !strcmp(argv[1], "read")) {
        char c;
        while (read(0, &c, 1) > 0)
            ;
        write(1, "done\n", 5);
        return 0;
    }
    int n = argc > 2 ? atoi(argv[2]) : 30;
    for (int i = 0; i < n * 10; i++) {
        usleep(100000);
        if (argc > 1 && !strcmp(argv[1], "stop"))
            break;
    }
    write(1, "done\n", 5);
    return 0;
}
