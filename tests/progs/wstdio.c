/* Wide-character stdio on a UTF-8 file and on stdin/stdout (tests/test_wstdio.py): writes a file
 * with each wide writer, reads it back with each wide reader, copies stdin to stdout a wide
 * character at a time, and prints what it read.  Run under a UTF-8 locale. */
#define _GNU_SOURCE /* the _unlocked forms */
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

int main(int argc, char **argv)
{
    if (argc < 2 || !setlocale(LC_ALL, ""))
        return 2;
    FILE *f = fopen(argv[1], "w");
    if (!f || fwide(f, 1) <= 0)
        return 3;
    for (int i = 0; i < 400; i++) { /* ~16 KiB: several buffers */
        fputws(L"h\u00e9llo w\u00f6rld ", f);
        fputws_unlocked(L"\u65e5\u672c ", f);
        fwprintf(f, L"%d %ls", i, L"na\u00efve");
        fputwc(L'\u00e7', f);
        putwc(L'a', f);
        fputwc_unlocked(L'!', f);
        putwc_unlocked(L'\n', f);
    }
    if (fclose(f) != 0)
        return 4;
    f = fopen(argv[1], "r");
    if (!f)
        return 5;
    wchar_t line[256];
    long lines = 0, chars = 0, nums = 0;
    int n;
    wint_t c;
    while (fgetws(line, 256, f)) { /* the first half by lines */
        chars += (long)wcslen(line);
        if (++lines == 200)
            break;
    }
    if ((c = fgetwc(f)) != WEOF && ungetwc(c, f) == c && getwc(f) == c)
        chars++;
    while ((c = fgetwc_unlocked(f)) != WEOF && c != L'\n') /* the rest of that line */
        chars++;
    while (fwscanf(f, L"h\u00e9llo w\u00f6rld \u65e5\u672c %d na\u00efve\u00e7a!\n", &n) == 1)
        nums += n;
    while ((c = getwc_unlocked(f)) != WEOF)
        chars++;
    if (fgetws_unlocked(line, 256, f) || fclose(f) != 0)
        return 6;
    while ((c = getwchar()) != WEOF) /* stdin to stdout */
        if (putwchar(c) == WEOF)
            return 7;
    if ((c = getwchar_unlocked()) != WEOF || putwchar_unlocked(L'\n') == WEOF)
        return 8;
    wprintf(L"%ld lines %ld chars %ld sum\n", lines, chars, nums);
    return 0;
}
