"""Filters when reading: `show`, `report`, `missed` and `export` take the same options, and keep
the events that pass all of them (docs/analyzer.md, "Filters when reading"):

  --rank LIST      MPI ranks (0,2-3); events of processes without a rank never pass
  --pid LIST       process ids
  -P, --path GLOB  the event's path matches (fnmatch without FNM_PATHNAME, `*` spans `/`, as
                   `iotrace run --path`; one not starting with / or *: against the current
                   directory); repeatable;
                   events with no path do not pass
  -e, --function SET   strace's `-e trace=SET`: names, %classes, `!` (iotrace.calls.trace_set);
                   a syscall the stracer saw passes by its libc name (pread64: pread)
  --failed / --succeeded   errno set / not (strace -Z / -z)
  --from S / --to S    the event starts in [S, S'] seconds since the job's start (the times
                   `show` prints)

One function, `mask`, decides over columns of events; each reader hands it its columns (the
analyzer's events table, `show`'s per-log records, `missed`'s stracer records).
"""

from __future__ import annotations

import argparse
import fnmatch
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from iotrace.calls import END2_SUFFIX, _libc_names
from iotrace.record import record

if TYPE_CHECKING:  # numpy only where masks are made: `iotrace run` parses these options too
    import numpy as np


class SelectError(ValueError):
    """A filter option that does not parse: one line for the user."""


Ranges = tuple[tuple[int, int], ...]  # (first, last) of each range given, both included


@record(frozen=True)
class Select:
    ranks: Ranges | None = None  # ranges, not their numbers: --pid 1-99999999999 is two ints
    pids: Ranges | None = None
    paths: tuple[str, ...] = ()
    functions: frozenset[str] | None = None  # the call table's names (trace_set)
    failed: bool | None = None  # True: errno set; False: errno 0
    t_from: int | None = None  # ns since the job's start, both ends included
    t_to: int | None = None

    @property
    def active(self) -> bool:
        return self != Select()

    def describe(self) -> str:
        """The options, as a user would give them ("" when none)."""
        out = []
        for opt, v in (("--rank", self.ranks), ("--pid", self.pids)):
            if v is not None:
                out.append(f"{opt} {','.join(str(a) if a == b else f'{a}-{b}' for a, b in v)}")
        out += [f"--path {g}" for g in self.paths]
        if self.functions is not None:
            out.append(f"-e {len(self.functions)} function(s)")
        if self.failed is not None:
            out.append("--failed" if self.failed else "--succeeded")
        for opt, t in (("--from", self.t_from), ("--to", self.t_to)):
            if t is not None:
                out.append(f"{opt} {t / 1e9:g}")
        return " ".join(out)


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters (an event must pass all given)")
    g.add_argument("--rank", action="append", metavar="LIST", help="MPI ranks: 0,2-3")
    g.add_argument("--pid", action="append", metavar="LIST", help="process ids: 123,456")
    g.add_argument("-P", "--path", action="append", metavar="GLOB", help="path glob (repeatable)")
    g.add_argument(
        "-e", "--function", action="append", metavar="SET",
        help="functions as strace -e trace=SET: names, %%classes, ! to negate",
    )  # fmt: skip
    ok = g.add_mutually_exclusive_group()
    ok.add_argument("--failed", dest="failed", action="store_const", const=True,
                    help="only calls that failed (strace -Z)")  # fmt: skip
    ok.add_argument("--succeeded", dest="failed", action="store_const", const=False,
                    help="only calls that succeeded (strace -z)")  # fmt: skip
    g.add_argument("--from", dest="t_from", metavar="S",
                   help="only events starting at or after S s since the job's start")  # fmt: skip
    g.add_argument("--to", dest="t_to", metavar="S",
                   help="only events starting at or before S s since the job's start")  # fmt: skip


def _ints(specs: list[str] | None, what: str) -> Ranges | None:
    """The ranges of a --rank/--pid LIST, merged where they touch, in order."""
    if not specs:
        return None
    out: list[tuple[int, int]] = []
    for spec in specs:
        for item in spec.split(","):
            lo, sep, hi = item.strip().partition("-")
            try:
                a = int(lo)
                b = int(hi) if sep else a
            except ValueError:
                raise SelectError(f"--{what} {spec!r}: expected numbers like 0,2-3") from None
            if a < 0 or b < a or b >= 1 << 63:
                raise SelectError(f"--{what} {spec!r}: expected numbers like 0,2-3")
            out.append((a, b))
    merged: list[tuple[int, int]] = []
    for a, b in sorted(out):
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return tuple(merged)


def _within(values: np.ndarray, ranges: Ranges) -> np.ndarray:
    """values in any of the ranges (sorted, disjoint: _ints): the last range starting at or
    before each value holds it or none does."""
    import numpy as np

    first = np.array([a for a, _ in ranges], dtype=np.int64)
    last = np.array([b for _, b in ranges], dtype=np.int64)
    at = np.searchsorted(first, values, side="right") - 1
    return (at >= 0) & (values <= last[at.clip(0)])


def _secs(s: str | None, what: str) -> int | None:
    if s is None:
        return None
    try:
        v = float(s)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v < 0:
        raise SelectError(f"--{what} {s!r}: expected seconds since the job's start (>= 0)")
    return round(v * 1e9)


def from_args(args: argparse.Namespace) -> Select:
    paths = []
    for g in args.path or []:
        if not g:
            raise SelectError("--path: empty glob")
        paths.append(absolute_glob(g))
    functions = None
    if args.function:
        from iotrace.calls import trace_set

        try:
            functions = trace_set(args.function)
        except ValueError as exc:
            raise SelectError(f"-e: {exc}") from None
    t_from, t_to = _secs(args.t_from, "from"), _secs(args.t_to, "to")
    if t_from is not None and t_to is not None and t_to < t_from:
        raise SelectError(f"--to {args.t_to} is before --from {args.t_from}")
    return Select(
        ranks=_ints(args.rank, "rank"),
        pids=_ints(args.pid, "pid"),
        paths=tuple(paths),
        functions=functions,
        failed=args.failed,
        t_from=t_from,
        t_to=t_to,
    )


def absolute_glob(glob: str) -> str:
    """A `--path` glob as recorded paths are matched against it (`iotrace run --path` and the
    readers' alike): recorded paths are absolute and lexically clean (preload/paths.c), so a
    glob not starting with `/` or `*` is taken against the current directory, and `.`, `..`
    and doubled slashes are cleaned as the shim cleans paths."""
    if glob.startswith("*"):
        return glob
    g = os.path.normpath(os.path.join(os.getcwd(), glob))
    return "/" + g.lstrip("/")  # normpath keeps a leading "//"; the shim does not


def function_passes(name: str, chosen: frozenset[str]) -> bool:
    """A function name of a log (a shim function, a syscall, `sendfile:in`) against the call
    table's names that -e chose."""
    base = name.removesuffix(END2_SUFFIX)
    return any(n in chosen for n in _libc_names(base))


def path_passes(path: str, globs: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, g) for g in globs)


def _by_value(
    codes: np.ndarray, names: Mapping[int, str] | Sequence[str], test: Callable[[str], bool]
) -> np.ndarray:
    """test() once per distinct code (-1: none, never passes)."""
    import numpy as np

    uniq, inv = np.unique(codes, return_inverse=True)
    ok = np.zeros(len(uniq), dtype=bool)
    for i, c in enumerate(uniq.tolist()):
        if c < 0:
            continue
        try:
            name = names[c]
        except (KeyError, IndexError):
            continue
        ok[i] = name is not None and test(name)
    return ok[inv.reshape(-1)]


def mask(
    s: Select,
    *,
    rank: np.ndarray,  # -1: none
    pid: np.ndarray,
    path: np.ndarray,  # codes into path_names, -1: none
    path_names: Mapping[int, str] | Sequence[str],
    fn: np.ndarray,  # codes into fn_names
    fn_names: Mapping[int, str] | Sequence[str],
    errno: np.ndarray,
    t: np.ndarray,  # ns since the job's start
    path2: np.ndarray | None = None,  # a call's second path (rename, sendfile's end read)
) -> np.ndarray:
    """Which events pass every filter of `s`; a call with two paths passes --path by either."""
    import numpy as np

    keep = np.ones(len(t), dtype=bool)
    if s.ranks is not None:
        keep &= _within(rank, s.ranks)
    if s.pids is not None:
        keep &= _within(pid, s.pids)
    if s.paths:
        on = _by_value(path, path_names, lambda p: path_passes(p, s.paths))
        if path2 is not None:
            on |= _by_value(path2, path_names, lambda p: path_passes(p, s.paths))
        keep &= on
    if s.functions is not None:
        chosen = s.functions
        keep &= _by_value(fn, fn_names, lambda f: function_passes(f, chosen))
    if s.failed is not None:
        keep &= (errno != 0) if s.failed else (errno == 0)
    if s.t_from is not None:
        keep &= t >= s.t_from
    if s.t_to is not None:
        keep &= t <= s.t_to
    return keep
