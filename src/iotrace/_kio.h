/* What a trace explains of the kernel's read/write counters (iotrace/kio.py has the rules in
 * its docstring): the one computation, in C, shared by kio.py (through cffi: the analyzer's
 * completeness and full `iotrace run`'s end line) and the C launcher (`iotrace run
 * --no-stracer`'s end line).  Plain int64 fields: cffi declares this file as it is (_kio.c
 * checks the widths of the KIO lists against format.py's, iot_format.h, when it compiles). */
#ifndef IOTRACE_KIO_H
#define IOTRACE_KIO_H
#include <stddef.h>
#include <stdint.h>

/* one KIO record: source 0 shim, 1 stracer; when 0 start, 1 exec, 2 exit, 3 _exit, 4 end,
 * 5 attach, 6 seccomp (just before the app's seccomp filter: the image's last); lost: the
 * errno of a reading the shim could not take (counters zeros); next: at an exec, 1 + the
 * index in format.KIO_NEXT of why the next image may have no log (0: none);
 * shim (has_shim): the stracer's end reading of the shim's own I/O and events' sums;
 * dropped: at a "seccomp" reading, its log's SECCOMP counts: [0] records the shim had no room
 * for after the filter, [1] calls it let through untraced (threads started after it) */
struct iot_kio_reading {
    int64_t source, when, t, image;
    int64_t counters[7], own[4], pending, streams, sums[6];
    int64_t has_threads, threads[4], uring[3];
    int64_t lost, euid, next, has_shim, shim[10];
    int64_t dropped[2];
    int64_t nnp; /* a "seccomp" reading: the shim alone went out at no_new_privs, no filter seen */
};

/* an event the kernel counts: t, its image (a shim event) and [rchar, wchar, syscr, syscw,
 * stdio read, stdio written] */
struct iot_kio_event {
    int64_t t, image, sums[6];
};

/* one process: end 0 none, 1 "stracer", 2 "shim at exit"; uring 0 "", 1 "liburing",
 * 2 "rings", 3 "held"; why: without an end, the kind of why (iot_kio_no_end_kind); nolog: as
 * a reading's next */
struct iot_kio_process {
    int64_t end, kernel[4], events[4], stdio[4], before_shim[4], own[4], children[4];
    int64_t end_t, alone, unfinished, tail, final[4], storage[2], uring;
    int64_t why, attached, nolog, nolog_uid, shimmed;
    /* an image installed a seccomp filter (a "seccomp" reading): 1; 2: it set no_new_privs,
     * where the shim alone goes out, and no filter was seen */
    int64_t sandboxed;
    /* without counters at its end (has_floor: its last reading is a shim's at an image's
     * start): the least the kernel added to its parent at the wait -- that reading (and its
     * own read) and, unless floor_partial (its events not known), the image's events after it;
     * floor_t: the last of those times */
    int64_t has_floor, floor[4], floor_t, floor_partial;
    /* reaped children without counters at their end, taken off `kernel` by their floors; some
     * of whose floors lack their last events (iotrace run's line: it reads no log whole) */
    int64_t unended, unended_partial;
    int64_t dropped[2]; /* its images' readings' dropped */
    /* an exec after the app's seccomp filter: the kernel's reads at it are not known (the
     * image before took no reading at it, the stracer's is after them) */
    int64_t exec_unread;
    /* of final[1]: stdio's final flush as recorded before the shim's exit reading, which may
     * have written less (cut by SIGPIPE, a full disk) */
    int64_t final_pending;
};

/* kinds of no_end_why: 0 not known, 1 "ids", 2 "fds", 3 "setid", 4 "unread", 5 "seccomp",
 * 6 "nnp" */
#define IOT_KIO_NO_END_KINDS 7

struct iot_kio_job {
    int64_t kernel_bytes, explained_bytes, kernel_calls, explained_calls, stdio_calls;
    /* of stdio_calls, writes: a line-buffered stream writes a line a syscall, several a call */
    int64_t stdio_writes;
    int64_t processes, without_end, short_, short_bytes, unfinished, tail, uring, stracer;
    int64_t attached, no_end[IOT_KIO_NO_END_KINDS];
    /* sandboxed: their app installed a seccomp filter and their last events are not summed
     * (not in unfinished); sandboxed_tail: theirs were, from the trace */
    int64_t sandboxed, sandboxed_tail;
    int64_t sandboxed_nnp, sandboxed_tail_nnp; /* of those, the ones whose was a no_new_privs */
    /* short_reaped: of the short, those that reaped a child without counters at its end;
     * reaped: processes left out, their children's floors lacking their last events */
    int64_t short_reaped, reaped;
    /* the readings' dropped summed over every process (with or without counters at its end),
     * the processes with any, and the one with the most: its pid and command's name */
    int64_t dropped[2], dropped_procs, dropped_pid, dropped_most;
    char dropped_command[64];
    /* logs of processes whose parent is outside their PID namespace (unshare -p, a container:
     * getppid() is 0): they and the processes in it are named by their pids in it */
    int64_t pidns;
};

/* kio.no_end_why's kind for a process whose last reading is r */
int64_t iot_kio_no_end_kind(const struct iot_kio_reading *r);
/* the job line's short text for a kind (NULL: 0, not known) */
const char *iot_kio_no_end_said(int64_t kind);

/* kio.explain: one process from its readings (any order), its stracer events, and if
 * shim_known its shim events (of every image: those of its images are used) */
void iot_kio_explain(const struct iot_kio_reading *r, size_t n, const struct iot_kio_event *st,
                     size_t nst, const struct iot_kio_event *shim, size_t nshim, int shim_known,
                     struct iot_kio_process *out);
/* kio.link: parent[i] the index of process i's parent, or -1 */
void iot_kio_link(struct iot_kio_process *p, size_t n, const int64_t *parent);
/* p, the process `pid` running `command` (its first word's base name is the one said) */
void iot_kio_job_add(struct iot_kio_job *j, const struct iot_kio_process *p, int64_t pid,
                     const char *command);
/* Job.line: the job's completeness in one line; its length */
size_t iot_kio_job_line(const struct iot_kio_job *j, char *out, size_t cap);
#endif
