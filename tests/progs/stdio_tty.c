/* Lines to stdout, several a call: on a terminal glibc line-buffers it, and its first call,
 * before the buffer is made, writes a line a syscall. */
#include <stdio.h>

int main(void)
{
    printf("one\ntwo\n");
    printf("three %d\nfour\n", 3);
    fputs("five\nsix\n", stdout);
    return 0;
}
