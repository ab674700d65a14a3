/* Reads stdin, a pipe whose writer dribbles each piece in small writes with pauses, with one
 * call of each kind that refills until it has what it wants: fgets, getline, getdelim, fscanf,
 * a small fread, an fscanf("%d") whose buffer holds only the newline the fread left (it skips
 * it and reads on), then getc to the end.  Each of them reads several times in one call.
 * Prints what it got, one item a line.  With an argument it then dies of SIGTERM: its shim
 * takes no reading at its end. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    char buf[256], word[64], *line = NULL;
    size_t cap = 0;
    if (!fgets(buf, sizeof buf, stdin))
        return 1;
    printf("fgets %s", buf);
    if (getline(&line, &cap, stdin) < 0)
        return 2;
    printf("getline %s", line);
    if (getdelim(&line, &cap, ';', stdin) < 0)
        return 3;
    printf("getdelim %s\n", line);
    if (fscanf(stdin, "%63s", word) != 1)
        return 4;
    printf("fscanf %s\n", word);
    size_t n = fread(buf, 1, 6, stdin);
    printf("fread %.*s\n", (int)n, buf);
    int num = 0;
    if (fscanf(stdin, "%d", &num) != 1)
        return 6;
    printf("fscanf past a newline %d\n", num);
    int c, k = 0;
    while ((c = getc(stdin)) != EOF)
        k++;
    printf("getc %d\n", k);
    free(line);
    if (argc > 1 && argv[1]) {
        fflush(stdout);
        raise(SIGTERM);
    }
    return n == 6 ? 0 : 5;
}
