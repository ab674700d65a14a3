/* stdout into a pipe whose reader goes: a line flushed, then, once the reader has gone (POLLERR:
 * its end closed), a line written into it.  MODE: "die" (SIGPIPE's default: killed in exit's
 * final flush), "ignore" (SIGPIPE ignored: that flush fails with EPIPE), "unbuffered" (ignored;
 * puts writes the first line in two writes, fputs the second itself and fails), "fflush"
 * (ignored, an fflush fails). */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "die";
    static char buf[4096];
    setvbuf(stdout, buf, strcmp(mode, "unbuffered") ? _IOFBF : _IONBF, sizeof buf);
    if (strcmp(mode, "die"))
        signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "unbuffered"))
        fputs("first line\n", stdout);
    else
        puts("first line"); /* unbuffered: the string, then the newline, two writes */
    fflush(stdout);
    struct pollfd p = {1, 0, 0}; /* POLLERR is always reported */
    poll(&p, 1, 30000);
    fputs("b\n", stdout);
    if (!strcmp(mode, "fflush"))
        fflush(stdout);
    return 0;
}
