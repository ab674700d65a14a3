"""What a performance engineer would flag, each with the numbers behind it.

The rules and thresholds are module constants, documented in docs/analyzer.md.
"""

from __future__ import annotations

import errno as errno_mod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .access import ALIGN, READ, SMALL, WRITE, Arrays, Classified
from .datasets import SMALL_WRITE
from .fmt import fmt_bytes, fmt_pct, fmt_time

if TYPE_CHECKING:
    from .summary import Summary
    from .trace import Trace

SMALL_SHARE = 0.5  # more than this share of a direction's accesses below SMALL bytes...
SMALL_MIN_OPS = 100  # ...out of at least this many
RANDOM_SHARE = 0.2  # a file whose accesses go backwards more often than this...
RANDOM_MIN_OPS = 50  # ...out of at least this many with a known offset
UNALIGNED_SHARE = 0.1  # more than this share of accesses at offsets not a multiple of ALIGN...
UNALIGNED_MIN_OPS = 100  # ...out of at least this many
META_STORM_OPS = 1000  # at least this many opens/closes/stats/... in the run
SLOW_RANK_RATIO = 2.0  # a rank's I/O time at least this times the median of the others...
SLOW_RANK_MIN_NS = 10_000_000  # ...and at least this much more (10 ms)
SHARED_MIN_RANKS = 2  # a file written by at least this many ranks
IMBALANCE_RATIO = 2.0  # a rank moving at least this times the median of the ranks' bytes...
IMBALANCE_MIN_BYTES = 1 << 20  # ...and at least this much more (1 MiB)
INDEPENDENT_MIN_CALLS = 16  # independent MPI-IO data calls on shared files: at least this many...
INDEPENDENT_SHARE = 0.5  # ...and more than this share of the MPI-IO data calls on them
IO_SHARE_WARN = 0.3  # time in I/O above this share of the processes' time
DATASET_SMALL_MIN_CALLS = 8  # independent dataset writes < datasets.SMALL_WRITE, several ranks
LEVELS = ("high", "warn", "info")


@dataclass
class Insight:
    key: str
    level: str  # high | warn | info
    title: str
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass
class Counts:
    """What the insights need of the events, as sums that add up over parts of a trace
    (analyzer/parts.py): data accesses by direction (all, small, their bytes; by rank), accesses
    at a known offset (all, unaligned), failed calls by (function's index, function, errno),
    io_uring rings mapped (pids, mmaps, rings)."""

    small: dict[str, list[Any]] = field(default_factory=dict)  # [ops, small, bytes, {r: [o, s]}]
    aligned: list[int] = field(default_factory=lambda: [0, 0])
    errors: dict[tuple[int, str, int], int] = field(default_factory=dict)
    uring: list[Any] = field(default_factory=lambda: [set(), 0, 0])

    @classmethod
    def of(cls, trace: Trace, a: Arrays) -> Counts:
        c = cls()
        for name, code in (("write", WRITE), ("read", READ)):
            m = a.data & (a.op == code)
            small = m & (a.bytes < SMALL)
            ranked = m & (a.rank >= 0)
            by: dict[int, list[int]] = {}
            if ranked.any():
                k = int(a.rank[ranked].max()) + 1
                tot_r = np.bincount(a.rank[ranked], minlength=k)
                small_r = np.bincount(a.rank[ranked & small], minlength=k)
                by = {int(r): [int(tot_r[r]), int(small_r[r])] for r in np.flatnonzero(tot_r)}
            c.small[name] = [int(m.sum()), int(small.sum()), int(a.bytes[m].sum()), by]
        m = a.data & a.has_offset
        c.aligned = [int(m.sum()), int((m & (a.offset % ALIGN != 0)).sum())]
        bad = a.errno != 0
        keys, counts = np.unique(
            a.fn[bad].astype(np.int64) * 4096 + a.errno[bad], return_counts=True
        )
        for k, n in zip(keys.tolist(), counts.tolist(), strict=True):
            c.errors[(k // 4096, a.functions[k // 4096], k % 4096)] = n
        ev = trace.events
        fcat, pcat = ev["function"].cat.categories, ev["path"].cat.categories
        if "mmap" in fcat and IO_URING_PATH in pcat:  # by code: no string per event
            fn, path = ev["function"].cat.codes, ev["path"].cat.codes
            u = ev[(fn == fcat.get_loc("mmap")) & (path == pcat.get_loc(IO_URING_PATH))]
            c.uring = [{int(p) for p in u["pid"]}, len(u), len(u[u["offset"] == 0])]
        return c

    def add(self, o: Counts) -> None:
        for name, (ops, small, nbytes, by) in o.small.items():
            mine = self.small.setdefault(name, [0, 0, 0, {}])
            mine[0] += ops
            mine[1] += small
            mine[2] += nbytes
            for r, (t, sm) in by.items():
                cur = mine[3].setdefault(r, [0, 0])
                cur[0] += t
                cur[1] += sm
        self.aligned = [x + y for x, y in zip(self.aligned, o.aligned, strict=True)]
        for k, n in o.errors.items():
            self.errors[k] = self.errors.get(k, 0) + n
        self.uring = [self.uring[0] | o.uring[0], self.uring[1] + o.uring[1],
                      self.uring[2] + o.uring[2]]  # fmt: skip


def _pct(x: float) -> str:
    return fmt_pct(x)


def _size(n: float) -> str:
    return fmt_bytes(n)


def _secs(ns: float) -> str:
    return fmt_time(ns)


def _small(cnt: Counts) -> list[Insight]:
    out = []
    for name in ("write", "read"):
        total, small, nbytes, by = cnt.small.get(name, [0, 0, 0, {}])
        if total >= SMALL_MIN_OPS and small / total > SMALL_SHARE:
            mean = nbytes / total
            where = ""
            by_rank: dict[int, float] = {}
            if by:  # across ranks: which ranks make them
                has = sorted(by)
                bad = [r for r in has if by[r][1] / by[r][0] > SMALL_SHARE]
                by_rank = {r: float(by[r][1] / by[r][0]) for r in has}
                where = f" On {len(bad)} of {len(has)} ranks most {name}s are small."
            out.append(
                Insight(
                    f"small-{name}s",
                    "high" if small / total > 0.9 else "warn",
                    f"Many small {name}s: {small:,} of {total:,} {name}s "
                    f"({_pct(small / total)}) moved less than {_size(SMALL)}",
                    f"Mean {name} size {_size(mean)}.{where} Small requests pay the per-call and "
                    f"per-RPC cost each time; buffer them (stdio with a large buffer, aggregation, "
                    f"collective MPI-IO) into requests of at least a file-system block.",
                    {
                        "ops": total,
                        "small_ops": small,
                        "share": small / total,
                        "threshold_bytes": SMALL,
                        "mean_bytes": mean,
                        "small_share_by_rank": by_rank,
                    },
                )
            )
    return out


def _random(s: Summary) -> list[Insight]:
    f = s.files
    bad = f[(f["classified"] >= RANDOM_MIN_OPS) & (f["random_share"] > RANDOM_SHARE)]
    if bad.empty:
        return []
    bad = bad.sort_values("random", ascending=False)
    top = bad.head(5)
    lines = "; ".join(
        f"{r.path}: {int(r.random):,} of {int(r.classified):,} ({_pct(r.random_share)}) random"
        for r in top.itertuples()
    )
    total_random = int(bad["random"].sum())
    return [
        Insight(
            "random-access",
            "warn",
            f"Random access in {len(bad)} file(s): {total_random:,} accesses went backwards",
            f"{lines}. Random small accesses defeat read-ahead and write-behind; sort or batch "
            f"requests by offset, or read whole blocks.",
            {
                "files": [
                    {
                        "path": r.path,
                        "accesses": int(r.classified),
                        "random": int(r.random),
                        "random_share": float(r.random_share),
                        "sequential_share": float(r.seq_share),
                    }
                    for r in top.itertuples()
                ]
            },
        )
    ]


def _unaligned(cnt: Counts) -> list[Insight]:
    total, bad = cnt.aligned
    if total < UNALIGNED_MIN_OPS or bad / total <= UNALIGNED_SHARE:
        return []
    return [
        Insight(
            "unaligned-access",
            "warn",
            f"Unaligned access: {bad:,} of {total:,} accesses ({_pct(bad / total)}) start at "
            f"offsets that are not a multiple of {_size(ALIGN)}",
            "Unaligned requests straddle file-system blocks (and Lustre/GPFS stripes): "
            "read-modify-write and lock contention. Align offsets and sizes to the block or "
            "stripe size.",
            {"accesses": total, "unaligned": bad, "share": bad / total, "alignment": ALIGN},
        )
    ]


def _meta_storm(trace: Trace, s: Summary) -> list[Insight]:
    n = int(s.overview["metadata_ops"])
    if n < META_STORM_OPS:
        return []
    md = s.metadata
    run = max(int(s.overview["run_time"]), 1)
    meta_time = int(md["time"].sum())
    io_time = max(int(s.overview["io_time"]), 1)
    top = ", ".join(f"{r.function} {int(r.calls):,}" for r in md.head(4).itertuples())
    f = s.files.sort_values(["meta_ops", "opens"], ascending=False).head(3)
    paths = "; ".join(f"{r.path}: {int(r.opens + r.meta_ops):,}" for r in f.itertuples())
    return [
        Insight(
            "metadata-storm",
            "high" if n >= 10 * META_STORM_OPS else "warn",
            f"Metadata storm: {n:,} metadata operations ({n / (run / 1e9):,.0f}/s over the run)",
            f"{top}. Time in them {_secs(meta_time)} ({_pct(meta_time / io_time)} of I/O time). "
            f"Most: {paths}. Parallel file systems serve metadata from few servers: open "
            f"once, stat once, cache the answer.",
            {
                "ops": n,
                "per_second": n / (run / 1e9),
                "time": meta_time,
                "share_of_io_time": meta_time / io_time,
                "by_function": {r.function: int(r.calls) for r in md.itertuples()},
            },
        )
    ]


def _slow_rank(s: Summary) -> list[Insight]:
    r = s.ranks
    if len(r) < 2:
        return []
    t = r["io_time"].to_numpy(dtype=np.int64)
    i = int(np.argmax(t))
    others = np.delete(t, i)
    med = float(np.median(others))
    if t[i] < SLOW_RANK_RATIO * med or t[i] - med < SLOW_RANK_MIN_NS:
        return []
    rank = int(r["rank"].iloc[i])
    ratio = t[i] / med if med > 0 else float("inf")
    return [
        Insight(
            "slow-rank",
            "high",
            f"Rank {rank} is much slower: {_secs(t[i])} in I/O, the other ranks' median "
            f"{_secs(med)} ({ratio:.1f}x)",
            f"Rank {rank} moved {_size(int(r['bytes_read'].iloc[i]))} read / "
            f"{_size(int(r['bytes_written'].iloc[i]))} written in "
            f"{int(r['reads'].iloc[i] + r['writes'].iloc[i]):,} accesses. A straggler holds "
            "every rank at the next barrier: balance its I/O or look at its node and files.",
            {
                "rank": rank,
                "io_time": int(t[i]),
                "median_others": med,
                "ratio": ratio,
                "ranks": len(r),
            },
        )
    ]


def _shared(s: Summary) -> list[Insight]:
    from .job import is_data_file

    f = s.files[(s.files["write_ranks"] >= SHARED_MIN_RANKS) & s.files["path"].map(is_data_file)]
    if f.empty:
        return []
    f = f.sort_values(["write_ranks", "bytes_written"], ascending=False)
    top = f.head(5)
    lines = "; ".join(
        f"{r.path}: {int(r.write_ranks)} ranks, {_size(int(r.bytes_written))}, "
        f"{_pct(r.random_share) if r.random_share == r.random_share else 'n/a'} random"
        for r in top.itertuples()
    )
    most = int(top["write_ranks"].iloc[0])
    return [
        Insight(
            "shared-file",
            "warn" if most >= 8 else "info",
            f"Shared file written by {most} ranks"
            + (f" (and {len(f) - 1} more such files)" if len(f) > 1 else ""),
            f"{lines}. Many ranks writing one file contend for its locks and stripes: use "
            "collective MPI-IO (or a library on it), align each rank's part to the stripe size, "
            "or write a file per rank or node.",
            {
                "files": [
                    {
                        "path": r.path,
                        "ranks": int(r.write_ranks),
                        "bytes_written": int(r.bytes_written),
                    }
                    for r in top.itertuples()
                ]
            },
        )
    ]


def _io_share(s: Summary) -> list[Insight]:
    ov = s.overview
    share = ov.get("io_share")
    if share is None or ov["events"] == 0:
        return []
    return [
        Insight(
            "io-time-share",
            "warn" if share >= IO_SHARE_WARN else "info",
            f"I/O took {_pct(share)} of the processes' time ({_secs(ov['io_time'])} of "
            f"{_secs(ov['process_time'])})",
            f"Time inside traced calls (all threads of a process together), over the "
            f"processes' lifetimes; the run took {_secs(ov['run_time'])}. Read "
            f"{_size(ov['bytes_read'])}, wrote {_size(ov['bytes_written'])}.",
            {
                "share": share,
                "io_time": ov["io_time"],
                "process_time": ov["process_time"],
                "run_time": ov["run_time"],
            },
        )
    ]


def _errors(cnt: Counts) -> list[Insight]:
    n = sum(cnt.errors.values())
    if n == 0:
        return []
    keys = sorted(cnt.errors)
    order = sorted(range(len(keys)), key=lambda i: -cnt.errors[keys[i]])[:4]
    parts = []
    by: dict[str, int] = {}
    for i in order:
        _, fn, err = keys[i]
        c = cnt.errors[keys[i]]
        name = errno_mod.errorcode.get(err, str(err))
        parts.append(f"{fn} {name} {int(c):,}")
        by[f"{fn} {name}"] = int(c)
    return [
        Insight(
            "failed-calls",
            "warn" if n >= 100 else "info",
            f"{n:,} calls failed",
            f"{', '.join(parts)}. Failed opens and stats of missing files often mean a search "
            "path is probed: each probe is a metadata round trip.",
            {"failed": n, "by_call": by},
        )
    ]


def _missed(s: Summary) -> list[Insight]:
    n = int(s.overview["missed"])
    if n == 0:
        return []
    ms = s.missed_sites
    top = "; ".join(
        f"{r.site}: {r.functions}" + (f" (ranks {r.ranks})" if r.ranks else "")
        for r in ms.head(3).itertuples()
    )
    nbytes = int(ms["bytes"].sum()) if len(ms) else 0
    return [
        Insight(
            "missed-io",
            "warn",
            f"{n:,} syscalls were I/O the shim did not see ({_size(nbytes)} moved), "
            f"from {len(ms)} call site(s)",
            f"Most: {top}. They came from code that bypasses libc (static binaries, raw "
            "syscall(), io_uring, Go, threads of libraries): their bytes are in the totals, "
            "their durations are not known. See the missed I/O table.",
            {
                "missed": n,
                "bytes": nbytes,
                "sites": [
                    {"site": r.site, "count": int(r.count), "ranks": r.ranks}
                    for r in ms.head(10).itertuples()
                ],
            },
        )
    ]


IO_URING_PATH = "anon_inode:[io_uring]"


def _io_uring_unseen(trace: Trace, cnt: Counts) -> list[Insight]:
    """io_uring rings the shim saw mapped in a run without the stracer: the kernel moves their
    bytes with no libc call, so what went through them is in no log."""
    from iotrace.stracer import slog

    pid_set, mapped, rings = cnt.uring
    if not mapped or slog.log_files(trace.dir):
        return []
    pids = sorted(pid_set)
    return [
        Insight(
            "io-uring-unseen",
            "high",
            f"io_uring: {rings or mapped} ring(s) mapped (pid {', '.join(map(str, pids))}) and "
            "no stracer ran: the I/O submitted through them is not in this trace",
            "io_uring operations are read from a ring in memory by the kernel, with no libc call "
            "the shim could wrap: their files, offsets and bytes are missing from every total "
            "here. Run without --no-stracer: the stracer decodes each operation from the ring.",
            {"rings": rings, "pids": pids},
        )
    ]


def _imbalance(s: Summary) -> list[Insight]:
    r = s.ranks
    if len(r) < 2:
        return []
    b = (r["bytes_read"] + r["bytes_written"]).to_numpy(dtype=np.int64)
    i = int(np.argmax(b))
    med = float(np.median(b))
    if b[i] < IMBALANCE_RATIO * med or b[i] - med < IMBALANCE_MIN_BYTES:
        return []
    rank = int(r["rank"].iloc[i])
    share = b[i] / max(int(b.sum()), 1)
    return [
        Insight(
            "rank-imbalance",
            "warn",
            f"Rank {rank} moves {_pct(share)} of the ranks' bytes: {_size(int(b[i]))}, the "
            f"median rank {_size(med)}",
            "One rank doing most of the I/O (often rank 0 reading input or writing results for "
            "all) serialises the job on it: spread the I/O over the ranks, or use collective "
            "MPI-IO with several aggregators.",
            {"rank": rank, "bytes": int(b[i]), "median": med, "share": share, "ranks": len(r)},
        )
    ]


def _independent_mpiio(s: Summary) -> list[Insight]:
    """Independent MPI-IO data calls on files several ranks use."""
    ev_files = s.files[(s.files["data_ranks"] >= 2)]
    if s.mpi.empty or ev_files.empty:
        return []
    data = s.mpi[s.mpi["kind"] != "other"]
    ind = int(data[data["mode"] == "independent"]["calls"].sum())
    total = int(data["calls"].sum())
    if ind < INDEPENDENT_MIN_CALLS or total == 0 or ind / total <= INDEPENDENT_SHARE:
        return []
    return [
        Insight(
            "independent-mpiio",
            "info",
            f"Independent MPI-IO: {ind:,} of {total:,} MPI-IO reads and writes "
            f"({_pct(ind / total)}) are independent calls",
            "On a file shared by ranks, collective calls (MPI_File_write_all, read_all, ...) let "
            "the MPI-IO layer merge the ranks' requests into few large ones (two-phase I/O).",
            {"independent_calls": ind, "calls": total, "share": ind / total},
        )
    ]


def _datasets(s: Summary) -> list[Insight]:
    """Small independent dataset writes (HDF5, PnetCDF) from several ranks; collective
    transfers HDF5 did independently (chunking or selections it could not combine)."""
    d = s.datasets
    if d.empty:
        return []
    out = []
    shared = d[d["ranks"].str.contains("[-,]", regex=True)]  # written by 2 ranks or more
    n = int(shared["independent_small"].sum())
    if n >= DATASET_SMALL_MIN_CALLS:
        names = ", ".join(shared[shared["independent_small"] > 0]["dataset"])
        out.append(
            Insight(
                "dataset-small-independent",
                "warn",
                f"Small independent dataset writes: {n:,} writes of less than "
                f"{fmt_bytes(SMALL_WRITE)} from several ranks ({names})",
                "Collective transfers (HDF5: H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE); "
                "PnetCDF: the *_all calls) let MPI-IO merge the ranks' pieces into few large "
                "writes (two-phase I/O).",
                {"calls": n, "datasets": int((shared["independent_small"] > 0).sum())},
            )
        )
    broke = d[d["done_independently"] > 0]
    if len(broke):
        n = int(broke["done_independently"].sum())
        out.append(
            Insight(
                "hdf5-collective-done-independently",
                "warn",
                f"HDF5 did {n:,} collective H5Dread/H5Dwrite calls independently "
                f"({', '.join(broke['dataset'])})",
                "Asked collective, HDF5 fell back to independent I/O (H5Pget_mpio_no_collective_"
                "cause says why): chunks the ranks' selections cross, a datatype conversion, "
                "a selection it cannot combine. Chunk dimensions that match each rank's block "
                "keep the transfer collective.",
                {"calls": n, "datasets": len(broke)},
            )
        )
    return out


def _truncated(s: Summary) -> list[Insight]:
    n = int(s.overview["truncated_logs"])
    if n == 0:
        return []
    return [
        Insight(
            "truncated-logs",
            "info",
            f"{n} log(s) were cut short",
            "Read up to the last whole record: the events of those processes after that point "
            "are missing.",
            {"logs": n},
        )
    ]


def find_insights(trace: Trace, s: Summary, a: Arrays, c: Classified) -> list[Insight]:
    del c
    return insights_of(trace, s, Counts.of(trace, a))


def insights_of(trace: Trace, s: Summary, cnt: Counts) -> list[Insight]:
    """The insights from the summary and the events' Counts (`trace`: its directory)."""
    found = [
        *_slow_rank(s),
        *_imbalance(s),
        *_small(cnt),
        *_random(s),
        *_unaligned(cnt),
        *_meta_storm(trace, s),
        *_shared(s),
        *_independent_mpiio(s),
        *_datasets(s),
        *_missed(s),
        *_io_uring_unseen(trace, cnt),
        *_errors(cnt),
        *_io_share(s),
        *_truncated(s),
    ]
    found.sort(key=lambda i: LEVELS.index(i.level))
    return found
