/* Wrappers: wide-character stdio (docs/format.md, "stdio", wide streams).  The shape is
 * wrap_stdio.c's, with what a wide stream changes:
 *
 * - ret is bytes, as for the narrow family: the characters the call moved in the locale's
 *   multibyte form (what they are in the file; UTF-8 under a UTF-8 locale), req the characters.
 * - what moved underneath cannot be told from the buffers: glibc converts between the wide
 *   buffer the app sees and the byte buffer it reads into and writes from in bulk, so the bytes
 *   of a refill or a flush are not the characters' of the call.  A call that may read or write
 *   the file (its wide buffer empty for a read, too full for a write, a line- or unbuffered
 *   stream, a printf that may fill it) is measured with the thread's counters around it, as
 *   wrap_stdio.c's measure_reads, once per buffer: one stdio_refill (stdio_flush) of the bytes,
 *   aux the reads (writes) it stands for.
 * - a stream going wide gives its stdio-window buffer back (stdio_arena.c): glibc sizes the wide
 *   buffer of a user-given byte buffer at a quarter of its chars, so the app's writes would be
 *   4x as many.  Its reads and writes then stop under a stracer, covered by these wrappers. */
#undef _FORTIFY_SOURCE /* the header's inline fgetws/fwprintf would clash with the definitions */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#if __GLIBC_PREREQ(2, 32)
#include <sys/single_threaded.h>
#endif

#include "shim.h"

/* Fortified entry points: declared by the headers only under _FORTIFY_SOURCE. */
extern wchar_t *__fgetws_chk(wchar_t *, size_t, int, FILE *);
extern wchar_t *__fgetws_unlocked_chk(wchar_t *, size_t, int, FILE *);
extern int __fwprintf_chk(FILE *, int, const wchar_t *, ...);
extern int __vfwprintf_chk(FILE *, int, const wchar_t *, va_list);
extern int __wprintf_chk(int, const wchar_t *, ...);
extern int __vwprintf_chk(int, const wchar_t *, va_list);

/* glibc's struct _IO_wide_data (libio.h) begins so, unchanged since 2.2 */
typedef struct {
    wchar_t *read_ptr, *read_end, *read_base, *write_base, *write_ptr, *write_end;
} wbuf;
#define WB(f) ((wbuf *)(f)->_wide_data)
#define GLIBC_UNBUFFERED 2     /* libio.h: _IO_UNBUFFERED */
#define GLIBC_EOF_SEEN 0x10    /* _IO_EOF_SEEN */
#define GLIBC_ERR_SEEN 0x20    /* _IO_ERR_SEEN */
#define GLIBC_LINE_BUF 0x200   /* _IO_LINE_BUF */
#define PRINTF_ROOM 1024 /* a wprintf with this much room left is taken not to fill the buffer */

/* The bytes of n wide characters in the locale's multibyte form (n itself if one has none). */
static int64_t mb_len(const wchar_t *s, size_t n)
{
    if (!s || !n)
        return 0;
    int e = errno;
    mbstate_t st;
    memset(&st, 0, sizeof st);
    const wchar_t *p = s;
    size_t r = wcsnrtombs(NULL, &p, n, SIZE_MAX, &st);
    errno = e;
    return r == (size_t)-1 ? (int64_t)n : (int64_t)r;
}

static int64_t wc_len(wint_t c)
{
    wchar_t w = (wchar_t)c;
    return c == WEOF ? 0 : mb_len(&w, 1) + (c == 0);
}

/* A wide stream's characters waiting to be written, as the bytes its flush will write
 * (wrap_stdio.c's pending adds them for fflush, fclose and exit). */
int64_t iot_wstdio_pending(FILE *f)
{
    wbuf *w = f && f->_mode > 0 ? WB(f) : NULL;
    return w && w->write_ptr > w->write_base ? mb_len(w->write_base,
                                                      (size_t)(w->write_ptr - w->write_base))
                                             : 0;
}

/* A wide stream's flush by fflush, fclose or freopen (wrap_stdio.c): glibc converts the wide
 * buffer a piece at a time and writes each piece (UTF-8: a write at each change between one-
 * and multi-byte runs), so the writes are measured around the call: 1 if begun. */
int iot_wstdio_flush_begin(FILE *f)
{
    if (!f || f->_mode <= 0 || fileno_unlocked(f) < 0 || !iot_wstdio_pending(f))
        return 0;
    iot_kio_in_begin(IOT_KIO_MODE_IN);
    return 1;
}

/* Its end: one stdio_flush beside `ev` (fd and path the stream's) of the bytes written at stream
 * position `end` less them, aux the writes; none if `ok` is 0 (the call failed). */
void iot_wstdio_flush_end(const iot_ev *ev, int ok, int64_t end)
{
    uint64_t d[6] = {0};
    iot_kio_in_end(d);
    if (ok && d[3] > 0)
        iot_stdio_under(ev, IOT_FN_stdio_flush, (int64_t)d[1], 0,
                        end == IOT_NO_OFFSET ? end : end - (int64_t)d[1], (int64_t)d[3]);
}

static int sfd(FILE *f)
{
    if (!f)
        return -1;
    int e = errno;
    int fd = fileno_unlocked(f);
    errno = e;
    return fd;
}

static int threaded(void)
{
#if __GLIBC_PREREQ(2, 32)
    return !__libc_single_threaded;
#else
    return 1;
#endif
}

/* A call's state: the stream held (wrap_stdio.c's hold: a tracked position moves with the call
 * under the stream's lock), and whether its syscalls are measured. */
typedef struct {
    FILE *f;
    int cancel, measured, flags;
    uint64_t d[6]; /* measured: rchar, wchar, syscr, syscw (kio.c) */
} wheld;

static int64_t whold(wheld *h, FILE *f, int fd, int locked)
{
    h->f = NULL;
    h->measured = 0;
    memset(h->d, 0, sizeof h->d);
    h->flags = f ? f->_flags : 0;
    if (f && f->_mode == 0)
        iot_arena_disown(f);
    int64_t pos = iot_stdio_pos(fd);
    if (pos == IOT_NO_OFFSET || !locked || !threaded())
        return pos;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &h->cancel);
    flockfile(f);
    h->f = f;
    return iot_stdio_pos(fd);
}

static void wrelease(wheld *h)
{
    if (h->f) {
        int unused;
        funlockfile(h->f);
        pthread_setcancelstate(h->cancel, &unused);
    }
}

static void measure(wheld *h, FILE *f, int fd, int may)
{
    if (may && f && fd >= 0 && !(f->_flags & GLIBC_EOF_SEEN && may == 'r')) {
        iot_kio_in_begin(IOT_KIO_MODE_IN);
        h->measured = 1;
    }
}

/* The wide buffer cannot serve a read of up to `most` characters ending at `stop` (WEOF: none). */
static int may_read(FILE *f, int64_t most, wint_t stop)
{
    wbuf *w = f && f->_mode > 0 ? WB(f) : NULL;
    if (!w || w->read_ptr >= w->read_end)
        return 'r';
    int64_t n = w->read_end - w->read_ptr;
    if (n >= most)
        return 0;
    return stop != WEOF && wmemchr(w->read_ptr, (wchar_t)stop, (size_t)n) ? 0 : 'r';
}

/* Putting n characters (nl: one of them a newline) may write: no room, or a line-buffered or
 * unbuffered stream that writes now. */
static int may_write(FILE *f, int64_t n, int nl)
{
    wbuf *w = f && f->_mode > 0 ? WB(f) : NULL;
    if (!w || (f->_flags & GLIBC_UNBUFFERED) || ((f->_flags & GLIBC_LINE_BUF) && nl))
        return 'w';
    return w->write_end - w->write_ptr < n ? 'w' : 0;
}

/* The measured reads and writes as one stdio_refill on the stream and one stdio_flush (on the
 * stream for a write, on stdout for a read: glibc's prompt rule), each `aux` the syscalls it
 * stands for; a call that set the stream's error flag failed in its last one. */
static void measured(wheld *h)
{
    if (h->measured == 1) {
        iot_kio_in_end(h->d);
        h->measured = 2;
    }
}

static void under(const iot_ev *ev, wheld *h, FILE *f, int fd, char dir)
{
    measured(h);
    if (!h->measured)
        return;
    const uint64_t *d = h->d;
    int failed = f && (f->_flags & ~h->flags & GLIBC_ERR_SEEN);
    int outfd = dir == 'w' ? fd : sfd(stdout);
    for (int k = 0; k < 2; k++) {
        int64_t bytes = (int64_t)d[k], calls = (int64_t)d[2 + k], fail = failed && k == (dir == 'w');
        int on = k == 0 ? fd : outfd;
        if (on < 0 || calls <= 0)
            continue;
        iot_ev e = *ev;
        iot_ev_fd(&e, on);
        iot_ev_fdpath(&e, on);
        unsigned fn = k == 0 ? IOT_FN_stdio_refill : IOT_FN_stdio_flush;
        if (calls > fail)
            iot_stdio_under(&e, fn, bytes, 0, IOT_NO_OFFSET, calls - fail);
        if (fail)
            iot_stdio_under(&e, fn, -1, ev->err ? ev->err : 5 /* EIO */, IOT_NO_OFFSET, 1);
    }
}

/* fd, path and the stream position the call used, moved on by `done` bytes; what moved
 * underneath; the written bytes counted (wrap_stdio.c's inline-putc rule); the stream let go. */
static void wstream_io(iot_ev *ev, wheld *h, FILE *f, int fd, int64_t pos, int64_t done, char dir)
{
    if (fd >= 0) {
        iot_ev_fd(ev, fd);
        iot_ev_fdpath(ev, fd);
        iot_fd_pos_stale(fd);
    }
    under(ev, h, f, fd, dir);
    iot_ev_off(ev, iot_stdio_advance(fd, pos, done));
    if (fd >= 0 && dir == 'w')
        iot_stdio_set_seen(fd, iot_stdio_pending(f));
    wrelease(h);
}

#define WSTREAM_ENTER(FN, stream, locked, real_call)                    \
    IOT_ENTER(FN, real_call);                                           \
    int fd = sfd(stream);                                               \
    wheld h;                                                            \
    int64_t pos = whold(&h, stream, fd, locked)

/* A character read: WEOF with the error flag set failed (ret -1), without it the file ended. */
#define WGETC_BODY(FN, LK, stream, real_call)                           \
    WSTREAM_ENTER(FN, stream, LK, real_call);                           \
    measure(&h, stream, fd, may_read(stream, 1, WEOF));                 \
    IOT_CALL(wint_t, real_call, r != WEOF ? wc_len(r) : ferror_unlocked(stream) ? -1 : 0, \
             r == WEOF && ferror_unlocked(stream));                     \
    iot_ev_req(&ev, 1);                                                 \
    wstream_io(&ev, &h, stream, fd, pos, ev.ret > 0 ? ev.ret : 0, 'r'); \
    IOT_LEAVE(r)

IOT_API wint_t fgetwc(FILE *f)
{
    IOT_REAL(fgetwc);
    WGETC_BODY(IOT_FN_fgetwc, 1, f, real_fgetwc(f));
}
IOT_ALIAS(fgetwc, getwc);

IOT_API wint_t fgetwc_unlocked(FILE *f)
{
    IOT_REAL(fgetwc_unlocked);
    WGETC_BODY(IOT_FN_fgetwc, 0, f, real_fgetwc_unlocked(f));
}
IOT_ALIAS(fgetwc_unlocked, getwc_unlocked);

IOT_API wint_t getwchar(void)
{
    IOT_REAL(getwchar);
    WGETC_BODY(IOT_FN_getwchar, 1, stdin, real_getwchar());
}

IOT_API wint_t getwchar_unlocked(void)
{
    IOT_REAL(getwchar_unlocked);
    WGETC_BODY(IOT_FN_getwchar, 0, stdin, real_getwchar_unlocked());
}

/* fgetws: req = the buffer's characters, ret = the bytes of the line stored, 0 when NULL. */
#define FGETWS_BODY(LK, real_call)                                      \
    WSTREAM_ENTER(IOT_FN_fgetws, f, LK, real_call);                     \
    measure(&h, f, fd, may_read(f, (int64_t)n - 1, L'\n'));             \
    IOT_CALL(wchar_t *, real_call, r ? mb_len(r, wcslen(r)) : ferror_unlocked(f) ? -1 : 0, \
             !r && ferror_unlocked(f));                                 \
    iot_ev_req(&ev, (int64_t)n);                                        \
    wstream_io(&ev, &h, f, fd, pos, ev.ret > 0 ? ev.ret : 0, 'r');      \
    IOT_LEAVE(r)

IOT_API wchar_t *fgetws(wchar_t *s, int n, FILE *f)
{
    IOT_REAL(fgetws);
    FGETWS_BODY(1, real_fgetws(s, n, f));
}

IOT_API wchar_t *fgetws_unlocked(wchar_t *s, int n, FILE *f)
{
    IOT_REAL(fgetws_unlocked);
    FGETWS_BODY(0, real_fgetws_unlocked(s, n, f));
}

IOT_API wchar_t *__fgetws_chk(wchar_t *s, size_t size, int n, FILE *f)
{
    IOT_REAL(__fgetws_chk);
    FGETWS_BODY(1, real___fgetws_chk(s, size, n, f));
}

IOT_API wchar_t *__fgetws_unlocked_chk(wchar_t *s, size_t size, int n, FILE *f)
{
    IOT_REAL(__fgetws_unlocked_chk);
    FGETWS_BODY(0, real___fgetws_unlocked_chk(s, size, n, f));
}

/* ungetwc: ret = the bytes pushed back (the stream position moves back by them), -1 if not. */
IOT_API wint_t ungetwc(wint_t c, FILE *f)
{
    IOT_REAL(ungetwc);
    WSTREAM_ENTER(IOT_FN_ungetwc, f, 1, real_ungetwc(c, f));
    IOT_CALL(wint_t, real_ungetwc(c, f), r == WEOF ? -1 : wc_len(r), r == WEOF);
    if (ev.ret > 0 && pos != IOT_NO_OFFSET)
        iot_stdio_seek(fd, pos - ev.ret);
    wstream_io(&ev, &h, f, fd, pos, 0, 0);
    IOT_LEAVE(r);
}

/* fwide: ret = the orientation after (the C value), flags = the mode asked. */
IOT_API int fwide(FILE *f, int mode)
{
    IOT_REAL(fwide);
    WSTREAM_ENTER(IOT_FN_fwide, f, 1, real_fwide(f, mode));
    IOT_CALL(int, real_fwide(f, mode), r, 0);
    iot_ev_flags(&ev, mode);
    wstream_io(&ev, &h, f, fd, pos, 0, 0);
    IOT_LEAVE(r);
}

/* fputwc and friends: ret = the character's bytes, -1 on error. */
#define WPUTC_BODY(FN, LK, stream, c, real_call)                        \
    WSTREAM_ENTER(FN, stream, LK, real_call);                           \
    measure(&h, stream, fd, may_write(stream, 1, (c) == L'\n'));        \
    IOT_CALL(wint_t, real_call, r == WEOF ? -1 : wc_len(r), r == WEOF); \
    iot_ev_req(&ev, 1);                                                 \
    wstream_io(&ev, &h, stream, fd, pos, ev.ret > 0 ? ev.ret : 0, 'w'); \
    IOT_LEAVE(r)

IOT_API wint_t fputwc(wchar_t c, FILE *f)
{
    IOT_REAL(fputwc);
    WPUTC_BODY(IOT_FN_fputwc, 1, f, c, real_fputwc(c, f));
}
IOT_ALIAS(fputwc, putwc);

IOT_API wint_t fputwc_unlocked(wchar_t c, FILE *f)
{
    IOT_REAL(fputwc_unlocked);
    WPUTC_BODY(IOT_FN_fputwc, 0, f, c, real_fputwc_unlocked(c, f));
}
IOT_ALIAS(fputwc_unlocked, putwc_unlocked);

IOT_API wint_t putwchar(wchar_t c)
{
    IOT_REAL(putwchar);
    WPUTC_BODY(IOT_FN_putwchar, 1, stdout, c, real_putwchar(c));
}

IOT_API wint_t putwchar_unlocked(wchar_t c)
{
    IOT_REAL(putwchar_unlocked);
    WPUTC_BODY(IOT_FN_putwchar, 0, stdout, c, real_putwchar_unlocked(c));
}

/* fputws: req = the string's characters, ret = its bytes, -1 on error. */
#define FPUTWS_BODY(LK, real_call)                                      \
    WSTREAM_ENTER(IOT_FN_fputws, f, LK, real_call);                     \
    size_t len = s ? wcslen(s) : 0;                                     \
    measure(&h, f, fd, may_write(f, (int64_t)len, s && wcschr(s, L'\n'))); \
    IOT_CALL(int, real_call, r < 0 ? -1 : mb_len(s, len), r < 0);       \
    iot_ev_req(&ev, (int64_t)len);                                      \
    wstream_io(&ev, &h, f, fd, pos, ev.ret > 0 ? ev.ret : 0, 'w');      \
    IOT_LEAVE(r)

IOT_API int fputws(const wchar_t *s, FILE *f)
{
    IOT_REAL(fputws);
    FPUTWS_BODY(1, real_fputws(s, f));
}

IOT_API int fputws_unlocked(const wchar_t *s, FILE *f)
{
    IOT_REAL(fputws_unlocked);
    FPUTWS_BODY(0, real_fputws_unlocked(s, f));
}

/* wprintf family: req = the characters printed (the C value), ret = their bytes: what the
 * buffer gained, plus what a measured flush wrote out of it meanwhile. */
static int do_wprint(unsigned fn, FILE *f, int flag, const wchar_t *fmt, va_list ap)
{
    IOT_REAL(vfwprintf);
    IOT_REAL(__vfwprintf_chk);
#define VWPRINT_REAL                                                    \
    (flag < 0 ? real_vfwprintf(f, fmt, ap) : real___vfwprintf_chk(f, flag, fmt, ap))
    WSTREAM_ENTER(fn, f, 1, VWPRINT_REAL);
    int may = f->_mode <= 0 || may_write(f, PRINTF_ROOM, 1);
    int64_t before = may ? iot_wstdio_pending(f) : 0;
    wchar_t *wp = f->_mode > 0 ? WB(f)->write_ptr : NULL;
    measure(&h, f, fd, may ? 'w' : 0);
    IOT_CALL(int, VWPRINT_REAL, r, r < 0);
    iot_ev_req(&ev, r);
    measured(&h);
    if (r >= 0 && !may)
        ev.ret = WB(f)->write_ptr >= wp ? mb_len(wp, (size_t)(WB(f)->write_ptr - wp)) : r;
    else if (r >= 0)
        ev.ret = (int64_t)h.d[1] - before + iot_wstdio_pending(f);
    wstream_io(&ev, &h, f, fd, pos, ev.ret > 0 ? ev.ret : 0, 'w');
    IOT_LEAVE(r);
#undef VWPRINT_REAL
}

IOT_PRINT_FAMILY(wprintf, wchar_t, do_wprint)

/* wscanf family: ret = items assigned (the C value), aux = the bytes consumed (from stdio's
 * own position: seekable streams only); always measured (its conversions may read on).
 * wscanf is fwscanf on stdin. */
typedef int vwscan_fn(FILE *, const wchar_t *, va_list);

static int do_wscan(FILE *f, const wchar_t *fmt, va_list ap, vwscan_fn *real)
{
    WSTREAM_ENTER(IOT_FN_fwscanf, f, 1, real(f, fmt, ap));
    measure(&h, f, fd, 'r');
    IOT_CALL(int, real(f, fmt, ap), r, r == EOF && ferror_unlocked(f));
    IOT_REAL(ftello);
    int64_t now = pos != IOT_NO_OFFSET ? real_ftello(f) : -1; /* what it consumed */
    if (now >= pos && pos != IOT_NO_OFFSET)
        iot_ev_aux(&ev, now - pos);
    wstream_io(&ev, &h, f, fd, pos, 0, 'r');
    if (now >= 0)
        iot_stdio_seek(fd, now);
    IOT_LEAVE(r);
}

#define WSCAN_REAL(sym)                                                 \
    static vwscan_fn *real;                                             \
    if (IOT_UNLIKELY(!real))                                            \
        real = (vwscan_fn *)iot_dlsym(sym)

#define WSCANF_VARIADIC(cname, sym, vsym, stream, ...)                  \
    IOT_API int cname(__VA_ARGS__ const wchar_t *fmt, ...) __asm__(sym); \
    IOT_API int cname(__VA_ARGS__ const wchar_t *fmt, ...)              \
    {                                                                   \
        WSCAN_REAL(vsym);                                               \
        va_list ap;                                                     \
        va_start(ap, fmt);                                              \
        int r = do_wscan(stream, fmt, ap, real);                        \
        va_end(ap);                                                     \
        return r;                                                       \
    }

#define WSCANF_V(cname, sym, stream, ...)                               \
    IOT_API int cname(__VA_ARGS__ const wchar_t *fmt, va_list ap) __asm__(sym); \
    IOT_API int cname(__VA_ARGS__ const wchar_t *fmt, va_list ap)       \
    {                                                                   \
        WSCAN_REAL(sym);                                                \
        return do_wscan(stream, fmt, ap, real);                         \
    }

/* The headers redirect fwscanf to __isoc99_fwscanf (C99 %a), glibc >= 2.38 to __isoc23_. */
WSCANF_VARIADIC(iot_fwscanf, "fwscanf", "vfwscanf", f, FILE *f,)
WSCANF_VARIADIC(iot_isoc99_fwscanf, "__isoc99_fwscanf", "__isoc99_vfwscanf", f, FILE *f,)
WSCANF_VARIADIC(iot_isoc23_fwscanf, "__isoc23_fwscanf", "__isoc23_vfwscanf", f, FILE *f,)
WSCANF_V(iot_vfwscanf, "vfwscanf", f, FILE *f,)
WSCANF_V(iot_isoc99_vfwscanf, "__isoc99_vfwscanf", f, FILE *f,)
WSCANF_V(iot_isoc23_vfwscanf, "__isoc23_vfwscanf", f, FILE *f,)
WSCANF_VARIADIC(iot_wscanf, "wscanf", "vfwscanf", stdin, )
WSCANF_VARIADIC(iot_isoc99_wscanf, "__isoc99_wscanf", "__isoc99_vfwscanf", stdin, )
WSCANF_VARIADIC(iot_isoc23_wscanf, "__isoc23_wscanf", "__isoc23_vfwscanf", stdin, )
WSCANF_V(iot_vwscanf, "vwscanf", stdin, )
WSCANF_V(iot_isoc99_vwscanf, "__isoc99_vwscanf", stdin, )
WSCANF_V(iot_isoc23_vwscanf, "__isoc23_vwscanf", stdin, )
