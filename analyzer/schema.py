"""The tables' columns and types, and the rules that derive columns from the raw records."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from iotrace.calls import (
    END2_SUFFIX,
    EVENT_ENDS,
    FUNC_IDS,
    FUNCTIONS,
    KIO_FIELDS,
    KIO_OWN_FIELDS,
    STDIO_UNDER,
    SYSCALL_BY_NAME,
    Op,
    syscall_op,
)
from iotrace.format import KIO_URING_FIELDS

from .log_kinds import CLASS_NAMES, SOURCE_NAMES, VIA_NAMES

OP_NAMES: list[str] = [o.value for o in Op]
UNKNOWN_FUNCTION = "unknown"

# `bytes` is what a call actually moved: for the READ and WRITE ops the log's `ret` is bytes done
# (docs/format.md: stdio included, fgetc/fputc 1 or 0), except for these, whose `ret` is
# something else (readdir: 1 = an entry; fscanf, fwscanf: items assigned).
BYTES_NONE = frozenset({"readdir", "fscanf", "fwscanf"})
DATA_OPS = frozenset({Op.READ.value, Op.WRITE.value})
# Ops that are not I/O time (process control): everything else counts as time in I/O.
NOT_IO_OPS = frozenset({Op.PROC.value})

EVENT_COLUMNS: dict[str, object] = {
    "source": pd.CategoricalDtype(SOURCE_NAMES),
    "host": pd.CategoricalDtype([]),
    "rank": pd.Int32Dtype(),
    "pid": np.dtype(np.int32),
    "tid": np.dtype(np.int32),
    "proc": np.dtype(np.int32),
    "function": pd.CategoricalDtype([]),
    "op": pd.CategoricalDtype(OP_NAMES),
    "fd": pd.Int32Dtype(),
    "path": pd.CategoricalDtype([]),
    "offset": pd.Int64Dtype(),
    "req": pd.Int64Dtype(),
    "bytes": pd.Int64Dtype(),
    "ret": np.dtype(np.int64),
    "errno": np.dtype(np.int32),
    "t_start": np.dtype(np.int64),
    "t_end": np.dtype(np.int64),
    "class": pd.CategoricalDtype(CLASS_NAMES),
    "via": pd.CategoricalDtype(VIA_NAMES),
    "missed": np.dtype(bool),
    "stack_id": pd.Int32Dtype(),
    "flags": pd.Int32Dtype(),
}

PROCESS_COLUMNS: dict[str, object] = {
    "proc": np.dtype(np.int32),
    "source": pd.CategoricalDtype(SOURCE_NAMES),
    "host": "object",
    "rank": pd.Int32Dtype(),
    "pid": np.dtype(np.int32),
    "ppid": pd.Int32Dtype(),
    "command": "object",
    "exe": "object",
    "cwd": "object",
    "forked": np.dtype(bool),
    "start": np.dtype(np.int64),
    "end": np.dtype(np.int64),
    "exit_status": pd.Int32Dtype(),
    "ended": "object",
    "events": np.dtype(np.int64),
    "truncated": np.dtype(bool),
    "log": "object",
}

# The kernel's I/O counters of a process (/proc/PID/io) as the shim (at its start, before an
# exec, at exit) and the stracer (at the process's last exit stop: `when` "end") read them;
# own_*: the shim's own read/write syscalls before the reading; stdio_pending: output bytes in
# stdio buffers then; events_*: the shim's events until then, counted the kernel's way (stdio
# calls by bytes); docs/format.md, KIO.
KIO_SUMS = ("rchar", "wchar", "syscr", "syscw", "stdio_read", "stdio_written")
KIO_SHIM = tuple(f"own_{k}" for k in KIO_OWN_FIELDS) + KIO_SUMS
KIO_COLUMNS: dict[str, object] = {
    "host": "object",
    "pid": np.dtype(np.int32),
    "proc": np.dtype(np.int32),  # the shim log's row of processes; -1 for the stracer's
    "source": pd.CategoricalDtype(SOURCE_NAMES),
    "when": "object",
    "t": np.dtype(np.int64),
    **{k: np.dtype(np.int64) for k in KIO_FIELDS},
    **{f"own_{k}": np.dtype(np.int64) for k in KIO_OWN_FIELDS},
    "stdio_pending": np.dtype(np.int64),
    "stdio_pending_streams": np.dtype(np.int64),
    **{f"events_{k}": np.dtype(np.int64) for k in KIO_SUMS},
    # the stracer's end reading: the sum of the process's threads' own counters (no children)
    **{f"threads_{k}": pd.Int64Dtype() for k in ("rchar", "wchar", "syscr", "syscw")},
    # the shim's exec and exit readings without a stracer: io_uring still held (KIO_URING_FIELDS)
    **{f"uring_{k}": np.dtype(np.int64) for k in KIO_URING_FIELDS},
    # a shim's reading it could not take: its errno (0: taken; else the counters are zeros), the
    # process's effective uid then (-1: not known), and at an exec why the image it starts may
    # have no log (format.KIO_NEXT, "" none)
    # the stracer's end reading: the shim's own I/O and its events' sums in the process's memory
    **{f"shim_{k}": pd.Int64Dtype() for k in KIO_SHIM},
    "lost": np.dtype(np.int32),
    "euid": np.dtype(np.int64),
    "next": "object",
    # a "seccomp" reading: its log's SECCOMP counts (records dropped, calls let through untraced)
    "dropped": np.dtype(np.int64),
    "untraced": np.dtype(np.int64),
    # ... and it was the shim alone going out at the app's no_new_privs (no filter seen)
    "nnp": np.dtype(bool),
}

# The missed syscalls (the stracer's events), one row per process, syscall and call site.
MISSED_COLUMNS: dict[str, object] = {
    "host": "object",
    "pid": np.dtype(np.int32),
    "function": "object",
    "rank": pd.Int32Dtype(),
    "proc": np.dtype(np.int32),
    "stack_id": pd.Int32Dtype(),
    "site": "object",
    "count": np.dtype(np.int64),
    "errors": np.dtype(np.int64),
    "bytes": np.dtype(np.int64),
    "time": np.dtype(np.int64),
    "first": np.dtype(np.int64),
    "paths": "object",
}

STACK_COLUMNS: dict[str, object] = {
    "stack_id": np.dtype(np.int32),
    "level": np.dtype(np.int16),
    "pc": np.dtype(np.uint64),
    "module": "object",
    "module_offset": np.dtype(np.uint64),
    "function": "object",
    "file": "object",
    "line": pd.Int32Dtype(),
}


def empty_frame(columns: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series([], dtype=v) for k, v in columns.items()})  # type: ignore[call-overload]


def function_names(header_lists: list[list[str]]) -> list[str]:
    """The function categories: the table's names in id order, then any a log adds."""
    names = [f.name for f in FUNCTIONS]
    seen = set(names)
    for lst in dict.fromkeys(map(tuple, header_lists)):  # most logs' lists are one list
        for n in lst:
            if n not in seen:
                seen.add(n)
                names.append(n)
    names.append(UNKNOWN_FUNCTION)
    return names


def end2_base(name: str) -> str | None:
    """The call of a row of the end read of a call with two ends ("sendfile:in": "sendfile"), else
    None."""
    base = name.removesuffix(END2_SUFFIX)
    return base if base != name and base in EVENT_ENDS else None


@functools.lru_cache(maxsize=4096)
def op_of(name: str) -> str:
    """The op of a function name: a shim function's (calls.FUNCTIONS), else a syscall's; the end
    read of a call with two ends is a read."""
    if end2_base(name) is not None:
        return Op.READ.value
    if name in FUNC_IDS:
        return FUNCTIONS[FUNC_IDS[name]].op.value
    sc = SYSCALL_BY_NAME.get(name)
    if sc is not None:
        return syscall_op(sc).value
    return Op.OTHER.value


def family_of(name: str) -> str:
    """A shim function's family (fd, meta, stdio, mmap, proc, mpi); syscalls: "syscall"."""
    name = end2_base(name) or name
    if name in FUNC_IDS:
        return FUNCTIONS[FUNC_IDS[name]].family
    return "syscall" if name in SYSCALL_BY_NAME else ""


def is_mpi(name: str) -> bool:
    return family_of(name) == "mpi"


def is_datalib(name: str) -> bool:
    """A call of a data library (HDF5, PnetCDF): a layer above MPI-IO (analyzer/datasets.py)."""
    return family_of(name) in ("hdf5", "pnetcdf")


def is_stdio_call(name: str) -> bool:
    """An app's stdio call: its bytes entered or left a stream's buffer; what reached the file
    is in the stream's refills and flushes (calls.STDIO_UNDER), counted in totals instead."""
    return family_of(name) == "stdio" and name not in STDIO_UNDER


def bytes_rule(name: str) -> int:
    """0: no bytes (null); 1: bytes = ret (null when ret < 0)."""
    if name in BYTES_NONE or op_of(name) not in DATA_OPS:
        return 0
    return 1
