/* The `iotrace` command in C (launcher/): `run --no-stracer` whole, everything else handed to
 * the Python command (iotrace-py).  One file per concern: main.c (which path), run.c (options,
 * environment, fork/exec/wait, the run record, the closing lines), dir.c (the trace directory,
 * as tracedir.py has it), mpi.c and elf.c (which MPI's shim: mpi.py's rules), end.c (the end
 * line from the shim logs' KIO records, through src/iotrace/_kio.c). */
#ifndef IOTRACE_LAUNCH_H
#define IOTRACE_LAUNCH_H
#include <stddef.h>
#include <stdint.h>

/* main.c */
extern char iot_self_dir[4096]; /* the directory of this executable (and of iotrace-py) */
void iot_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int iot_exec_python(char **argv);

/* run.c: argv from "run" on; -1: not ours (hand it to Python) */
int iot_run(int argc, char **argv);

/* dir.c */
struct iot_dir {
    char path[4096]; /* as given or named (pathlib's spelling) */
    char real[4096]; /* resolved */
    int fd;
    int share;
};
enum { DIR_OK = 0, DIR_REFUSED = 1, DIR_OSERR = 2 };
/* out: -o DIR or NULL; command0: the command's first word (the default name); reuse: 0, 'f',
 * 'a'.  DIR_REFUSED: msg holds the line; DIR_OSERR: errno set. */
int iot_trace_dir(struct iot_dir *d, const char *out, const char *command0, int share, int reuse,
                  char *msg, size_t cap);
/* the fault file (run.prepare_dir); 0 or errno */
int iot_prepare_dir(struct iot_dir *d, const char *host, char *faults, size_t cap);
/* a new file STEM[.N]SUFFIX; fd or -1 */
int iot_create_unique(struct iot_dir *d, const char *stem, const char *suffix, char *name,
                      size_t cap);
int iot_path_clean(const char *in, char *out, size_t cap); /* -1: too long (errno) */

/* mpi.c: "openmpi", "mpich" or NULL */
const char *iot_command_family(char **command, int n);
int iot_which(const char *name, const char *path, char *out, size_t cap);

/* elf.c */
int iot_elf_dynamic(const char *path, char needed[][128], int max_needed, int *n_needed,
                    char *runpath, size_t cap);
int iot_elf_names_liburing(const char *path);

/* end.c: the completeness line of the process tree of `root` on `host` */
void iot_end_line(const char *dir, const char *host, int root, char *out, size_t cap);

#endif
