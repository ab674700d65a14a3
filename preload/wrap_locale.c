/* Wrappers: locales.  setlocale and newlocale read the locale files (locale-archive, or one file
 * per category, /etc/locale.alias) through glibc's internal calls the shim never sees.  The
 * event does not account for those bytes, so the real call runs outside the wrapper's marker
 * (IOT_LIBC_OWN, shim.h): under the stracer its syscalls are libc-internal, recorded with their
 * bytes and named setlocale (docs/stracer.md, "Classification"), not covered and lost.  Event:
 * path = the locale name as given (not a file; "" is "from the environment"), nil for a query
 * (NULL); flags = the category (newlocale: the mask); ret 1 for a result, 0 for NULL (errno
 * set). */
#include <locale.h>
#include <string.h>

#include "shim.h"

static void locale_ev(iot_ev *ev, const char *name, int category)
{
    if (name)
        ev->path = iot_intern_string(name, strlen(name));
    iot_ev_flags(ev, category);
}

IOT_API char *setlocale(int category, const char *name)
{
    IOT_REAL(setlocale);
    IOT_ENTER(IOT_FN_setlocale, real_setlocale(category, name));
    IOT_CALL(char *, IOT_LIBC_OWN(real_setlocale(category, name)), r != NULL, r == NULL);
    locale_ev(&ev, name, category);
    IOT_LEAVE(r);
}

IOT_API locale_t newlocale(int mask, const char *name, locale_t base)
{
    IOT_REAL(newlocale);
    IOT_ENTER(IOT_FN_newlocale, real_newlocale(mask, name, base));
    IOT_CALL(locale_t, IOT_LIBC_OWN(real_newlocale(mask, name, base)), r != NULL, r == NULL);
    locale_ev(&ev, name, mask);
    IOT_LEAVE(r);
}
