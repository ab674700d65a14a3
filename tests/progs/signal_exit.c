/* Dies of the signal named on the command line after one write. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    write(1, "x\n", 2);
    raise(argc > 1 ? atoi(argv[1]) : SIGTERM);
    return 0;
}
