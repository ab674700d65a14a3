/* The kernel-counting rule as the shim and the stracer's loop apply it (iot_kio_counted of the
 * generated iot_kio.h): for each line "checks errno offset count" on stdin, 1 if counted, else 0. */
#include <stdio.h>

#include "iot_kio.h"

int main(void)
{
    unsigned checks;
    long long err, off;
    unsigned long long count;
    while (scanf("%u %lld %lld %llu", &checks, &err, &off, &count) == 4)
        printf("%d\n", iot_kio_counted(checks, err, off, count));
    return 0;
}
