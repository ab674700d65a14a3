/* Locale files read inside setlocale (a wrapped call: libc-internal I/O under the stracer) from
 * two callers: one loads LC_CTYPE, two LC_TIME then LC_NUMERIC. */
#include <locale.h>
#include <stdio.h>

__attribute__((noinline)) static void one(void)
{
    setlocale(LC_CTYPE, "C.UTF-8");
}

__attribute__((noinline)) static void two(void)
{
    setlocale(LC_TIME, "C.UTF-8");
    setlocale(LC_NUMERIC, "C.UTF-8");
}

int main(void)
{
    one();
    two();
    puts(setlocale(LC_NUMERIC, NULL));
    return 0;
}
