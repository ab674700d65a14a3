"""Where events come from: the kinds of log in a trace directory.

- the shim: `HOST.PID[.N].iot` (docs/format.md), decoded in C into the event columns (load.py);
- the stracer: `HOST.PID.stracer` (docs/format.md, "The stracer log"), the syscalls the shim did
  not see, read with the stracer's own reader and turned into rows by `stracer_src.py`: its events
  carry `source='stracer'` and their class (`libc`: inside a libc function the shim does not
  wrap; `bypass`: missed I/O, `missed=True`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from iotrace.stracer.slog import CLASSES

from iotrace.record import record
from iotrace.tracefile import LOG_SUFFIX


@record(frozen=True)
class Source:
    name: str  # the value of the events' `source` column
    find: Callable[[Path], list[Path]]  # its logs in a trace directory


def find_shim_logs(trace_dir: Path) -> list[Path]:
    """Not a regular file: refused by the reader."""
    return [trace_dir / n for n in shim_log_names(trace_dir)]


def shim_log_names(trace_dir: Path) -> list[str]:
    return _names(trace_dir, LOG_SUFFIX)


def find_stracer_logs(trace_dir: Path) -> list[Path]:
    """The stracer's logs in `trace_dir` (one per `iotrace run` that ran it)."""
    from iotrace.stracer.slog import SUFFIX

    return [trace_dir / n for n in _names(trace_dir, SUFFIX)]


def find_run_records(trace_dir: Path) -> list[Path]:
    """The run records (iotrace-run.*.json) in `trace_dir`, as glob finds them."""
    return [trace_dir / n for n in _names(trace_dir, ".json") if n.startswith("iotrace-run.")]


# A worker's part lists the trace directory several times (the shim's logs, the stracer's, the
# run records): ~20 ms each for 40,000 logs, every part.  A listing is kept while the directory's
# mtime (and inode) stays the same, and only once that mtime is older than SCAN_TRUSTED_NS when
# listed: an entry added later moves the mtime past it (the clock the kernel stamps it with
# ticks coarsely: a change within the same tick as the listing would not show).
SCAN_TRUSTED_NS = 1_000_000_000
_SCANS: dict[tuple[str, str], tuple[tuple[int, int, int], list[str]]] = {}


def _names(trace_dir: Path, suffix: str) -> list[str]:
    """The names glob("*" + suffix) finds (none where the directory cannot be read), sorted by
    name as glob's paths sort: comparing 10,000 Paths took ~0.1 s, and a bounded report lists
    the logs for every part."""
    try:
        st = os.stat(trace_dir)
        stamp = (st.st_dev, st.st_ino, st.st_mtime_ns)
        key = (str(trace_dir), suffix)
        got = _SCANS.get(key)
        if got is not None and got[0] == stamp:
            return list(got[1])
        with os.scandir(trace_dir) as it:
            names = sorted(e.name for e in it if e.name.endswith(suffix))
    except OSError:
        return []
    if time.time_ns() - st.st_mtime_ns > SCAN_TRUSTED_NS:
        for k in [k for k in _SCANS if k[0] != key[0]]:
            del _SCANS[k]  # one directory at a time
        _SCANS[key] = (stamp, names)
    return list(names)


SHIM = Source("shim", find=find_shim_logs)
STRACER = Source("stracer", find=find_stracer_logs)
# the events' `class` (docs/stracer.md, "Classification"): a wrapper's call, a syscall inside a
# libc function the shim does not wrap, one that bypassed libc's wrapped functions (missed I/O)
# "attached": a syscall `iotrace attach` recorded (no shim in that process: stracer/attach.py);
# "killed": a wrapper's call its thread died in (a write cut short by SIGPIPE): the stracer read
# it at the thread's exit stop, the shim never saw it return
CLASS_NAMES: list[str] = ["covered", *CLASSES]  # a wrapper's call, then the stracer log's
# The asynchronous engine that carried out a stracer event's operation (the stracer log's `via`):
# none for a syscall of the app's own ("")
VIA_NAMES: list[str] = ["", "io_uring", "aio", "io_uring SQPOLL"]
SOURCES: tuple[Source, ...] = (SHIM, STRACER)
SOURCE_NAMES: list[str] = [s.name for s in SOURCES]
