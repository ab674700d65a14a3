/* libc-internal reads before the shim starts and after (the end line's sums, docs/stracer.md
 * "The end line"): getrpcbyname (not wrapped: NSS reads /etc/nsswitch.conf and /etc/rpc inside
 * libc) from the program's preinit array, which runs before every library's constructor, the
 * shim's too, then again from main.
 *     kio_early */
#include <netdb.h>
#include <stdio.h>

static int early;

static void first(int argc, char **argv, char **envp)
{
    (void)argc, (void)argv, (void)envp;
    early = getrpcbyname("portmapper") != NULL;
}
__attribute__((section(".preinit_array"), used)) static void (*const preinit)(int, char **,
                                                                             char **) = first;

int main(void)
{
    endrpcent();
    int later = getrpcbyname("portmapper") != NULL;
    printf("early %d later %d\n", early, later);
    return 0;
}
