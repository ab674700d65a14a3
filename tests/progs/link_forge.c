/* Link requests no shim makes, from the app itself (tests/test_link_security.py): a second
 * hello whose iot_link would point the stracer's marker reads at words saying "busy", and a
 * fetch for a box elsewhere; then a raw write, which must still be seen as missed. */
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LINK_MAGIC 0x696f74726163654cL /* IOT_LINK_MAGIC, IOT_LINK_FETCH: preload/shim.h */
#define LINK_FETCH 0x6663746cL

static struct {
    uint32_t magic, version;
    int32_t tls_off, state;
    uint64_t posted, seen, fdgen, bad;
} fake = {0x6c746f69u, 3, 0, 0, 0, 0, 0, 0};
static __thread int32_t busy[2] = {1, 1};
static char box[4096];

int main(void)
{
    fake.tls_off = (int32_t)((char *)busy - (char *)__builtin_thread_pointer());
    syscall(SYS_getpid, LINK_MAGIC, &fake, 0L);
    syscall(SYS_getpid, LINK_MAGIC, &fake, LINK_FETCH, box, (long)sizeof box);
    return syscall(SYS_write, 1, "raw\n", 4) == 4 ? 0 : 1;
}
