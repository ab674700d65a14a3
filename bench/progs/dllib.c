/* The library bench/progs/dlloop.c loads (cost_bench.py's dlopen case): its size does not
 * matter, its loading does. */
int dllib_answer(void);
int dllib_answer(void)
{
    return 42;
}
