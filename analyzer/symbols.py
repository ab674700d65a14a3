"""Symbolising stacks after the run, from the MODULE records the shim wrote.

A return address `pc` of a process lies in the module whose [lo, hi) holds it (the last one
recorded, as a dlopen may reuse a range); it is at `pc - base` in that file.  All the addresses
of one module, from every process and stack, go to ONE addr2line run on its stdin
(iotrace.addr2line.resolve, which says why addr2line).  Without it, or for a module file that
is gone, frames keep their module and offset and no names.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from iotrace.stracer.unwind import syscall_stub

from iotrace.addr2line import Symbol, resolve

from . import schema
from .modules import module_of, same_file

if TYPE_CHECKING:
    from .trace import Trace


# A process that reduces part after part (parts.tune_malloc: keep_symbols) keeps what addr2line
# said, by the module file's identity, size and mtime: every part of a trace names the same
# modules, and one run on libc costs ~50 ms of CPU (128 parts of a 200 M-event trace: ~6 s).
_SYMBOLS: dict[tuple[str, int, int, int], dict[int, Symbol]] | None = None


def keep_symbols() -> None:
    global _SYMBOLS
    if _SYMBOLS is None:
        _SYMBOLS = {}


def _resolve(module: str, offsets: set[int], ids: set[bytes]) -> dict[int, Symbol]:
    """resolve, through what this process kept (keep_symbols): addr2line runs only for the
    offsets not asked before.  `ids`: the build-ids the job ran (resolve checks the file it
    reads: same_file's check was of the path, earlier)."""
    if _SYMBOLS is None:
        return resolve(module, offsets, ids=ids)
    try:
        st = os.stat(module)
    except OSError:
        return resolve(module, offsets, ids=ids)
    kept = _SYMBOLS.setdefault((module, st.st_size, st.st_mtime_ns, st.st_ino), {})
    new = offsets - kept.keys()
    if new:
        got = resolve(module, new, ids=ids)
        if got:  # addr2line ran: the offsets it had no answer for have none (else ask again)
            kept.update(dict.fromkeys(new, (None, None, None)))
            kept.update(got)
    return kept


def symbolise(trace: Trace, stack_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """The frames of the given stacks (all by default), one row per frame.  The stracer's call
    sites come symbolised already (`trace.site_frames`): taken as they are, except the frames
    it left unsymbolised (libc-internal sites: stracer/tracer.py `_new_site`)."""
    ids = (
        sorted({*trace.raw_stacks, *trace.site_frames})
        if stack_ids is None
        else sorted(set(stack_ids))
    )
    rows: list[tuple[int, int, int, str | None, int]] = []
    given: dict[int, tuple[str | None, str | None, int | None]] = {}  # row -> symbols
    later: dict[int, tuple[str, int, str | None]] = {}  # row -> (module, address, function)
    wanted: dict[str, set[int]] = defaultdict(set)
    ran: dict[str, set[bytes]] = defaultdict(set)  # module -> the build-ids the job ran
    sorted_mods: dict[int, list[tuple]] = {}
    for sid in ids:
        for level, fr in enumerate(trace.site_frames.get(sid, [])):
            pc, module, offset, function, file, line = fr
            if not file and isinstance(module, str) and isinstance(offset, int):
                # the syscall's own address, then return addresses (their call is before)
                addr = offset - (1 if level else 0)
                wanted[module].add(addr)
                later[len(rows)] = (module, addr, function if isinstance(function, str) else None)
            given[len(rows)] = (
                function if isinstance(function, str) else None,
                file if isinstance(file, str) else None,
                line if isinstance(line, int) and line > 0 else None,
            )
            rows.append(
                (
                    sid,
                    level,
                    int(pc or 0),
                    module if isinstance(module, str) else None,
                    int(offset) if isinstance(offset, int) else 0,
                )
            )
        if sid not in trace.raw_stacks:
            continue
        proc, pcs = trace.raw_stacks[sid]
        mods = sorted_mods.setdefault(proc, trace.modules.get(proc, []))
        for level, pc in enumerate(pcs):
            m = module_of(mods, pc)
            if m is None:
                rows.append((sid, level, pc, None, pc))
                continue
            off = pc - m[0]
            rows.append((sid, level, pc, m[3], off))
            # a return address: the call is the instruction before it
            wanted[m[3]].add(max(off - 1, 0))
            if len(m) > 4 and m[4]:
                ran[m[3]].add(m[4])
    resolved = {
        mod: _resolve(mod, offs, ran.get(mod, set()))
        for mod, offs in wanted.items()
        if same_file(mod, ran)
    }
    if not rows:
        return schema.empty_frame(schema.STACK_COLUMNS)
    funcs, files, lines = [], [], []
    for i, (_sid, _level, _pc, mod, off) in enumerate(rows):
        if i in later:
            m, a, known = later[i]
            f, fl, ln = resolved.get(m, {}).get(a, (None, None, None))
            f = known or f
        elif i in given:
            f, fl, ln = given[i]
        else:
            f, fl, ln = resolved.get(mod or "", {}).get(max(off - 1, 0), (None, None, None))
        funcs.append(f)
        files.append(fl)
        lines.append(ln)
    df = pd.DataFrame(
        {
            "stack_id": [r[0] for r in rows],
            "level": [r[1] for r in rows],
            "pc": [r[2] for r in rows],
            "module": pd.Series([r[3] for r in rows], dtype=object),
            "module_offset": [r[4] for r in rows],
            "function": pd.Series(funcs, dtype=object),
            "file": pd.Series(files, dtype=object),
            "line": pd.array(lines, dtype="Int32"),
        }
    )
    return df.astype(schema.STACK_COLUMNS)  # type: ignore[arg-type]


def _str(x: object) -> str | None:
    return None if x is None or (isinstance(x, float) and x != x) else str(x)


def frame_label(
    function: str | None, file: str | None, line: int | None, module: str | None, offset: int
) -> str:
    """`func (file.c:12)`, or `libfoo.so+0x1234` without names."""
    function, file, module = _str(function), _str(file), _str(module)
    where = f"{Path(file).name}:{line}" if file and line else (Path(file).name if file else "")
    if function:
        return f"{function} ({where})" if where else function
    base = Path(module).name if module else "?"
    return f"{base}+{offset:#x}" + (f" ({where})" if where else "")


# The C runtime's start-up frames under main(): in every stack, telling nothing.
STARTUP = frozenset(
    {"__libc_start_call_main", "__libc_start_main", "__libc_start_main_impl", "_start"}
)


Frame = tuple[object, object, object, object, int]  # function, file, line, module, offset


def site_label(frames: list[Frame], depth: int = 3, skip_libc: bool = False,
               sep: str = " ← ") -> str:  # fmt: skip
    """A one-line call site from a stack's frames, innermost first: the innermost `depth`,
    the C start-up frames left out; with `skip_libc`, libc's own frames and Go's syscall stubs
    too (a missed syscall's stack starts in such a stub).  The report's missed I/O and
    `iotrace missed` group call sites by it."""
    kept = [f for f in frames if _str(f[0]) not in STARTUP]
    if skip_libc:
        kept = [f for f in kept if not syscall_stub(_str(f[3]), _str(f[0]))] or kept
    kept = kept or frames
    return sep.join(
        frame_label(_str(fn), _str(file), None if line is None or pd.isna(line) else int(line),
                    _str(mod), int(off or 0))  # type: ignore[call-overload]
        for fn, file, line, mod, off in kept[:depth]
    )  # fmt: skip


def site_labels(stacks: pd.DataFrame, depth: int = 3, skip_libc: bool = False) -> dict[int, str]:
    """stack_id -> its site_label."""
    out: dict[int, str] = {}
    if stacks.empty:
        return out
    cols = ["function", "file", "line", "module", "module_offset"]
    df = stacks.sort_values(["stack_id", "level"])
    # one pass over plain lists (a groupby with a frame per stack cost ~2 ms a stack)
    ids = df["stack_id"].tolist()
    rows = list(zip(*(df[c].tolist() for c in cols), strict=True))
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or ids[i] != ids[start]:
            out[int(ids[start])] = site_label(rows[start:i], depth, skip_libc)  # type: ignore[arg-type]
            start = i
    return out


__all__ = ["frame_label", "site_label", "site_labels", "symbolise"]
