/* printf with no newline: stdio flushes it in exit(), after main returned.  Not missed. */
#include <stdio.h>

int main(void)
{
    printf("no newline");
    return 0;
}
