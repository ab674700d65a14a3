/* stdio buffers the stracer's filter lets through (docs/stracer.md, "stdio buffers").
 *
 * glibc's stdio flushes and refills a stream's buffer with read/write calls made inside libc,
 * where no cookie can be added (sysraw.h): under a stracer each one was a ptrace stop, covered
 * but costing ~10-50 us — for fwrite(16 bytes) one stop per 256 calls, more than the calls.
 * So, under a stracer only, the shim reserves a 4 GiB-aligned window of address space
 * (IOT_STDIO_ARENA, from src/iotrace/calls.py; the filter allows read and write whose buffer
 * lies in it) and gives each stream it opens — fopen, fdopen, freopen, and stdin/stdout at
 * their first I/O — a buffer there, with setvbuf before the stream's first I/O, of the size and
 * mode glibc's _IO_file_doallocate would have chosen:
 *
 *     size = BUFSIZ; if fstat works: a terminal (isatty, or a pty major) is left to glibc
 *     (line-buffered); st_blksize in (0, BUFSIZ) gives the size.
 *
 * (glibc >= 2.27; older ones took st_blksize unbounded, so the window stays off there.)  What
 * the app sees is unchanged: the same buffering, sizes and output.  What still stops: stdio's
 * direct transfers of large requests (glibc reads or writes whole blocks straight from the
 * caller's memory), terminals, streams glibc opens internally, and a stream whose buffer the
 * app replaced with setvbuf.  Buffers go back to a free list at fclose and freopen.
 *
 * Slots are BUFSIZ bytes, the largest size glibc picks; the window is reserved PROT_NONE and
 * made read-write 1 MiB at a time, so an idle window costs address space only — and is not
 * made at all under a finite RLIMIT_AS, which it would count against; one the app sets later
 * gives back all but its committed part (iot_arena_limit: wrap_rlimit.c), and so does an mmap of
 * the app's at an address in it (iot_arena_yield: wrap_mmap.c).  stdin and stdout get
 * theirs at their first I/O, when glibc would choose (wrap_stdio.c, hold); a buffer the app
 * replaces with setvbuf/setbuf/setbuffer goes back to the free list then. */
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <sched.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

#define WINDOW (1ULL << 32) /* the filter compares the high 32 bits of the buffer address */
#define SLOT ((size_t)BUFSIZ)
#define COMMIT ((size_t)1 << 20)
#define TTY_MAJOR_LO 136 /* glibc's DEV_TTY_P: Unix98 pty slaves */
#define TTY_MAJOR_HI 143
#define GLIBC_IO_UNBUFFERED 0x0002 /* libio.h: stderr, or setvbuf(_IONBF) before any I/O */
#define GLIBC_IO_USER_BUF 0x0001   /* libio.h: the buffer is not glibc's to free */

static struct {
    char *base; /* NULL: no window (no stracer, taken, or an old glibc) */
    size_t used, committed;
    size_t end; /* the window's reserved part: WINDOW, or what was committed (iot_arena_limit) */
    void *free; /* returned slots, linked through their first word */
    char lock;
    int noclose; /* glibc's fclose honours IOT_GLIBC_NOCLOSE */
} A;

static void lock(void)
{
    while (__atomic_test_and_set(&A.lock, __ATOMIC_ACQUIRE))
        sched_yield();
}

static void unlock(void)
{
    __atomic_clear(&A.lock, __ATOMIC_RELEASE);
}

/* fclose of a stream the shim opened leaves the close to the wrapper (wrap_stdio.c) by setting
 * glibc's internal _IO_FLAGS2_NOCLOSE; tried once on a pipe, so that a glibc where the flag
 * means something else keeps its own close. */
static int noclose_works(void)
{
    int p[2];
    if (IOT_SYSRAW(pipe2, p, O_CLOEXEC) != 0)
        return 0;
    IOT_REAL(fdopen);
    IOT_REAL(fclose);
    FILE *t = real_fdopen(p[0], "r");
    int ok = 0;
    if (t) {
        t->_flags2 |= IOT_GLIBC_NOCLOSE;
        ok = real_fclose(t) == 0 && fcntl(p[0], F_GETFD) >= 0;
    }
    if (ok || !t)
        IOT_SYSRAW(close, p[0]);
    IOT_SYSRAW(close, p[1]);
    return ok;
}

int iot_arena_noclose(void)
{
    return A.noclose;
}

static int new_glibc(void)
{
    const char *v = gnu_get_libc_version();
    char *end;
    long major = strtol(v, &end, 10), minor = *end == '.' ? strtol(end + 1, NULL, 10) : 0;
    return major > 2 || (major == 2 && minor >= 27);
}

void iot_arena_init(void)
{
    struct rlimit as;
    if (!iot_stracing || !new_glibc())
        return;
    /* 4 GiB of address space would count against a batch system's virtual-memory limit */
    if (getrlimit(RLIMIT_AS, &as) != 0 || as.rlim_cur != RLIM_INFINITY)
        return;
    void *want = (void *)IOT_STDIO_ARENA;
    void *m = (void *)syscall(SYS_mmap, want, WINDOW, PROT_NONE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
                              -1, 0);
    if (m == MAP_FAILED)
        return; /* the window is taken (a sanitizer's shadow, the app's own mapping) */
    if (m != want) { /* a kernel before 4.17 took the address as a hint */
        syscall(SYS_munmap, m, WINDOW);
        return;
    }
    A.base = m;
    A.end = WINDOW;
    A.noclose = noclose_works();
}

void iot_arena_fork_child(void)
{
    A.lock = 0; /* the child's only thread: a holder at the fork is gone */
}

static char *slot_get(void)
{
    lock();
    char *s = A.free;
    if (s) {
        A.free = *(void **)s;
    } else if (A.used + SLOT <= A.end) {
        if (A.used + SLOT > A.committed && A.committed + COMMIT <= A.end &&
            syscall(SYS_mprotect, A.base + A.committed, COMMIT, PROT_READ | PROT_WRITE) == 0)
            A.committed += COMMIT;
        if (A.used + SLOT <= A.committed) {
            s = A.base + A.used;
            A.used += SLOT;
        }
    }
    unlock();
    return s;
}

int iot_arena_owns(const char *p)
{
    return A.base && p && (uintptr_t)(p - A.base) < A.end;
}

/* The app set a finite RLIMIT_AS on itself: the reservation past the committed part goes back
 * (4 GiB of address space counted against the limit).  The buffers given stay; a stream opened
 * later gets glibc's own once the committed part is used up (its refills stop again). */
void iot_arena_limit(void)
{
    if (!A.base)
        return;
    lock();
    if (A.end > A.committed && iot_own_begin()) {
        syscall(SYS_munmap, A.base + A.committed, A.end - A.committed);
        iot_own_end();
        A.end = A.committed;
    }
    unlock();
}

/* The app asks for addresses in the window's unused part (mmap or mremap with MAP_FIXED_NOREPLACE,
 * MAP_FIXED or a hint: a JIT's or an emulator's chosen place), where untraced nothing is: the
 * reservation past the committed part goes back first, as under a limit, so that the app gets
 * the address it gets untraced (MAP_FIXED_NOREPLACE failed with EEXIST). */
void iot_arena_yield(const void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr, lo = (uintptr_t)A.base + __atomic_load_n(&A.committed,
                                                                           __ATOMIC_RELAXED);
    if (A.base && a && a < (uintptr_t)A.base + A.end && a + len > lo)
        iot_arena_limit();
}

void iot_arena_release(char *buf)
{
    if (!iot_arena_owns(buf))
        return;
    lock();
    *(void **)buf = A.free;
    A.free = buf;
    unlock();
}

void iot_arena_adopt(FILE *f)
{
    if (!A.base || IOT_SANDBOXED() || !f || f->_IO_buf_base || f->_fileno < 0 ||
        (f->_flags & GLIBC_IO_UNBUFFERED))
        return; /* off, the stream has a buffer (its I/O has begun), or is unbuffered (stderr) */
    size_t size = BUFSIZ;
    struct stat st;
    if (IOT_SYSRAW(newfstatat, f->_fileno, "", &st, AT_EMPTY_PATH) == 0) {
        unsigned maj = major(st.st_rdev);
        if (S_ISCHR(st.st_mode) &&
            ((maj >= TTY_MAJOR_LO && maj <= TTY_MAJOR_HI) || isatty(f->_fileno)))
            return; /* a terminal: glibc makes it line-buffered, and it is no hot path */
        if (st.st_blksize > 0 && st.st_blksize < BUFSIZ)
            size = (size_t)st.st_blksize;
    }
    char *b = slot_get();
    /* line buffering asked for before the first I/O (stdbuf -oL's setvbuf(f, NULL, _IOLBF, 0)
     * leaves the buffer to glibc and only the flag set) stays */
    if (b && setvbuf(f, b, __flbf(f) ? _IOLBF : _IOFBF, size) != 0)
        iot_arena_release(b);
}

/* A stream about to go wide gives its window buffer back, before any I/O (its buffer as setvbuf
 * left it): glibc sizes the wide buffer of a user-given byte buffer at a quarter of its chars
 * (_IO_wfile_doallocate), so the app's writes would be 4x as many; glibc allocates its own at the
 * first I/O, as untraced.  The stream's reads and writes then stop under a stracer, covered by
 * the wide wrappers (wrap_wstdio.c). */
void iot_arena_disown(FILE *f)
{
    char *b = f ? f->_IO_buf_base : NULL;
    if (!iot_arena_owns(b))
        return;
    int give = 0;
    flockfile(f);
    if (f->_mode == 0 && f->_IO_buf_base == b && f->_IO_read_base == b && f->_IO_read_ptr == b &&
        f->_IO_read_end == b && f->_IO_write_base == b && f->_IO_write_ptr == b) {
        f->_IO_buf_base = f->_IO_buf_end = NULL;
        f->_IO_read_base = f->_IO_read_ptr = f->_IO_read_end = NULL;
        f->_IO_write_base = f->_IO_write_ptr = f->_IO_write_end = NULL;
        f->_flags &= ~GLIBC_IO_USER_BUF;
        give = 1;
    }
    funlockfile(f);
    if (give)
        iot_arena_release(b);
}
