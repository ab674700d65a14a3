"""The loaded trace: its tables, the derived ones computed on first use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from iotrace.record import field, record, replace
from iotrace.select import Select, mask


@record
class Trace:
    """What `iotrace.analyzer.load` returns.

    `events` and `processes` are built by load; `files`, `stacks` and `missed` are computed from
    them on first access (stacks are symbolised then, with the module maps the shim recorded).
    Times are ns since the job's start (`t0`, CLOCK_REALTIME ns since the epoch).
    """

    dir: Path
    events: pd.DataFrame
    processes: pd.DataFrame
    t0: int
    duration: int  # ns from the job's start to its end (last run record, exit or event)
    runs: list[dict[str, Any]]
    # stack_id -> (proc, return addresses); proc -> [(base, lo, hi, path)]
    raw_stacks: dict[int, tuple[int, tuple[int, ...]]]
    modules: dict[int, list[tuple[int, int, int, str, bytes | None]]]  # + build-id
    # stack_id -> frames the stracer symbolised already: (pc, module, offset, function, file, line)
    site_frames: dict[int, list[tuple[Any, ...]]] = field(default_factory=dict)
    # the kernel's I/O counters read during the run (schema.KIO_COLUMNS)
    kio: pd.DataFrame = field(default_factory=pd.DataFrame)
    # every stop the stracer held a thread at (STOP records): host, tid, t (ns from the job's
    # start), ns; the report takes them out of the time of the events they fell in
    stops: pd.DataFrame = field(default_factory=pd.DataFrame)
    # names that are not UTF-8, as the tables spell them (\xNN) -> their exact bytes
    exact_names: dict[str, bytes] = field(default_factory=dict)
    # the read filters that chose the events (iotrace.select; "" = all events)
    selection: str = ""
    stack_base: int = 0  # the first stack id of the stracer's call sites (after the shim's)
    shim_paths: int = 0  # the first path code the stracer's events added (after the logs')
    # HDF5 datasets' shapes and the chunks their reads and writes touched (load._chunking)
    chunking: pd.DataFrame = field(default_factory=pd.DataFrame)
    # (proc, t_start) of the mmap events whose protection had PROT_WRITE (the event's `mode`,
    # no column: few, and a column would cost every event)
    writable_maps: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def files(self) -> pd.DataFrame:
        """One row per path: bytes, ops, time, access sizes, sequential share, ranks."""
        if "files" not in self._cache:
            from .access import files_table

            self._cache["files"] = files_table(self.events)
        return self._cache["files"]

    @property
    def stacks(self) -> pd.DataFrame:
        """stack_id, level (0 = innermost) -> pc, module, function, file, line."""
        if "stacks" not in self._cache:
            from .symbols import symbolise

            self._cache["stacks"] = symbolise(self)
        return self._cache["stacks"]

    @property
    def missed(self) -> pd.DataFrame:
        """The syscalls the shim missed (the stracer's events), grouped by process, syscall and
        call site (missed_groups.Groups.table)."""
        if "missed" not in self._cache:
            from .missed_groups import missed_table

            self._cache["missed"] = missed_table(self)
        return self._cache["missed"]

    @property
    def completeness(self) -> pd.DataFrame:
        """Per process: the kernel's read/write counters at its end against what the trace
        explains of them (analyzer/completeness.py)."""
        if "completeness" not in self._cache:
            from .completeness import completeness_table

            self._cache["completeness"] = completeness_table(self)
        return self._cache["completeness"]

    def __repr__(self) -> str:
        return (
            f"<Trace {self.dir}: {len(self.events):,} events, {len(self.processes)} processes, "
            f"{self.duration / 1e9:.3f} s>"
        )


def selected(trace: Trace, s: Select) -> Trace:
    """The trace with only the events that pass `s` (iotrace.select; `report`, `export`, `diff`
    read it as a whole trace).  Processes stay (event rows refer to them by position); the
    kernel's counters stay but are not compared with a filtered trace's events."""
    if not s.active:
        return trace
    ev = trace.events
    keep = mask(
        s,
        rank=ev["rank"].to_numpy(dtype=np.int64, na_value=-1),
        pid=ev["pid"].to_numpy(),
        path=ev["path"].cat.codes.to_numpy(),
        path_names=list(ev["path"].cat.categories),
        fn=ev["function"].cat.codes.to_numpy(),
        fn_names=list(ev["function"].cat.categories),
        errno=ev["errno"].to_numpy(),
        t=ev["t_start"].to_numpy(),
    )
    return replace(trace, events=ev[keep].reset_index(drop=True), selection=s.describe(), _cache={})
