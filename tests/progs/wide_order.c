/* Streams left for stdio's final flush, on one pipe: a wide stream opened first, then a narrow
 * one (newer streams come first in glibc's list, which the final flush walks), then stdout's
 * own line.  Untraced the output is "narrow\nwide\nstdout\n". */
#include <stdio.h>
#include <unistd.h>
#include <wchar.h>

int main(void)
{
    FILE *w = fdopen(dup(1), "w"), *n = fdopen(dup(1), "w");
    if (!w || !n || fwide(w, 1) <= 0)
        return 1;
    fputws(L"wide\n", w);
    fputs("narrow\n", n);
    fputs("stdout\n", stdout);
    return 0;
}
