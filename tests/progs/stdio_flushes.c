/* Every way stdio writes or reads a buffer behind the app's back.  as's pattern: a "w+" stream
 * written in pieces with seeks back (each seek flushes, then reads the block back) and a seek
 * past the end (a read shorter than the seek's block); freopen flushing the stream it
 * reopens; a line-buffered stdout flushed by a read from a line-buffered stream (the prompt);
 * fflush(NULL) flushing every stream, then _exit (the bytes written after are discarded).
 * Usage: stdio_flushes IN DIR */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char path[4096];

static const char *in_dir(const char *dir, const char *name)
{
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    char z[64];
    memset(z, 'z', sizeof z);
    FILE *rw = fopen(in_dir(argv[2], "rw.bin"), "w+");
    if (!rw)
        return 1;
    fseek(rw, 256, SEEK_SET), fwrite(z, 1, 9, rw);
    fseek(rw, 64, SEEK_SET), fwrite(z, 1, 46, rw);
    fseek(rw, 112, SEEK_SET), fwrite(z, 1, 48, rw);
    fseek(rw, 0, SEEK_SET), fwrite(z, 1, 64, rw);
    fseek(rw, 400, SEEK_SET), fwrite(z, 1, 10, rw); /* past the end (265 bytes) */
    if (fclose(rw))
        return 1;

    if (!freopen(in_dir(argv[2], "first.txt"), "w", stdout))
        return 1;
    printf("to the first file, no newline");
    if (!freopen(in_dir(argv[2], "second.txt"), "a", stdout)) /* flushes the first */
        return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    FILE *in = fopen(argv[1], "r");
    char line[256];
    if (!in || setvbuf(in, NULL, _IOLBF, 0))
        return 1;
    printf("prompt: ");
    if (!fgets(line, sizeof line, in)) /* flushes the prompt first */
        return 1;
    printf("got %zu", strlen(line)); /* waits: no newline */

    FILE *log = fopen(in_dir(argv[2], "log.txt"), "w");
    if (!log)
        return 1;
    fwrite(z, 1, 40, log);
    if (fflush(NULL)) /* the log's 40 and stdout's "got N" */
        return 1;
    fwrite(z, 1, 7, log); /* discarded by _exit */
    _exit(0);
}
