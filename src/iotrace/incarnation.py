"""Which process a pid names at a time: the kernel reuses pids (pid_max, 32,768 by default, is
passed in a few minutes by a loop of short-lived processes), so one (host, pid) of a trace can
be several processes one after another, each with its own logs, counters and bytes.

A process (an incarnation of its pid) is named by (host, pid, start): `start` the time it began,
on the clock its reader uses (docs/format.md, "Processes").  What begins one, in time order:

- a fork the stracer saw make the pid (its PROC "fork" record, or a stracer-only image a fork
  began), or
- a shim log a fork began (its header's `forked`: the child's own, or the one its parent wrote
  for a posix_spawn child before its exec), unless a fork just began it (no log since),
- else the pid's first log or image in the trace.

A log that is not `forked` is the pid's next image after an exec: the same process.  Each
record of a pid (a KIO reading, a stracer event) is the process's whose start is the latest
at or before its time.  Without the stracer, a process whose first log is not `forked` (its
parent ran without a shim) joins the pid's process before it.
"""

from __future__ import annotations

import bisect

TYPE_CHECKING = False
if TYPE_CHECKING:  # the run's end line uses this module: no typing (~2 ms), no numpy (~45 ms)
    from collections.abc import Iterable
    from typing import TypeVar

    import numpy as np

    K = TypeVar("K")

FORK, FORKED_LOG, IMAGE = 0, 1, 2  # kinds of what a pid shows, in this order at one time


def starts(items: Iterable[tuple[int, int]]) -> list[int]:
    """The starts of the processes of one (host, pid) from its (time, kind) items, sorted."""
    out: list[int] = []
    logged = False  # the current process has a log (or image) already
    for t, kind in sorted(items):
        if not out or kind == FORK or (kind == FORKED_LOG and logged):
            if not out or out[-1] != t:
                out.append(t)
            logged = False
        logged = logged or kind != FORK
    return out or [0]


def of(begins: list[int], t: int) -> int:
    """The start of the process alive at `t` among those `begins` (sorted); the first's if
    `t` is before them all."""
    return begins[max(bisect.bisect_right(begins, t) - 1, 0)]


def of_rows(group: np.ndarray, t: np.ndarray, kind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """starts() and of() at once for the rows (logs, images, forks) of many pids, in numpy (a
    trace of 100,000 processes has 200,000): per row (its pid's `group` number, its time `t`,
    its `kind`), the start of its process and which process of its pid that is (1: the first,
    2: the one after it, ...)."""
    import numpy as np  # the readers' only (see the imports above)

    n = len(t)
    if not n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((kind, t, group))
    g, ts, k = group[order], np.asarray(t, np.int64)[order], kind[order]
    first = np.ones(n, bool)
    first[1:] = g[1:] != g[:-1]
    after_fork = np.zeros(n, bool)  # the pid's row before is a fork: no log since it began one
    after_fork[1:] = k[:-1] == FORK
    begin = first | (k == FORK) | ((k == FORKED_LOG) & ~after_fork)
    at = np.flatnonzero(begin)  # ... unless at the time the one before began
    again = np.zeros(len(at), bool)
    again[1:] = (g[at[1:]] == g[at[:-1]]) & (ts[at[1:]] == ts[at[:-1]])
    begin[at[again]] = False
    rows = np.arange(n)
    last = np.maximum.accumulate(np.where(begin, rows, 0))  # the latest begin up to the row
    counted = np.cumsum(begin)
    nth = counted - counted[np.maximum.accumulate(np.where(first, rows, 0))] + 1
    # a row's process: the latest begun at or before its time (one sorted after it at its time)
    end = np.ones(n, bool)
    end[:-1] = (g[1:] != g[:-1]) | (ts[1:] != ts[:-1])
    tied = np.minimum.accumulate(np.where(end, rows, n)[::-1])[::-1]
    start, which = np.empty(n, np.int64), np.empty(n, np.int64)
    start[order], which[order] = ts[last[tied]], nth[tied]
    return start, which


def several(items: dict[K, list[tuple[int, int]]]) -> dict[K, list[int]]:
    """The starts of the processes of each pid (a key: (host, pid)) of `items` (its (time,
    kind) items) that named more than one."""
    return {k: b for k, v in items.items() if len(b := starts(v)) > 1}


def nth(begins: dict[K, list[int]], key: K, t: int) -> int:
    """Which process of its pid (1: the first) the pid `key` named at `t` (`begins`: several's)."""
    b = begins.get(key)
    return 1 if b is None else b.index(of(b, t)) + 1


def label(pid: int, nth: int) -> str:
    """How a process is named where a pid alone would name several: `P` for the pid's first,
    `P#2` for the one after it, ..."""
    return str(pid) if nth <= 1 else f"{pid}#{nth}"
