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

/* The other NSS databases a program looks up by name or number: hosts (gethostbyname & co.,
 * /etc/hosts), services (/etc/services), protocols (/etc/protocols), and getnameinfo (hosts and
 * services).  Unwrapped, the shim alone left their reads out of the trace as the user lookups'
 * (`getent services ssh`: 77.0%, 4.5 KiB "not in the trace"; `getent hosts localhost` 91.4%).
 * Wrapped as those: counted around the call with the shim alone, the stracer's libc-internal
 * events under it (IOT_LIBC_OWN).  Events (each _r form, gethostbyname2 and getservbyport,
 * getprotobynumber recorded as the by-name one; path = the name looked up, none for an
 * address, a port or a number), ret 1 found or 0 not found; a _r form's error number is the
 * event's errno.  getnameinfo: ret its return value (0, or an EAI_* code). */
#define NSS_FOUND(T, FN, call, name)                                            \
    IOT_ENTER(FN, call);                                                        \
    IOT_CALL(T, IOT_LIBC_OWN(call), r != NULL, 0);                              \
    ev.path = NSS_NAME(name);                                                   \
    IOT_LEAVE(r)

#define NSS_FOUND_R(FN, call, result, name)                                     \
    IOT_ENTER(FN, call);                                                        \
    NSS_R(call, result);                                                        \
    ev.path = NSS_NAME(name);                                                   \
    IOT_LEAVE(r)

IOT_API struct hostent *gethostbyname(const char *name)
{
    IOT_REAL(gethostbyname);
    NSS_FOUND(struct hostent *, IOT_FN_gethostbyname, real_gethostbyname(name), name);
}

IOT_API struct hostent *gethostbyname2(const char *name, int af)
{
    IOT_REAL(gethostbyname2);
    NSS_FOUND(struct hostent *, IOT_FN_gethostbyname, real_gethostbyname2(name, af), name);
}

IOT_API struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type)
{
    IOT_REAL(gethostbyaddr);
    NSS_FOUND(struct hostent *, IOT_FN_gethostbyname, real_gethostbyaddr(addr, len, type),
              (const char *)NULL);
}

IOT_API int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t n,
                            struct hostent **result, int *h_errnop)
{
    IOT_REAL(gethostbyname_r);
    NSS_FOUND_R(IOT_FN_gethostbyname, real_gethostbyname_r(name, ret, buf, n, result, h_errnop),
                result, name);
}

IOT_API int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf, size_t n,
                             struct hostent **result, int *h_errnop)
{
    IOT_REAL(gethostbyname2_r);
    NSS_FOUND_R(IOT_FN_gethostbyname,
                real_gethostbyname2_r(name, af, ret, buf, n, result, h_errnop), result, name);
}

IOT_API int gethostbyaddr_r(const void *addr, socklen_t len, int type, struct hostent *ret,
                            char *buf, size_t n, struct hostent **result, int *h_errnop)
{
    IOT_REAL(gethostbyaddr_r);
    NSS_FOUND_R(IOT_FN_gethostbyname,
                real_gethostbyaddr_r(addr, len, type, ret, buf, n, result, h_errnop), result,
                (const char *)NULL);
}

IOT_API struct servent *getservbyname(const char *name, const char *proto)
{
    IOT_REAL(getservbyname);
    NSS_FOUND(struct servent *, IOT_FN_getservbyname, real_getservbyname(name, proto), name);
}

IOT_API struct servent *getservbyport(int port, const char *proto)
{
    IOT_REAL(getservbyport);
    NSS_FOUND(struct servent *, IOT_FN_getservbyname, real_getservbyport(port, proto),
              (const char *)NULL);
}

IOT_API int getservbyname_r(const char *name, const char *proto, struct servent *ret, char *buf,
                            size_t n, struct servent **result)
{
    IOT_REAL(getservbyname_r);
    NSS_FOUND_R(IOT_FN_getservbyname, real_getservbyname_r(name, proto, ret, buf, n, result),
                result, name);
}

IOT_API int getservbyport_r(int port, const char *proto, struct servent *ret, char *buf,
                            size_t n, struct servent **result)
{
    IOT_REAL(getservbyport_r);
    NSS_FOUND_R(IOT_FN_getservbyname, real_getservbyport_r(port, proto, ret, buf, n, result),
                result, (const char *)NULL);
}

IOT_API struct protoent *getprotobyname(const char *name)
{
    IOT_REAL(getprotobyname);
    NSS_FOUND(struct protoent *, IOT_FN_getprotobyname, real_getprotobyname(name), name);
}

IOT_API struct protoent *getprotobynumber(int proto)
{
    IOT_REAL(getprotobynumber);
    NSS_FOUND(struct protoent *, IOT_FN_getprotobyname, real_getprotobynumber(proto),
              (const char *)NULL);
}

IOT_API int getprotobyname_r(const char *name, struct protoent *ret, char *buf, size_t n,
                             struct protoent **result)
{
    IOT_REAL(getprotobyname_r);
    NSS_FOUND_R(IOT_FN_getprotobyname, real_getprotobyname_r(name, ret, buf, n, result), result,
                name);
}

IOT_API int getprotobynumber_r(int proto, struct protoent *ret, char *buf, size_t n,
                               struct protoent **result)
{
    IOT_REAL(getprotobynumber_r);
    NSS_FOUND_R(IOT_FN_getprotobyname, real_getprotobynumber_r(proto, ret, buf, n, result),
                result, (const char *)NULL);
}

IOT_API int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen,
                        char *serv, socklen_t servlen, int flags)
{
    IOT_REAL(getnameinfo);
#define GNI real_getnameinfo(sa, salen, host, hostlen, serv, servlen, flags)
    IOT_ENTER(IOT_FN_getnameinfo, GNI);
    IOT_CALL(int, IOT_LIBC_OWN(GNI), r, r == EAI_SYSTEM);
#undef GNI
    IOT_LEAVE(r);
}

/* Walking a database (getent passwd, bash's ~user completion): each get*ent may read the
 * file, so each is measured (set*ent and end*ent open and close it: no read or write).  Events
 * (the _r forms as the plain one): ret 1 an entry, 0 the end or an error (a _r form's errno). */
IOT_API struct passwd *getpwent(void)
{
    IOT_REAL(getpwent);
    NSS_FOUND(struct passwd *, IOT_FN_getpwent, real_getpwent(), (const char *)NULL);
}

IOT_API int getpwent_r(struct passwd *pw, char *buf, size_t n, struct passwd **result)
{
    IOT_REAL(getpwent_r);
    NSS_FOUND_R(IOT_FN_getpwent, real_getpwent_r(pw, buf, n, result), result, (const char *)NULL);
}

IOT_API struct group *getgrent(void)
{
    IOT_REAL(getgrent);
    NSS_FOUND(struct group *, IOT_FN_getgrent, real_getgrent(), (const char *)NULL);
}

IOT_API int getgrent_r(struct group *gr, char *buf, size_t n, struct group **result)
{
    IOT_REAL(getgrent_r);
    NSS_FOUND_R(IOT_FN_getgrent, real_getgrent_r(gr, buf, n, result), result, (const char *)NULL);
}

IOT_API struct hostent *gethostent(void)
{
    IOT_REAL(gethostent);
    NSS_FOUND(struct hostent *, IOT_FN_gethostent, real_gethostent(), (const char *)NULL);
}

IOT_API int gethostent_r(struct hostent *ret, char *buf, size_t n, struct hostent **result,
                         int *h_errnop)
{
    IOT_REAL(gethostent_r);
    NSS_FOUND_R(IOT_FN_gethostent, real_gethostent_r(ret, buf, n, result, h_errnop), result,
                (const char *)NULL);
}

IOT_API struct servent *getservent(void)
{
    IOT_REAL(getservent);
    NSS_FOUND(struct servent *, IOT_FN_getservent, real_getservent(), (const char *)NULL);
}

IOT_API int getservent_r(struct servent *ret, char *buf, size_t n, struct servent **result)
{
    IOT_REAL(getservent_r);
    NSS_FOUND_R(IOT_FN_getservent, real_getservent_r(ret, buf, n, result), result,
                (const char *)NULL);
}

IOT_API struct protoent *getprotoent(void)
{
    IOT_REAL(getprotoent);
    NSS_FOUND(struct protoent *, IOT_FN_getprotoent, real_getprotoent(), (const char *)NULL);
}

IOT_API int getprotoent_r(struct protoent *ret, char *buf, size_t n, struct protoent **result)
{
    IOT_REAL(getprotoent_r);
    NSS_FOUND_R(IOT_FN_getprotoent, real_getprotoent_r(ret, buf, n, result), result,
                (const char *)NULL);
}

/* set*ent: the first look at a database reads nsswitch.conf (and may load its module); recorded
 * as the database's get*ent with flags 1 (ret 1) */
#define NSS_SET(name, FN, call)                                                 \
    IOT_REAL(name);                                                             \
    IOT_ENTER(FN, call);                                                        \
    IOT_CALL(int, IOT_LIBC_OWN((call, 1)), 1, 0);                               \
    iot_ev_flags(&ev, 1);                                                       \
    IOT_LEAVE()

IOT_API void setpwent(void)
{
    NSS_SET(setpwent, IOT_FN_getpwent, real_setpwent());
}

IOT_API void setgrent(void)
{
    NSS_SET(setgrent, IOT_FN_getgrent, real_setgrent());
}

IOT_API void sethostent(int stay)
{
    NSS_SET(sethostent, IOT_FN_gethostent, real_sethostent(stay));
}

IOT_API void setservent(int stay)
{
    NSS_SET(setservent, IOT_FN_getservent, real_setservent(stay));
}

IOT_API void setprotoent(int stay)
{
    NSS_SET(setprotoent, IOT_FN_getprotoent, real_setprotoent(stay));
}
