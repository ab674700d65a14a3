"""Bounded memory on every core: a trace summarised part by part, the parts' sums merged.

`summarise(DIR)` (what `iotrace report` runs) never holds the whole events table: the shim's
logs are cut into parts (runs of consecutive logs, every image of a process in one part, each
part's estimated load within its share of the memory bound), each part is loaded alone
(`load(DIR, part=...)`: its processes' events only, every header still read) and reduced to a
`Partial` -- counts, sums, histograms, time bins, the top call sites, per-process rows, the
(path, rank) pairs seen -- in worker processes (all local cores by default) or on a Dask cluster
(`scheduler=ADDRESS`, the logs read where they lie); the partials are merged into the Summary
that `summary.summarise(load(DIR))` makes, number for number (tests/test_parts.py).  What is per
process (streams, MPI-IO ties, time in I/O, the kernel's counters) is exact within a part; what
crosses processes is a sum, a max or a set union.  A process larger than a worker's share is cut
into time ranges (analyzer/ranges.py), reduced in order in one worker (`group`), each carrying
the process's state on (Carry).
"""

from __future__ import annotations

import functools
import os
import pickle
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from iotrace.stracer import slog

from iotrace import cluster, kio, tracedir
from iotrace.calls import END2_SUFFIX
from iotrace.record import field, record, replace
from iotrace.select import Select
from iotrace.tracedir import Pin, adopted, handed, pinned
from iotrace.tracefile import LOG_SUFFIX, log_paths, regular_size, run_records
from iotrace.units import MEMORY_DEFAULT, MEMORY_ENV, memory_bound, parse_memory  # noqa: F401

from . import completeness, job, missed_groups, ranges, schema, stracer_src
from .access import (
    READ,
    WRITE,
    arrays,
    classify,
    compact_ranks,
    file_rows,
    files_table,
    held,
    is_system_path,
    size_histogram,
    sort_files,
)
from .datasets import layer as datasets_layer
from .datasets import merge as datasets_merge
from .insights import Counts
from .load import Part, _Log, _threads, _warn_truncated, load
from .log_kinds import SHIM, STRACER, shim_log_names
from .over_time import Open, OverTime, over_time
from .summary import (
    Summary,
    _completeness,
    _functions,
    _metadata,
    _per_proc,
    _per_rank,
    call_sites_table,
    file_mask,
    file_time_mask,
    from_counts,
    io_union,
    metadata_mask,
    site_stats,
    union_length,
)
from .trace import Trace, selected

WORKER_BASE = 250 << 20  # a worker's own memory (interpreter, numpy, pandas) before a part
# a Dask cluster's own memory, which the bound also holds (the parts are cut for what is left):
# measured by the peak RSS of a report on a 2-worker LocalCluster minus that of 2 local workers
# reducing the same parts (10 M events, 4 parts: 2.014 vs 1.683 GB, bench/README.md; tests/
# test_parts.py::test_a_dask_clusters_own_memory_is_within_its_constants): its scheduler's process
# (with a LocalCluster's nannies) and resource tracker 66 + 12 MiB, the command's Dask client
# +34 MiB; a worker +86 to +118 MiB (distributed's imports and state: idle 172 MiB, a local
# worker forked from the command 72 MiB)
DASK_BASE = 120 << 20
DASK_WORKER_BASE = 120 << 20
# memory a part's load and reduction take per byte of its logs (10 M events: 298 MB of logs,
# load + reduction peak ~2.6 GB, measured in bench/analyzer_bench.py --parts)
MEMORY_PER_LOG_BYTE = 9
MIN_PART_BYTES = 4 << 20  # never cut parts smaller than this much log (per-part overhead)
# nor larger than this: a part's columns (8 B per event, ~30 B of log per event) stay well under
# glibc's largest mmap threshold (32 MiB, set by tune_malloc), so a worker's next part reuses
# their freed heap; and a worker's first part, whose memory is all faulted in fresh, costs
# little more than the next (10 M events, 2 workers: 96 MiB parts took ~0.3 s of CPU more each
# the first time, 32 MiB ones ~0.1 s), the last parts leave a core idle for less long
MAX_PART_BYTES = 32 << 20
SUM_KEYS = (
    "events", "reads", "writes", "read_time", "write_time", "bytes_read", "bytes_written",
    "metadata_ops", "errors", "missed", "mpi_reads", "mpi_writes", "mpi_bytes_read",
    "mpi_bytes_written", "posix_bytes_in_mpi", "classified", "consecutive", "sequential",
    "stracer_held_events",
)  # fmt: skip
FILE_MAX = ("max_offset",)
FILE_DERIVED = ("ranks", "write_ranks", "data_ranks", "rank_list", "random", "seq_share",
                "random_share")  # fmt: skip


def local_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan(
    trace_dir: str | Path,
    memory: int,
    workers: int,
    part_bytes: int | None = None,
    range_bytes: int | None = None,
    mapper: Mapper | None = None,
) -> list[Part]:
    """The parts: consecutive logs (a process's images stay together: their names sort next to
    each other) while their estimated cost fits memory / workers (or their size `part_bytes`);
    the stracer-only processes go with the first part.  A process whose logs cost more is cut:
    each of its logs larger than that (or than `range_bytes`) into time ranges
    (analyzer/ranges.py, indexed by `mapper`), its parts one group, reduced in order.  From the
    logs' names and sizes only (O(logs), a few bytes each): no header is read here."""
    d = Path(trace_dir)
    names = shim_log_names(d) if d.is_dir() else []  # (names: 40,000 Paths made cost ~0.3 s)
    if not names and not (d.is_dir() and STRACER.find(d)):
        log_paths(d)  # the directory checks and their messages
    budget = max(memory // max(workers, 1) - WORKER_BASE, MIN_PART_BYTES * MEMORY_PER_LOG_BYTE)
    budget = min(budget, MAX_PART_BYTES * MEMORY_PER_LOG_BYTE)
    if part_bytes is not None:
        budget = part_bytes * MEMORY_PER_LOG_BYTE
    # a log cut into ranges: the command's own process (it holds the parts' sums) counted too
    cut = (memory - WORKER_BASE) // max(workers, 1) - WORKER_BASE
    cut = max(cut, MIN_PART_BYTES * MEMORY_PER_LOG_BYTE) if part_bytes is None else 1 << 62
    if range_bytes is not None:
        cut = range_bytes * MEMORY_PER_LOG_BYTE
    sizes = _sizes(d, names) * MEMORY_PER_LOG_BYTE  # what each log costs a part
    # the processes: runs of logs of one (host, pid), told by their names (_may_share): [lo, hi)
    bounds = [i for i in range(1, len(names)) if not _may_share(names[i - 1], names[i])]
    procs = list(zip([0, *bounds], [*bounds, len(names)], strict=True)) if names else []
    big = np.flatnonzero(sizes > cut).tolist()
    index = {}
    if big:
        mapper = mapper or local_map(1)
        index = dict(zip(big, mapper(ranges.index, [(str(d / names[i]),) for i in big]),
                         strict=True))  # fmt: skip
    parts: list[Part] = []
    over: list[tuple[int, str]] = []  # ranges that could not be cut to their share: cost, log
    first, cost = 0, 0
    for lo, hi in procs:
        c = int(sizes[lo:hi].sum())
        split = any(i in index for i in range(lo, hi)) or (hi - lo > 1 and c > budget)
        if lo > first and (split or cost + c > budget):
            parts.append(Part(first, lo, not parts))
            first, cost = lo, 0
        if not split:
            cost += c
            continue
        if not parts and first == lo:
            parts.append(Part(0, 0, True))  # the stracer-only processes: a part of their own
        group = len(parts)
        for i in range(lo, hi):
            ix = index.get(i)
            if ix is None:
                parts.append(Part(i, i + 1, False, group=group))
                continue
            events = max(1, int(ix.events * cut / int(sizes[i])))
            for k, r in enumerate(ranges.cuts(ix, events)):
                got = ranges.events_in(ix, r)
                if got > events * 3 // 2 + 4 * ranges.CAND_EVERY:  # past the index's grain
                    over.append((got * int(sizes[i]) // ix.events, names[i]))
                parts.append(Part(i, i + 1, False, (r.lo, r.hi), r.slots, ix.n_ends, k, group))
        first, cost = hi, 0
    if first < len(names) or not parts:
        parts.append(Part(first, len(names), not parts))
    if over:
        _say_over(over, cut)
    return parts


def _sizes(d: Path, names: list[str]) -> np.ndarray:
    """The sizes of the logs `names` of trace `d`, one stat each (relative to the directory the
    command pinned, tracedir.pin): their headers are read by the parts that load them, not here
    (~65 us a log, serially, before any worker started: 13 s of 200,000 logs; and held,
    ~3.4 KB a log of the command).  What is not a log is refused by its part's load."""
    out = np.zeros(len(names), dtype=np.int64)
    dfd = pinned(d)
    own = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if dfd is None and names else -1
    at = own if dfd is None else dfd
    try:
        for i, n in enumerate(names):
            try:
                out[i] = os.stat(n, dir_fd=at, follow_symlinks=False).st_size
            except OSError:  # gone since it was listed: its part says so
                pass
    finally:
        if own >= 0:
            os.close(own)
    return out


def _may_share(a: str, b: str) -> bool:
    """Whether shim logs named `a` and `b` may be one process's (HOST.PID.iot, HOST.PID.N.iot:
    docs/format.md): their names may mean one (host, pid).  A host may end in `.digits`
    (HOST.PID.N and HOST'.PID' are one name): every reading is kept, so a process is never cut
    (cut only where the headers' (host, pid) surely differ)."""
    return not _meanings(a).isdisjoint(_meanings(b))


def _meanings(name: str) -> set[str]:
    """The HOST.PID a log's name may stand for: its stem, and without its last `.N`."""
    stem = name.removesuffix(LOG_SUFFIX)
    head, _, last = stem.rpartition(".")
    out = {stem}
    if last.isdigit() and head.rpartition(".")[2].isdigit():
        out.add(head)
    return out


def _say_over(over: list[tuple[int, str]], share: int) -> None:
    """Once: the time ranges that no cut could bring within a worker's share of the bound."""
    import warnings

    from .fmt import fmt_bytes

    most, log = max(over)
    warnings.warn(
        f"memory bound exceeded: {len(over)} time range(s) of {log}"
        f"{' and others' if len({n for _, n in over}) > 1 else ''} cannot be cut (inside an "
        f"MPI-IO/HDF5/PnetCDF call, or such calls back to back on every thread); the largest "
        f"needs ~{fmt_bytes(most)}, {fmt_bytes(most - share)} more than a worker's share "
        f"({fmt_bytes(share)})",
        stacklevel=2,
    )


@record
class Partial:
    """One part's share of the summary, in forms that merge (see merge)."""

    part: Part
    dir: str
    t0: int
    selection: str  # the read filters ("" = every event)
    system: bool  # system files judged too (report --system)
    exact_names: dict[str, bytes]
    runs: list[dict[str, Any]]
    duration: int
    t_end: int  # the last end of an event
    stack_base: int  # the part's shim stacks are numbered 0..stack_base-1, the stracer's after
    span: int  # the span the bandwidth bins were cut for
    bandwidth: np.ndarray
    processes: pd.DataFrame  # the part's rows of trace.processes
    per_proc: pd.DataFrame  # and of the summary's
    sums: dict[str, int]
    threads: set[tuple[str, int]]
    hosts: set[str]
    function_names: list[str]  # the part's function categories (their order)
    functions: pd.DataFrame
    metadata: pd.DataFrame
    sizes: pd.DataFrame
    files: pd.DataFrame  # files_table
    files_export: pd.DataFrame | None  # the same as trace.files has it (partial's `export`)
    file_ranks: pd.DataFrame  # path, rank, wrote, moved (distinct pairs)
    sites: pd.DataFrame
    missed: missed_groups.Groups
    mpi: tuple[pd.DataFrame, pd.DataFrame]
    datasets: tuple[pd.DataFrame, dict[str, Any]]  # datasets.layer's table and numbers
    counts: Counts
    over_time: OverTime | None  # the HTML page's plots (when asked)
    kio: kio.Packed  # its processes explained (completeness.explained)
    stracer_kio: bool
    top_stack: int = field(default=-1)


def _owned(tr: Trace, part: Part) -> np.ndarray:
    pr = tr.processes
    proc = pr["proc"].to_numpy()
    shim = (pr["source"] == SHIM.name).to_numpy()
    return (shim & (proc >= part.first) & (proc < part.stop)) | (~shim & part.stracer_only)


def _file_ranks(a: Any) -> pd.DataFrame:
    """The distinct (path, rank) pairs in the order met, whether the rank wrote, moved bytes
    (factorize and bincounts: a groupby cost ~10 ms a part, even of no pairs)."""
    ok = (a.path >= 0) & (a.rank >= 0)
    if not ok.any():
        return pd.DataFrame({"path": pd.Series([], dtype=object), "rank": np.zeros(0, np.int64),
                             "wrote": np.zeros(0, bool), "moved": np.zeros(0, bool)})  # fmt: skip
    rank = a.rank[ok]
    width = int(rank.max()) + 1
    codes, pairs = pd.factorize(a.path[ok].astype(np.int64) * width + rank, sort=False)
    moved = a.moved[ok]
    wrote = moved & (a.op[ok] == WRITE)
    return pd.DataFrame(
        {
            "path": [a.paths[i] for i in (pairs // width).tolist()],
            "rank": pairs % width,
            "wrote": np.bincount(codes, weights=wrote, minlength=len(pairs)) > 0,
            "moved": np.bincount(codes, weights=moved, minlength=len(pairs)) > 0,
        }
    )


def _keys(procs: pd.DataFrame, starts: completeness.Begins) -> set[completeness.Key]:
    return set(completeness.keys_of(procs, starts))


def load_part(trace_dir: str, part: Part, select: Select | None = None) -> Trace:
    """One part's trace, its events passing the read filters `select` (iotrace.select)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # said once for the whole trace (_warn)
        tr = load(trace_dir, progress=False, part=part)
    return selected(tr, select) if select is not None else tr


@record
class Carry:
    """What a process cut into ranges carries from one range to the next (partial, in order)."""

    streams: dict[tuple[object, ...], int] = field(default_factory=dict)  # access.classify's
    reach: dict[str, dict[int, int]] = field(default_factory=lambda: {"io": {}, "file": {}})
    posts: dict[tuple[Any, ...], str] = field(default_factory=dict)  # job.mpi_stats's
    shapes: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # datasets.layer's
    # for its completeness, computed after its last part: each image's counters readings, the
    # stracer's, the shim's events after an image's last reading (summed per range), io_uring
    kio: dict[int, pd.DataFrame] = field(default_factory=dict)
    stracer_kio: pd.DataFrame | None = None
    shim: dict[int, list[tuple[int, list[int]]]] = field(default_factory=dict)
    uring: dict[completeness.Key, str] = field(default_factory=dict)
    keys: set[completeness.Key] = field(default_factory=set)
    modules: dict[int, Any] = field(default_factory=dict)
    bars: Open = field(default_factory=dict)  # the HTML timeline's bars still open (over_time)


def _union(a: Any, nproc: int, mask: np.ndarray | None, reach: dict[int, int] | None) -> np.ndarray:
    """io_union; with `reach` (a range of a process: per process the latest end of its calls
    before it), only the time after that reach, and the reach moved on."""
    if reach is None:
        return io_union(a, nproc, mask)
    m = a.io if mask is None else a.io & mask
    proc, s, e = a.proc[m].astype(np.int64), a.t_start[m], a.t_end[m]
    if not len(proc):
        return np.zeros(nproc, dtype=np.int64)
    least = np.iinfo(np.int64).min
    r = np.full(nproc, least, dtype=np.int64)
    for p, v in reach.items():
        if p < nproc:
            r[p] = v
    top = r.copy()
    np.maximum.at(top, proc, e)
    s = np.maximum(s, r[proc])  # still in start order within each process
    keep = e > s
    for p in np.unique(proc).tolist():
        reach[p] = int(top[p])
    return union_length(proc[keep], s[keep], e[keep], nproc)


def group(
    trace_dir: str,
    parts: list[Part],
    span: int,
    select: Select | None = None,
    export: bool = False,
    system: bool = False,
    plots: bool = False,
) -> list[Partial]:
    """The parts of one process cut into ranges, reduced in order (run in a worker), each
    carrying on from the one before; the process's completeness with its last."""
    if len(parts) == 1 and parts[0].window is None:  # whole processes: nothing to carry
        return [partial(trace_dir, parts[0], span, select, export, system, plots)]
    carry = Carry()
    out = [partial(trace_dir, p, span, select, export, system, plots, carry) for p in parts]
    if out[-1].selection:  # filtered events: nothing compared (merge)
        return out
    frames = [carry.kio[k] for k in sorted(carry.kio)]
    if carry.stracer_kio is not None:
        frames.append(carry.stracer_kio)
    kio_rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    tr = Trace(Path(trace_dir), pd.DataFrame(), pd.DataFrame(), 0, 0, [], {}, carry.modules)
    tr.kio, tr.t0 = kio_rows, out[-1].t0
    out[-1].kio = kio.Packed(completeness.explained(tr, carry.keys, carry.shim, carry.uring))
    return out


def partial(
    trace_dir: str,
    part: Part,
    span: int,
    select: Select | None = None,
    export: bool = False,
    system: bool = False,
    plots: bool = False,
    carry: Carry | None = None,
) -> Partial:
    """Load one part and reduce it (run in a worker: a top-level function, picklable).
    `export`: also the files table as trace.files has it (the stracer's holds not taken out);
    `system`, `plots`: summarise's; `carry`: a part of a process cut into ranges (group)."""
    tr = load_part(trace_dir, part, select)
    ev = tr.events
    a = arrays(ev)
    a.stopped = held(ev, tr.stops)  # the stracer's holds: out of the events' times
    c = classify(a, None if carry is None else carry.streams)
    procs = tr.processes
    own = _owned(tr, part)
    n = len(procs)
    reach = {} if carry is None else carry.reach
    union = _union(a, n, None, reach.get("io"))
    # the part's own processes' rows only (not a row per process of the trace each part)
    file_union = _union(a, n, file_time_mask(a, system), reach.get("file"))
    mine = procs[own]
    pp = _per_proc(a, mine, union, file_union)
    files = files_table(ev, a, c)
    files_export = files_table(ev, replace(a, stopped=None), c) if export else None
    rd = a.data & (a.op == READ)
    wr = a.data & (a.op == WRITE)
    mrd = a.mpi_data & (a.op == READ)
    mwr = a.mpi_data & (a.op == WRITE)
    parent = job.mpi_ties(a)
    sums = {
        "events": a.n,
        "reads": int(rd.sum()),
        "writes": int(wr.sum()),
        "read_time": int(a.dur[rd].sum()),
        "write_time": int(a.dur[wr].sum()),
        "bytes_read": int(a.bytes[rd].sum()),
        "bytes_written": int(a.bytes[wr].sum()),
        "metadata_ops": int(metadata_mask(a).sum()),
        "errors": int((a.errno != 0).sum()),
        "missed": int(a.missed.sum()),
        "mpi_reads": int(mrd.sum()),
        "mpi_writes": int(mwr.sum()),
        "mpi_bytes_read": int(a.bytes[mrd].sum()),
        "mpi_bytes_written": int(a.bytes[mwr].sum()),
        "posix_bytes_in_mpi": int(a.bytes[a.data & (parent >= 0)].sum()),
        "classified": len(c.idx),
        "consecutive": int(c.consecutive.sum()),
        "sequential": int(c.sequential.sum()),
        "stracer_held_events": int((a.stopped > 0).sum()),
    }
    # a part holds only its threads' stops: the whole trace's from the stracer logs' indexes
    sums["stracer_stops"], sums["stracer_held"] = stracer_src.stop_totals(STRACER.find(tr.dir))
    # (the distinct values of the runs' heads: pd.unique over every event cost ~4 ms a part)
    by_host = _threads(ev)
    threads = {(h, int(t)) for h, tids in by_host.items() for t in tids.tolist()}
    hosts = set(by_host)
    # the processes whose kernel counters this part explains: its logs' (host, pid), and with
    # the stracer-only images those no log has
    starts = completeness.trace_begins(tr)  # the processes of each pid (pids are reused)
    keys = _keys(mine[mine["source"] == SHIM.name], starts)
    if part.stracer_only:  # every shim log's keys: O(processes), in this part only
        shim_keys = _keys(procs[procs["source"] == SHIM.name], starts)
        keys |= _keys(mine[mine["source"] != SHIM.name], starts) - shim_keys
    kp = {}
    if carry is not None:  # the group's completeness: after its last part (group)
        _carry_kio(carry, tr, keys, part)
    elif not tr.selection:
        kp = completeness.explained(tr, keys)
    return Partial(
        part=part,
        dir=str(tr.dir),
        t0=tr.t0,
        selection=tr.selection,
        system=system,
        exact_names=tr.exact_names,
        runs=tr.runs,
        duration=int(tr.duration),
        t_end=int(a.t_end.max()) if a.n else 0,
        stack_base=tr.stack_base,
        span=span,
        bandwidth=job.bandwidth_sums(a, span),
        processes=mine,
        per_proc=pp,
        sums=sums,
        threads=threads,
        hosts=hosts,
        function_names=list(a.functions),
        functions=_functions(a),
        metadata=_metadata(a),
        sizes=size_histogram(a, file_mask(a, system)),
        files=files,
        files_export=files_export,
        file_ranks=_file_ranks(a),
        # a range of a process: every stack (its totals are the sum of its ranges')
        sites=site_stats(
            tr, a, keep_from=0 if part.window else tr.stack_base, keep=None if system else ~a.system
        ),
        missed=missed_groups.of_trace(tr),
        mpi=job.mpi_stats(a, ev, parent, None if carry is None else carry.posts),
        datasets=datasets_layer(a, ev, tr.chunking, None if carry is None else carry.shapes),
        counts=Counts.of(tr, a, c, parent, system),
        over_time=_plots(a, parent, span, part, carry) if plots else None,
        kio=kio.Packed(kp),
        stracer_kio=completeness.stracer_read(tr),
    )


def _carry_kio(carry: Carry, tr: Trace, keys: set[completeness.Key], part: Part) -> None:
    """What the group's completeness needs of this part: its logs' readings (every range of a
    log has them all), the stracer's, the shim's events after an image's last reading, io_uring."""
    k = tr.kio
    carry.keys |= keys
    if k is not None and len(k):
        shim = k["source"].astype(str) == SHIM.name
        for proc in range(part.first, part.stop):
            carry.kio[proc] = k[shim & (k["proc"] == proc)]
        pairs, pids = zip(k["host"], k["pid"], strict=True), {(h, p) for h, p, _ in keys}
        mine = np.array([(str(h), int(p)) in pids for h, p in pairs], dtype=bool)
        carry.stracer_kio = k[~shim & mine]
    for proc, evs in completeness._shim_events(tr).items():
        if evs:  # summed: kio.explain adds those after the last reading, before the end
            carry.shim.setdefault(proc, []).append(
                (max(t for t, _ in evs), [sum(x) for x in zip(*(d for _, d in evs), strict=True)])
            )
    for key, how in completeness._uring(tr).items():
        if key in keys and carry.uring.get(key) != "rings":
            carry.uring[key] = how
    for proc in range(part.first, part.stop):
        if proc in tr.modules:
            carry.modules[proc] = tr.modules[proc]


def _plots(a: Any, parent: np.ndarray, span: int, part: Part, carry: Carry | None) -> OverTime:
    """The HTML page's sums of a part (a range of a process: its timeline's open bars carried)."""
    if carry is None or part.window is None:
        return over_time(a, parent, span)
    return over_time(a, parent, span, carry.bars, part.window[1] is None)


def _bandwidth(
    trace_dir: str, parts: list[Part], span: int, select: Select | None, plots: bool = False
) -> list[tuple[np.ndarray, OverTime | None]]:
    """A task's parts' bandwidth sums (and plots) for the whole trace's span (when the first
    guess was off); the ranges of a process in order, as `group`."""
    carry = Carry() if len(parts) > 1 else None
    out = []
    for part in parts:
        a = arrays(load_part(trace_dir, part, select).events)
        ot = _plots(a, job.mpi_ties(a), span, part, carry) if plots else None
        out.append((job.bandwidth_sums(a, span), ot))
    return out


def _span_guess(trace_dir: Path) -> int:
    """The job's span from its run records (what the bandwidth bins are cut for), the events
    unread: right unless a process outlived its `iotrace run`."""
    runs = run_records(trace_dir)
    starts = [int(r["start_real_ns"]) for r in runs if isinstance(r.get("start_real_ns"), int)]
    ends = [
        int(r["start_real_ns"]) + r["end_mono_ns"] - r["start_mono_ns"]
        for r in runs
        if all(isinstance(r.get(k), int) for k in ("start_real_ns", "end_mono_ns", "start_mono_ns"))
    ]
    return max(ends) - min(starts) if ends and starts else 0


class Mapper:
    """fn over argument tuples, in local worker processes or on a Dask cluster: `each` yields
    the results in the tuples' order as they come (the command folds each in and lets it go:
    Merging); a call gives them as a list."""

    def __init__(
        self, each: Callable[[Callable[..., Any], list[tuple[Any, ...]]], Iterator[Any]]
    ) -> None:
        self.each = each

    def __call__(self, fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
        return list(self.each(fn, args))


def tune_malloc() -> None:
    """For a process that reduces parts (a worker, the command line's own): glibc keeps the
    memory a part's arrays free (arrays up to 32 MiB from the heap, 1 GiB kept untrimmed, 64 MiB
    of padding) so that the next arrays reuse it instead of faulting fresh pages in: on this
    VM a page fault costs microseconds, and a 3.1 M-event part's system time went from ~0.8-1.0
    to ~0.5-0.6 s (bench/scale_bench.py).  Not for a library's caller: its process keeps it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
        libc.mallopt(-2, 64 << 20)  # M_TOP_PAD
    except (OSError, AttributeError):  # not glibc
        pass
    from .event_columns import keep_mappings
    from .load import keep_headers
    from .symbols import keep_symbols

    # and the load's large arrays' mappings, the logs' headers, the symbols of their stacks
    keep_mappings()
    keep_headers()
    keep_symbols()
    # numpy asks for transparent huge pages for arrays of 4 MiB and more: on this VM a huge
    # page's first touch costs more than its 512 small pages (event_columns.empty, docs/
    # analyzer.md); a 2.5 M-event part's first reduction took 0.65-0.76 s of system time with
    # them, 0.28-0.31 s without
    core = getattr(np, "_core", None) or np.core
    core.multiarray._set_madvise_hugepage(False)


def release_memory() -> None:
    """What tune_malloc keeps for a worker's next part given back: run on each Dask worker after
    a map, as a local worker's exit gives it back.  A Dask worker outlives the command, whose own
    work after the map runs beside it: the CSV export of 10 M events (the command merging the
    parts' files) peaked at 1.22 GB, of which the idle workers' kept 387 + 347 MiB."""
    import gc

    from .event_columns import release_mappings

    release_mappings()
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()


def _one_thread() -> bool:
    """This process runs one thread (forking it is safe); False where it cannot tell."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def local_map(workers: int) -> Mapper:
    """fn over the argument tuples, in `workers` processes (1: here)."""
    return Mapper(functools.partial(_local_each, workers))


def _local_each(workers: int, fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> Iterator[Any]:
    if workers <= 1 or len(args) <= 1:
        yield from (fn(*a) for a in args)  # one at a time: the caller folds each in first
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    join_pools()
    # each worker reduces part after part, reusing the memory the previous part freed
    # (tune_malloc) and its start-up (the C code's loading, the symbols' tools): a fresh
    # process per part paid both again.  Forked from this process, which imported the
    # analyzer already, when it runs one thread (the command line's: _lean_allocators);
    # else (a library caller's threads) from a server that imports it once (~0.65 s CPU)
    if _one_thread():
        ctx = mp.get_context("fork")
    else:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
    ex = ProcessPoolExecutor(min(workers, len(args)), mp_context=ctx, initializer=tune_malloc)
    try:
        if ctx.get_start_method() != "fork":  # the trace read as the command opened it
            fn = functools.partial(_adopting, handed(), fn)
        yield from ex.map(fn, *zip(*args, strict=True))  # (every worker forked at once)
    finally:
        # not waited for: the workers' exits (the kernel freeing each one's heap) overlap
        # the merge
        cluster.after_map(ex.shutdown, cancel_futures=True)


def _adopting(pins: tuple[Pin, ...], fn: Callable[..., Any], *args: Any) -> Any:
    """fn in a worker that was not forked from the command: the trace's files read relative
    to the directories the command opened (tracedir.adopted), not by their paths."""
    with adopted(pins):
        return fn(*args)


join_pools = cluster.join_pools  # what the last map left running, waited for


def dask_map(scheduler: str) -> Mapper:
    """fn over the argument tuples on the Dask cluster at `scheduler` (dask.distributed)."""
    return Mapper(functools.partial(_dask_each, scheduler))


def _dask_each(
    scheduler: str, fn: Callable[..., Any], args: list[tuple[Any, ...]]
) -> Iterator[Any]:
    join_pools()
    client = cluster.connect(scheduler)
    try:
        client.run(tune_malloc)  # each worker reduces part after part, as a local one
        yield from cluster.taken(client.map(cluster.call, _pickled(fn, args), pure=False))
    except BaseException:
        client.close()
        raise
    cluster.after_map(cluster.release, client)


def _pickled(fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[bytes]:
    """The tasks of fn over the argument tuples for cluster.call, each pickled whole."""
    return [cluster.task(fn, a) for a in args]


def _worker_each(fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> Iterator[Any]:
    """dask_map from a task on a worker (dask_tasks's plan: the logs' range indexes; the
    bandwidth bins cut again in merged_json)."""
    from distributed import worker_client

    with worker_client() as client:
        yield from cluster.taken(client.map(cluster.call, _pickled(fn, args), pure=False))


_worker_map = Mapper(_worker_each)


def dask_tasks(
    b: Bounded | dict[str, Any], export: bool = False, system: bool = False, plots: bool = False
) -> tuple[bytes, list[bytes], list[str]]:
    """cluster.start's first task, on a worker: the trace's plan (pickled (span, groups of
    parts)), its tasks for cluster.call (each pickled whole: the scheduler imports neither the
    analyzer nor pandas), and what the plan warned."""
    import warnings

    b = Bounded.of(b)
    d = Path(b.trace_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bound, n = cluster_bound(b, True)
        tasks = groups(plan(d, bound, n, b.part_bytes, b.range_bytes, _worker_map))
    span = _span_guess(d)
    args = [(str(d), t, span, b.select, export, system, plots) for t in tasks]
    plan_bytes = pickle.dumps((span, tasks), protocol=pickle.HIGHEST_PROTOCOL)
    return plan_bytes, _pickled(group, args), [str(w.message) for w in caught]


@record
class Bounded:
    """What every bounded command (report, diff, export in each format) reads and how: the
    trace, the memory bound (memory_bound), local worker processes or the Dask cluster at
    `scheduler`, the selection; `part_bytes` cuts parts at this many bytes of logs instead (tests:
    a part per process), `range_bytes` cuts logs larger than this into ranges whatever the bound
    (tests).  A bare directory is one with every default; a dict, these fields (the command
    line's, made before it imports the analyzer: cluster.start)."""

    trace_dir: str | os.PathLike[str]
    memory: str | int | None = None
    workers: int | None = None
    scheduler: str | None = None
    select: Select | None = None
    part_bytes: int | None = None
    range_bytes: int | None = None

    @staticmethod
    def of(b: Bounded | dict[str, Any] | str | os.PathLike[str]) -> Bounded:
        if isinstance(b, dict):
            return Bounded(**b)
        return b if isinstance(b, Bounded) else Bounded(b)


def summarise(
    b: Bounded | dict[str, Any] | str | os.PathLike[str],
    system: bool = False,
    plots: bool = False,
    started: cluster.Started | None = None,
) -> tuple[Summary, Trace]:
    """The summary of a trace in bounded memory; with it a Trace of the directory's metadata
    (its processes; no events) for what the report prints besides the summary.  `started`: its
    parts already sent to the Dask cluster (cluster.start, with these flags)."""
    s, tr, _, _ = run(Bounded.of(b), system=system, plots=plots, started=started)
    return s, tr


def run(
    b: Bounded,
    export: bool = False,
    system: bool = False,
    plots: bool = False,
    started: cluster.Started | None = None,
) -> tuple[Summary, Trace, list[Partial], Mapper]:
    """summarise, and the parts' partials and the mapper that made them (export's second pass:
    every partial kept as it came; else they are folded in as they arrive, Merging).  On a Dask
    cluster a worker plans the parts (dask_tasks), unless `started` did already.  The trace's
    directory opened once for every worker (tracedir.held: a library caller's too)."""
    with tracedir.held(b.trace_dir):
        return _run(b, export, system, plots, started)


def _run(
    b: Bounded, export: bool, system: bool, plots: bool, started: cluster.Started | None
) -> tuple[Summary, Trace, list[Partial], Mapper]:
    d, select = Path(b.trace_dir), b.select
    if b.scheduler:
        if started is None:
            join_pools()  # a map before this one ended (its workers' memory given back)
            started = cluster.start(b.scheduler, b, export, system, plots)
        span, tasks = pickle.loads(started.plan)
        results = started.results()
        mapper = dask_map(b.scheduler)
    else:
        parts, mapper = planned(b)
        span = _span_guess(d)
        tasks = groups(parts)
        results = mapper.each(group, [(str(d), t, span, select, export, system, plots)
                                      for t in tasks])  # fmt: skip
    m = Merging.of(results, fold=not export)
    if started is not None:
        cluster.after_map(cluster.release, started.client)
    s, tr = _merged(d, span, tasks, m, mapper, select, plots)
    return s, tr, m.partials(), mapper


def _merged(
    d: Path,
    span: int,
    tasks: list[list[Part]],
    m: Merging,
    mapper: Mapper,
    select: Select | None,
    plots: bool,
) -> tuple[Summary, Trace]:
    """The parts' partials merged (their bandwidth bins cut again when the span guessed was
    off), the logs cut short warned of."""
    true_span = max(m.duration, m.t_end, 1)
    if true_span != max(span, 1):  # cut again, for the whole trace's span
        sums = mapper.each(_bandwidth, [(str(d), t, true_span, select, plots) for t in tasks])
        m.recut((x for xs in sums for x in xs), true_span)
    s, tr = merge(m.partials())
    _warn(d, tr.processes)
    return s, tr


def folded(carried: bool, *results: Any) -> Merging:
    """On a worker, a step of `report --json --scheduler`'s merge (cluster.Started.report_json):
    the tasks' partials (`results`, each task's) folded into the Merging of the steps before
    (the first of `results` when `carried`), so that no worker holds every part's."""
    m = results[0] if carried else Merging()
    for ps in results[carried:]:
        m.add(ps)
    return m


def merged_json(
    b: Bounded | dict[str, Any], plan_bytes: bytes, m: Merging
) -> tuple[str, list[str]]:
    """On a worker, the last task of `report --json --scheduler` (cluster.Started.report_json):
    the report's JSON from the parts' partials folded (`m`, folded's) and what the merge
    warned.  The command then imports neither the analyzer nor pandas (~0.2 s of its CPU, on a
    node whose cores the workers use)."""
    import warnings

    from .report import report_json

    b = Bounded.of(b)
    span, tasks = pickle.loads(plan_bytes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s, _ = _merged(Path(b.trace_dir), span, tasks, m, _worker_map, b.select, False)
    return report_json(s), [str(w.message) for w in caught]


def planned(b: Bounded) -> tuple[list[Part], Mapper]:
    """The parts of a trace and the mapper to reduce them with (local workers or the Dask
    cluster at `scheduler`)."""
    bound, n = cluster_bound(b, b.scheduler is not None)
    mapper = dask_map(b.scheduler) if b.scheduler else local_map(n)
    return plan(Path(b.trace_dir), bound, n, b.part_bytes, b.range_bytes, mapper), mapper


def cluster_bound(b: Bounded, on_dask: bool, dask_workers: int = 0) -> tuple[int, int]:
    """The memory the parts are cut for and the workers they share it among: the bound
    (memory_bound) and `workers` (else the local cores; on Dask else its `dask_workers`).  On a
    cluster the bound also holds its scheduler and each worker's Dask overhead (DASK_BASE,
    DASK_WORKER_BASE: a LocalCluster on this node counts them): the parts are cut for what is
    left."""
    bound = memory_bound(b.memory)
    n = b.workers or (dask_workers if on_dask and dask_workers else local_cores())
    if on_dask:
        n = max(n, 1)
        bound = max(bound - DASK_BASE - n * DASK_WORKER_BASE, 0)
    return bound, n


def groups(parts: list[Part]) -> list[list[Part]]:
    """The parts as the mapper's tasks: a part alone, or a process's parts (Part.group) in order."""
    out: list[list[Part]] = []
    for p in parts:
        if p.group >= 0 and out and out[-1][-1].group == p.group:
            out[-1].append(p)
        else:
            out.append([p])
    return out


def _warn(d: Path, procs: pd.DataFrame) -> None:
    """load's one warning for the logs cut short (the parts' loads say nothing)."""
    cut = []
    for name in procs[procs["truncated"] & (procs["source"] == SHIM.name)]["log"]:
        lg = _Log(0, SHIM, d / name, regular_size(d / name))
        lg.truncated = True
        cut.append(lg)
    _warn_truncated(cut, _stracer_logs(d))


# every kind of a stracer log's records but its seals and END: passed over as they are read
_ENDS_ONLY = frozenset(int(k) for k in slog.SRec if k not in (slog.SRec.SEAL, slog.SRec.END))


def _stracer_logs(d: Path) -> list[stracer_src.SLog]:
    """The trace's stracer logs as _warn reads them: whether each was cut short.  A log this
    process indexed (its parts) as indexed; else read through, its seals and END checked,
    nothing held (its parts checked every record): read whole, the 20,002-process trace's
    12 MB log held 133 MB of records in the command (traced peak; 4 MB read through)."""
    out = []
    for p in STRACER.find(d):
        if stracer_src._indexed(p) is not None:
            out += stracer_src.read_logs([p], kept=True)
            continue
        size = regular_size(p)
        out.append(stracer_src.SLog(p, size, slog.read(p, skip=_ENDS_ONLY) if size else None))
    return out


def _concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = list(frames)
    nonempty = [f for f in frames if len(f)]
    if not nonempty:
        return frames[0].iloc[0:0] if frames else pd.DataFrame()
    return pd.concat(nonempty, ignore_index=True) if len(nonempty) > 1 else nonempty[0]


def _by_name(
    frames: list[pd.DataFrame], key: str, add: list[str], rank_of: dict[str, int]
) -> pd.DataFrame:
    """Rows with the same `key` summed (columns `add`), in the order rank_of[key]."""
    df = _concat(frames)
    if df.empty:
        return df
    g = df.groupby(key, sort=False)
    out = g[add].sum().reset_index()
    rest = [c for c in df.columns if c not in add and c != key]
    if rest:
        out = out.merge(g[rest].first().reset_index(), on=key, how="left")
    out = out.iloc[np.argsort([rank_of[k] for k in out[key]], kind="stable")]
    return out[list(df.columns)].reset_index(drop=True)


def _function_order(lists: list[list[str]]) -> list[str]:
    """The whole trace's function categories from its parts': the names every part has (the
    table's, the logs' headers', then schema.UNKNOWN_FUNCTION), the ends of calls with two ends
    as the parts' logs add them, then the stracer's (every part adds all of them)."""
    base = lists[0][: lists[0].index(schema.UNKNOWN_FUNCTION) + 1]
    seen = set(base)
    ends: list[str] = []
    others: list[str] = []
    for lst in lists:
        for f in lst[len(base) :]:
            if f not in seen:
                seen.add(f)
                (ends if f.endswith(END2_SUFFIX) else others).append(f)
    return base + ends + others


def stack_offsets(partials: list[Partial]) -> tuple[list[int], int]:
    """Per part, what its shim stack ids are shifted by; and the first stracer stack id.  The
    ranges of a log (after its first) number its stacks as the first does: counted once."""
    offsets: list[int] = []
    total = 0
    for p in partials:
        if p.part.seq > 0:
            offsets.append(offsets[-1])
            continue
        offsets.append(total)
        total += p.stack_base
    return offsets, total


def shift_stack_ids(ids: np.ndarray, base: int, offset: int, stracer_base: int) -> np.ndarray:
    """A part's stack ids (int64, -1 for none) as the whole trace's."""
    return np.where(ids < 0, ids, np.where(ids < base, ids + offset, ids - base + stracer_base))


def _shift_stacks(p: Partial, offset: int, stracer_base: int) -> Callable[[Any], Any]:
    """A part's stack id -> the whole trace's: its shim stacks after the parts before, the
    stracer's sites after every shim stack."""

    def f(sid: Any) -> Any:
        if sid is None or pd.isna(sid) or sid < 0:
            return sid
        sid = int(sid)
        return sid + offset if sid < p.stack_base else sid - p.stack_base + stracer_base

    return f


def merge(partials: list[Partial]) -> tuple[Summary, Trace]:
    """The Summary of the whole trace from its parts' (in the parts' order)."""
    first = partials[0]
    offsets, stracer_base = stack_offsets(partials)

    procs = _concat([p.processes for p in partials]).sort_values("proc", kind="stable")
    procs = _ranges_summed(procs.reset_index(drop=True), ["events"])
    procs = procs.astype(schema.PROCESS_COLUMNS)  # type: ignore[arg-type]
    pp = _concat([p.per_proc for p in partials]).sort_values("proc", kind="stable")
    pp = _ranges_summed(pp.reset_index(drop=True), PROC_SUMS)
    if any(p.part.window for p in partials) and len(pp):
        pp["run_time"] = (pp["end"] - pp["start"]).clip(lower=0)
        pp["io_share"] = np.where(
            pp["run_time"] > 0, pp["io_time"] / pp["run_time"].clip(lower=1), np.nan
        )
    duration = max(p.duration for p in partials)
    tr = Trace(Path(first.dir), pd.DataFrame(), procs, first.t0, duration, first.runs, {}, {})
    tr.exact_names = {k: v for p in partials for k, v in p.exact_names.items()}
    tr.selection = first.selection
    sums = {k: sum(p.sums[k] for p in partials) for k in SUM_KEYS}

    # functions and metadata: sums by function, in the whole trace's order of the functions
    # (ties keep it), then sorted as summarise sorts them
    rank_of = {f: i for i, f in enumerate(_function_order([p.function_names for p in partials]))}
    fn_cols = ["calls", "errors", "bytes", "time", "held"]
    functions = _by_name([p.functions for p in partials], "function", fn_cols, rank_of)
    if len(functions):
        functions["mean_time"] = (functions["time"] // functions["calls"]).astype(np.int64)
        functions = functions.sort_values(["time", "calls"], ascending=False)
        functions = functions.reset_index(drop=True)
    metadata = _by_name(
        [p.metadata for p in partials], "function", ["calls", "errors", "time", "held"], rank_of
    )
    if len(metadata):
        metadata = metadata.sort_values("calls", ascending=False).reset_index(drop=True)
    sizes = _sizes_added(partials)

    files = _merge_files(partials)
    if not first.system:  # system files apart (overview["system_io"] says what they cost)
        files = files[~files["path"].map(is_system_path).astype(bool)].reset_index(drop=True)
    ranks = _per_rank(pp)
    shifts = [_shift_stacks(p, off, stracer_base) for p, off in zip(partials, offsets, strict=True)]
    sites = _sites_shifted(partials, shifts)
    if len(sites):
        g = sites.groupby("stack", sort=True)
        sites = g.agg(
            label=("label", "first"),
            calls=("calls", "sum"),
            bytes=("bytes", "sum"),
            time=("time", "sum"),
            functions=("functions", lambda s: set().union(*s)),
        ).reset_index()
    missed = missed_groups.Groups.merged(
        [p.missed.shifted(f) for p, f in zip(partials, shifts, strict=True)]
    ).table()
    mpi = job.mpi_rows(*_merge_mpi(partials))
    span = max(duration, max(p.t_end for p in partials), 1)
    bw = job.bandwidth_frame(sum(p.bandwidth for p in partials), span)

    io_time = int(pp["io_time"].sum()) if len(pp) else 0
    proc_time = int(pp["run_time"].sum()) if len(pp) else 0
    rt, wt = sums["read_time"], sums["write_time"]
    hosts = set().union(*(p.hosts for p in partials))
    ov: dict[str, Any] = {
        "trace": first.dir,
        "selection": first.selection,
        "command": " ".join(str(x) for x in first.runs[0].get("argv", [])) if first.runs else "",
        "hosts": len(hosts) if sums["events"] else len(set(procs["host"])),
        "processes": len(procs) - int((procs["ended"] == "exec").sum()) if len(procs) else 0,
        "images": len(procs),
        "ranks": int(procs["rank"].nunique()),
        "threads": len(set().union(*(p.threads for p in partials))),
        "events": sums["events"],
        "run_time": int(duration),
        "process_time": proc_time,
        "io_time": io_time,
        "io_share": io_time / proc_time if proc_time > 0 else None,
        "file_io_time": int(pp["file_io_time"].sum()) if len(pp) else 0,
        "bytes_read": sums["bytes_read"],
        "bytes_written": sums["bytes_written"],
        "reads": sums["reads"],
        "writes": sums["writes"],
        "read_time": rt,
        "write_time": wt,
        "read_bandwidth": sums["bytes_read"] / (rt / 1e9) if rt > 0 else None,
        "write_bandwidth": sums["bytes_written"] / (wt / 1e9) if wt > 0 else None,
        "metadata_ops": sums["metadata_ops"],
        "errors": sums["errors"],
        "files": len(files),
        "truncated_logs": int(procs["truncated"].sum()) if len(procs) else 0,
        "missed": sums["missed"],
        **{k: sums[k] for k in SUM_KEYS[10:15]},
        "stracer_stops": first.sums["stracer_stops"],
        "stracer_held": first.sums["stracer_held"],
        "stracer_held_events": sums["stracer_held_events"],
        "classified": sums["classified"],
        "consecutive": sums["consecutive"],
        "sequential": sums["sequential"],
    }
    ov["peak_read_bandwidth"] = float(bw["read_bw"].max()) if len(bw) else 0.0
    ov["peak_write_bandwidth"] = float(bw["write_bw"].max()) if len(bw) else 0.0
    datasets, libs = _merge_datasets(partials)
    if libs:
        ov["datasets"] = libs
    modes = job.mpi_modes(mpi)
    jb = job.job_block(ov, ranks, pp, files, modes)
    s = Summary(
        overview=ov,
        functions=functions,
        files=files,
        processes=pp,
        ranks=ranks,
        metadata=metadata,
        sizes=sizes,
        call_sites=call_sites_table(sites),
        missed=missed,
        missed_sites=missed_groups.missed_sites(missed),
        job=jb,
        mpi=mpi,
        mpi_modes=modes,
        datasets=datasets,
        bandwidth=bw,
        app_paths=set(files["path"]),
        system=first.system,
    )
    counts = Counts.sum_of([p.counts for p in partials])
    if first.over_time is not None:
        s.over_time = OverTime(span)
        for p in partials:
            if p.over_time is not None:  # (Merging: the fold in the first, None in the rest)
                s.over_time.add(p.over_time)
    from_counts(tr, s, counts)
    if tr.selection:  # filtered events: summarise's words, nothing compared
        s.completeness = _completeness(tr)
        return s, tr
    kp = kio.Packed()
    for p in partials:
        kp.update(p.kio)
    kprocs = kp.linked(completeness.parents(tr), ordered=True)  # made one at a time
    stracer = any(p.stracer_kio for p in partials)
    from iotrace.record import asdict

    jk, table = completeness.job_and_table(kprocs, stracer, len(counts.uring[0]), procs)
    s.completeness = {"line": jk.line(), "job": asdict(jk), "processes": table}
    return s, tr


FOLD_EVERY = 16  # whole-process partials held before they are folded into the run before them


class Merging:
    """The parts' partials as they arrive (run), held folded: every FOLD_EVERY consecutive
    partials of whole processes are one partial (_combined: its tables concatenated, its sums
    added), so the command holds O(FOLD_EVERY + log parts) partials, not every part's objects
    and frames (before: ~3.3 KB a process as received, ~1.3 KB folded).  `fold=False`
    holds every partial as it came (export's second pass reads them).  The bandwidth bins and
    the HTML plots (floats) are summed here in the parts' order, as merge summed them, and
    given to the first partial held (the others' are zero): the same sums to the last bit."""

    def __init__(self, fold: bool = True) -> None:
        self.fold = fold
        self.held: list[Partial] = []  # folded runs and the ranges of processes cut, in order
        self.folds: list[int] = []  # the parts in each of held (0: a range of a process)
        self.pending: list[Partial] = []  # whole-process partials since the last fold
        self.bandwidth: np.ndarray | int = 0
        self.over_time: OverTime | None = None
        self.duration = 0
        self.t_end = 0

    @classmethod
    def of(cls, results: Iterable[list[Partial]], fold: bool = True) -> Merging:
        """The tasks' results (each a list of partials) folded in as they come."""
        m = cls(fold)
        for ps in results:
            m.add(ps)
        return m

    def add(self, ps: Iterable[Partial]) -> None:
        for p in ps:
            self._summed(p.bandwidth, p.over_time, p.span)
            self.duration = max(self.duration, p.duration)
            self.t_end = max(self.t_end, p.t_end)
            if not self.fold:
                self.held.append(p)
                continue
            p.bandwidth, p.over_time = _NO_BINS, None  # (summed above)
            if p.part.window is not None:  # a range of a process: merge needs it as it is
                self._folded()
                self.held.append(p)
                self.folds.append(0)
            else:
                self.pending.append(p)
                if len(self.pending) >= FOLD_EVERY:
                    self._folded()

    def _summed(self, bins: np.ndarray, plots: OverTime | None, span: int) -> None:
        self.bandwidth = self.bandwidth + bins
        if plots is not None:
            if self.over_time is None:
                self.over_time = OverTime(span)
            self.over_time.add(plots)

    def _folded(self) -> None:
        """The pending partials folded into one; then the last two folded ones into one while
        the last holds as many parts as the one before (a binary counter's carries: a row is
        copied O(log parts) times, not again at every fold)."""
        if not self.pending:
            return
        self.held.append(_combined(self.pending))
        self.folds.append(len(self.pending))
        self.pending = []
        while len(self.folds) > 1 and 0 < self.folds[-2] <= self.folds[-1]:
            last, n = self.held.pop(), self.folds.pop()
            self.held[-1] = _combined([self.held[-1], last])
            self.folds[-1] += n

    def recut(self, sums: Iterable[tuple[np.ndarray, OverTime | None]], span: int) -> None:
        """The bandwidth bins and plots cut again for the whole trace's span (_merged): the
        parts' new sums, in the parts' order."""
        self.bandwidth, self.over_time = 0, None
        own = iter(self.held if not self.fold else [])  # (export's: each its own bins again)
        for b, ot in sums:
            self._summed(b, ot, span)
            p = next(own, None)
            if p is not None:
                p.bandwidth, p.over_time = b, ot
        for p in self.partials():
            p.span = span

    def partials(self) -> list[Partial]:
        """What merge takes: the partials held, the sums of the bins and plots in the first."""
        self._folded()
        out = self.held
        if out and self.fold:
            zero = np.zeros_like(np.asarray(self.bandwidth, dtype=np.float64))
            for p in out:
                p.bandwidth, p.over_time = zero, None
            out[0].bandwidth, out[0].over_time = self.bandwidth, self.over_time
        return out


_NO_BINS = np.zeros(0)


def _combined(ps: list[Partial]) -> Partial:
    """Consecutive partials of whole processes as one partial that merge takes as it took
    them: the tables concatenated in their order (merge groups them), the integer sums added,
    the sets and dicts joined, the stack ids renumbered as one part's (each part's shim stacks
    after the earlier parts', the stracer's after them all, as merge numbers them).  Nothing
    of floats is summed here (Merging sums the bandwidth bins and plots in the parts' order)."""
    if len(ps) == 1:
        return ps[0]
    first, last = ps[0], ps[-1]
    offsets, base = stack_offsets(ps)
    shifts = [_shift_stacks(p, off, base) for p, off in zip(ps, offsets, strict=True)]
    kp = kio.Packed()
    for p in ps:
        kp.update(p.kio)
    export = first.files_export is not None
    return replace(
        first,
        part=Part(first.part.first, last.part.stop, first.part.stracer_only),
        exact_names={k: v for p in ps for k, v in p.exact_names.items()},
        duration=max(p.duration for p in ps),
        t_end=max(p.t_end for p in ps),
        stack_base=base,
        bandwidth=_NO_BINS,
        processes=_shared(_concat([p.processes for p in ps])),
        per_proc=_shared(_concat([p.per_proc for p in ps])),
        sums={k: sum(p.sums[k] for p in ps) if k in SUM_KEYS else v for k, v in first.sums.items()},
        threads=set().union(*(p.threads for p in ps)),
        hosts=set().union(*(p.hosts for p in ps)),
        function_names=_function_order([p.function_names for p in ps]),
        functions=_concat([p.functions for p in ps]),
        metadata=_concat([p.metadata for p in ps]),
        sizes=_sizes_added(ps),
        files=_concat([p.files for p in ps]),
        files_export=_concat([p.files_export for p in ps]) if export else None,  # type: ignore[misc]
        file_ranks=_concat([p.file_ranks for p in ps]),
        sites=_sites_shifted(ps, shifts),
        missed=missed_groups.Groups.merged(
            [p.missed.shifted(f) for p, f in zip(ps, shifts, strict=True)]
        ),
        mpi=(_concat([p.mpi[0] for p in ps]), _concat([p.mpi[1] for p in ps])),
        datasets=(_concat([p.datasets[0] for p in ps]), _libraries(ps)),
        counts=Counts.sum_of([p.counts for p in ps]),
        over_time=None,
        kio=kp,
        stracer_kio=any(p.stracer_kio for p in ps),
    )


def _shared(df: pd.DataFrame) -> pd.DataFrame:
    """A per-process table whose text columns hold one string object per distinct value (each
    part's rows came with their own copies of the host, command, cwd...: ~55 B each a row),
    their dtype and values unchanged."""
    for c in df.columns:
        if df[c].dtype == object and c != "log":  # (a log's name is its own)
            vals = [sys.intern(v) if type(v) is str else v for v in df[c].tolist()]
            df[c] = np.array(vals, dtype=object)
    return df


def _sizes_added(ps: list[Partial]) -> pd.DataFrame:
    sizes = ps[0].sizes.copy()
    for k in ("reads", "writes"):
        sizes[k] = sum(p.sizes[k].to_numpy() for p in ps)
    return sizes


def _sites_shifted(ps: list[Partial], shifts: list[Callable[[Any], Any]]) -> pd.DataFrame:
    """The parts' call sites, each part's stack ids shifted (_shift_stacks), in one table."""
    frames = []
    for p, f in zip(ps, shifts, strict=True):
        st = p.sites.copy()
        st["stack"] = [f(x) for x in st["stack"]]
        frames.append(st)
    return _concat(frames)


def _libraries(ps: list[Partial]) -> dict[str, Any]:
    """The parts' datasets' numbers per library, added."""
    libs: dict[str, Any] = {}
    for p in ps:
        for k, v in p.datasets[1].items():
            libs[k] = libs.get(k, 0) + v
    return libs


PROC_SUMS = [
    "events", "bytes_read", "bytes_written", "reads", "writes", "meta_ops", "mpi_bytes_read",
    "mpi_bytes_written", "missed", "io_time", "file_io_time",
]  # fmt: skip


def _ranges_summed(df: pd.DataFrame, add: list[str]) -> pd.DataFrame:
    """Rows of one process (proc) from its ranges, one: `add` summed, `end` the latest."""
    if df.empty or not df["proc"].duplicated().any():
        return df
    g = df.groupby("proc", sort=False)
    out = g.first()
    for c in add:
        out[c] = g[c].sum()
    out["end"] = g["end"].max()
    return out.reset_index()[list(df.columns)]


def _merge_files(partials: list[Partial], attr: str = "files") -> pd.DataFrame:
    """files_table of the whole trace (sort_files: ties by path, as in memory)."""
    frames = []
    seen: dict[int, set[str]] = {}  # a log cut into ranges: the paths its earlier ranges had
    for p in partials:
        f = getattr(p, attr).copy()
        i = p.part.first  # the parts' order (a log's ranges share its codes)
        if p.part.window is not None and len(f):  # its one process counted once per path
            had = seen.setdefault(i, set())
            f.loc[f["path"].isin(had).to_numpy(), "processes"] = 0
            had.update(f["path"])
        frames.append(f)
    df = _concat(frames)
    if df.empty:
        return df.reset_index(drop=True)
    cols = list(df.columns)
    add = [c for c in cols if c != "path" and c not in FILE_MAX and c not in FILE_DERIVED]
    g = df.groupby("path", sort=False)
    out = g[add].sum()
    out["max_offset"] = g["max_offset"].max()
    out = out.reset_index()
    fr = _concat([p.file_ranks for p in partials])
    if len(fr):
        fr = fr.groupby(["path", "rank"], sort=False).max().reset_index()
        by = fr.groupby("path", sort=False)
        out["ranks"] = out["path"].map(by["rank"].nunique()).fillna(0).astype(np.int64)
        out["write_ranks"] = out["path"].map(by["wrote"].sum()).fillna(0).astype(np.int64)
        out["data_ranks"] = out["path"].map(by["moved"].sum()).fillna(0).astype(np.int64)
        lists = by["rank"].agg(lambda r: compact_ranks([int(x) for x in r]))
        out["rank_list"] = out["path"].map(lists).fillna("")
    else:
        for c in ("ranks", "write_ranks", "data_ranks"):
            out[c] = np.zeros(len(out), dtype=np.int64)
        out["rank_list"] = ""
    classified, seq = out["classified"].to_numpy(), out["sequential"].to_numpy()
    out["random"] = classified - seq
    with np.errstate(invalid="ignore", divide="ignore"):
        out["seq_share"] = np.where(classified > 0, seq / np.maximum(classified, 1), np.nan)
        out["random_share"] = np.where(classified > 0, 1 - seq / np.maximum(classified, 1), np.nan)
    return sort_files(file_rows(out[cols]))


def _merge_datasets(partials: list[Partial]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """datasets.layer of the whole trace (ties are within a thread: exact in a part)."""
    return datasets_merge([p.datasets[0] for p in partials]), _libraries(partials)


def _merge_mpi(partials: list[Partial]) -> tuple[pd.DataFrame, pd.DataFrame]:
    calls = _concat([p.mpi[0] for p in partials])
    posix = _concat([p.mpi[1] for p in partials])
    if len(calls):
        g = calls.groupby("function", sort=False)
        calls = g.agg(
            first=("first", "min"),
            calls=("calls", "sum"),
            bytes=("bytes", "sum"),
            time=("time", "sum"),
            held=("held", "sum"),
            ranks=("ranks", lambda s: frozenset().union(*s)),
            posix_other=("posix_other", "sum"),
        ).reset_index()
    if len(posix):
        g = posix.groupby(["function", "fn"], sort=False)
        posix = g.agg(
            order=("order", "min"), n=("n", "sum"), lo=("lo", "min"), hi=("hi", "max"),
            bytes=("bytes", "sum"),
        ).reset_index()  # fmt: skip
    return calls, posix


def say(msg: str) -> None:
    print(f"iotrace: {msg}", file=sys.stderr)
