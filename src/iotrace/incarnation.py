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
from collections.abc import Iterable

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
