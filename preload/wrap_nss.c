/* Wrapper: getaddrinfo, whose name lookup reads the NSS configuration and /etc/hosts (and may
 * talk to nscd or a DNS server) inside libc.  Unwrapped, each of those syscalls was a
 * libc-internal stop through Python (entry and exit): `mpirun` of Open MPI resolves names while
 * its hwloc probes X displays, ~180 of them in one 2-rank launch (issue 19).  Wrapped, they run
 * inside the wrapper's marker: covered stops the C loop resumes; their reads are counted by the
 * kernel's counters around the call (calls.py KERNEL_IO_FUNCS "in").
 *
 * Event: path = the node name as given (nil for NULL: a service alone), ret = getaddrinfo's
 * return value (0, or an EAI_* code, negative; EAI_SYSTEM is a failure with errno). */
#include <netdb.h>
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
