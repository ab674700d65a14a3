/* Stops itself (SIGSTOP) in a stack where libc and this program alternate: main -> qsort ->
 * outer (comparator) -> bsearch -> inner (comparator) -> raise (test_cost.py: unwinding a
 * stopped thread across modules). */
#include <signal.h>
#include <stdlib.h>

static int stopped;

static int inner(const void *a, const void *b)
{
    if (!stopped++)
        raise(SIGSTOP);
    return *(const int *)a - *(const int *)b;
}

static int outer(const void *a, const void *b)
{
    static const int keys[] = {1, 2, 3};
    int k = 2;
    bsearch(&k, keys, 3, sizeof k, inner);
    return *(const int *)a - *(const int *)b;
}

int main(void)
{
    int v[] = {3, 1, 2};
    qsort(v, 3, sizeof *v, outer);
    return v[0] == 1 ? 0 : 1;
}
