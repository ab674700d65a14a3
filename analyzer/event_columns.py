"""Decoding the chunks of a log into column arrays, in C.

The decoder (`_decode.c`, loaded with cffi in ABI mode) walks the chunk bytes and stores each
EVENT record straight into numpy arrays, with no Python object per event: about 50 times faster
than msgpack record by record; it is what makes 2 million events/s possible (see docs/analyzer.md
for the measurements).  CMake builds it at install time; a source edited since is compiled once
per machine with the system C compiler into a cache directory (``$IOTRACE_CACHE``, else
``$XDG_CACHE_HOME/iotrace``, else ``~/.cache/iotrace``).  The analyzer does not run without it
(NativeMissing, one line): the same work in Python (tests/oracle_columns.py: the decoder through
tracefile.Records, the id mapping and the group scans in numpy) is the tests' oracle, never a
slow path at run time.

Other records (STRING, STACK, MODULE, EXIT and any later type) are few: the decoder hands them
back as (offset, length) for msgpack to unpack.
"""

from __future__ import annotations

import functools
import mmap
import re
import weakref
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from iotrace import format as fmt
from iotrace.native import library as native_library
from iotrace.record import record
from iotrace.tracefile import ERRORS, TraceFormatError  # noqa: F401

# Column arrays of the raw events (format.py RAW_COLUMNS, the C struct's order).  Not kept: `mode`
# and `aux`, whose meaning is per function (`iotrace show` prints them); every byte per event
# kept costs 10 MB of memory per 10 million events, twice (decode, then the sort).
RAW_DTYPES: dict[str, type[np.generic]] = {
    name: np.dtype(dtype).type for name, dtype in fmt.RAW_COLUMNS
}
NULL_BITS = fmt.NULL_BITS  # bits of `nulls`: the field was nil, AUXPAIR, END2 (format.py)

_CDEF = (
    "typedef struct {\n"
    + "".join(
        f"    {np.dtype(t).name}_t *{'err' if n == 'errno' else n};\n" for n, t in fmt.RAW_COLUMNS
    )
    + "    int64_t *mode; int64_t *aux; uint8_t *big;\n"  # show's alone (NULL: not kept)
    + "} iot_cols;\n"
    + """
typedef struct {
    int64_t n_events; int64_t n_other; int64_t truncated; int64_t error_off; int32_t error;
    int64_t n_ends;
} iot_result;
int iot_scan(const uint8_t *buf, int64_t len, int64_t first, int64_t stop, int64_t chunk,
             iot_cols *cols, int64_t cap, int64_t *other_off, int64_t *other_len,
             int64_t other_cap, iot_result *res);
void iot_prev_in_group(const int64_t *group, const int64_t *val, int64_t n, int64_t *last,
                       int64_t ngroups, int64_t first, int64_t *out);
void iot_union_length(const int64_t *group, const int64_t *start, const int64_t *end, int64_t n,
                      int64_t *reach, int64_t *total, int64_t ngroups);
int iot_sums(const int64_t *key, int64_t n, int64_t nbins, const int64_t *w0, const int64_t *w1,
             int64_t *counts, int64_t *sum0, int64_t *sum1);
int iot_max_by(const int64_t *key, const int64_t *val, int64_t n, int64_t nbins, int64_t *out);
int64_t iot_one_bin(int64_t n, const uint8_t *m, const uint8_t *is_write, const int64_t *t_start,
                    const int64_t *t_end, const int64_t *bytes, double w, int64_t bins, double *acc,
                    int64_t *rest);
int iot_take(const void *src, int32_t ssize, int64_t slen, const void *idx, int32_t isize,
             int64_t n, void *dst, int32_t dsize);
int iot_null_masks(const uint16_t *nulls, int64_t len, const int32_t *idx, int64_t n,
                   const uint16_t *bits, int32_t k, uint8_t **masks);
int64_t iot_merge_order(const int64_t *key, int64_t n, int64_t max_runs, int32_t *order);
typedef struct { const char *blob; const int64_t *off; int64_t n; } iot_texts;
typedef struct {
    int64_t n; const uint8_t *keep; int64_t origin; const int32_t *path_ix; const int32_t *aux_ix;
    const int32_t *flags_ix, *mode_ix, *data_ix, *stack_ix, *ret_ix, *aux_text_ix;
    iot_texts paths, texts, fnames, kinds, errors, whence; const char *prefix; int64_t prefix_len;
} iot_show;
int64_t iot_show_lines(const iot_show *s, const iot_cols *c, int64_t from, char *buf, int64_t cap,
                       int64_t *keys, int64_t *ends, int64_t *used, int64_t *lines);
void iot_gather(int64_t n, const int64_t *order, const int32_t *which, const int64_t *starts,
                const int64_t *ends, const char *const *blobs, char *out, int64_t *out_ends);
int64_t iot_merge_step(int64_t k, const int64_t *const *keys, const int64_t *const *ends,
                       const char *const *blobs, int64_t *pos, const int64_t *len,
                       const uint8_t *done, char *out, int64_t cap, int64_t max_n,
                       int64_t *out_keys, int64_t *out_ends, int64_t *n);
int64_t iot_map_ids(int64_t n, int64_t *t_start, int64_t shift, int16_t *fn, const int16_t *fn_lut,
                    int64_t fn_n, int32_t *path, const int32_t *path_lut, int64_t path_n,
                    int32_t *stack, int32_t stack_base, const uint16_t *nulls, uint16_t path_bit,
                    uint16_t stack_bit);
"""
)


SMALL_PAGES_FROM = 4 << 20  # bytes: larger arrays of a load are mapped in 4 KiB pages


def empty(n: int, dtype: Any) -> np.ndarray:
    """np.empty(n, dtype), but from SMALL_PAGES_FROM bytes on in a private anonymous mapping of
    4 KiB pages (madvise NOHUGEPAGE) instead of numpy's transparent huge pages.  The load touches
    ~1 GB of new memory per 10 million events and on a VM that returns free memory to its host
    (virtio free page reporting, in 2 MiB blocks) first touching a huge page costs a host fault
    per 4 KiB inside it, while 4 KiB pages are first taken from the free fragments below 2 MiB,
    which the guest never gives back: measured in docs/analyzer.md."""
    dt = np.dtype(dtype)
    size = n * dt.itemsize
    if size < SMALL_PAGES_FROM or not hasattr(mmap, "MADV_NOHUGEPAGE"):
        return np.empty(n, dt)
    m = _pooled(size)
    if m is None:
        try:
            m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
        except OSError as exc:  # ENOMEM: strict overcommit refused the address space
            raise MemoryError(str(exc)) from None
        m.madvise(mmap.MADV_NOHUGEPAGE)
    a = np.frombuffer(m, dtype=dt, count=n)
    if _POOL is not None:  # once the array and its views are gone, the mapping is kept
        weakref.finalize(a, _keep, m)
    return a


# A process that loads part after part (parts.tune_malloc) keeps the mappings of a part's
# arrays for the next part's: a fresh mapping is faulted in and zeroed page by page again
# (~54,000 faults, ~0.15 s of system time per 2.5 M events on this VM).  At most POOL_MAX bytes
# are kept; a mapping is reused for an array of 1/2 to all of its size.
_POOL: list[mmap.mmap] | None = None
POOL_MAX = 1 << 30


def keep_mappings() -> None:
    global _POOL
    if _POOL is None:
        _POOL = []


def release_mappings() -> None:
    """The kept mappings unmapped (their memory given back); later ones still kept."""
    pool = _POOL
    while pool:
        pool.pop().close()


def _keep(m: mmap.mmap) -> None:
    pool = _POOL
    if pool is None or sum(len(x) for x in pool) + len(m) > POOL_MAX:
        m.close()
    else:
        pool.append(m)


def _pooled(size: int) -> mmap.mmap | None:
    """The smallest kept mapping of at least `size` bytes and at most twice that, taken out."""
    pool = _POOL
    if not pool:
        return None
    fits = [i for i, m in enumerate(pool) if size <= len(m) <= 2 * size]
    if not fits:
        return None
    return pool.pop(min(fits, key=lambda i: len(pool[i])))


class RawColumns:
    """The raw event columns of `n` events (numpy arrays, RAW_DTYPES)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    @classmethod
    def empty(cls, n: int) -> RawColumns:
        return cls({k: empty(n, t) for k, t in RAW_DTYPES.items()})

    def __len__(self) -> int:
        return len(self.arrays["t_start"])

    def view(self, start: int, stop: int) -> RawColumns:
        return RawColumns({k: a[start:stop] for k, a in self.arrays.items()})

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]


@record
class ScanResult:
    n_events: int
    n_other: int
    truncated: bool
    error: int  # 0 = none, else a key of ERRORS
    error_off: int
    other_off: np.ndarray  # int64 byte offsets of the other records (fill pass only)
    other_len: np.ndarray
    n_ends: int = 0  # rows of n_events that are the end read of a call with two ends


class Decoder(Protocol):
    name: str

    def scan(
        self,
        buf: Any,
        first: int,
        stop: int,
        chunk: int,
        out: RawColumns | None,
        n_other: int,
    ) -> ScanResult:
        """Scan the chunks starting in [first, stop) of the log bytes `buf`.  With out=None only
        count; else fill `out` (at least as long as the events there) and return the offsets of
        up to `n_other` other records (`ScanResult.n_other` counts them all: if it is larger, scan
        again with that much room)."""
        ...


class Native:
    """The compiled C code (the decoder and the summary kernels), through cffi's ABI mode."""

    def __init__(self, lib_path: Path) -> None:
        from iotrace.native import ffi

        # the cdef's parse kept (native.ffi): ~20 ms of CPU and cffi's imports per process
        # that decodes (every worker of every report) otherwise
        self.ffi = ffi("decode", _CDEF)
        self.lib: Any = self.ffi.dlopen(str(lib_path))
        for name in re.findall(r"\b(iot_\w+)\(", _CDEF):
            getattr(self.lib, name)  # a library older than _CDEF: AttributeError, not used

    def ptr(self, ctype: str, a: np.ndarray) -> Any:
        assert a.flags.c_contiguous
        return self.ffi.cast(ctype, self.ffi.from_buffer(a, require_writable=True))


class CDecoder:
    name = "C"

    def __init__(self, native: Native) -> None:
        self.ffi = native.ffi
        self.lib = native.lib
        self._ptr = native.ptr

    def scan(
        self,
        buf: Any,
        first: int,
        stop: int,
        chunk: int,
        out: RawColumns | None,
        n_other: int,
    ) -> ScanResult:
        ffi = self.ffi
        res = ffi.new("iot_result *")
        data = ffi.from_buffer("uint8_t[]", buf)
        n_other = n_other if out is not None else 0
        other_off = np.empty(n_other, dtype=np.int64)
        other_len = np.empty_like(other_off)
        if out is None:
            self.lib.iot_scan(
                data, len(buf), first, stop, chunk, ffi.NULL, 0, ffi.NULL, ffi.NULL, 0, res
            )
        else:
            cols = ffi.new("iot_cols *")
            for name, dtype in RAW_DTYPES.items():
                ctype = f"{np.dtype(dtype).name}_t *"
                setattr(cols, "err" if name == "errno" else name, self._ptr(ctype, out[name]))
            offp = self._ptr("int64_t *", other_off) if n_other else ffi.NULL
            lenp = self._ptr("int64_t *", other_len) if n_other else ffi.NULL
            self.lib.iot_scan(
                data, len(buf), first, stop, chunk, cols, len(out), offp, lenp, n_other, res
            )
        kept = min(int(res.n_other), n_other)
        return ScanResult(
            int(res.n_events),
            int(res.n_other),
            bool(res.truncated),
            int(res.error),
            int(res.error_off),
            other_off[:kept],
            other_len[:kept],
            int(res.n_ends),
        )


class NativeMissing(TraceFormatError):
    """The analyzer's C code is missing and could not be built (the line before says why)."""


@functools.lru_cache(maxsize=1)
def native() -> Native | None:
    """The compiled C code, or None (one line on stderr says why)."""
    lib = native_library("iotrace.analyzer", "_decode", "decode")
    if lib is None:
        return None
    try:
        return Native(lib)
    except (OSError, ImportError, AttributeError):
        return None


def require_native() -> Native:
    """The compiled C code; NativeMissing without it."""
    nat = native()
    if nat is None:
        raise NativeMissing("the analyzer needs its C code (_decode.so): reinstall iotrace")
    return nat


@functools.lru_cache(maxsize=1)
def decoder() -> Decoder:
    return CDecoder(require_native())


def decoder_name() -> str:
    return decoder().name
