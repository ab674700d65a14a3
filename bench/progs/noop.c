/* A program that does nothing: what `iotrace run` costs a run by itself (bench/cost_bench.py). */
int main(void)
{
    return 0;
}
