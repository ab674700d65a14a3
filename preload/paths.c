/* Paths are recorded absolute, made so lexically against the cwd (tracked through chdir) or the
 * directory fd of an *at call.  Symlinks are kept as written: that is the name the app used. */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

/* A thread may resolve a relative path while another changes directory: one lock. */
static pthread_mutex_t cwd_lock = PTHREAD_MUTEX_INITIALIZER;
static char cwd[PATH_MAX];
static size_t cwd_len;

static void cwd_load(void)
{
    long n = syscall(SYS_getcwd, cwd, sizeof cwd);
    cwd_len = n > 0 ? strlen(cwd) : 0;
}

/* In a forked child: a parent thread may have held the lock at the fork. */
void iot_cwd_fork_child(void)
{
    pthread_mutex_init(&cwd_lock, NULL);
}

void iot_cwd_changed(void)
{
    if (IOT_UNLIKELY(iot_t.vforked)) /* a vfork child's cwd is its own: dir_of asks the kernel */
        return;
    pthread_mutex_lock(&cwd_lock);
    cwd_load();
    pthread_mutex_unlock(&cwd_lock);
}

/* The directory `dirfd` names, into out; 0 if unknown. */
static size_t dir_of(int dirfd, char *out, size_t cap)
{
    if (dirfd == AT_FDCWD && IOT_UNLIKELY(iot_t.vforked)) {
        long n = syscall(SYS_getcwd, out, cap);
        return n > 0 ? strlen(out) : 0;
    }
    if (dirfd == AT_FDCWD) {
        pthread_mutex_lock(&cwd_lock);
        if (!cwd_len)
            cwd_load();
        size_t n = cwd_len < cap ? cwd_len : 0;
        memcpy(out, cwd, n);
        out[n] = '\0';
        pthread_mutex_unlock(&cwd_lock);
        return n;
    }
    const char *s = iot_string(iot_fd_path(dirfd));
    if (s && *s == '/' && strlen(s) < cap) {
        strcpy(out, s);
        return strlen(s);
    }
    return 0;
}

/* Lexically remove "." and ".." components and duplicate slashes, in place. */
static size_t clean(char *p)
{
    char *out = p, *in = p;
    while (*in) {
        while (*in == '/')
            in++;
        char *seg = in;
        while (*in && *in != '/')
            in++;
        size_t n = (size_t)(in - seg);
        if (n == 0 || (n == 1 && seg[0] == '.'))
            continue;
        if (n == 2 && seg[0] == '.' && seg[1] == '.') {
            while (out > p && *--out != '/')
                ;
            continue;
        }
        *out++ = '/';
        memmove(out, seg, n);
        out += n;
    }
    if (out == p)
        *out++ = '/';
    *out = '\0';
    return (size_t)(out - p);
}

size_t iot_abspath(int dirfd, const char *path, char *out, size_t cap)
{
    size_t len = 0;
    if (!path)
        return 0;
    size_t plen = strlen(path);
    if (path[0] != '/') {
        len = dir_of(dirfd, out, cap);
        if (!len) { /* unknown directory: keep the name as given */
            if (plen >= cap)
                return 0;
            memcpy(out, path, plen + 1);
            return plen;
        }
    }
    if (len + 1 + plen >= cap)
        return 0;
    out[len] = '/';
    memcpy(out + len + 1, path, plen + 1);
    return clean(out);
}

/* The length of the directory `dirfd` names (PATH_MAX when not known without asking). */
static size_t dir_len(int dirfd)
{
    if (dirfd == AT_FDCWD && IOT_UNLIKELY(iot_t.vforked))
        return PATH_MAX;
    if (dirfd == AT_FDCWD) {
        pthread_mutex_lock(&cwd_lock);
        if (!cwd_len)
            cwd_load();
        size_t n = cwd_len;
        pthread_mutex_unlock(&cwd_lock);
        return n;
    }
    const char *s = iot_string(iot_fd_path(dirfd));
    return s ? strlen(s) : 0;
}

/* The buffer is sized to the name, not PATH_MAX * 2: a thread of PTHREAD_STACK_MIN (16 KiB,
 * its TLS included) or a signal handler on a small sigaltstack has no 8 KiB to spare (an open
 * there died of SIGSEGV).  Slack for a directory another thread's chdir made longer meanwhile;
 * one longer still is unknown to dir_of: the name is kept as given. */
uint32_t iot_path_id_at(int dirfd, const char *path)
{
    if (!path)
        return 0;
    size_t cap = strlen(path) + 2 + (path[0] == '/' ? 0 : dir_len(dirfd) + 256);
    if (cap > PATH_MAX * 2)
        cap = PATH_MAX * 2;
    char buf[cap];
    size_t n = iot_abspath(dirfd, path, buf, cap);
    return n ? iot_intern_string(buf, n) : 0;
}
