/* Wrappers: getaddrinfo, whose name lookup reads the NSS configuration and /etc/hosts (and may
 * talk to nscd or a DNS server) inside libc.  Unwrapped, each of those syscalls was a
 * libc-internal stop through Python (entry and exit): `mpirun` of Open MPI resolves names while
 * its hwloc probes X displays, ~180 of them in one 2-rank launch (issue 19).  Wrapped, they run
 * inside the wrapper's marker: covered stops the C loop resumes; their reads are counted by the
 * kernel's counters around the call (calls.py KERNEL_IO_FUNCS "in").
 *
 * Event: path = the node name as given (nil for NULL: a service alone), ret = getaddrinfo's
 * return value (0, or an EAI_* code, negative; EAI_SYSTEM is a failure with errno). */
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <string.h>

#include "shim.h"

IOT_API int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                        struct addrinfo **res)
{
    IOT_REAL(getaddrinfo);
    IOT_ENTER(IOT_FN_getaddrinfo, real_getaddrinfo(node, service, hints, res));
    IOT_CALL(int, real_getaddrinfo(node, service, hints, res), r, r == EAI_SYSTEM);
    if (node)
        ev.path = iot_intern_string(node, strnlen(node, 1024));
    IOT_LEAVE(r);
}

/* The user and group database lookups: glibc reads nsswitch.conf, /etc/passwd, /etc/group
 * (or asks nscd, sssd...) inside them.  Unwrapped, the shim alone left those reads out of the
 * trace (bash, tar, rsync, ls -l, sqlite3: 1.8-2.5 KiB "not in the trace" in every run).
 * Wrapped, the shim alone counts them around the call; under the stracer they stay its
 * libc-internal events (IOT_LIBC_OWN), with their files and bytes.
 *
 * Events (the _r forms recorded as the plain one): path = the name looked up (getpwnam,
 * getgrnam, getgrouplist's user; none for an id), ret = 1 found, 0 not found; a _r form's
 * error number is the event's errno (getgrouplist: ret = its return value, -1 when the array
 * was too small, which is no failure). */
#define NSS_NAME(name) (name ? iot_intern_string(name, strnlen(name, 1024)) : 0)

IOT_API struct passwd *getpwnam(const char *name)
{
    IOT_REAL(getpwnam);
    IOT_ENTER(IOT_FN_getpwnam, real_getpwnam(name));
    IOT_CALL(struct passwd *, IOT_LIBC_OWN(real_getpwnam(name)), r != NULL, 0);
    ev.path = NSS_NAME(name);
    IOT_LEAVE(r);
}

IOT_API struct passwd *getpwuid(uid_t uid)
{
    IOT_REAL(getpwuid);
    IOT_ENTER(IOT_FN_getpwuid, real_getpwuid(uid));
    IOT_CALL(struct passwd *, IOT_LIBC_OWN(real_getpwuid(uid)), r != NULL, 0);
    IOT_LEAVE(r);
}

IOT_API struct group *getgrnam(const char *name)
{
    IOT_REAL(getgrnam);
    IOT_ENTER(IOT_FN_getgrnam, real_getgrnam(name));
    IOT_CALL(struct group *, IOT_LIBC_OWN(real_getgrnam(name)), r != NULL, 0);
    ev.path = NSS_NAME(name);
    IOT_LEAVE(r);
}

IOT_API struct group *getgrgid(gid_t gid)
{
    IOT_REAL(getgrgid);
    IOT_ENTER(IOT_FN_getgrgid, real_getgrgid(gid));
    IOT_CALL(struct group *, IOT_LIBC_OWN(real_getgrgid(gid)), r != NULL, 0);
    IOT_LEAVE(r);
}

/* the _r forms: 0 and *result (found or not), or an error number */
#define NSS_R(call, result)                                                     \
    IOT_CALL(int, IOT_LIBC_OWN(call), r == 0 && *(result) != NULL, r != 0);     \
    if (r != 0)                                                                 \
        ev.err = r

IOT_API int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t n,
                       struct passwd **result)
{
    IOT_REAL(getpwnam_r);
    IOT_ENTER(IOT_FN_getpwnam, real_getpwnam_r(name, pw, buf, n, result));
    NSS_R(real_getpwnam_r(name, pw, buf, n, result), result);
    ev.path = NSS_NAME(name);
    IOT_LEAVE(r);
}

IOT_API int getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t n, struct passwd **result)
{
    IOT_REAL(getpwuid_r);
    IOT_ENTER(IOT_FN_getpwuid, real_getpwuid_r(uid, pw, buf, n, result));
    NSS_R(real_getpwuid_r(uid, pw, buf, n, result), result);
    IOT_LEAVE(r);
}

IOT_API int getgrnam_r(const char *name, struct group *gr, char *buf, size_t n,
                       struct group **result)
{
    IOT_REAL(getgrnam_r);
    IOT_ENTER(IOT_FN_getgrnam, real_getgrnam_r(name, gr, buf, n, result));
    NSS_R(real_getgrnam_r(name, gr, buf, n, result), result);
    ev.path = NSS_NAME(name);
    IOT_LEAVE(r);
}

IOT_API int getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t n, struct group **result)
{
    IOT_REAL(getgrgid_r);
    IOT_ENTER(IOT_FN_getgrgid, real_getgrgid_r(gid, gr, buf, n, result));
    NSS_R(real_getgrgid_r(gid, gr, buf, n, result), result);
    IOT_LEAVE(r);
}

IOT_API int getgrouplist(const char *user, gid_t group, gid_t *groups, int *ngroups)
{
    IOT_REAL(getgrouplist);
    IOT_ENTER(IOT_FN_getgrouplist, real_getgrouplist(user, group, groups, ngroups));
    IOT_CALL(int, IOT_LIBC_OWN(real_getgrouplist(user, group, groups, ngroups)), r, 0);
    ev.path = NSS_NAME(user);
    IOT_LEAVE(r);
}
