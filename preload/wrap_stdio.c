/* Wrappers: stdio streams.  The shape is wrap_fd.c's (see shim.h); what differs:
 *
 * - fd is the stream's descriptor (fileno); streams without one (fmemopen, open_memstream,
 *   fopencookie) have fd and path nil.
 * - offset is the *stream* position, what the FILE's reader or writer sees, tracked apart from
 *   the descriptor's (fdtable.c, iot_stdio_*) because stdio buffers.
 * - ret is the bytes the call moved, for every call that moves bytes, so the analyzer sums one
 *   field for read and write alike; docs/format.md ("stdio") has the rule per function.
 *
 * glibc's stdio reaches read/write/lseek through internal aliases, not the PLT, so the bytes a
 * stream moves are recorded once, here.  The real functions come from dlsym and never come back
 * into these wrappers; variadic calls go through the v* real function. */
#undef _FORTIFY_SOURCE /* the header's inline printf/fread would clash with the definitions */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#if __GLIBC_PREREQ(2, 32)
#include <sys/single_threaded.h>
#endif

#include "shim.h"
#include "sysraw.h"

#undef fread_unlocked /* the header's small-constant-size macros */
#undef fwrite_unlocked

/* Fortified entry points: declared by the headers only under _FORTIFY_SOURCE. */
extern int __fprintf_chk(FILE *, int, const char *, ...);
extern int __vfprintf_chk(FILE *, int, const char *, va_list);
extern int __printf_chk(int, const char *, ...);
extern int __vprintf_chk(int, const char *, va_list);
extern size_t __fread_chk(void *, size_t, size_t, size_t, FILE *);
extern size_t __fread_unlocked_chk(void *, size_t, size_t, size_t, FILE *);
extern char *__fgets_chk(char *, size_t, int, FILE *);
extern char *__fgets_unlocked_chk(char *, size_t, int, FILE *);

/* The stream's descriptor, -1 if it has none.  fileno sets errno (EBADF) for such streams: the
 * app must not see that. */
static int sfd(FILE *f)
{
    if (!f)
        return -1;
    int e = errno;
    int fd = fileno_unlocked(f);
    errno = e;
    return fd;
}

static void stream_ev(iot_ev *ev, int fd)
{
    if (fd >= 0) {
        iot_ev_fd(ev, fd);
        iot_ev_fdpath(ev, fd);
        iot_fd_pos_stale(fd);
    }
}

/* The position stdio itself reports, for what counting cannot know: a short fread's partial
 * item, what fscanf consumed.  Only called with the shim busy, for seekable streams. */
static int64_t tell(FILE *f)
{
    IOT_REAL(ftello);
    return real_ftello(f);
}

/* Threads sharing a stream: reading the tracked position before the call and moving it after
 * must be one step with the call, which stdio runs under the stream's lock.  So the wrapper
 * holds that (recursive) lock when a position is tracked (a regular file) and other threads
 * exist.  Cancellation is held off meanwhile, so that a thread cancelled inside the call cannot
 * leave the stream locked: stdio functions are only optional cancellation points in POSIX, and
 * reads of regular files do not block for long. */
typedef struct {
    FILE *f;
    int cancel;
} held;

static int threaded(void)
{
#if __GLIBC_PREREQ(2, 32)
    return !__libc_single_threaded;
#else
    return 1;
#endif
}

/* The stream position the call will use; the stream held if it is tracked and shared.  Not
 * for the _unlocked calls (`locked` 0): their caller already keeps other threads off the
 * stream, maybe by a lock of its own this one must not wait behind. */
static int64_t hold(held *h, FILE *f, int fd, int locked)
{
    h->f = NULL;
    if (f && IOT_UNLIKELY(!f->_IO_buf_base)) /* its first I/O: glibc would choose a buffer now */
        iot_arena_adopt(f);
    int64_t pos = iot_stdio_pos(fd);
    if (pos == IOT_NO_OFFSET || !locked || !threaded())
        return pos;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &h->cancel);
    flockfile(f);
    h->f = f;
    return iot_stdio_pos(fd); /* another thread may have moved it while we waited */
}

/* ---- what moves underneath a stream: its refills and flushes ----
 * The kernel's view of a stream's bytes (docs/format.md, stdio_refill and stdio_flush): from the
 * buffer's state before and after a call, what stdio read into it or wrote out of it meanwhile.
 * A call that handed `got` bytes to the app read `got` + (buffered after - buffered before)
 * from the file; one that put `put` bytes in wrote (pending before + `put` - pending after). */
typedef struct {
    int64_t avail, pend; /* bytes buffered for reading, waiting to be written */
    int64_t out;         /* stdout's waiting bytes if a refill of this stream flushes it, or 0 */
    int64_t room;        /* what a write fills the buffer with before it flushes (xsputn) */
    int flags;           /* the stream's end-of-file and error flags */
    int measured;        /* the call's syscalls are counted by the thread's counters: 1 its
                          * reads (measure_reads), 2 its writes (measure_writes) */
} sbuf;

static int64_t pending(FILE *f);

#define IOT_GLIBC_UNBUFFERED 2    /* glibc's libio.h: _IO_UNBUFFERED */
#define IOT_GLIBC_NO_WRITES 8     /* _IO_NO_WRITES */
#define IOT_GLIBC_LINE_BUF 0x200  /* _IO_LINE_BUF */
#define IOT_GLIBC_LINKED 0x80     /* _IO_LINKED */
#define IOT_GLIBC_EOF_SEEN 0x10   /* _IO_EOF_SEEN */
#define IOT_GLIBC_ERR_SEEN 0x20   /* _IO_ERR_SEEN */
#define IOT_GLIBC_CURRENTLY_PUTTING 0x800 /* _IO_CURRENTLY_PUTTING */

/* glibc's refill of a line-buffered or unbuffered stream first flushes stdout when that is
 * line-buffered (_IO_new_file_underflow: the prompt printed before reading a terminal). */
static int64_t stdout_flushed_by(FILE *f)
{
    FILE *o = stdout;
    if (f == o || !o || !(f->_flags & (IOT_GLIBC_LINE_BUF | IOT_GLIBC_UNBUFFERED)) ||
        (o->_flags & (IOT_GLIBC_LINKED | IOT_GLIBC_NO_WRITES | IOT_GLIBC_LINE_BUF)) !=
            (IOT_GLIBC_LINKED | IOT_GLIBC_LINE_BUF) || sfd(o) < 0)
        return 0;
    return pending(o);
}

static sbuf snap(FILE *f)
{
    sbuf b = {0, 0, 0, 0, 0, 0};
    if (f) {
        b.avail = f->_IO_read_end > f->_IO_read_ptr ? f->_IO_read_end - f->_IO_read_ptr : 0;
        b.pend = pending(f);
        b.out = stdout_flushed_by(f);
        b.flags = f->_flags & (IOT_GLIBC_EOF_SEEN | IOT_GLIBC_ERR_SEEN);
        /* glibc's _IO_new_file_xsputn: a line-buffered stream fills up to the buffer's end */
        char *end = (f->_flags & IOT_GLIBC_LINE_BUF) && (f->_flags & IOT_GLIBC_CURRENTLY_PUTTING)
                        ? f->_IO_buf_end : f->_IO_write_end;
        b.room = end > f->_IO_write_ptr ? end - f->_IO_write_ptr : 0;
    }
    return b;
}

/* One stdio_refill or stdio_flush event of `n` bytes at `off`, beside the call's event `ev`
 * (fd and path set): same thread, times and stack. */
static void one_of(const iot_ev *ev, unsigned fn, int64_t n, int err, int64_t off,
                   int64_t reads)
{
    iot_ev e = *ev;
    e.fn = (uint16_t)fn;
    e.ret = n;
    e.err = err;
    e.has &= IOT_HAS_FD;
    e.naux = 0;
    if (reads > 1) /* a refill that stands for more reads (docs/format.md) */
        iot_ev_aux(&e, reads);
    iot_ev_off(&e, off);
    iot_emit_event(&e);
    iot_kio_count(&e); /* what the kernel counts of a stream's bytes (calls.py) */
}

void iot_stdio_under(const iot_ev *ev, unsigned fn, int64_t n, int err, int64_t off,
                     int64_t calls)
{
    one_of(ev, fn, n, err, off, calls);
}

static void one(const iot_ev *ev, unsigned fn, int64_t n, int err, int64_t off)
{
    one_of(ev, fn, n, err, off, 1);
}

static void under(const iot_ev *ev, unsigned fn, int64_t n, int64_t off)
{
    if (n > 0)
        one(ev, fn, n, 0, off);
}

static int64_t minus(int64_t pos, int64_t n) { return pos == IOT_NO_OFFSET ? pos : pos - n; }

static void counted(FILE *f, int fd);

/* A flush of the stream `f` on `fd` (not the stream of `ev`) that `ev`'s call made: `before`
 * bytes were waiting, what is waiting now stays. */
static void flushed_other(const iot_ev *ev, FILE *f, int fd, int64_t before)
{
    int64_t n = before - pending(f);
    if (n <= 0)
        return;
    iot_ev e = *ev;
    iot_ev_fd(&e, fd);
    iot_ev_fdpath(&e, fd);
    int64_t pos = iot_stdio_pos(fd);
    under(&e, IOT_FN_stdio_flush, n, minus(pos, pending(f) + n));
    counted(f, fd);
}

/* The read syscalls under a call that read `rd` bytes into the stream from file offset `off`,
 * one stdio_refill event each (the kernel counts each in syscr), as glibc makes them, each read
 * returning what it asked for up to what the file holds.  A refill asks for the whole buffer;
 * fread (_IO_file_xsgetn), wanting more than the buffer holds, reads whole blocks straight into
 * the caller's memory while it wants a buffer's size or more, and refills for less.  A read
 * that returned nothing set the stream's end-of-file flag, one that failed its error flag: 0
 * bytes, or -1.  A refill is not tried once the end-of-file flag is set (glibc >= 2.28),
 * fread's direct read is.
 * A pipe's, terminal's or socket's reads return what is there: a call that the buffer cannot
 * serve may read again and again (fgets, getline/getdelim and fscanf refill until the line,
 * the delimiter or the conversion is complete; fread until it has what it wants), and how
 * many times the buffer's state cannot tell.  So for such a call on such a stream the thread's
 * counters are read around it (kio.c: two readings of /proc/thread-self/io, each ~5-30 us,
 * beside a read that waited for a writer): the reads beyond the events made here are the
 * first one's (aux, docs/format.md), and fscanf's bytes, which it cannot tell either, are
 * the measured ones.  A call the buffer serves reads nothing and is not measured. */
static int measure_reads(FILE *f, int fd, int64_t pos, int need)
{
    if (!need || pos != IOT_NO_OFFSET || fd < 0 || !f)
        return 0;
    iot_kio_in_begin(IOT_KIO_MODE_IN);
    return 1;
}

/* A line-buffered stream writes a line a syscall where glibc puts a character at a time
 * (_IO_default_xsputn: before the stream has its buffer -- a terminal's first call -- or while
 * it is not writing, and for what is left of a call given more than the buffer has room for); a
 * writing stream with room copies a call's bytes and writes them up to the last newline at
 * once (_IO_new_file_xsputn), and printf does that for each piece of its output (a run of
 * the format's text, a conversion's).  So a call may make several writes, which the buffer's
 * state after it cannot tell: one that may (known bytes `s`: several lines and no room or no
 * writing yet, or a newline and more than the room; printf: no writing yet, or several pieces
 * of its output holding a newline, printf_lines) is measured as
 * measure_reads does, and its first stdio_flush has aux the writes it stands for.  Streams not
 * line-buffered, and the calls that make one write at most, are not measured (two readings of
 * the thread's counters, ~10 us). */
/* How many pieces of printf's output hold a newline (runs of the format's text, strings and
 * characters printed), from the format and the arguments it takes, walked as printf walks
 * them; 2 (as many as matter) for what it cannot tell: positional arguments, `*`, long
 * double, a conversion it does not know. */
static int printf_lines(const char *fmt, va_list ap)
{
    int n = 0, text = 0;
    va_list aq;
    va_copy(aq, ap);
    for (const char *p = fmt; *p && n < 2; p++) {
        if (*p != '%') {
            if (*p == '\n' && !text)
                n++, text = 1;
            continue;
        }
        text = 0;
        if (*++p == '%')
            continue;
        p += strspn(p, "-+ #0'123456789.");
        int lng = 0;
        for (; *p && strchr("hlqjzt", *p); p++)
            lng |= *p != 'h';
        if (!*p || strchr("$*L", *p)) {
            n = 2;
            break;
        }
        if (*p == 's' && !lng) {
            const char *a = va_arg(aq, const char *);
            n += a && strchr(a, '\n');
        } else if (*p == 'c' && !lng) {
            n += va_arg(aq, int) == '\n';
        } else if (strchr("diouxX", *p)) {
            if (lng)
                (void)va_arg(aq, long);
            else
                (void)va_arg(aq, int);
        } else if (strchr("feEgGaAF", *p)) {
            (void)va_arg(aq, double);
        } else if (*p == 'p' || *p == 'n') {
            (void)va_arg(aq, void *);
        } else if (*p != 'm') { /* %m takes none; wide strings, others: not told */
            n = 2;
            break;
        }
    }
    va_end(aq);
    return n;
}

static int measure_writes(FILE *f, int fd, sbuf b, const char *s, int64_t n, int nl_after)
{
    if (fd < 0 || !f || IOT_SANDBOXED() || (f->_flags & IOT_GLIBC_UNBUFFERED) ||
        (f->_IO_buf_base && !(f->_flags & IOT_GLIBC_LINE_BUF)))
        return 0;
    struct stat st; /* no buffer yet: glibc will line-buffer a terminal (a character device) */
    if (!f->_IO_buf_base && !(f->_flags & IOT_GLIBC_LINE_BUF) &&
        (IOT_SYSRAW(fstat, fd, &st) != 0 || !S_ISCHR(st.st_mode)))
        return 0;
    int writing = f->_IO_buf_base && (f->_flags & IOT_GLIBC_CURRENTLY_PUTTING);
    if (s && n >= 0) { /* puts: `nl_after`, its newline after s's n bytes */
        const char *nl = n > 0 ? memchr(s, '\n', (size_t)n) : NULL;
        int two = nl && (nl_after || memchr(nl + 1, '\n', (size_t)(s + n - nl - 1)));
        if ((!nl && !nl_after) || (!two && n + !!nl_after <= b.room) ||
            (two && writing && n + !!nl_after <= b.room))
            return 0;
    } else if (writing && nl_after < 2) { /* printf: `nl_after` its pieces with a newline */
        return 0;
    }
    iot_kio_in_begin(IOT_KIO_MODE_IN);
    return 2;
}

/* The buffer cannot serve a call reading up to `c` (not within `most` bytes): it refills, unless
 * the stream saw its end (glibc >= 2.28 tries no more). */
static int refills_for(FILE *f, sbuf b, int c, int64_t most)
{
    if (!f || (b.flags & IOT_GLIBC_EOF_SEEN) || most <= 0)
        return 0;
    int64_t n = b.avail < most ? b.avail : most;
    return n < most && !(n > 0 && memchr(f->_IO_read_ptr, c, (size_t)n));
}

static void refills(const iot_ev *ev, FILE *f, sbuf b, sbuf a, int64_t rd, int64_t off)
{
    uint64_t d[6] = {0}; /* measured (measure_reads): d[0] its bytes, d[2] its reads */
    if (b.measured == 1)
        iot_kio_in_end(d);
    int64_t reads = (int64_t)d[2];
    if (reads && rd < (int64_t)d[0]) /* fscanf: only the last refill is known */
        rd = (int64_t)d[0];
    int64_t last = f->_IO_read_end > f->_IO_read_base ? f->_IO_read_end - f->_IO_read_base : 0;
    int64_t size = f->_IO_buf_end - f->_IO_buf_base, want = ev->req - b.avail;
    int direct_ = ev->fn == IOT_FN_fread && want > 0, now = a.flags & ~b.flags;
    last = rd > 0 ? (last < rd ? last : rd) : 0;
    int nothing = 0; /* the last read returned nothing */
    int64_t sz[4], k = 0, left = rd;
    if (direct_) {
        while (want > 0 && k < 4) {
            int direct = want >= size;
            if (!direct && ((b.flags & IOT_GLIBC_EOF_SEEN) || nothing))
                break;
            int64_t ask = !direct ? size : size >= 128 ? want - want % size : want;
            int64_t n = ask < left ? ask : left;
            nothing = n == 0;
            if (nothing)
                break;
            sz[k++] = n;
            left -= n;
            want -= direct || n < want ? n : want;
        }
    } else {
        for (int64_t n; left > 0; left -= n) {
            n = left - last > 0 ? size : last; /* a whole buffer before the last */
            n = n > 0 && n < left ? n : left;
            if (k < 4)
                sz[k] = n;
            k++;
        }
        nothing = !!(now & (IOT_GLIBC_EOF_SEEN | IOT_GLIBC_ERR_SEEN));
    }
    /* measured: the reads beyond these (a pipe's short ones) are the first event's */
    int64_t more = reads > k + nothing ? reads - k - nothing : 0;
    for (int64_t i = 0; i < k; i++, more = 0) {
        int64_t n = i < 4 ? sz[i] : rd > size ? size : rd;
        n = i == k - 1 && !direct_ ? rd : n; /* the last: what is left */
        one_of(ev, IOT_FN_stdio_refill, n, 0, off, 1 + more);
        off = minus(off, -n);
        rd -= n;
    }
    under(ev, IOT_FN_stdio_refill, rd, off); /* more than the reads above asked for */
    if (!nothing && !more)
        return;
    if ((now & IOT_GLIBC_ERR_SEEN) && !b.pend)
        one_of(ev, IOT_FN_stdio_refill, -1, ev->err ? ev->err : EIO, off, 1 + more);
    else /* the read at the end of the file, or reads that brought nothing (EINTR, EAGAIN) */
        one_of(ev, IOT_FN_stdio_refill, 0, 0, off, nothing + more);
}

/* After a call that got or put bytes (`pos` the stream position it started at). */
static void beneath(const iot_ev *ev, FILE *f, int fd, sbuf b, int64_t pos, int64_t got,
                    int64_t put)
{
    if (fd < 0)
        return;
    sbuf a = snap(f);
    /* an error the call brought on a stream that is writing: its write failed (EPIPE, a full
     * disk), one write of nothing -- not a refill's (`| head -1` under PYTHONUNBUFFERED) */
    int put_err = (a.flags & ~b.flags & IOT_GLIBC_ERR_SEEN) &&
                  (f->_flags & IOT_GLIBC_CURRENTLY_PUTTING);
    if (put_err)
        a.flags &= ~IOT_GLIBC_ERR_SEEN;
    int64_t rd = (got > 0 ? got : 0) + a.avail - b.avail, wr = b.pend + put - a.pend;
    if (b.out > 0 && rd > 0)
        flushed_other(ev, stdout, sfd(stdout), b.out);
    refills(ev, f, b, a, rd, pos == IOT_NO_OFFSET ? pos : pos + b.avail);
    /* one write, or (glibc's xsputn) the buffer filled and flushed, then the rest of a large
     * request written straight from the caller's memory */
    int64_t first = b.pend + (b.room < put ? b.room : put), off = minus(pos, b.pend);
    if ((f->_flags & IOT_GLIBC_UNBUFFERED) && ev->fn == IOT_FN_puts && wr > 1)
        first = wr - 1; /* glibc's puts unbuffered: the string, then the newline, apart */
    if (first <= 0 || first >= wr)
        first = wr;
    uint64_t d[6] = {0}; /* measured (measure_writes): d[3] its writes */
    if (b.measured == 2)
        iot_kio_in_end(d);
    int64_t k = (first > 0) + (wr - first > 0), more = (int64_t)d[3] > k ? (int64_t)d[3] - k : 0;
    if (first > 0) /* a line-buffered stream's lines beyond these: the first's (aux) */
        one_of(ev, IOT_FN_stdio_flush, first, 0, off, 1 + more);
    under(ev, IOT_FN_stdio_flush, wr - first, off == IOT_NO_OFFSET ? off : off + first);
    if (put_err)
        one(ev, IOT_FN_stdio_flush, -1, ev->err ? ev->err : EIO,
            off == IOT_NO_OFFSET || wr <= 0 ? off : off + wr);
}

/* A seek flushes what is pending, and reads the block it lands in unless it stays in the
 * buffer: glibc's _IO_new_file_seekoff moves inside the buffer only when it knows the file
 * offset (`_offset`, lost after some reads) and the target lies in [_offset - what the buffer
 * was filled with, _offset); otherwise it seeks and, on a readable stream, reads from the
 * block boundary below the target, leaving the buffer [block, block + count).  A stream that
 * was writing first switches to reading: a flush leaves it nothing buffered, so that seek reads
 * again; with nothing to flush the buffer's read part grows to where writing stopped.  So the
 * state before the call tells which path it took, with no syscall. */
typedef struct {
    int64_t offset; /* the file offset stdio knew, -1 if lost */
    char *rbase, *rend, *wptr;
    int putting;
} seekst;

#define IOT_GLIBC_NO_READS 4           /* _IO_NO_READS of glibc's libio.h */

static seekst seek_snap(FILE *f)
{
    if (!f)
        return (seekst){-1, NULL, NULL, NULL, 0};
    return (seekst){(int64_t)f->_offset, f->_IO_read_base, f->_IO_read_end, f->_IO_write_ptr,
                    !!(f->_flags & IOT_GLIBC_CURRENTLY_PUTTING)};
}

/* After a seek of the stream to `target` (its new position, -1 if unknown) by `whence`. */
static void seek_beneath(const iot_ev *ev, FILE *f, int fd, sbuf b, int64_t pos, seekst s,
                         int64_t target, int whence)
{
    if (fd < 0)
        return;
    under(ev, IOT_FN_stdio_flush, b.pend - pending(f), minus(pos, b.pend));
    if (target < 0 || (f->_flags & IOT_GLIBC_NO_READS))
        return;
    char *rend = s.rend; /* the end of what the buffer holds when glibc looks (see above) */
    if (b.pend)
        rend = f->_IO_buf_base;
    else if (s.putting && s.wptr > rend)
        rend = s.wptr;
    int inside = s.offset >= 0 && (s.rbase || s.putting) &&
                 target >= s.offset - (rend - f->_IO_buf_base) && target < s.offset;
    int64_t size = f->_IO_buf_end - f->_IO_buf_base;
    int64_t block = size > 0 ? target & ~(size - 1) : target, delta = target - block;
    if (inside || delta == 0 || delta > size)
        return; /* no read: in the buffer, or a seek to the target itself */
    if (f->_IO_read_end > f->_IO_read_base) {
        under(ev, IOT_FN_stdio_refill, f->_IO_read_end - f->_IO_read_base, block);
        return;
    }
    /* Nothing buffered: a relative seek from an offset stdio did not know went straight to
     * lseek; else the read got less than `delta` (the file ends before the target), and glibc
     * seeked on, leaving the buffer empty: it read what the file holds past the block. */
    struct stat st;
    if ((whence != SEEK_CUR || s.offset >= 0) && !IOT_SANDBOXED() &&
        IOT_SYSRAW(fstat, fd, &st) == 0 && S_ISREG(st.st_mode))
        one(ev, IOT_FN_stdio_refill, st.st_size <= block ? 0 : st.st_size - block < delta ?
            st.st_size - block : delta, 0, block); /* 0: the block is past the end */
}

/* A stream wrapper's first half: the event begun (else the real call, untraced), the stream's
 * descriptor `fd`, and `pos`, the stream position the call will use, the stream held (hold). */
#define STREAM_ENTER(FN, stream, locked, real_call)                     \
    IOT_ENTER(FN, real_call);                                           \
    int fd = sfd(stream);                                               \
    held h;                                                             \
    int64_t pos = hold(&h, stream, fd, locked);                         \
    sbuf sb = snap(stream);                                             \
    (void)pos, (void)sb

/* The same for a call that writes: first the bytes inline putc left in the buffer since the
 * stream was last seen (uncounted), counted apart. */
#define WRITE_ENTER(FN, stream, locked, real_call)                      \
    uncounted(stream, sfd(stream), locked);                             \
    STREAM_ENTER(FN, stream, locked, real_call)

static void release(held *h)
{
    if (h->f) {
        int unused;
        funlockfile(h->f);
        pthread_setcancelstate(h->cancel, &unused);
    }
}

/* fd, path, and the stream position the call used, which moves on by `done` bytes (read if
 * `dir` is 'r', written if 'w'), with what moved underneath meanwhile; then the stream is let
 * go. */
static void stream_io(iot_ev *ev, held *h, int fd, int64_t pos, int64_t done, FILE *f, sbuf b,
                      char dir)
{
    stream_ev(ev, fd);
    if (dir)
        beneath(ev, f, fd, b, pos, dir == 'r' ? done : 0, dir == 'w' ? done : 0);
    iot_ev_off(ev, iot_stdio_advance(fd, pos, done));
    release(h);
}

static void uncounted(FILE *f, int fd, int locked); /* the headers' inline putc: __overflow */


/* fopen's mode string as the open(2) flags glibc uses for it. */
static int mode_flags(const char *m)
{
    if (!m)
        return 0;
    int fl;
    switch (*m) {
    case 'r': fl = O_RDONLY; break;
    case 'w': fl = O_WRONLY | O_CREAT | O_TRUNC; break;
    case 'a': fl = O_WRONLY | O_CREAT | O_APPEND; break;
    default: return 0;
    }
    for (m++; *m && *m != ','; m++) { /* ",ccs=..." ends the flags */
        if (*m == '+')
            fl = (fl & ~O_ACCMODE) | O_RDWR;
        else if (*m == 'x')
            fl |= O_EXCL;
        else if (*m == 'e')
            fl |= O_CLOEXEC;
    }
    return fl;
}

/* A stream opened on a new descriptor: register it, aux = [dev, inode]. */
static void stream_opened(iot_ev *ev, FILE *r, int flags)
{
    iot_ev_opened(ev, sfd(r), flags);
}

/* ---- open and close ---- */

/* Under a stracer, the open glibc's fopen makes inside is a ptrace stop (~8-50 us, fopen +
 * fclose cost 5-6x the shim alone).  For modes both glibc's fopen and fdopen read alike (r, w
 * or a, then only '+', 'b', 'x', at most 4 characters) the wrapper opens the file itself with
 * the cookie, as fopen would (mode 0666), puts an append-only stream at the end of the file as
 * fopen does, and hands the descriptor to fdopen.  Other modes ('e': fdopen would not mark the
 * stream close-on-exec for freopen; 'm', 'c', ",ccs=") go to glibc's fopen. */
static FILE *fopen_raw(const char *path, const char *mode,
                       FILE *(*real)(const char *, const char *))
{
    if (!iot_stracing || !path || !mode || !strchr("rwa", mode[0]) || !mode[0] ||
        strlen(mode) > 4 || strspn(mode + 1, "+bx") != strlen(mode + 1))
        return real(path, mode);
    IOT_REAL(fdopen);
    int fl = mode_flags(mode);
    int fd = (int)IOT_SYSRAW_CANCEL(openat, AT_FDCWD, path, fl, 0666);
    if (fd < 0)
        return NULL;
    FILE *f = NULL;
    if (!(fl & O_APPEND) || (fl & O_ACCMODE) != O_WRONLY ||
        IOT_SYSRAW(lseek, fd, 0, SEEK_END) >= 0 || errno == ESPIPE)
        f = real_fdopen(fd, mode);
    if (!f) {
        int e = errno;
        IOT_SYSRAW(close, fd);
        errno = e;
    }
    return f;
}

static FILE *do_fopen(const char *path, const char *mode,
                      FILE *(*real)(const char *, const char *))
{
    IOT_ENTER(IOT_FN_fopen, real(path, mode));
    IOT_CALL(FILE *, fopen_raw(path, mode, real), r != NULL, r == NULL);
    iot_ev_path(&ev, path);
    int fl = mode_flags(mode);
    iot_ev_flags(&ev, fl);
    if (fl & O_CREAT)
        iot_ev_mode(&ev, 0666); /* what fopen passes to open, before the umask */
    stream_opened(&ev, r, fl);
    iot_arena_adopt(r);
    IOT_LEAVE(r);
}

IOT_API FILE *fopen(const char *path, const char *mode)
{
    IOT_REAL(fopen);
    return do_fopen(path, mode, real_fopen);
}
IOT_ALIAS(fopen, fopen64);

IOT_API FILE *fdopen(int fd, const char *mode)
{
    IOT_REAL(fdopen);
    IOT_ENTER(IOT_FN_fdopen, real_fdopen(fd, mode));
    IOT_CALL(FILE *, real_fdopen(fd, mode), r != NULL, r == NULL);
    iot_ev_fd(&ev, fd);
    iot_ev_fdpath(&ev, fd);
    /* fdopen neither creates nor truncates: only the access mode and append mean anything */
    int fl = mode_flags(mode) & (O_ACCMODE | O_APPEND | O_CLOEXEC);
    iot_ev_flags(&ev, fl);
    if (r) {
        if (fl & O_APPEND) /* glibc sets O_APPEND on the descriptor behind fcntl's wrapper */
            iot_fd_set_append(fd, 1);
        iot_stdio_seek(fd, iot_fd_pos(fd)); /* the stream starts where the descriptor is */
        iot_arena_adopt(r);
    }
    IOT_LEAVE(r);
}

/* freopen closes the stream's descriptor and opens `path` (NULL: the same file) on the same
 * FILE; glibc keeps the descriptor number. */
static FILE *do_freopen(const char *path, const char *mode, FILE *f,
                        FILE *(*real)(const char *, const char *, FILE *))
{
    char *oldbuf = f ? f->_IO_buf_base : NULL;
    iot_ev ev;
    if (!iot_enter(&ev, IOT_FN_freopen)) {
        FILE *r = real(path, mode, f);
        if (f->_IO_buf_base != oldbuf) /* closed: the old buffer is free (glibc keeps f) */
            iot_arena_release(oldbuf);
        return r;
    }
    int old = sfd(f);
    uint32_t oldpath = old < 0 ? 0 : iot_fd_path(old);
    int64_t pend = old >= 0 ? pending(f) : 0, spos = iot_stdio_pos(old); /* flushed: closed */
    IOT_CALL(FILE *, real(path, mode, f), r != NULL, r == NULL);
    if (pend > 0) {
        iot_ev e = ev;
        iot_ev_fd(&e, old);
        e.path = oldpath;
        under(&e, IOT_FN_stdio_flush, pend, minus(spos, pend));
    }
    if (f->_IO_buf_base != oldbuf)
        iot_arena_release(oldbuf);
    if (path)
        iot_ev_path(&ev, path);
    else
        ev.path = oldpath;
    int fl = mode_flags(mode);
    iot_ev_flags(&ev, fl);
    if (old >= 0)
        iot_fd_closed(old);
    stream_opened(&ev, r, fl);
    iot_arena_adopt(r);
    IOT_LEAVE(r);
}

IOT_API FILE *freopen(const char *path, const char *mode, FILE *f)
{
    IOT_REAL(freopen);
    return do_freopen(path, mode, f, real_freopen);
}
IOT_ALIAS(freopen, freopen64);

IOT_API int fclose(FILE *f)
{
    IOT_REAL(fclose);
    char *buf = f ? f->_IO_buf_base : NULL; /* a buffer of the stdio window goes back after */
    int fd = sfd(f);
    uncounted(f, fd, 1); /* fclose takes the stream's lock itself: the same wait */
    iot_ev ev;
    if (!iot_enter(&ev, IOT_FN_fclose)) {
        int r = real_fclose(f);
        iot_arena_release(buf);
        return r;
    }
    uint32_t path = fd >= 0 ? iot_fd_path(fd) : 0; /* the table forgets it below */
    int64_t pend = f ? pending(f) : 0, spos = iot_stdio_pos(fd); /* flushed by fclose */
    /* Under a stracer the close inside glibc's fclose would be a ptrace stop.  For a stream the
     * shim opened (its buffer is in the stdio window: not a popen stream, whose close must
     * wait for its child) the wrapper sets glibc's own _IO_FLAGS2_NOCLOSE (checked to work at
     * start-up, stdio_arena.c), so fclose flushes, unlinks and frees the stream but leaves the
     * descriptor, and closes that itself with the cookie; a failed close makes the result EOF
     * with close's errno, as in glibc's fclose. */
    int own_close = fd >= 0 && iot_arena_owns(buf) && iot_arena_noclose();
    if (own_close)
        f->_flags2 |= IOT_GLIBC_NOCLOSE;
    int wide = iot_wstdio_flush_begin(f); /* a wide stream's flush is measured */
    int r = real_fclose(f);
    if (own_close && IOT_SYSRAW(close, fd) != 0)
        r = EOF;
    iot_done(&ev, r, r != 0);
    iot_arena_release(buf);
    if (fd >= 0) {
        iot_ev_fd(&ev, fd);
        ev.path = path;
        if (wide)
            iot_wstdio_flush_end(&ev, r == 0, spos);
        else if (r == 0)
            under(&ev, IOT_FN_stdio_flush, pend, minus(spos, pend));
        iot_fd_closed(fd); /* closed even when the final flush failed */
    }
    IOT_LEAVE(r);
}

/* pclose (wrap_proc.c) flushes the stream before it closes the pipe. */
int64_t iot_stdio_pending(FILE *f)
{
    return sfd(f) >= 0 ? pending(f) : 0;
}

void iot_stdio_flushed(const iot_ev *ev, int64_t n, int64_t end)
{
    under(ev, IOT_FN_stdio_flush, n, minus(end, n));
}

/* ---- reads: ret = bytes consumed, 0 at end of file, -1 (or short) with errno on error ---- */

/* A short read with the stream's error flag set failed; without it, it hit end of file. */
#define READ_FAILED(f) ferror_unlocked(f)
/* A character read: EOF with the error flag set failed (ret -1), without it the file ended. */
#define GETC_BAD(r, f) ((r) == EOF && READ_FAILED(f))

#define FREAD_BODY(LK, real_call)                                       \
    STREAM_ENTER(IOT_FN_fread, f, LK, real_call);                       \
    int64_t want = (int64_t)(size * n), done = want;                    \
    sb.measured = measure_reads(f, fd, pos, want > sb.avail);           \
    IOT_CALL(size_t, real_call, 0, want && r < n && READ_FAILED(f));    \
    if (want && r < n) {                                                \
        int64_t now = pos == IOT_NO_OFFSET ? -1 : tell(f);              \
        done = pos >= 0 && now >= pos ? now - pos : (int64_t)(r * size); \
    }                                                                   \
    ev.ret = done;                                                      \
    iot_ev_req(&ev, want);                                              \
    iot_ev_aux(&ev, (int64_t)size);                                     \
    stream_io(&ev, &h, fd, pos, done, f, sb, 'r');                     \
    iot_ev_data(&ev, buf, -1, done);                                    \
    IOT_LEAVE(r)

IOT_API size_t fread(void *buf, size_t size, size_t n, FILE *f)
{
    IOT_REAL(fread);
    FREAD_BODY(1, real_fread(buf, size, n, f));
}

IOT_API size_t fread_unlocked(void *buf, size_t size, size_t n, FILE *f)
{
    IOT_REAL(fread_unlocked);
    FREAD_BODY(0, real_fread_unlocked(buf, size, n, f));
}

IOT_API size_t __fread_chk(void *buf, size_t buflen, size_t size, size_t n, FILE *f)
{
    IOT_REAL(__fread_chk);
    FREAD_BODY(1, real___fread_chk(buf, buflen, size, n, f));
}

IOT_API size_t __fread_unlocked_chk(void *buf, size_t buflen, size_t size, size_t n, FILE *f)
{
    IOT_REAL(__fread_unlocked_chk);
    FREAD_BODY(0, real___fread_unlocked_chk(buf, buflen, size, n, f));
}

/* The bytes fgets consumed (it stored them and a NUL after): a line of binary data holds NULs,
 * so its string's length is less (cmake's fgets of a compiled a.out: 7 of 1,023).  The string
 * ends at the line's newline or at `n` - 1 bytes when it holds no NUL; else the buffer's
 * pointers tell when the buffer served the call (`refill` 0), stdio's position on a regular
 * file, and a pipe's refills are measured (measure_reads): its bytes are counted right. */
static int64_t fgets_got(FILE *f, const char *r, int n, int64_t pos, int refill, char *rptr)
{
    if (!r)
        return 0;
    int64_t len = (int64_t)strlen(r);
    if (len == n - 1 || (len > 0 && r[len - 1] == '\n'))
        return len;
    if (!refill && f->_IO_read_ptr >= rptr)
        return f->_IO_read_ptr - rptr;
    int64_t now = pos == IOT_NO_OFFSET ? -1 : tell(f);
    return pos >= 0 && now >= pos ? now - pos : len;
}

/* fgets: ret = the bytes consumed (the string stored, NULs in it too), 0 when it returned NULL. */
#define FGETS_BODY(LK, real_call)                                       \
    STREAM_ENTER(IOT_FN_fgets, f, LK, real_call);                       \
    int refill = refills_for(f, sb, '\n', (int64_t)n - 1);              \
    char *rptr = f ? f->_IO_read_ptr : NULL;                            \
    sb.measured = measure_reads(f, fd, pos, refill);                    \
    IOT_CALL(char *, real_call, 0, !r && READ_FAILED(f));               \
    ev.ret = fgets_got(f, r, n, pos, refill, rptr);                     \
    iot_ev_req(&ev, n);                                                 \
    stream_io(&ev, &h, fd, pos, ev.ret, f, sb, 'r');                   \
    iot_ev_data(&ev, buf, -1, ev.ret);                                  \
    IOT_LEAVE(r)

IOT_API char *fgets(char *buf, int n, FILE *f)
{
    IOT_REAL(fgets);
    FGETS_BODY(1, real_fgets(buf, n, f));
}

IOT_API char *fgets_unlocked(char *buf, int n, FILE *f)
{
    IOT_REAL(fgets_unlocked);
    FGETS_BODY(0, real_fgets_unlocked(buf, n, f));
}

IOT_API char *__fgets_chk(char *buf, size_t buflen, int n, FILE *f)
{
    IOT_REAL(__fgets_chk);
    FGETS_BODY(1, real___fgets_chk(buf, buflen, n, f));
}

IOT_API char *__fgets_unlocked_chk(char *buf, size_t buflen, int n, FILE *f)
{
    IOT_REAL(__fgets_unlocked_chk);
    FGETS_BODY(0, real___fgets_unlocked_chk(buf, buflen, n, f));
}

/* fgetc and friends: ret 1 for a character, 0 at end of file, -1 on error. */
#define GETC_BODY(FN, LK, stream, real_call)                            \
    STREAM_ENTER(FN, stream, LK, real_call);                            \
    IOT_CALL(int, real_call, r != EOF ? 1 : GETC_BAD(r, stream) ? -1 : 0, GETC_BAD(r, stream)); \
    iot_ev_req(&ev, 1);                                                 \
    stream_io(&ev, &h, fd, pos, r != EOF, stream, sb, 'r');             \
    IOT_LEAVE(r)

IOT_API int fgetc(FILE *f)
{
    IOT_REAL(fgetc);
    GETC_BODY(IOT_FN_fgetc, 1, f, real_fgetc(f));
}
IOT_ALIAS(fgetc, getc);
IOT_ALIAS(fgetc, _IO_getc);

IOT_API int fgetc_unlocked(FILE *f)
{
    IOT_REAL(fgetc_unlocked);
    GETC_BODY(IOT_FN_fgetc, 0, f, real_fgetc_unlocked(f));
}

/* Reached only through a pointer or -O0: the header inlines it over the buffer. */
IOT_API int getc_unlocked(FILE *f)
{
    IOT_REAL(getc_unlocked);
    GETC_BODY(IOT_FN_fgetc, 0, f, real_getc_unlocked(f));
}

IOT_API int getchar(void)
{
    IOT_REAL(getchar);
    GETC_BODY(IOT_FN_getchar, 1, stdin, real_getchar());
}

IOT_API int getchar_unlocked(void)
{
    IOT_REAL(getchar_unlocked);
    GETC_BODY(IOT_FN_getchar, 0, stdin, real_getchar_unlocked());
}

/* ungetc moves no bytes and records nothing, but it moves the stream position back by one:
 * without it a parser's peek (getc + ungetc, as C++'s cin does) would shift every later
 * offset. */
IOT_API int ungetc(int c, FILE *f)
{
    IOT_REAL(ungetc);
    if (iot_p.state != IOT_READY || iot_t.busy || iot_t.gen != iot_p.gen)
        return real_ungetc(c, f);
    int e = errno;
    iot_t.busy = 1;
    int fd = sfd(f);
    held h;
    int64_t pos = hold(&h, f, fd, 1);
    errno = e;
    int r = real_ungetc(c, f);
    e = errno;
    if (r != EOF && pos > 0)
        iot_stdio_seek(fd, pos - 1);
    release(&h);
    iot_t.busy = 0;
    errno = e;
    return r;
}
IOT_ALIAS(ungetc, _IO_ungetc);

/* getline/getdelim: ret = bytes read, 0 at end of file (the C value is -1 there too). */
static ssize_t do_getdelim(unsigned fn, char **line, size_t *n, int delim, FILE *f,
                           ssize_t (*real)(char **, size_t *, int, FILE *))
{
    STREAM_ENTER(fn, f, 1, real(line, n, delim, f));
    sb.measured = measure_reads(f, fd, pos, refills_for(f, sb, delim, INT64_MAX));
    /* -1 before the end of the file: EINVAL, ENOMEM, or a read error */
#define LINE_BAD (r < 0 && !(f && feof_unlocked(f)))
    IOT_CALL(ssize_t, real(line, n, delim, f), r >= 0 ? r : LINE_BAD ? -1 : 0, LINE_BAD);
#undef LINE_BAD
    stream_io(&ev, &h, fd, pos, r, f, sb, 'r');
    IOT_LEAVE(r);
}

IOT_API ssize_t getdelim(char **line, size_t *n, int delim, FILE *f)
{
    IOT_REAL(getdelim);
    return do_getdelim(IOT_FN_getdelim, line, n, delim, f, real_getdelim);
}

/* The header's inline getline() calls __getdelim(..., '\n', ...): that is a getline. */
IOT_API ssize_t __getdelim(char **line, size_t *n, int delim, FILE *f)
{
    IOT_REAL(__getdelim);
    return do_getdelim(delim == '\n' ? IOT_FN_getline : IOT_FN_getdelim, line, n, delim, f,
                       real___getdelim);
}

IOT_API ssize_t getline(char **line, size_t *n, FILE *f)
{
    IOT_REAL(__getdelim);
    return do_getdelim(IOT_FN_getline, line, n, '\n', f, real___getdelim);
}

/* ---- scanf: ret = items assigned (the C value); aux = bytes consumed, known for seekable
 * streams only (from stdio's own position). ---- */

typedef int vscan_fn(FILE *, const char *, va_list);

static int scan_space(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Whether fscanf may read past what the buffer holds (then its reads are measured: on a pipe a
 * dribbling writer makes several in one call, measure_reads).  A conversion other than %[ and
 * %Nc (N > 1) ends on the line it starts on, or, skipping whitespace first, on the next line
 * holding something; a whitespace directive after the last one skips to the next such line.  So
 * the buffer serves a format of k of them when it holds k lines with something on them, each
 * ended by its newline; a format with %[ (its set may take newlines) or %Nc may read on.  The
 * newline alone was not enough: "%d" on a buffer holding "\n" skips it and refills. */
static int scan_may_refill(FILE *f, sbuf b, const char *fmt)
{
    if (!f || !fmt || (b.flags & IOT_GLIBC_EOF_SEEN))
        return 0;
    int64_t k = 0, ws = 0;
    for (const char *p = fmt; *p; p++) {
        if (*p != '%' || p[1] == '%') {
            p += *p == '%';
            ws |= scan_space((unsigned char)*p);
            continue;
        }
        long width = 0;
        for (p++; *p == '*' || *p == '\'' || *p == 'm' || (*p >= '0' && *p <= '9'); p++)
            if (*p >= '0' && *p <= '9')
                width = width * 10 + (*p - '0');
        while (*p && strchr("hlLqjzt", *p))
            p++;
        if (!*p || *p == '[' || (*p == 'c' && width > 1))
            return 1;
        if (*p != 'n')
            k++, ws = 0;
    }
    int64_t need = k + ws > 0 ? k + ws : 1, lines = 0;
    int filled = 0;
    for (char *p = f->_IO_read_ptr; p < f->_IO_read_end && lines < need; p++)
        if (*p == '\n')
            lines += filled, filled = 0;
        else if (!scan_space((unsigned char)*p))
            filled = 1;
    return lines < need;
}

static int do_scan(FILE *f, const char *fmt, va_list ap, vscan_fn *real)
{
    STREAM_ENTER(IOT_FN_fscanf, f, 1, real(f, fmt, ap));
    sb.measured = measure_reads(f, fd, pos, scan_may_refill(f, sb, fmt));
    char *rptr = f->_IO_read_ptr, *rend = f->_IO_read_end;
    IOT_CALL(int, real(f, fmt, ap), r, r == EOF && READ_FAILED(f));
    stream_ev(&ev, fd);
    int64_t got = -1; /* the bytes it consumed */
    if (pos != IOT_NO_OFFSET) {
        iot_ev_off(&ev, pos);
        int64_t now = tell(f);
        if (now >= pos) {
            got = now - pos;
            iot_ev_aux(&ev, got);
            iot_stdio_seek(fd, now);
        }
    }
    if (got >= 0)
        beneath(&ev, f, fd, sb, pos, got, 0);
    else if (fd >= 0) /* unseekable: the last refill is what the buffer holds (earlier ones
                        * in the same call, consumed whole, are not known) */
        refills(&ev, f, sb, snap(f), f->_IO_read_end != rend || f->_IO_read_ptr < rptr ?
                f->_IO_read_end - f->_IO_read_base : 0, IOT_NO_OFFSET);
    release(&h);
    IOT_LEAVE(r);
}

/* The headers redirect fscanf to __isoc99_fscanf (C99 %a): the GNU-semantics names get their
 * symbol through an asm label, the real one by name. */
#define SCAN_REAL(sym)                                                  \
    static vscan_fn *real;                                              \
    if (IOT_UNLIKELY(!real))                                            \
        real = (vscan_fn *)iot_dlsym(sym)

#define SCANF_VARIADIC(cname, sym, vsym)                                \
    IOT_API int cname(FILE *f, const char *fmt, ...) __asm__(sym);      \
    IOT_API int cname(FILE *f, const char *fmt, ...)                    \
    {                                                                   \
        SCAN_REAL(vsym);                                                \
        va_list ap;                                                     \
        va_start(ap, fmt);                                              \
        int r = do_scan(f, fmt, ap, real);                              \
        va_end(ap);                                                     \
        return r;                                                       \
    }

#define SCANF_V(cname, sym)                                             \
    IOT_API int cname(FILE *f, const char *fmt, va_list ap) __asm__(sym); \
    IOT_API int cname(FILE *f, const char *fmt, va_list ap)             \
    {                                                                   \
        SCAN_REAL(sym);                                                 \
        return do_scan(f, fmt, ap, real);                               \
    }

/* scanf(...) is vfscanf(stdin, ...) in glibc: recorded as fscanf on stdin. */
#define SCANF_STDIN(cname, sym, vsym)                                   \
    IOT_API int cname(const char *fmt, ...) __asm__(sym);               \
    IOT_API int cname(const char *fmt, ...)                             \
    {                                                                   \
        SCAN_REAL(vsym);                                                \
        va_list ap;                                                     \
        va_start(ap, fmt);                                              \
        int r = do_scan(stdin, fmt, ap, real);                          \
        va_end(ap);                                                     \
        return r;                                                       \
    }

#define SCANF_VSTDIN(cname, sym, vsym)                                  \
    IOT_API int cname(const char *fmt, va_list ap) __asm__(sym);        \
    IOT_API int cname(const char *fmt, va_list ap)                      \
    {                                                                   \
        SCAN_REAL(vsym);                                                \
        return do_scan(stdin, fmt, ap, real);                           \
    }

SCANF_VARIADIC(iot_fscanf, "fscanf", "vfscanf")
SCANF_VARIADIC(iot_isoc99_fscanf, "__isoc99_fscanf", "__isoc99_vfscanf")
SCANF_VARIADIC(iot_isoc23_fscanf, "__isoc23_fscanf", "__isoc23_vfscanf") /* glibc >= 2.38 */
SCANF_V(iot_vfscanf, "vfscanf")
SCANF_V(iot_isoc99_vfscanf, "__isoc99_vfscanf")
SCANF_V(iot_isoc23_vfscanf, "__isoc23_vfscanf")
SCANF_STDIN(iot_scanf, "scanf", "vfscanf")
SCANF_STDIN(iot_isoc99_scanf, "__isoc99_scanf", "__isoc99_vfscanf")
SCANF_STDIN(iot_isoc23_scanf, "__isoc23_scanf", "__isoc23_vfscanf")
SCANF_VSTDIN(iot_vscanf, "vscanf", "vfscanf")
SCANF_VSTDIN(iot_isoc99_vscanf, "__isoc99_vscanf", "__isoc99_vfscanf")
SCANF_VSTDIN(iot_isoc23_vscanf, "__isoc23_vscanf", "__isoc23_vfscanf")

/* ---- writes: ret = bytes accepted by the stream, -1 with errno on error ---- */

/* fwrite: ret = items * size (items = ret / aux). */
#define FWRITE_BODY(LK, real_call)                                      \
    WRITE_ENTER(IOT_FN_fwrite, f, LK, real_call);                       \
    int64_t want = (int64_t)(size * n);                                 \
    sb.measured = measure_writes(f, fd, sb, buf, want, 0);              \
    IOT_CALL(size_t, real_call, (int64_t)(r * size), want && r < n);    \
    int64_t done = ev.ret;                                              \
    iot_ev_req(&ev, want);                                              \
    iot_ev_aux(&ev, (int64_t)size);                                     \
    counted(f, fd);                                                     \
    stream_io(&ev, &h, fd, pos, done, f, sb, 'w');                     \
    iot_ev_data(&ev, buf, -1, done);                                    \
    IOT_LEAVE(r)

IOT_API size_t fwrite(const void *buf, size_t size, size_t n, FILE *f)
{
    IOT_REAL(fwrite);
    FWRITE_BODY(1, real_fwrite(buf, size, n, f));
}

IOT_API size_t fwrite_unlocked(const void *buf, size_t size, size_t n, FILE *f)
{
    IOT_REAL(fwrite_unlocked);
    FWRITE_BODY(0, real_fwrite_unlocked(buf, size, n, f));
}

/* fputs/puts: ret = strlen (+1 for puts' newline) rather than glibc's "non-negative". */
#define PUTS_BODY(FN, LK, stream, extra, real_call)                     \
    WRITE_ENTER(FN, stream, LK, real_call);                             \
    int64_t len = (int64_t)strlen(s) + (extra);                         \
    sb.measured = measure_writes(stream, fd, sb, s, len - (extra), extra); \
    IOT_CALL(int, real_call, -1, r == EOF);                             \
    if (r != EOF)                                                       \
        ev.ret = len;                                                   \
    iot_ev_req(&ev, len);                                               \
    counted(stream, fd);                                                \
    stream_io(&ev, &h, fd, pos, ev.ret, stream, sb, 'w');               \
    iot_ev_data(&ev, s, -1, r != EOF ? len - (extra) : 0);              \
    IOT_LEAVE(r)

IOT_API int fputs(const char *s, FILE *f)
{
    IOT_REAL(fputs);
    PUTS_BODY(IOT_FN_fputs, 1, f, 0, real_fputs(s, f));
}

IOT_API int fputs_unlocked(const char *s, FILE *f)
{
    IOT_REAL(fputs_unlocked);
    PUTS_BODY(IOT_FN_fputs, 0, f, 0, real_fputs_unlocked(s, f));
}

IOT_API int puts(const char *s)
{
    IOT_REAL(puts);
    PUTS_BODY(IOT_FN_puts, 1, stdout, 1, real_puts(s));
}

/* fputc and friends: ret 1, or -1 on error. */
#define PUTC_BODY(FN, LK, stream, real_call)                            \
    WRITE_ENTER(FN, stream, LK, real_call);                             \
    IOT_CALL(int, real_call, r == EOF ? -1 : 1, r == EOF);              \
    iot_ev_req(&ev, 1);                                                 \
    counted(stream, fd);                                                \
    stream_io(&ev, &h, fd, pos, ev.ret, stream, sb, 'w');               \
    IOT_LEAVE(r)

IOT_API int fputc(int c, FILE *f)
{
    IOT_REAL(fputc);
    PUTC_BODY(IOT_FN_fputc, 1, f, real_fputc(c, f));
}
IOT_ALIAS(fputc, putc);
IOT_ALIAS(fputc, _IO_putc);

IOT_API int fputc_unlocked(int c, FILE *f)
{
    IOT_REAL(fputc_unlocked);
    PUTC_BODY(IOT_FN_fputc, 0, f, real_fputc_unlocked(c, f));
}

IOT_API int putc_unlocked(int c, FILE *f)
{
    IOT_REAL(putc_unlocked);
    PUTC_BODY(IOT_FN_fputc, 0, f, real_putc_unlocked(c, f));
}

IOT_API int putchar(int c)
{
    IOT_REAL(putchar);
    PUTC_BODY(IOT_FN_putchar, 1, stdout, real_putchar(c));
}

IOT_API int putchar_unlocked(int c)
{
    IOT_REAL(putchar_unlocked);
    PUTC_BODY(IOT_FN_putchar, 0, stdout, real_putchar_unlocked(c));
}

/* ---- buffers the app sets: not recorded; a window buffer they replace goes back ---- */

IOT_API int setvbuf(FILE *f, char *buf, int mode, size_t size)
{
    IOT_REAL(setvbuf);
    char *old = f ? f->_IO_buf_base : NULL;
    int r = real_setvbuf(f, buf, mode, size);
    if (old && f->_IO_buf_base != old)
        iot_arena_release(old);
    return r;
}

IOT_API void setbuffer(FILE *f, char *buf, size_t size)
{
    IOT_REAL(setbuffer);
    char *old = f ? f->_IO_buf_base : NULL;
    real_setbuffer(f, buf, size);
    if (old && f->_IO_buf_base != old)
        iot_arena_release(old);
}

IOT_API void setbuf(FILE *f, char *buf)
{
    setbuffer(f, buf, BUFSIZ); /* as glibc's setbuf */
}

/* ---- the inline getc/putc of glibc's headers ----
 * Under -O, getc_unlocked, putc_unlocked, getchar_unlocked and putchar_unlocked are inline
 * code over the stream's buffer that calls __uflow when it is empty and __overflow when it is
 * full: the only calls the shim can see.  A stream's write buffer is counted once per byte:
 * the bytes a wrapped call puts in it are that call's, and the shim remembers (fdtable's
 * `seen`) how many bytes the buffer held, all counted, when a call left it.  What the buffer
 * holds beyond that when the stream is seen again was put there by inline putc: __overflow
 * counts it (and `c`), and before any other write call, fflush, fclose, and at exit (stdio's
 * final flush) it is one more __overflow event (uncounted).  __uflow's ret is the character it
 * returns plus what the refill left in the buffer (docs/format.md).  Without these wrappers
 * the buffer's write or read would pass the stracer unseen, the buffer being in the stdio
 * window (stdio_arena.c). */
static int64_t pending(FILE *f)
{
    if (IOT_UNLIKELY(f->_mode > 0)) /* a wide stream: its wide buffer's (wrap_wstdio.c) */
        return iot_wstdio_pending(f);
    return f->_IO_write_base && f->_IO_write_ptr > f->_IO_write_base
               ? f->_IO_write_ptr - f->_IO_write_base
               : 0;
}

/* Bytes in the buffer no call counted: beyond what it held when last seen; all of them if it
 * holds less (a flush the shim did not see, e.g. stdio's flush of line-buffered streams before
 * a read, emptied it since). */
static int64_t fresh(FILE *f, int fd)
{
    int64_t p = pending(f), s = iot_stdio_seen(fd);
    return p >= s ? p - s : p;
}

static void counted(FILE *f, int fd)
{
    if (fd >= 0)
        iot_stdio_set_seen(fd, pending(f));
}

IOT_API int __overflow(FILE *f, int c)
{
    IOT_REAL(__overflow);
    if (iot_t.in_wrapper & (IOT_SPAWNS_HELPERS - 1)) /* inside a traced stdio call: its bytes */
        return real___overflow(f, c);
    STREAM_ENTER(IOT_FN___overflow, f, 0, real___overflow(f, c));
    int64_t n = (fd >= 0 ? fresh(f, fd) : 0) + (c != EOF);
    IOT_CALL(int, real___overflow(f, c), r == EOF ? -1 : n, r == EOF);
    counted(f, fd);
    stream_ev(&ev, fd);
    beneath(&ev, f, fd, sb, pos, 0, c != EOF); /* the inline bytes were in the buffer before */
    stream_io(&ev, &h, fd, pos, ev.ret, f, sb, 0);
    IOT_LEAVE(r);
}

/* An event of `n` bytes no call of the app's moved: inline putc's, put in the buffer since the
 * stream was last seen (__overflow: the stream position moves on, they are counted now), or
 * what stdio's final flush will write (stdio_flush). */
static void unseen_bytes(unsigned fn, FILE *f, int fd, int64_t n)
{
    IOT_ENTER(fn, (void)0);
    IOT_CALL(int64_t, n, n, 0);
    stream_ev(&ev, fd);
    if (fn == IOT_FN___overflow) {
        iot_ev_off(&ev, iot_stdio_advance(fd, iot_stdio_pos(fd), n));
        counted(f, fd);
    } else {
        iot_ev_off(&ev, minus(iot_stdio_pos(fd), n));
    }
    IOT_LEAVE();
}

/* The bytes inline putc left in the buffer since the stream was last seen, as an __overflow
 * event (fd < 0: no stream, or one without a descriptor: not tracked). */
static void uncounted(FILE *f, int fd, int locked)
{
    if (iot_p.state != IOT_READY || iot_t.busy || fd < 0)
        return;
    /* the buffer's level is read with the stream held: another thread's call in progress has
     * bytes in it that are its own, not inline putc's */
    held h = {NULL, 0};
    if (locked && threaded()) {
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &h.cancel);
        flockfile(f);
        h.f = f;
    }
    int64_t n = fresh(f, fd);
    if (n)
        unseen_bytes(IOT_FN___overflow, f, fd, n);
    release(&h);
}

/* glibc's list of every open stream and its lock (as kio.c reads them). */
extern FILE *_IO_list_all;
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);

/* At exit: a stream flushed now, measured, where stdio's final flush would have written it. */
static void exit_flush(FILE *f, int fd)
{
    IOT_REAL(fflush_unlocked); /* as stdio's final flush: a thread still in a call may hold it */
    IOT_ENTER(IOT_FN_stdio_flush, (void)0);
    int64_t end = iot_stdio_pos(fd);
    uint64_t d[6] = {0};
    iot_kio_in_begin(IOT_KIO_MODE_IN);
    int ok = real_fflush_unlocked(f) == 0;
    iot_kio_in_end(d);
    IOT_CALL(int64_t, ok ? (int64_t)d[1] : -1, r, !ok);
    iot_ev_fd(&ev, fd);
    iot_ev_fdpath(&ev, fd);
    if (d[3] > 1)
        iot_ev_aux(&ev, (int64_t)d[3]);
    iot_ev_off(&ev, end == IOT_NO_OFFSET || r < 0 ? end : end - r);
    IOT_LEAVE();
}

/* Called last of the exit handlers (init.c), before stdio's final flush writes what the
 * streams still hold: what inline putc left there is counted now.  A wide stream's bytes are
 * known only by its flush, so it is flushed now, and so is every stream before it in the list
 * the final flush walks: their bytes reach a shared descriptor in the order they do untraced
 * (a narrow stream opened after a wide one came out after it). */
void iot_stdio_exit(void)
{
    _IO_list_lock();
    FILE *last_wide = NULL;
    for (FILE *f = _IO_list_all; f; f = f->_chain)
        if (f->_mode > 0 && f->_fileno >= 0 && pending(f))
            last_wide = f;
    for (FILE *f = _IO_list_all; f; f = f->_chain) {
        int fd = f->_fileno;
        int64_t n = fd >= 0 ? pending(f) : 0;
        if (!n || iot_t.busy)
            continue;
        uncounted(f, fd, 0); /* at exit: a thread still in a call may hold the stream */
        if (last_wide) /* flushed now, measured, in the final flush's order */
            exit_flush(f, fd);
        else
            unseen_bytes(IOT_FN_stdio_flush, f, fd, n);
        if (f == last_wide)
            last_wide = NULL;
    }
    _IO_list_unlock();
}

IOT_API int __uflow(FILE *f)
{
    IOT_REAL(__uflow);
    STREAM_ENTER(IOT_FN___uflow, f, 0, real___uflow(f));
    IOT_CALL(int, real___uflow(f), r != EOF ? 1 + (f->_IO_read_end - f->_IO_read_ptr)
                                   : GETC_BAD(r, f) ? -1 : 0, GETC_BAD(r, f));
    stream_ev(&ev, fd);
    beneath(&ev, f, fd, sb, pos, r != EOF, 0); /* the app got one character */
    stream_io(&ev, &h, fd, pos, ev.ret > 0 ? ev.ret : 0, f, sb, 0);
    IOT_LEAVE(r);
}

/* printf family: ret = the C value, bytes written.  `flag` >= 0: the fortified entry. */
static int do_print(unsigned fn, FILE *f, int flag, const char *fmt, va_list ap)
{
    IOT_REAL(vfprintf);
    IOT_REAL(__vfprintf_chk);
#define VPRINT_REAL                                                     \
    (flag < 0 ? real_vfprintf(f, fmt, ap) : real___vfprintf_chk(f, flag, fmt, ap))
    WRITE_ENTER(fn, f, 1, VPRINT_REAL);
    int lines = (f->_flags & IOT_GLIBC_LINE_BUF) && fmt ? printf_lines(fmt, ap) : 0;
    sb.measured = measure_writes(f, fd, sb, NULL, -1, lines);
    IOT_CALL(int, VPRINT_REAL, r < 0 ? -1 : r, r < 0);
    counted(f, fd);
    stream_io(&ev, &h, fd, pos, r, f, sb, 'w');
    IOT_LEAVE(r);
#undef VPRINT_REAL
}

/* printf(...) is vfprintf(stdout, ...) in glibc, and __printf_chk __vfprintf_chk(stdout). */
IOT_PRINT_FAMILY(printf, char, do_print)

/* ---- positioning: fseek's offset is its argument (aux = whence); ftell's is its result ---- */

static int do_fseek(FILE *f, int64_t off, int whence, int (*real)(FILE *, off_t, int))
{
    STREAM_ENTER(IOT_FN_fseek, f, 1, real(f, off, whence)); /* the position it sets must not race other threads' moves */
    seekst ss = seek_snap(f);
    IOT_CALL(int, real(f, off, whence), r, r != 0);
    stream_ev(&ev, fd);
    iot_ev_off(&ev, off);
    iot_ev_aux(&ev, whence);
    int64_t now = r == 0 && fd >= 0 ? (whence == SEEK_SET ? off : tell(f)) : -1;
    if (now >= 0) /* after a seek stdio knows its offset: tell costs no syscall */
        iot_stdio_seek(fd, now);
    seek_beneath(&ev, f, fd, sb, pos, ss, now, whence);
    release(&h);
    IOT_LEAVE(r);
}

IOT_API int fseek(FILE *f, long off, int whence)
{
    IOT_REAL(fseek);
    return do_fseek(f, off, whence, (int (*)(FILE *, off_t, int))real_fseek);
}

IOT_API int fseeko(FILE *f, off_t off, int whence)
{
    IOT_REAL(fseeko);
    return do_fseek(f, off, whence, real_fseeko);
}
IOT_ALIAS(fseeko, fseeko64);

static int64_t do_ftell(FILE *f, off_t (*real)(FILE *))
{
    STREAM_ENTER(IOT_FN_ftell, f, 1, real(f));
    IOT_CALL(int64_t, real(f), r, r < 0);
    stream_ev(&ev, fd);
    if (r >= 0) {
        iot_ev_off(&ev, r);
        iot_stdio_seek(fd, r); /* the truth, whatever counting missed (ungetc...) */
    }
    release(&h);
    IOT_LEAVE(r);
}

IOT_API long ftell(FILE *f)
{
    IOT_REAL(ftell);
    return do_ftell(f, (off_t (*)(FILE *))real_ftell);
}

IOT_API off_t ftello(FILE *f)
{
    IOT_REAL(ftello);
    return do_ftell(f, real_ftello);
}
IOT_ALIAS(ftello, ftello64);

IOT_API void rewind(FILE *f)
{
    IOT_REAL(rewind);
    STREAM_ENTER(IOT_FN_rewind, f, 1, real_rewind(f));
    seekst ss = seek_snap(f);
    IOT_CALL(int, (real_rewind(f), 0), 0, 0); /* void: a failure cannot be told */
    stream_ev(&ev, fd);
    seek_beneath(&ev, f, fd, sb, pos, ss, 0, SEEK_SET);
    iot_ev_off(&ev, 0);
    iot_stdio_seek(fd, 0);
    release(&h);
    IOT_LEAVE();
}

/* fgetpos/fsetpos: offset = the position read or set. */
static int do_fgetpos(FILE *f, fpos_t *p, int (*real)(FILE *, fpos_t *))
{
    STREAM_ENTER(IOT_FN_fgetpos, f, 1, real(f, p));
    IOT_CALL(int, real(f, p), r, r != 0);
    stream_ev(&ev, fd);
    if (r == 0) {
        iot_ev_off(&ev, p->__pos);
        iot_stdio_seek(fd, p->__pos);
    }
    release(&h);
    IOT_LEAVE(r);
}

static int do_fsetpos(FILE *f, const fpos_t *p, int (*real)(FILE *, const fpos_t *))
{
    STREAM_ENTER(IOT_FN_fsetpos, f, 1, real(f, p));
    int64_t off = p->__pos;
    seekst ss = seek_snap(f);
    IOT_CALL(int, real(f, p), r, r != 0);
    stream_ev(&ev, fd);
    seek_beneath(&ev, f, fd, sb, pos, ss, r == 0 ? off : -1, SEEK_SET);
    iot_ev_off(&ev, off);
    if (r == 0)
        iot_stdio_seek(fd, off);
    release(&h);
    IOT_LEAVE(r);
}

IOT_API int fgetpos(FILE *f, fpos_t *p)
{
    IOT_REAL(fgetpos);
    return do_fgetpos(f, p, real_fgetpos);
}

/* fpos64_t has fpos_t's layout on LP64; separate definitions since the types differ. */
IOT_API int fgetpos64(FILE *f, fpos64_t *p)
{
    IOT_REAL(fgetpos64);
    return do_fgetpos(f, (fpos_t *)p, (int (*)(FILE *, fpos_t *))real_fgetpos64);
}

IOT_API int fsetpos(FILE *f, const fpos_t *p)
{
    IOT_REAL(fsetpos);
    return do_fsetpos(f, p, real_fsetpos);
}

IOT_API int fsetpos64(FILE *f, const fpos64_t *p)
{
    IOT_REAL(fsetpos64);
    return do_fsetpos(f, (const fpos_t *)p, (int (*)(FILE *, const fpos_t *))real_fsetpos64);
}

/* ---- flush: the bytes were counted when written; fflush(NULL) has fd nil ---- */

/* fflush(NULL) flushes every stream, one stdio_flush event each (on the stream's fd), under
 * glibc's list lock as glibc's own flush takes it (recursive): no stream goes meanwhile. */
static int flush_all(int (*real)(FILE *))
{
    _IO_list_lock();
    size_t n = 0;
    for (FILE *f = _IO_list_all; f; f = f->_chain)
        n += sfd(f) >= 0;
    if (n > 4096)
        n = 4096;
    struct {
        FILE *f;
        int64_t pend;
    } st[n ? n : 1];
    size_t k = 0;
    for (FILE *f = _IO_list_all; f && k < n; f = f->_chain) {
        int fd = sfd(f);
        if (fd < 0)
            continue;
        uncounted(f, fd, 0); /* glibc's flush takes each stream's lock after ours */
        st[k].f = f;
        st[k++].pend = pending(f);
    }
    iot_ev ev;
    int r;
    if (!iot_enter(&ev, IOT_FN_fflush))
        r = real(NULL);
    else {
        r = real(NULL);
        iot_done(&ev, r, r != 0);
        for (size_t i = 0; i < k; i++)
            if (st[i].pend)
                flushed_other(&ev, st[i].f, sfd(st[i].f), st[i].pend);
        iot_leave(&ev);
    }
    _IO_list_unlock();
    return r;
}

static int do_fflush(FILE *f, int (*real)(FILE *), int locked)
{
    if (!f && iot_p.state == IOT_READY && !iot_t.busy)
        return flush_all(real);
    int fd = sfd(f);
    uncounted(f, fd, locked);
    IOT_ENTER(IOT_FN_fflush, real(f));
    int64_t pend = f ? pending(f) : 0, spos = iot_stdio_pos(fd);
    int wide = iot_wstdio_flush_begin(f); /* a wide stream's flush is measured */
    IOT_CALL(int, real(f), r, r != 0);
    stream_ev(&ev, fd);
    if (wide)
        iot_wstdio_flush_end(&ev, r == 0, spos);
    else if (fd >= 0 && r == 0)
        under(&ev, IOT_FN_stdio_flush, pend, minus(spos, pend));
    else if (fd >= 0 && pend > 0) /* its write failed (EPIPE): glibc drops what was waiting */
        one(&ev, IOT_FN_stdio_flush, -1, ev.err ? ev.err : EIO, minus(spos, pend));
    counted(f, fd);
    IOT_LEAVE(r);
}

IOT_API int fflush(FILE *f)
{
    IOT_REAL(fflush);
    return do_fflush(f, real_fflush, 1);
}

IOT_API int fflush_unlocked(FILE *f)
{
    IOT_REAL(fflush_unlocked);
    return do_fflush(f, real_fflush_unlocked, 0);
}
