"""`iotrace show`: every event, one a line, strace-like, in time order across processes: the
shim's, and the stracer's (the syscalls no wrapper covered, marked by their class: [libc] inside
a libc function the shim does not wrap, [bypass] missed I/O); `--stacks` adds each event's
symbolised call stack under it."""

from __future__ import annotations

import errno as errno_mod
import functools
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

import numpy as np
from msgpack import UnpackException

from iotrace import incarnation
from iotrace.calls import DATA_FUNCS, FUNCTIONS, SYSCALL_BY_NAME
from iotrace.flags import (
    FCNTL_CMD,
    WHENCE,
    eventfd_flags,
    fallocate_mode,
    fcntl_arg,
    fcntl_cmd,
    fcntl_result,
    fd_flags,
    mmap_flags,
    mmap_prot,
    mpi_amode,
    mremap_flags,
    msync_flags,
    oflags,
    rename_flags,
    socket_domain,
    socket_protocol,
    socket_type,
    statx_flags,
    statx_mask,
    umode,
    unlink_flags,
)
from iotrace.format import MIN_EVENT_BYTES, MS, NULL_BITS, RAW_COLUMNS, SRec
from iotrace.record import record
from iotrace.select import Select, mask
from iotrace.text import escape, quote_data
from iotrace.tracefile import (
    ERRORS,
    BadChunk,
    BadRecord,
    Log,
    Records,
    TraceFormatError,
    UnwrittenLogError,
    id_limit,
    job_start,
    log_header,
    log_paths,
    open_regular,
    other_record,
    run_records,
    verify,
)
from iotrace.units import MEMORY_DEFAULT

BATCH = 1 << 14  # stracer events formatted at a time; lines written out at a time
WINDOW = 1 << 20  # bytes of a shim log decoded at a time (whole chunks)
OUT_BYTES = 1 << 20  # bytes of lines formatted at a time (more for a longer line)
# bytes of the memory bound not for the held lines: the interpreter and numpy, one log's other
# records, a window's columns and lines, a block of each run being merged (spill.BLOCK)
BASE_MEMORY = 192 << 20

_OPENERS = {"open", "openat", "creat", "fopen", "fdopen", "freopen", "popen"}
# function -> (its flags' names, its mode's names)
_DECODERS = {
    "mmap": (mmap_flags, mmap_prot),
    "mremap": (mremap_flags, lambda v: [str(v)]),  # its mode: the old length
    "msync": (msync_flags, mmap_prot),
    "MPI_File_open": (mpi_amode, mpi_amode),
    "pipe2": (fd_flags, fd_flags),
    "dup3": (fd_flags, fd_flags),
    "fcntl": (fcntl_cmd, lambda v: [str(v)]),  # its argument: by its command (_flags_text)
    "fallocate": (fallocate_mode, fallocate_mode),
    "socket": (socket_domain, socket_type),
    "eventfd": (eventfd_flags, eventfd_flags),
    "statx": (statx_flags, statx_mask),
    "renameat2": (rename_flags, rename_flags),
    "unlinkat": (unlink_flags, unlink_flags),
}
# argument kinds (calls.Function.shows) as the C formatter knows them (_decode.c K_*); "stream"
# is no argument: the function returns a FILE * or DIR * (the record's ret is 1 or 0), shown as
# the stream's descriptor the way strace -y shows an open's, `= 3</path>`, NULL when it failed
_KIND_NAMES = (
    "fd path path2 fd2 end2 whence addr req off flags mode fds stream hexoff newfd "
    "entry hint mapped aux"
)
STREAMS = frozenset({"fopen", "fdopen", "freopen", "tmpfile", "popen", "opendir", "fdopendir"})
KINDS = {k: i + 1 for i, k in enumerate(_KIND_NAMES.split())}
# _decode.c BIG_MODE, BIG_AUX: the value was an unsigned integer past INT64_MAX
_BIG = {"flags": 0, "mode": 8, "aux": 16}
_NAMED = tuple(_BIG)  # the columns whose values show names (by function, and by the flags: _BY)
_BY = {"mode": "fcntl", "aux": "socket"}  # the function whose value is named by its flags
_N = {k: np.uint16(v) for k, v in NULL_BITS.items()}


def _texts(items: list[bytes]) -> tuple[bytes, np.ndarray]:
    """Texts as one blob and their offsets (text k: blob[off[k]:off[k + 1]])."""
    off = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, items), dtype=np.int64, count=len(items)), out=off[1:])
    return b"".join(items), off


def _b(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")


def _flags_text(fname: str, kind: str, v: int, flags: int = 0) -> str | None:
    """A flags, mode or aux value as `show` names it (None: the number); `flags`: the event's
    flags, for a value named by them (fcntl's argument by its command, socket's protocol by its
    domain)."""
    if kind == "aux":
        return socket_protocol(flags, v) if fname == "socket" else None
    if kind == "mode" and fname == "fcntl":
        return "|".join(fcntl_arg(flags, v))
    if kind == "flags" and fname in _OPENERS:
        return "|".join(oflags(v))
    if fname in _DECODERS:
        return "|".join(_DECODERS[fname][kind == "mode"](v))
    if kind == "mode" and fname in _OPENERS | {"mkdir", "mkdirat"}:
        return umode(v)
    return None


class _Errors:
    """errno -> "NAME (message)", for errnos 0 to the largest seen (a table the C code indexes)."""

    def __init__(self) -> None:
        self.items: list[bytes] = []
        self.table = _texts([])

    def cover(self, top: int) -> None:
        if top < len(self.items):
            return
        for e in range(len(self.items), top + 1):
            name = errno_mod.errorcode.get(e, str(e))
            self.items.append(_b(f"{name} ({os.strerror(e)})"))
        self.table = _texts(self.items)


@record
class _FnTables:
    """What ShimLines needs of a log's function names: the same for every log of a trace
    (most share one list), made once per distinct list (~1.5 ms each: a trace of 40,000
    short-lived processes' logs paid a minute for them)."""

    fnames: tuple[bytes, np.ndarray]  # the names, escaped, as a table the C code indexes
    kinds: tuple[bytes, np.ndarray]  # per function, the kinds of its arguments shown
    fn_names: list[str]
    named: dict[str, np.ndarray]  # per function: its flags (its mode) have names
    data_call: np.ndarray  # per function: a read or write whose bytes may be kept


@functools.lru_cache(maxsize=64)
def _fn_tables(names: tuple[str, ...]) -> _FnTables:
    fnames = [escape(n) for n in names]
    shows = [(*(FUNCTIONS[f].shows if f < len(FUNCTIONS) else ()),
              *(("stream",) if n in STREAMS else ())) for f, n in enumerate(names)]  # fmt: skip
    # (the values are decoded per value, cached: ShimLines.cache)
    named = {k: np.array([_flags_text(n, k, 0) is not None for n in fnames], dtype=bool)
             for k in _NAMED}  # fmt: skip
    return _FnTables(_texts([_b(n) for n in fnames]),
                     _texts([bytes(KINDS[k] for k in sh) for sh in shows]), fnames, named,
                     np.array([n in DATA_FUNCS for n in fnames], dtype=bool))  # fmt: skip


# a header's list of function names -> its tables, by the list object (iotrace.tracefile makes
# the logs' lists of one content one object): the tuple of ~200 names made and hashed per log
# was most of what a log of a short-lived process cost `show` beyond its own events
_FN_OF_LIST: dict[int, tuple[list[Any], _FnTables]] = {}


def _fn_tables_of(names: list[Any]) -> _FnTables:
    got = _FN_OF_LIST.get(id(names))
    if got is not None and got[0] is names:  # held there: its id is no other list's
        return got[1]
    tables = _fn_tables(tuple(str(f) for f in names))
    if len(_FN_OF_LIST) < 64:
        _FN_OF_LIST[id(names)] = (names, tables)
    return tables


@functools.lru_cache(maxsize=16)
def _ctype(dt: np.dtype[Any]) -> str:
    """A column's C pointer type (its dtype's name looked up per column per window cost ~0.1 ms
    a log)."""
    return f"{dt.name}_t *"


class ShimLines:
    """A shim log's events as `show` prints them, one line each (strace-like), formatted in C
    (analyzer/_decode.c iot_show_lines) from the decoder's columns: what depends on names
    (paths, flags, errnos, frames, kept data) made here once per log or per window, as tables
    the C code indexes."""

    def __init__(self, log: Log, origin: int, frames: dict[int, list[str]] | None,
                 errors: _Errors) -> None:  # fmt: skip
        from iotrace.analyzer.event_columns import require_native

        self.nat = require_native()
        self.log, self.origin, self.errors = log, origin, errors
        h = log.header
        pid = h.get("label", h["pid"])  # a reused pid's second process: P#2 (show's _begins)
        prefix = f"[rank {h['rank']} pid {pid}" if h.get("rank") is not None else f"[pid {pid}"
        self.prefix = _b(prefix)
        fn = _fn_tables_of(h.get("functions", []))
        self.fnames, self.kinds, self.fn_names, self.named, self.data_call = (
            fn.fnames, fn.kinds, fn.fn_names, fn.named, fn.data_call)  # fmt: skip
        ids = sorted(log.strings)
        self.path_ids = np.array(ids, dtype=np.int64)
        self.paths = _texts([_b(escape(log.strings[k])) for k in ids])
        self.frames = (
            {
                sid: _b("".join(f"    at {fr}\n" for fr in fr_list))
                for sid, fr_list in frames.items()
                if fr_list
            }
            if frames is not None
            else {}
        )
        self.whence = _texts([_b(WHENCE.get(k, str(k))) for k in range(max(WHENCE) + 1)])
        # (fn, kind, value, the flags naming it) -> its name
        self.cache: dict[tuple[int, str, int, int], bytes] = {}
        self.fcntl = self.fn_names.index("fcntl") if "fcntl" in self.fn_names else -1
        self.by = {k: self.fn_names.index(f) if f in self.fn_names else -1 for k, f in _BY.items()}
        self.out = _out_buffers(OUT_BYTES)  # the C code's output, used again window after window

    def _lookup(self, ids: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Index in self.paths of each id (-1: not valid, or no string)."""
        known = self.path_ids
        if not len(known):
            return np.full(len(ids), -1, dtype=np.int32)
        at = np.searchsorted(known, ids).clip(0, len(known) - 1)
        return np.where(valid & (known[at] == ids), at, -1).astype(np.int32)

    def lines(self, cols: dict[str, np.ndarray], keep: np.ndarray | None, sorter: Any) -> None:
        """The lines of one window's rows (`keep`: the rows shown, None all) into `sorter`."""
        n = len(cols["fn"])
        if not n:
            return
        nulls, fn = cols["nulls"], cols["fn"].astype(np.int64)
        texts: list[bytes] = []
        ix = {}
        for kind in _NAMED:
            ix[kind] = out = np.full(n, -1, dtype=np.int32)
            nil = _N[kind] | (_N["auxpair"] if kind == "aux" else 0)  # aux an integer only
            rows = np.flatnonzero(self.named[kind][fn] & ((nulls & nil) == 0))
            if not len(rows):
                continue
            big = cols["big"][rows] & _BIG[kind]
            # a value named by the event's flags (fcntl's argument by its command, socket's
            # protocol by its domain)
            by = (fn[rows] == self.by.get(kind, -1)) & ((nulls[rows] & _N["flags"]) == 0)
            other = np.where(by, cols["flags"][rows], 0)
            pairs = np.stack([fn[rows], cols[kind][rows].astype(np.int64), big != 0,
                              other.astype(np.int64)], axis=1)  # fmt: skip
            uniq, inv = np.unique(pairs, axis=0, return_inverse=True)
            at = []
            for f, v, b, o in uniq.tolist():
                key = (f, kind, v + (1 << 64 if b else 0), o)
                t = self.cache.get(key)
                if t is None:
                    t = self.cache[key] = _b(_flags_text(self.fn_names[f], kind, key[2], o) or "")
                at.append(len(texts))
                texts.append(t)
            out[rows] = np.array(at, dtype=np.int32)[inv.reshape(-1)]
        ret_ix = self._results(cols, texts)
        data_ix = stack_ix = None
        if self.log.data:
            data_ix = np.full(n, -1, dtype=np.int32)
            tid, t0, ret = cols["tid"], cols["t_start"], cols["ret"]
            for i in np.flatnonzero(self.data_call[fn] & ((nulls & _N["end2"]) == 0)).tolist():
                buf = self.log.data.get((int(tid[i]), int(t0[i])))
                if buf is not None:
                    data_ix[i] = len(texts)
                    texts.append(_b(quote_data(buf, int(ret[i]))))
        if self.frames:
            stack_ix = np.full(n, -1, dtype=np.int32)
            has = np.flatnonzero((nulls & _N["stack"]) == 0)
            uniq, inv = np.unique(cols["stack"][has], return_inverse=True)
            at = []
            for sid in uniq.tolist():
                t = self.frames.get(sid)
                at.append(-1 if t is None else len(texts))
                if t is not None:
                    texts.append(t)
            stack_ix[has] = np.array(at, dtype=np.int32)[inv.reshape(-1)]
        errs = cols["errno"]
        self.errors.cover(int(errs.max()))
        path_ix = self._lookup(cols["path"].astype(np.int64), (nulls & _N["path"]) == 0)
        aux_ix = self._lookup(cols["aux"], (nulls & (_N["aux"] | _N["auxpair"])) == 0)
        blob, off = _texts(texts)
        self._format(cols, keep, sorter, path_ix, aux_ix, ix, data_ix, stack_ix, ret_ix,
                     (blob, off))  # fmt: skip

    def _results(self, cols: dict[str, np.ndarray], texts: list[bytes]) -> np.ndarray | None:
        """Per row, its result named (fcntl F_GETFL's, F_GETFD's flags; F_DUPFD's descriptor
        with its path, `50</path>`) in `texts`, -1 none; None: no row's."""
        if self.fcntl < 0:
            return None
        fn, nulls, cmd = cols["fn"], cols["nulls"], cols["flags"]
        rows = np.flatnonzero((fn == self.fcntl) & ((nulls & _N["flags"]) == 0)
                              & (cols["errno"] == 0) & np.isin(cmd, (0, 1, 3, 1030)))  # fmt: skip
        if not len(rows):
            return None
        out = np.full(len(fn), -1, dtype=np.int32)
        for i in rows.tolist():
            t = fcntl_result(int(cmd[i]), int(cols["ret"][i]))
            if int(cmd[i]) in _FCNTL_DUPS and not nulls[i] & _N["path"]:
                t = _dup_result(int(cols["ret"][i]), self.log.strings.get(int(cols["path"][i])))
            if t is not None:
                out[i] = len(texts)
                texts.append(_b(t))
        return out

    def _format(self, cols: dict[str, np.ndarray], keep: np.ndarray | None, sorter: Any,
                *tables: Any) -> None:  # fmt: skip
        path_ix, aux_ix, ix, data_ix, stack_ix, ret_ix, texts = tables
        nat, ffi = self.nat, self.nat.ffi
        keepalive: list[Any] = []

        def arr(ctype: str, a: np.ndarray | None) -> Any:
            if a is None:
                return ffi.NULL
            a = np.ascontiguousarray(a)
            keepalive.append(a)
            return ffi.cast(ctype, ffi.from_buffer(a))

        def table(t: Any, blob: bytes, off: np.ndarray) -> None:
            keepalive.append(blob)
            t.blob = ffi.from_buffer("char[]", blob) if blob else ffi.NULL
            t.off = arr("int64_t *", off)
            t.n = len(off) - 1

        n = len(cols["fn"])
        s = ffi.new("iot_show *")
        s.n, s.origin = n, self.origin
        s.keep = arr("uint8_t *", keep.view(np.uint8) if keep is not None else None)
        s.path_ix, s.aux_ix = arr("int32_t *", path_ix), arr("int32_t *", aux_ix)
        s.flags_ix, s.mode_ix = arr("int32_t *", ix["flags"]), arr("int32_t *", ix["mode"])
        s.data_ix, s.stack_ix = arr("int32_t *", data_ix), arr("int32_t *", stack_ix)
        s.ret_ix, s.aux_text_ix = arr("int32_t *", ret_ix), arr("int32_t *", ix["aux"])
        table(s.paths, *self.paths)
        table(s.texts, *texts)
        table(s.fnames, *self.fnames)
        table(s.kinds, *self.kinds)
        table(s.errors, *self.errors.table)
        table(s.whence, *self.whence)
        prefix = ffi.from_buffer("char[]", self.prefix)
        s.prefix, s.prefix_len = prefix, len(self.prefix)
        c = ffi.new("iot_cols *")
        for name, a in cols.items():
            ctype = _ctype(a.dtype)
            setattr(c, "err" if name == "errno" else name, arr(ctype, a))
        pos = 0
        used, lines = ffi.new("int64_t *"), ffi.new("int64_t *")
        while pos < n:
            buf, keys, ends = self.out
            nxt = nat.lib.iot_show_lines(s, c, pos, ffi.from_buffer(buf), len(buf),
                                         arr("int64_t *", keys), arr("int64_t *", ends),
                                         used, lines)  # fmt: skip
            if nxt < 0:
                raise AssertionError("iot_show_lines: an errno the table does not hold")
            if lines[0]:
                m = int(lines[0])
                blob = bytes(memoryview(buf)[: used[0]])
                sorter.add_blob(blob, keys[:m].copy(), ends[:m].copy())
            elif nxt == pos:  # one line longer than the buffer
                self.out = _out_buffers(2 * len(buf))
            pos = int(nxt)


_OUT: list[tuple[bytearray, np.ndarray, np.ndarray]] = []  # _out_buffers' one set


def _out_buffers(size: int) -> tuple[bytearray, np.ndarray, np.ndarray]:
    """Room for `size` bytes of lines at least, their keys and ends (a line takes 8 bytes at
    least): one set for every log, each log's lines copied out of it (a new zeroed MiB per log
    cost a trace of many short-lived processes ~0.2 ms a log)."""
    if not _OUT or len(_OUT[0][0]) < size:
        _OUT[:] = [(bytearray(size), np.empty(size // 8, np.int64), np.empty(size // 8, np.int64))]
    return _OUT[0]


def _shift(log: Log) -> int:
    """The log's CLOCK_MONOTONIC -> CLOCK_REALTIME."""
    c = log.header.get("clock") or {}
    return int(c.get("real", 0)) - int(c.get("mono", 0))


def _symbolise(log: Log) -> dict[int, list[str]]:
    """stack id -> its frames as text ("func (file.c:12)", else "module+0xoff"): each address
    in the module the analyzer names (analyzer/modules.py: the last recorded holding it), by
    addr2line on that module's file if it is still the one the job ran (else a warning)."""
    from iotrace.addr2line import resolve
    from iotrace.analyzer.modules import module_of, same_file

    mods = log.modules
    where: dict[int, list[tuple[str | None, int]]] = {}
    wanted: dict[str, set[int]] = {}
    ran: dict[str, set[bytes]] = {}  # module -> the build-ids the job ran
    for sid, pcs in log.stacks.items():
        fr = []
        for pc in pcs:
            m = module_of(mods, pc)
            if m is None:
                fr.append((None, pc))
                continue
            off = max(pc - m[0] - 1, 0)  # a return address: the call is just before it
            fr.append((m[3], off))
            wanted.setdefault(m[3], set()).add(off)
            if len(m) > 4 and m[4]:
                ran.setdefault(m[3], set()).add(m[4])
        where[sid] = fr
    names = {mod: resolve(mod, offs, ids=ran.get(mod, set()))  # checked on what it reads
             for mod, offs in wanted.items() if same_file(mod, ran)}  # fmt: skip
    out = {}
    for sid, fr in where.items():
        out[sid] = [_frame(*(names.get(mod, {}).get(off) or (None, None, None)), mod, off)
                    for mod, off in fr]  # fmt: skip
    return out


def _frame(fn: str | None, file: str | None, line: int | None, mod: str | None, off: int) -> str:
    if fn:
        return escape(f"{fn} ({os.path.basename(file)}:{line})" if file and line else fn)
    return escape(f"{os.path.basename(mod)}+{off:#x}") if mod else hex(off)


def _stracer_text(log: Any, rec: list[Any], since: int, stacks: bool, begins: Begins) -> str:
    """One of the stracer's events (a MISSED record) as its line, with its site's frames
    (`stacks`) under it; its pid as its process is named (`begins`)."""
    from iotrace.stracer import slog

    kinds = log.header.get("syscalls", {})
    _, t, pid, tid, name, args, ret, err, site, fd, fpath = rec[:11]
    t_exit = rec[11] if len(rec) > 11 and isinstance(rec[11], int) else t
    cls = slog.missed_class(rec)
    via = slog.missed_via(rec)
    kind = kinds.get(name, [])
    # a call with two ends (copy_file_range, sendfile, splice, tee) names both descriptors
    named = {fd: fpath}
    if len(rec) > MS.path2 and rec[MS.path2] is not None:
        named.setdefault(rec[MS.fd2], rec[MS.path2])
    args = list(args or [])
    # fcntl's command (-1: not one named; a damaged log may hold anything in its place)
    cmd = None if name != "fcntl" else -1
    if cmd is not None and len(args) > 2 and isinstance(args[1], str):
        cmd = _FCNTL_CMDS.get(args[1], -1)
    if cmd is not None and cmd >= 0:  # its argument by its command, none if it takes none
        if cmd in _FCNTL_NO_ARG:
            del args[2]
        elif isinstance(args[2], int):
            args[2] = "|".join(fcntl_arg(cmd, args[2]))
    shown = [_sarg(kind[j] if j < len(kind) else "", a, named) for j, a in enumerate(args)]
    result = str(ret)
    if err in slog.RESTART_ERRNOS:  # cut by a signal: no result yet, as strace shows it
        result = "? {} ({})".format(*slog.RESTART_ERRNOS[err])
    elif err:
        result = f"{ret} {errno_mod.errorcode.get(err, str(err))} ({os.strerror(err)})"
    elif cmd is not None and isinstance(ret, int) and (got := fcntl_result(cmd, ret)):
        result = got
    elif (
        isinstance(fpath, str)
        and fpath
        and _new_fd(name, cmd)
        and isinstance(ret, int)
        and ret >= 0
    ):
        result = f"{ret}<{escape(fpath)}>"  # a new descriptor of the file: strace -y's
    mark = f"[{cls}" + (f" via {via}" if via else "") + "]"
    line = (
        f"[pid {_label(begins, str(log.header.get('host')), pid, t)} tid {tid}]"
        f" +{since / 1e9:.6f} {escape(name)}"
        f"({', '.join(shown)}) = {result} <{(t_exit - t) / 1e9:.6f}> {escape(mark)}\n"
    )
    if stacks:
        line += "".join(f"    at {_frame(f[3], f[4], f[5], f[1], f[2] or 0)}\n"
                        for f in log.sites.get(site, []))  # fmt: skip
    return line


_FCNTL_CMDS = {v: k for k, v in FCNTL_CMD.items()}
# fcntl's commands that take no argument (strace prints none)
_FCNTL_NO_ARG = frozenset({1, 3, 9, 11, 1025, 1032, 1034})
_FCNTL_DUPS = frozenset({0, 1030})  # F_DUPFD, F_DUPFD_CLOEXEC


def _dup_result(fd: int, path: str | None) -> str | None:
    """fcntl F_DUPFD's result as strace -y prints it: the new descriptor and its file."""
    return f"{fd}<{escape(path)}>" if path and fd >= 0 else None


def _new_fd(name: str, cmd: int | None) -> bool:
    """The stracer's syscall returns a new descriptor of the file its record names."""
    s = SYSCALL_BY_NAME.get(name)
    return bool(s and s.fdop in ("open", "dup", "dup2") and (cmd is None or cmd in _FCNTL_DUPS))


def _selected(
    header: dict[str, Any], recs: list[Any], sel: Select, ranks: dict[int, int], t0: int
) -> list[Any]:
    """The MISSED records passing `sel` (iotrace.select.mask over their columns)."""
    from iotrace.stracer import slog

    if not sel.active or not recs:
        return recs
    clock = header.get("clock", {})
    paths = sorted({r[10] for r in recs if r[10] is not None})
    names = sorted({r[4] for r in recs})
    pcode, ncode = {p: i for i, p in enumerate(paths)}, {n: i for i, n in enumerate(names)}
    keep = mask(
        sel,
        rank=np.array([ranks.get(r[2], -1) for r in recs], dtype=np.int64),
        pid=np.array([r[2] for r in recs], dtype=np.int64),
        path=np.array([pcode.get(r[10], -1) for r in recs], dtype=np.int64),
        path_names=paths,
        fn=np.array([ncode[r[4]] for r in recs], dtype=np.int64),
        fn_names=names,
        errno=np.array([slog.app_errno(r[7]) for r in recs], dtype=np.int64),
        t=np.array([r[1] for r in recs], dtype=np.int64)
        + int(clock.get("real", 0))
        - int(clock.get("mono", 0))
        - t0,
    )
    return [r for r, k in zip(recs, keep.tolist(), strict=True) if k]


def _sshift(log: Any) -> int:
    """A stracer log's CLOCK_MONOTONIC -> CLOCK_REALTIME."""
    c = log.header.get("clock") or {}
    return int(c.get("real", 0)) - int(c.get("mono", 0))


def stracer_logs(trace_dir: Path, warnings: list[str]) -> list[Any]:
    """The stracer's logs of a trace, read but their MISSED records (damaged: StracerLogError,
    a TraceFormatError); for each one that did not finish, a line in `warnings`."""
    from iotrace.stracer import slog

    out = []
    for path in slog.log_files(trace_dir):
        log = slog.read(path, stops=False, skip=frozenset({SRec.MISSED}))
        if not log.complete:
            warnings.append(
                f"iotrace: warning: {escape(path.name)}: the stracer did not finish (killed?): "
                "its events are shown up to its last whole record"
            )
        out.append(log)
    return out


def _sarg(kind: str, a: Any, named: dict[Any, Any]) -> str:
    """One of the stracer's decoded arguments as strace writes it; `named`: the record's
    descriptors and their paths."""
    if kind == "fds2":  # the two descriptors a pipe filled in, else its address
        return f"[{a[0]}, {a[1]}]" if isinstance(a, list) else hex(a) if isinstance(a, int) else "?"
    if isinstance(a, list):
        return "|".join(escape(str(x)) for x in a) or "0"
    if kind in ("path", "str") and isinstance(a, str):
        return f'"{escape(a)}"'
    if kind == "fd" and named.get(a):
        return f"{a}<{escape(named[a])}>"
    if kind in ("buf", "ptr", "iov") and isinstance(a, int):
        return hex(a)
    return escape(str(a))


def show(
    trace_dir: str | os.PathLike[str],
    out: IO[str],
    sel: Select | None = None,
    stacks: bool = False,
    memory: int = MEMORY_DEFAULT,
) -> int:
    """Print the events of a trace, the shim's and the stracer's, that pass `sel`, in time
    order (ties: the logs' order, then each log's), one a line; times are seconds since the
    job's start (iotrace.tracefile.job_start over both kinds of log, as every reader counts
    them); `stacks`: each event's call stack under it.  Returns how many.

    Within `memory` bytes whatever the trace's size: each log is read a window at a time twice
    (its strings, stacks and other records first, which its lines need; then its events a
    batch at a time, formatted at once), the lines held in a spill.Sorter that writes sorted
    runs to temporary files beyond its budget and merges them.  Held at once: one log's other
    records, one batch, the Sorter's budget."""
    from iotrace.spill import Sorter
    from iotrace.stracer import slog

    sel = sel or Select()
    d = Path(trace_dir)
    warnings: list[str] = []
    # the stracer's logs first, their forks taken and their other records (processes, kernel
    # counts: ~2.2 KiB a process, none read by the lines) let go before the shim logs are
    # listed: held beside the listing, they were a third of the peak of a trace of many
    # processes
    slog_warnings: list[str] = []
    slogs = stracer_logs(d, slog_warnings)
    forks = _forks(slogs)
    for sl in slogs:
        sl.procs, sl.kio, sl.counts = [], [], {}
    # of every log, what its lines need of its header; its Log (its records) made as it is read
    # and let go after (a Log and whole header held per log: ~2.4 KiB, 100,000 processes' logs
    # ~0.5 GB)
    logs: list[tuple[Path, dict[str, Any], int, int, int]] = []
    for p in log_paths(d):
        try:
            lg, size, first, chunk = log_header(p)
        except UnwrittenLogError:  # no record in it: said, as the report says it
            warnings.append(f"iotrace: warning: {escape(p.name)} was never written (its "
                            "process was killed as its log was made)")  # fmt: skip
            continue
        logs.append((p, {k: lg.header[k] for k in _HEADER if k in lg.header}, size, first, chunk))
    warnings += slog_warnings
    t0 = job_start([*(SimpleNamespace(header=lg[1]) for lg in logs), *slogs], run_records(d))
    ranks = {int(lg[1]["pid"]): lg[1]["rank"] for lg in logs
             if isinstance(lg[1].get("rank"), int)}  # fmt: skip
    begins = _begins(logs, forks)
    for lg in logs:
        h = lg[1]
        h["label"] = _label(begins, str(h.get("host")), int(h["pid"]), _mono(h))
    with Sorter(held_budget(memory), _runs_dir(d)) as lines:
        errors = _Errors()
        logs.reverse()
        while logs:
            p, header, size, first, chunk = logs.pop()
            _shim_log(lines, Log(p, header), size, first, chunk, t0, sel, stacks, errors)
        for w in warnings:
            print(w, file=sys.stderr)
        not_missed = frozenset(set(SRec) - {SRec.MISSED, SRec.SEAL, SRec.END})
        for lg in slogs:
            batch: list[Any] = []

            def take(rec: list[Any], lg: Any = lg, batch: list[Any] = batch) -> None:
                batch.append(rec)
                if len(batch) >= BATCH:
                    _stracer_batch(lines, lg, batch, t0, sel, ranks, stacks, begins)
                    batch.clear()

            slog.read(lg.path, on_missed=take, stops=False, skip=not_missed)
            _stracer_batch(lines, lg, batch, t0, sel, ranks, stacks, begins)
        n = 0
        # the lines are UTF-8 (escape leaves no surrogate): to a UTF-8 stream's bytes as they are
        raw = getattr(out, "buffer", None)
        utf8 = str(getattr(out, "encoding", "")).lower().replace("-", "") == "utf8"
        if raw is not None and utf8:
            out.flush()
        for keys, _ends, blob in lines:
            if raw is not None and utf8:
                raw.write(blob)
            else:
                out.write(blob.decode("utf-8", "surrogatepass"))
            n += len(keys)
        return n


_HEADER = ("pid", "rank", "clock", "functions", "host", "forked")  # what show reads of a header
Begins = dict[tuple[str, int], list[int]]  # (host, pid) -> its processes' starts, if several


def _mono(header: dict[str, Any]) -> int:
    c = header.get("clock")
    return int(c.get("mono", 0)) if isinstance(c, dict) else 0


Starts = dict[tuple[str, int], list[tuple[int, int]]]  # (host, pid) -> (start, kind) of each


def _forks(slogs: list[Any]) -> Starts:
    """The stracer's forks, as _begins reads them, on the host's clock."""
    items: Starts = {}
    for lg in slogs:
        host = str(lg.header.get("host"))
        for rec in lg.procs:
            if rec[4] == "fork" and isinstance(rec[2], int) and isinstance(rec[3], int):
                items.setdefault((host, rec[2]), []).append((int(rec[1]), incarnation.FORK))
    return items


def _begins(logs: list[tuple[Path, dict[str, Any], int, int, int]], forks: Starts) -> Begins:
    """The starts of the processes of each (host, pid) that named several one after the other
    (iotrace.incarnation), from the logs' headers and the stracer's forks (_forks, taken in),
    on the host's clock."""
    items = forks
    for _, h, *_ in logs:
        kind = incarnation.FORKED_LOG if h.get("forked") else incarnation.IMAGE
        items.setdefault((str(h.get("host")), int(h["pid"])), []).append((_mono(h), kind))
    return incarnation.several(items)


def _label(begins: Begins, host: str, pid: int, t: int) -> str:
    """The pid of the process `pid` named at `t`, as said where it named several: P, P#2..."""
    return incarnation.label(pid, incarnation.nth(begins, (host, pid), t))


HELD_MAX = 512 << 20  # bytes of lines held at most whatever the bound: runs are cheap to merge


def held_budget(memory: int) -> int:
    """Bytes of lines held before a sorted run is written, for a bound of `memory`: half of what
    the bound leaves beside BASE_MEMORY (an eighth of the bound at least), so that the sort of
    what is held, and the last lines held while the runs are merged, stay well under it; at
    most HELD_MAX (10 M events, pinned, load 9: 4.1 s user + 5.1 s system held whole in 1.09 GB
    under 2G, 3.9 + 2.7 s spilled under 512M: the memory first touched costs more than the runs'
    writing and merging)."""
    return min(max((memory - BASE_MEMORY) // 2, memory // 8), HELD_MAX)


def _runs_dir(trace_dir: Path) -> str:
    """Where the sorted runs go: a TMPDIR of ours if set, else the trace's directory if it is
    ours alone (its file system has room for the trace), else /tmp (tracedir.private_tmp).
    Root's `show` of a user's trace wrote its runs where that user can swap things (the
    directory renamed away and a link put in its place: root's runs, named ones where the file
    system has no O_TMPFILE, written wherever the link led)."""
    from iotrace.tracedir import ours, private_tmp

    if os.environ.get("TMPDIR") or not ours(trace_dir):
        return private_tmp()
    return str(trace_dir)


def _shim_log(lines: Any, log: Log, size: int, first: int, chunk: int, t0: int, sel: Select,
              stacks: bool, errors: _Errors) -> None:  # fmt: skip
    """A shim log's events that pass `sel`, formatted into `lines` a window at a time: its
    other records read (and its chunks checked) first, for a string may be defined after an
    event that uses it; then its events decoded into columns and formatted in C."""
    from iotrace.analyzer.event_columns import require_native

    ffi, lib = (nat := require_native()).ffi, nat.lib
    step = max(1, WINDOW // chunk) * chunk
    limit = id_limit(size)
    res = ffi.new("iot_result *")

    def scan(buf: bytes, start: int, cols: Any, cap: int, room: np.ndarray | None) -> None:
        other = ffi.NULL if room is None else ffi.from_buffer("int64_t[]", room)
        lib.iot_scan(ffi.from_buffer("uint8_t[]", buf), len(buf), 0, len(buf), chunk,
                     cols, cap, other, other + (len(room) // 2) if room is not None else ffi.NULL,
                     len(room) // 2 if room is not None else 0, res)  # fmt: skip
        if res.error:
            raise TraceFormatError(f"{log.path}: corrupt log ({ERRORS.get(res.error, 'bad data')}"
                                   f" at byte {start + res.error_off})")  # fmt: skip

    with open_regular(log.path) as fd:
        room = np.empty(512, dtype=np.int64)  # other records' offsets, then their lengths
        for start in range(first, size, step):
            buf = os.pread(fd, min(step, size - start), start)
            try:
                torn = verify(buf, 0, len(buf), chunk)
            except BadChunk as exc:
                raise TraceFormatError(f"{log.path}: corrupt log ({ERRORS[exc.code]} at byte "
                                       f"{start + exc.off})") from None  # fmt: skip
            scan(buf, start, ffi.NULL, 0, room)
            if res.n_other * 2 > len(room):
                room = np.empty(2 * res.n_other, dtype=np.int64)
                scan(buf, start, ffi.NULL, 0, room)
            k = int(res.n_other)
            for off, ln in zip(room[:k].tolist(), room[len(room) // 2 :][:k].tolist(),
                               strict=True):  # fmt: skip
                try:
                    log.add(other_record(Records.one(buf, off, off + ln), limit))
                except (BadRecord, ValueError, TypeError, IndexError, UnpackException):
                    raise TraceFormatError(
                        f"{log.path}: corrupt log (bad record at byte {start + off + ln})"
                    ) from None
            if torn or res.truncated or len(buf) < step:
                log.truncated = bool(torn or res.truncated)
                break
    if log.truncated:
        print(f"iotrace: warning: {log.path} was cut short; read up to its last whole record",
              file=sys.stderr)  # fmt: skip
    shim = ShimLines(log, t0 - _shift(log), _symbolise(log) if stacks else None, errors)
    cap = max(0, min(step, size - first)) // MIN_EVENT_BYTES + 2  # a small log: small columns
    arrays = {name: np.empty(cap, dtype=t) for name, t in RAW_COLUMNS}
    arrays |= {"mode": np.empty(cap, np.int64), "aux": np.empty(cap, np.int64),
               "big": np.empty(cap, np.uint8)}  # fmt: skip
    cols = ffi.new("iot_cols *")
    for name, a in arrays.items():
        setattr(cols, "err" if name == "errno" else name,
                ffi.cast(_ctype(a.dtype), ffi.from_buffer(a)))  # fmt: skip
    with open_regular(log.path) as fd:
        for start in range(first, size, step):
            buf = os.pread(fd, min(step, size - start), start)
            scan(buf, start, cols, cap, None)
            m = int(res.n_events)
            view = {k: a[:m] for k, a in arrays.items()}
            if m and (top := int(view["fn"].max())) >= len(log.functions):
                raise TraceFormatError(f"{log.path}: corrupt log (function id {top}, its header "
                                       f"names {len(log.functions)})")  # fmt: skip
            keep = _select(log, view, sel, t0, log.functions) if sel.active else None
            shim.lines(view, keep, lines)
            if res.truncated or len(buf) < step:
                break


def _select(log: Log, cols: dict[str, np.ndarray], sel: Select, t0: int,
            fn_names: list[str]) -> np.ndarray:  # fmt: skip
    """The rows of a shim log's window whose events pass `sel` (iotrace.select.mask over their
    columns; a call with two ends passes --path by either)."""
    n = len(cols["fn"])
    nulls = cols["nulls"]
    rank = log.header.get("rank")
    path = np.where((nulls & _N["path"]) == 0, cols["path"], -1).astype(np.int64)
    # a call's second path: its end read's, else aux where the function names one
    end2 = np.zeros(n, dtype=bool)
    end2[:-1] = (nulls[1:] & _N["end2"]) != 0
    path2 = np.full(n, -1, dtype=np.int64)
    path2[:-1][end2[:-1]] = path[1:][end2[:-1]]
    fn = cols["fn"].astype(np.int64)
    named = _SHOWS_PATH2[np.minimum(fn, len(_SHOWS_PATH2) - 1)]
    aux_int = (nulls & (_N["aux"] | _N["auxpair"])) == 0
    use_aux = ~end2 & named & aux_int
    path2[use_aux] = cols["aux"][use_aux]
    return mask(
        sel,
        rank=np.full(n, rank if isinstance(rank, int) else -1, dtype=np.int64),
        pid=np.full(n, int(log.header.get("pid", -1)), dtype=np.int64),
        path=path,
        path_names=log.strings,
        fn=fn,
        fn_names=fn_names,
        errno=cols["errno"].astype(np.int64),
        t=cols["t_start"] + _shift(log) - t0,
        path2=path2,
    )


# per function id (the call table's): it names a second path in aux (the last: ids past it)
_SHOWS_PATH2 = np.array([*("path2" in f.shows for f in FUNCTIONS), False])


def _stracer_batch(
    lines: Any,
    log: Any,
    recs: list[Any],
    t0: int,
    sel: Select,
    ranks: dict[int, int],
    stacks: bool,
    begins: Begins,
) -> None:
    """A batch of a stracer log's MISSED records: those passing `sel`, formatted into
    `lines`."""
    shift = _sshift(log) - t0
    kept = _selected(log.header, recs, sel, ranks, t0)
    keys = [r[1] + shift for r in kept]
    lines.add(keys, [_b(_stracer_text(log, r, k, stacks, begins))
                     for r, k in zip(kept, keys, strict=True)])  # fmt: skip
