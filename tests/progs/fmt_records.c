/* Every record kind of a log, packed by the shim's own writer (preload/pack.c, built with this
 * program against the generated headers), written to stdout: tests/test_format.py reads them
 * back field by field by the names of src/iotrace/format.py.  Keep the values in step with
 * EXPECTED there; every field has a value of its own. */
#include <stdio.h>
#include <string.h>

#include "shim.h"

static char buf[1 << 16];

static iot_ev event(int fn)
{
    iot_ev ev;
    memset(&ev, 0, sizeof ev);
    ev.fn = (uint16_t)fn;
    return ev;
}

int main(void)
{
    char *p = buf;
    iot_ev ev = event(7); /* every field present */
    ev.has = IOT_HAS_FD | IOT_HAS_REQ | IOT_HAS_OFF | IOT_HAS_FLAGS | IOT_HAS_MODE;
    ev.t0 = 1000, ev.t1 = 1500, ev.fd = 3, ev.path = 11, ev.req = 4096, ev.ret = 4095;
    ev.err = 5, ev.off = 123456789012, ev.flags = 0x241, ev.mode = 0644, ev.stack = 13;
    ev.naux = 2, ev.aux[0] = 2049, ev.aux[1] = 987654321;
    p = iot_pack_event(p, &ev);

    ev = event(5); /* every optional field nil */
    ev.t0 = 2000, ev.t1 = 2001, ev.ret = -1, ev.err = 2;
    p = iot_pack_event(p, &ev);

    ev = event(IOT_FN_sendfile); /* two ends, an aux integer */
    ev.has = IOT_HAS_FD | IOT_HAS_REQ | IOT_HAS_OFF | IOT_HAS_END2 | IOT_HAS_OFF2;
    ev.t0 = 3000, ev.t1 = 3100, ev.fd = 4, ev.path = 12, ev.req = 100, ev.ret = 99, ev.off = 10;
    ev.naux = 1, ev.aux[0] = 7, ev.fd2 = 6, ev.path2 = 14, ev.off2 = 20;
    p = iot_pack_event(p, &ev);

    ev = event(IOT_FN_splice); /* two ends, the end read's path and offset nil */
    ev.has = IOT_HAS_FD | IOT_HAS_END2;
    ev.t0 = 4000, ev.t1 = 4004, ev.fd = 8, ev.ret = 0, ev.flags = 1, ev.fd2 = 9;
    p = iot_pack_event(p, &ev);

    p = iot_pack_string(p, 11, "dir/name", 8);
    uintptr_t pcs[2] = {0x401000, 0x402000};
    p = iot_pack_stack(p, 13, pcs, 2);
    p = iot_pack_thread(p, 4242);
    p = iot_pack_module(p, 0x1000, 0x2000, 0x3000, "lib/x.so", "\x01\x02\x03", 3);
    p = iot_pack_module(p, 0x5000, 0x6000, 0x7000, "lib/y.so", NULL, 0);
    p = iot_pack_exit(p, 9999, 3);
    uint64_t v[IOT_KIO_N], own[IOT_KIO_OWN_N], pending[2] = {21, 22}, sums[IOT_KIO_SUMS_N];
    for (int i = 0; i < IOT_KIO_N; i++)
        v[i] = 1 + (uint64_t)i;
    for (int i = 0; i < IOT_KIO_OWN_N; i++)
        own[i] = 11 + (uint64_t)i;
    for (int i = 0; i < IOT_KIO_SUMS_N; i++)
        sums[i] = 31 + (uint64_t)i;
    uint64_t uring[IOT_KIO_URING_N];
    for (int i = 0; i < IOT_KIO_URING_N; i++)
        uring[i] = 41 + (uint64_t)i;
    p = iot_pack_kio(p, IOT_KIO_EXIT, 8888, v, own, pending, sums, uring, (int[2]){0, 65534},
                     IOT_KIO_NEXT_UNWRITABLE);
    ev = event(IOT_FN_writev); /* -s N: the first 5 bytes of two iovecs */
    ev.t0 = 5000;
    struct { const void *base; size_t len; } iov[2] = {{"ab\0", 3}, {"\377\nxyz", 5}};
    ev.data = iov, ev.data_iov = 2, ev.data_n = 8;
    p = iot_pack_data(p, 77, &ev, 5);
    uint64_t dims[2] = {1ull << 40, 16}, chunk[2] = {4, 16};
    p = iot_pack_shape(p, 78, &ev, 8, 2, dims, 2, chunk); /* an HDF5 dataset: chunked */
    p = iot_pack_shape(p, 78, &ev, 4, 1, dims, 0, chunk); /* contiguous */
    p = iot_pack_selection(p, 79, &ev, 512, 8, 6);
    p = iot_pack_selection(p, 79, &ev, 64, -1, -1); /* not chunked */
    char *count[2], *nnp;
    p = iot_pack_seccomp(p, 7777, count, &nnp); /* counts and nnp set in place, as writer.c */
    *nnp = 1;
    uint64_t be = __builtin_bswap64(123456);
    memcpy(count[0], &be, 8);
    be = __builtin_bswap64(654321);
    memcpy(count[1], &be, 8);
    fwrite(buf, 1, (size_t)(p - buf), stdout);
    return 0;
}
