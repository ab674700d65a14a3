/* The `iotrace` command in C (launcher/): `iotrace run` whole, the stracer of a full run
 * started only to trace, everything else handed to the Python command (iotrace-py).  One file
 * per concern: main.c (which path), run.c (options, environment, fork/exec/wait, the run
 * record, the closing lines), stracer.c (a full run's stracer and its pipe), dir.c (the trace
 * directory), mpi.c and elf.c (which MPI's shim), end.c (the end line from the shim logs' KIO
 * records, through src/iotrace/_kio.c), trim.c (the room of killed processes' logs, given back
 * at the end). */
#ifndef IOTRACE_LAUNCH_H
#define IOTRACE_LAUNCH_H
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* main.c */
extern char iot_self_dir[4096]; /* the directory of this executable (and of iotrace-py) */
extern char iot_given_sigign[32]; /* what iotrace was given to ignore: /proc's SigIgn, hex */
extern int iot_std_closed; /* bit fd: descriptor fd (0-2) was closed when iotrace started */
void iot_std_release(void); /* closes them again: in the command, before its exec */
/* a line "iotrace: ..." of a rank of a parallel job says "iotrace: rank N: ...": its end lines
 * are that rank's (the stracer's lines too: launch.py, IOTRACE_GIVEN_TAG) */
extern char iot_tag[64];
void iot_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int iot_exec_python(char **argv);

/* run.c: argv from "run" on; -1: not ours (hand it to Python) */
int iot_run(int argc, char **argv);
/* fork + execve with the signals as iotrace was given them (deaf: the job's signals ignored),
 * the close-on-exec fds in keep inherited; pid, or -errno of the exec */
pid_t iot_spawn(const char *exe, char **argv, char **env, const int *keep, int nkeep, int deaf);
extern volatile pid_t iot_app; /* the job's signals are passed on to it */
/* from now on (stracer > 0), the job's signals and Ctrl-C tell the stracer to end what the
 * command left behind (SIGUSR1); 0: the stracer is gone */
void iot_end_rest(pid_t stracer);


/* trim.c: the logs of host in the trace directory dfd cut after their last written chunk,
 * those no process may write any more (a process killed before its exit's trim) */
void iot_trim_logs(int dfd, const char *host);

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
/* the fault file (where the shim says which logs it could not write: preload/writer.c), which
 * proves the directory writable and its paths short enough, room reserved; 0 or errno */
int iot_prepare_dir(struct iot_dir *d, const char *host, char *faults, size_t cap);
/* the run record's file STEM[.N]SUFFIX made of the empty fault file, its room kept (a free
 * would sleep on a `discard` mount); fd, or -1: make a new one */
int iot_take_reservation(struct iot_dir *d, const char *faults, const char *stem,
                         const char *suffix, char *name, size_t cap);
/* a new file STEM[.N]SUFFIX; fd or -1 */
int iot_create_unique(struct iot_dir *d, const char *stem, const char *suffix, char *name,
                      size_t cap);
int iot_path_clean(const char *in, char *out, size_t cap); /* -1: too long (errno) */
const char *iot_rank(void); /* the rank the launcher of a parallel job gave us, or NULL */
/* why a user other than root and the caller may change the entries (a directory) or bytes (a
 * file) of st: detail filled, or NULL */
const char *iot_others_may_change(const struct stat *st, char *detail, size_t cap);
int iot_install_exposed(const char *path, char *msg, size_t cap); /* 1: others may change it */

/* install.c: 1 (msg: the file or directory, and why) if another user could change the code
 * iotrace runs as the caller: the launcher, its scripts and their interpreter, the package
 * directory `pkg` (NULL: not known) and everything in it */
int iot_install_check(const char *pkg, char *msg, size_t cap);
#define IOT_INSTALL_REFUSED                                                                        \
    "iotrace: %s: another user could change the code iotrace runs as you (uid %u): refusing to "  \
    "run (reinstall iotrace where only you and root can write, e.g. under umask 022)"
/* the installed package's directory beside this launcher (SCRIPTS/../lib/pythonX.Y/
 * {site,dist}-packages/iotrace, one such); 0: not found (Python finds it) */
int iot_package_dir(char *out, size_t cap);
int iot_trace_dir_command(int argc, char **argv); /* `iotrace _trace-dir ...` */
int iot_way_command(int argc, char **argv); /* `iotrace _way DIR` */
int iot_private_group_command(void);        /* `iotrace _private-group` */

/* pyenv.c: into env (room for every entry of environ, twice with `given`, + 7): environ with Python's variables
 * as iotrace's Python processes get them, and with `given` each as given, IOTRACE_GIVEN_PY_*
 * (for the command iotrace-py starts: run.py); IOTRACE_GIVEN_* of environ left out; NULL-ended,
 * the count */
size_t iot_python_env(char **env, int given);

/* mpi.c: "openmpi", "mpich" or NULL */
const char *iot_command_family(char **command, int n);
int iot_which(const char *name, const char *path, char *out, size_t cap);

/* elf.c */
int iot_elf_dynamic(const char *path, char needed[][128], int max_needed, int *n_needed,
                    char *runpath, size_t cap);
int iot_elf_names_liburing(const char *path);

/* end.c: the completeness line of the process tree of `root` on `host` */
void iot_end_line(const char *dir, const char *host, int root, char *out, size_t cap);

/* stracer.c */
struct iot_traced {
    pid_t app;
    int returncode, done, unavailable, exec_errno, log_errno, exited, exited_rc, has_end;
    int root_done, root_rc; /* the command's own exit, said by the stracer at once */
    char why[512], end[8192];
};
void iot_stracer(const char *exe, char **argv, char **env, struct iot_dir *d, const char *shim,
                 const char *ender, struct iot_traced *t);
void iot_stracer_end_line(const char *dir, const char *host, int root, char *out, size_t cap);

#endif
