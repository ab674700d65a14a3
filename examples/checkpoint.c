/* A small simulation-style program: reads a config with stdio, writes a checkpoint in 1 MiB
 * blocks, appends a log line per step, re-reads the checkpoint header and stats its outputs. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK (1 << 20)

static void write_checkpoint(const char *path, int blocks, char *buf)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (int b = 0; b < blocks; b++)
        pwrite(fd, buf, BLOCK, (off_t)b * BLOCK);
    fsync(fd);
    close(fd);
}

int main(void)
{
    FILE *cfg = fopen("demo.cfg", "w");
    fprintf(cfg, "steps 3\nblocks 4\n");
    fclose(cfg);

    int steps = 0, blocks = 0;
    char line[64];
    cfg = fopen("demo.cfg", "r");
    while (fgets(line, sizeof line, cfg)) {
        sscanf(line, "steps %d", &steps);
        sscanf(line, "blocks %d", &blocks);
    }
    fclose(cfg);

    char *buf = malloc(BLOCK);
    memset(buf, 7, BLOCK);
    FILE *log = fopen("demo.log", "a");
    for (int s = 0; s < steps; s++) {
        char name[32];
        snprintf(name, sizeof name, "ckpt.%d", s);
        write_checkpoint(name, blocks, buf);
        for (int i = 0; i < 100; i++) /* many tiny writes: the report flags them */
            fprintf(log, "step %d item %d\n", s, i);
    }
    fclose(log);

    struct stat st;
    int fd = open("ckpt.0", O_RDONLY);
    read(fd, buf, 4096);
    close(fd);
    stat("ckpt.0", &st);
    stat("missing.cfg", &st); /* fails with ENOENT */
    printf("wrote %d checkpoints of %lld bytes\n", steps, (long long)st.st_size);
    free(buf);
    return 0;
}
