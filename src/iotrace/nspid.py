"""Shim logs of processes in a PID namespace of their own (`unshare -pf`, a container's runtime),
matched to the pids of the run.

The shim names its log, its header's pid and ppid and its events' threads by the ids its
process has in its own namespace (getpid, gettid), while the stracer and the kernel's counters
it reads know the run's (the namespace the stracer is in).  At each fork or thread start in
another namespace the stracer records both (`[PROC, t, id, pid, "nspid", inner]`, docs/format.md):
here a log's inner pid is taken back to the run's pid of the process it belongs to (the one with
that inner pid that was started before the log and not gone by then), its ppid to that
process's parent and its threads to theirs, so that the shim's events, the stracer's and the
kernel's counts meet in one process (each byte counted once).  Without the stracer nothing
knows the run's pids: the logs keep their own (completeness says so: kio.Job.pidns).
"""

from __future__ import annotations

from collections.abc import Iterable

from iotrace.format import SRec
from iotrace.stracer import slog

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: the stracer's end line imports this module
    from typing import Any


class Outer:
    """The stracer's PROC records of one host, as lookups from the inner ids to the run's."""

    def __init__(self, procs: Iterable[list[Any]]) -> None:
        self.starts: dict[int, list[tuple[int, int]]] = {}  # inner pid -> [(t, pid)]
        self.threads: dict[int, dict[int, int]] = {}  # pid -> inner tid -> tid
        self.parent: dict[int, int] = {}
        self.ends: dict[int, int] = {}
        # pid -> its images: when each began (fork, exec; its shim's hello) and its program
        self.images: dict[int, list[tuple[int, str]]] = {}
        exe: dict[int, str] = {}
        for rec in procs:
            _, t, pid, other, what, detail = rec[:6]
            if what == "nspid" and isinstance(detail, int) and isinstance(other, int):
                self.threads.setdefault(other, {})[detail] = pid
                if pid == other:
                    self.starts.setdefault(detail, []).append((t, pid))
            elif what == "exit":
                self.ends[pid] = t
            elif what in ("fork", "exec", "shim"):
                if what == "fork" and isinstance(other, int):
                    self.parent.setdefault(pid, other)
                    exe[pid] = exe.get(other, "")
                elif what == "exec" and isinstance(detail, dict):
                    exe[pid] = str(detail.get("exe", ""))
                self.images.setdefault(pid, []).append((t, exe.get(pid, "")))

    def __bool__(self) -> bool:
        return bool(self.starts)

    def pid(self, inner: int, t: int, exe: str = "") -> int | None:
        """The run's pid of the process whose pid in its namespace was `inner` at `t` (the
        stracer's clock, CLOCK_MONOTONIC: the shim header's `clock.mono`, taken after its
        hello); None: none was.  Of two alive then (two namespaces' pid 1), the one running
        `exe` then (the shim's /proc/self/exe: the same path unless the namespace has another
        root), else the one whose image began last before `t`."""
        alive = []
        for b, p in self.starts.get(inner, []):
            if b <= t <= self.ends.get(p, t):
                began, running = max(((s, e) for s, e in self.images.get(p, []) if s <= t),
                                     default=(b, ""))  # fmt: skip
                alive.append((bool(exe) and running == exe, began, p))
        return max(alive)[2] if alive else None

    def header(self, h: dict[str, Any]) -> dict[int, int] | None:
        """A shim log's header with its pid and ppid made the run's (its own kept as `nspid`)
        when the log is of a process in another namespace; its threads' ids (inner -> the
        run's), else None."""
        if "nspid" in h:  # made so already (a header kept between parts: analyzer/load.py)
            return self.threads.get(h["pid"], {})
        inner, mono = h.get("pid"), (h.get("clock") or {}).get("mono")
        if not isinstance(inner, int) or not isinstance(mono, int):
            return None
        pid = self.pid(inner, mono, str(h.get("exe") or ""))
        if pid is None:
            return None
        h["nspid"], h["pid"] = inner, pid
        if pid in self.parent:
            h["ppid"] = self.parent[pid]
        return self.threads.get(pid, {})


def outer(log_paths: Iterable[Any]) -> dict[str, Outer]:
    """Per host, the stracer logs' (paths, or logs read) namespace records (none: empty).  The
    MISSED and STOP records are passed over unchecked: only PROC records are kept."""
    out: dict[str, list[list[Any]]] = {}
    for p in log_paths:
        try:
            log = p if isinstance(p, slog.StracerLog) else slog.read(
                p, stops=False, skip=frozenset({SRec.MISSED, SRec.STOP}))  # fmt: skip
        except slog.StracerLogError:
            continue
        out.setdefault(str(log.header.get("host", "?")), []).extend(log.procs)
    return {h: o for h, procs in out.items() if (o := Outer(procs))}
