/* Wrappers: locales.  setlocale and newlocale read the locale files (locale-archive, or one file
 * per category) through glibc's internal calls the shim never sees: wrapped, the stracer finds
 * them inside a wrapper (covered) instead of reporting ~70 missed syscalls for every program
 * that calls setlocale(LC_ALL, "").  Event: path = the locale name as given (not a file; "" is
 * "from the environment"), nil for a query (NULL); flags = the category (newlocale: the mask);
 * ret 1 for a result, 0 for NULL (errno set). */
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
    iot_ev ev;
    if (!iot_enter(&ev, IOT_FN_setlocale))
        return real_setlocale(category, name);
    char *r = real_setlocale(category, name);
    iot_done(&ev, r != NULL, r == NULL);
    locale_ev(&ev, name, category);
    iot_leave(&ev);
    return r;
}

IOT_API locale_t newlocale(int mask, const char *name, locale_t base)
{
    IOT_REAL(newlocale);
    iot_ev ev;
    if (!iot_enter(&ev, IOT_FN_newlocale))
        return real_newlocale(mask, name, base);
    locale_t r = real_newlocale(mask, name, base);
    iot_done(&ev, r != NULL, r == NULL);
    locale_ev(&ev, name, mask);
    iot_leave(&ev);
    return r;
}
