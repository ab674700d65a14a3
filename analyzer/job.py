"""What an HPC engineer asks of a job: per-rank time and bytes (slowest, fastest), the launcher
kept apart, shared file vs file per process, collective vs independent MPI-IO, the MPI-IO calls
tied to the POSIX calls they made, and the job's aggregate bandwidth over time.

The layer rule (docs/analyzer.md): totals are POSIX-level bytes (what reached the kernel: POSIX
and stdio calls, and the stracer's syscalls); MPI-IO bytes are reported apart, never added to
them.  A POSIX event is *tied* to an MPI-IO call when it is in the same process and thread and
its time span lies inside the call's (the outermost call, if MPI-IO calls nest).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .access import WRITE, Arrays, compact_ranks, is_data_file
from .event_columns import require_native
from .fmt import fmt_bytes

# MPI-IO calls that are collective by the MPI standard, besides the *_all / *_ordered data calls
COLLECTIVE_CALLS = frozenset(
    {"MPI_File_open", "MPI_File_close", "MPI_File_set_view", "MPI_File_set_size",
     "MPI_File_sync", "MPI_File_preallocate"}
)  # fmt: skip
BANDWIDTH_BINS = 200


def mpi_mode(name: str) -> str:
    """collective | independent, by the MPI-IO function's name."""
    base = name.removesuffix("_done")
    if base.endswith(("_all", "_ordered")) or base in COLLECTIVE_CALLS:
        return "collective"
    return "independent"


def _group(a: Arrays, idx: np.ndarray) -> np.ndarray:
    """A thread key: proc and tid."""
    return (a.proc[idx].astype(np.int64) << 32) | (a.tid[idx].astype(np.int64) & 0xFFFFFFFF)


def mpi_ties(a: Arrays) -> np.ndarray:
    """Per event: the row of the MPI-IO call it ran inside (same process and thread, its span
    inside the call's; the outermost call when they nest), else -1.  MPI-IO events: -1."""
    return ties(a, a.mpi)


def ties(a: Arrays, outer: np.ndarray) -> np.ndarray:
    """Per event: the row of the call of the layer `outer` (a mask: MPI-IO, HDF5) it ran inside
    (same process and thread, its span inside the call's; the outermost call when they nest),
    else -1.  Events of the layer: -1."""
    parent = np.full(a.n, -1, dtype=np.int64)
    if a.n == 0 or not outer.any():
        return parent
    mi = np.flatnonzero(outer)
    m = pd.DataFrame({"g": _group(a, mi), "t": a.t_start[mi], "e": a.t_end[mi], "row": mi})
    # drop MPI calls inside an earlier MPI call of the same thread
    reach = m.groupby("g", sort=False)["e"].cummax()
    prev = reach.groupby(m["g"], sort=False).shift(1)
    m = m[~(prev.notna() & (prev >= m["e"]))]
    pi = np.flatnonzero(~outer)
    if len(pi) == 0:
        return parent
    p = pd.DataFrame({"g": _group(a, pi), "t": a.t_start[pi], "pe": a.t_end[pi], "prow": pi})
    # only threads that made MPI-IO calls
    p = p[p["g"].isin(m["g"].unique())]
    if p.empty:
        return parent
    j = pd.merge_asof(p, m, on="t", by="g", direction="backward", allow_exact_matches=True)
    ok = j["row"].notna() & (j["pe"] <= j["e"])
    parent[j.loc[ok, "prow"].to_numpy()] = j.loc[ok, "row"].to_numpy(dtype=np.int64)
    return parent


def _posts_of_done(
    a: Arrays, ev: pd.DataFrame, carry: dict[tuple[Any, ...], str] | None = None
) -> dict[int, int]:
    """MPI_File_i*_done event row -> the function (its code) of the nonblocking call that posted
    it: the latest post before it in the same process with the same file, offset, size and
    direction.  `carry`: the latest posts before these events (a range of a process), by
    (proc, path, offset, size, is read) -> function; updated in place to after them."""
    fns = a.functions
    is_post = np.array([f.startswith("MPI_File_i") and not f.endswith("_done") for f in fns]
                       + [False])  # fmt: skip
    is_done = np.array([f.startswith("MPI_File_i") and f.endswith("_done") for f in fns] + [False])
    reads = np.array(["read" in f for f in fns] + [False])
    posts, dones = np.flatnonzero(is_post[a.fn]), np.flatnonzero(is_done[a.fn])
    if len(posts) == 0 and (len(dones) == 0 or not carry):
        return {}
    off = ev["offset"].to_numpy(dtype=np.int64, na_value=-1)
    req = ev["req"].to_numpy(dtype=np.int64, na_value=-1)

    def frame(rows: np.ndarray, name: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "t": a.t_start[rows],
                "proc": a.proc[rows],
                "path": a.path[rows],
                "off": off[rows],
                "req": req[rows],
                "rd": reads[a.fn[rows]],
                name: rows,
            }
        )

    def key(r: int) -> tuple[Any, ...]:
        p = int(a.path[r])
        return (int(a.proc[r]), a.paths[p] if p >= 0 else None, int(off[r]), int(req[r]),
                bool(reads[a.fn[r]]))  # fmt: skip

    out: dict[int, int] = {}
    if len(posts) and len(dones):
        j = pd.merge_asof(
            frame(dones, "done"),
            frame(posts, "post"),
            on="t",
            by=["proc", "path", "off", "req", "rd"],
            direction="backward",
        )
        j = j[j["post"].notna()]
        posted = a.fn[j["post"].to_numpy(dtype=np.int64)].tolist()
        out = dict(zip(j["done"].tolist(), posted, strict=True))
    if carry is not None:
        code = {f: i for i, f in enumerate(fns)}
        for d in dones.tolist():
            if d not in out and key(d) in carry:
                out[d] = code[carry[key(d)]]
        for p in posts.tolist():  # in time order: the latest per key stays
            carry[key(p)] = fns[a.fn[p]]
    return out


MPI_COLUMNS = [
    "function", "mode", "kind", "calls", "ranks", "bytes", "time", "held", "posix_calls",
    "posix_bytes", "posix_other", "posix", "summary",
]  # fmt: skip


def mpi_table(a: Arrays, ev: pd.DataFrame, parent: np.ndarray) -> pd.DataFrame:
    """One row per MPI-IO function (a nonblocking call's completion folded into the call that
    posted it): calls, ranks, MPI-level bytes and time, the POSIX calls tied to them."""
    return mpi_rows(*mpi_stats(a, ev, parent))


MPI_STAT_COLUMNS = ["function", "first", "calls", "bytes", "time", "held", "ranks", "posix_other"]
POSIX_STAT_COLUMNS = ["function", "fn", "order", "n", "lo", "hi", "bytes"]


def mpi_stats(
    a: Arrays, ev: pd.DataFrame, parent: np.ndarray, posts: dict[tuple[Any, ...], str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """mpi_table's sums, mergeable: per MPI-IO function (its first call's start, calls, bytes,
    time, the set of ranks, tied POSIX calls that moved no data), and per (function, tied POSIX
    data function: its index in the functions) the count, least and most bytes and their sum.
    Ties are within a thread: a part of the trace holding whole processes has all of its (a
    range of a process too: it is never cut inside a call); `posts`: _posts_of_done's carry."""
    empty = (
        pd.DataFrame({c: pd.Series([], dtype=object) for c in MPI_STAT_COLUMNS}),
        pd.DataFrame({c: pd.Series([], dtype=object) for c in POSIX_STAT_COLUMNS}),
    )
    if not a.mpi.any():
        return empty
    fns = a.functions
    rows = np.flatnonzero(a.mpi)
    owner = a.fn[rows].astype(np.int64)  # the function a row counts under
    post_of = _posts_of_done(a, ev, posts)
    if post_of:
        pos = {int(r): i for i, r in enumerate(rows.tolist())}
        for d, f in post_of.items():
            owner[pos[d]] = f
    is_done = np.array([fns[f].endswith("_done") for f in a.fn[rows]])
    mpi_data = a.mpi_data[rows]
    df = pd.DataFrame(
        {
            "owner": owner,
            "row": rows,
            "call": ~is_done | ~np.isin(rows, list(post_of)),
            "bytes": np.where(mpi_data, a.bytes[rows], 0),
            "dur": a.dur[rows],
            "held": a.stopped[rows] if a.stopped is not None else 0,
            "rank": a.rank[rows],
        }
    )
    # tied POSIX events
    tied = np.flatnonzero(parent >= 0)
    row_owner = pd.Series(owner, index=rows)
    t = pd.DataFrame(
        {
            "owner": row_owner.reindex(parent[tied]).to_numpy(),
            "data": a.data[tied],
            "bytes": a.bytes[tied],
            "fn": a.fn[tied],
        }
    )
    out, posix = [], []
    for own, g in df.groupby("owner", sort=False):
        mine = t[t["owner"] == own]
        dat = mine[mine["data"]]
        out.append(
            {
                "function": fns[int(own)],
                "first": int(a.t_start[int(g["row"].iloc[0])]),
                "calls": int(g["call"].sum()),
                "bytes": int(g["bytes"].sum()),
                "time": int(g["dur"].sum()),
                "held": int(g["held"].sum()),
                "ranks": frozenset(int(r) for r in pd.unique(g["rank"]) if r >= 0),
                "posix_other": len(mine) - len(dat),
            }
        )
        for fn, d in dat.groupby("fn", sort=True):
            b = d["bytes"]
            posix.append(
                {
                    "function": fns[int(own)],
                    "fn": fns[int(fn)],
                    "order": int(fn),
                    "n": len(d),
                    "lo": int(b.min()),
                    "hi": int(b.max()),
                    "bytes": int(b.sum()),
                }
            )
    return (
        pd.DataFrame(out, columns=MPI_STAT_COLUMNS),
        pd.DataFrame(posix, columns=POSIX_STAT_COLUMNS),
    )


def mpi_rows(calls: pd.DataFrame, posix: pd.DataFrame) -> pd.DataFrame:
    """mpi_table from mpi_stats (rows by their first call's start)."""
    if calls.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in MPI_COLUMNS})
    out = []
    for r in calls.sort_values("first", kind="stable").itertuples():
        name = r.function
        dat = posix[posix["function"] == name].sort_values("order", kind="stable")
        parts = []
        for p in sorted(dat.itertuples(), key=lambda p: -p.n):
            size = fmt_bytes(p.lo) if p.lo == p.hi else f"{fmt_bytes(p.lo)}-{fmt_bytes(p.hi)}"
            parts.append(f"{p.n:,} {p.fn} of {size}")
        posix_text = ", ".join(parts)
        kind = "read" if "read" in name else "write" if "write" in name else "other"
        summary = f"{name}: {r.calls:,} calls"
        if kind != "other":
            summary += f", {fmt_bytes(r.bytes)}"
        if posix_text:
            summary += f" → {posix_text}"
        out.append(
            {
                "function": name,
                "mode": mpi_mode(name),
                "kind": kind,
                "calls": int(r.calls),
                "ranks": compact_ranks(sorted(r.ranks)),
                "bytes": int(r.bytes),
                "time": int(r.time),
                "held": int(r.held),
                "posix_calls": int(dat["n"].sum()),
                "posix_bytes": int(dat["bytes"].sum()),
                "posix_other": int(r.posix_other),
                "posix": posix_text,
                "summary": summary,
            }
        )
    res = pd.DataFrame(out, columns=MPI_COLUMNS)
    order = {"write": 0, "read": 1, "other": 2}
    res = res.sort_values(
        ["kind", "bytes", "calls"], key=lambda c: c.map(order) if c.name == "kind" else -c
    )
    return res.reset_index(drop=True)


def mpi_modes(mpi: pd.DataFrame) -> pd.DataFrame:
    """Collective vs independent data calls: calls and MPI-level bytes by mode and direction."""
    d = mpi[mpi["kind"] != "other"]
    cols = ["mode", "kind", "calls", "bytes", "posix_calls", "posix_bytes", "functions"]
    if d.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    g = d.groupby(["mode", "kind"], sort=True).agg(
        calls=("calls", "sum"),
        bytes=("bytes", "sum"),
        posix_calls=("posix_calls", "sum"),
        posix_bytes=("posix_bytes", "sum"),
        functions=("function", lambda s: ", ".join(sorted(s))),
    )
    return g.reset_index()[cols]


def bandwidth(a: Arrays, span: int, bins: int = BANDWIDTH_BINS) -> pd.DataFrame:
    """The job's aggregate POSIX-level bandwidth over time: each call's bytes spread evenly over
    its duration (a call with no duration, such as a stracer syscall, at its start), summed over
    all processes, in `bins` equal bins from the job's start."""
    return bandwidth_frame(bandwidth_sums(a, span, bins), span)


def bandwidth_sums(a: Arrays, span: int, bins: int = BANDWIDTH_BINS) -> np.ndarray:
    """bandwidth's bytes per bin, [read, write] (float: a call's bytes spread over bins);
    sums over parts of a trace add up (given the whole trace's span)."""
    span = max(int(span), 1)
    w = span / bins
    edges = np.arange(bins + 1) * w
    # reads and writes (a.data: reads and writes only), each in a row of its own.  The calls
    # within one bin (most) in C, in one pass (_one_bin); the others here, in the input's order:
    # every bin adds their shares in that order, as np.add.at did (the same sums)
    acc, rest = _one_bin(a, w, bins)
    row = (a.op[rest] == WRITE).astype(np.int64) * (bins + 1)
    s, e = a.t_start[rest].astype(np.float64), a.t_end[rest].astype(np.float64)
    b = a.bytes[rest].astype(np.float64)
    b0 = np.clip(_floor_div(s, w), 0, bins - 1)
    b1 = np.clip(_floor_div(np.maximum(e - 1, s), w), 0, bins - 1)
    one = b0 == b1

    def binned(at: np.ndarray, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.bincount(at + rows, weights=weights, minlength=2 * (bins + 1)).reshape(2, -1)

    # integers summed: exact below 2**53 in any order (C's bins plus these)
    acc += binned(b0[one], b[one], row[one])
    many = ~one
    if many.any():
        s, e, b, b0, b1, row = s[many], e[many], b[many], b0[many], b1[many], row[many]
        rate = b / (e - s)
        diff = np.zeros((2, bins + 1), dtype=np.float64)
        acc += binned(b0, rate * (edges[b0 + 1] - s), row)
        acc += binned(b1, rate * (e - edges[b1]), row)
        diff += binned(b0 + 1, rate * w, row)
        diff -= binned(b1, rate * w, row)
        acc += np.cumsum(diff, axis=1)
    out = np.zeros((2, bins), dtype=np.float64)  # [read, write]
    out[:] = acc[:, :bins]
    return out


def _one_bin(a: Arrays, w: float, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """The bytes of the reads and writes within one bin, per [read, write] row and bin (and a
    last bin of nothing: bandwidth_sums's shape), and the indices of the other reads and
    writes (_decode.c iot_one_bin: ~2 ns an event; numpy's casts, gathers, divisions and
    floors took ~12 ms a 625 k-event part)."""
    nat = require_native()
    ffi = nat.ffi

    def const(x: np.ndarray, ctype: str) -> object:  # read-only arrays too
        return ffi.cast(ctype, ffi.from_buffer(np.ascontiguousarray(x)))

    acc = np.empty(2 * (bins + 1), dtype=np.float64)
    rest = np.empty(a.n, dtype=np.int64)  # pages touched only as far as written: few
    is_write = a.op == WRITE
    ts = np.ascontiguousarray(a.t_start, dtype=np.int64)
    te = np.ascontiguousarray(a.t_end, dtype=np.int64)
    nb = np.ascontiguousarray(a.bytes, dtype=np.int64)
    k = nat.lib.iot_one_bin(
        a.n, const(a.data, "uint8_t *"), const(is_write, "uint8_t *"),
        const(ts, "int64_t *"), const(te, "int64_t *"), const(nb, "int64_t *"),
        w, bins, nat.ptr("double *", acc), nat.ptr("int64_t *", rest),
    )  # fmt: skip
    return acc.reshape(2, bins + 1), rest[:k]


def _floor_div(x: np.ndarray, w: float) -> np.ndarray:
    """(x // w) as int64, the same numbers: numpy's float floor division (fmod inside) costs
    ~12 ns a value, floor(x / w) ~1; the two can differ only where x / w is within a rounding
    of an integer, and those values are divided again the slow way."""
    q = x / w
    f = np.floor(q)
    near = np.flatnonzero((q - f < 1e-9) | (q - f > 1 - 1e-9))
    if len(near):
        f[near] = x[near] // w
    return f.astype(np.int64)


def bandwidth_frame(sums: np.ndarray, span: int) -> pd.DataFrame:
    """bandwidth's table from bandwidth_sums."""
    bins = sums.shape[1]
    span = max(int(span), 1)
    w = span / bins
    edges = np.arange(bins + 1) * w
    out: dict[str, Any] = {
        "t_start": edges[:-1].astype(np.int64),
        "t_end": edges[1:].astype(np.int64),
    }
    for i, (name, col) in enumerate((("read", "bytes_read"), ("write", "bytes_written"))):
        out[col] = np.rint(sums[i]).astype(np.int64)
        out[f"{name}_bw"] = sums[i] / (w / 1e9)
    return pd.DataFrame(out)


def layout(files: pd.DataFrame, nranks: int) -> dict[str, Any]:
    """Shared file vs file per process, over the data files the ranks wrote (or, if they wrote
    none, read): a file is shared when >= 2 ranks moved data in it, else per process.
    `shared_bytes`/`fpp_bytes`: the bytes written (read) to them, at the POSIX level; the other
    direction's in `shared_bytes_read`/`fpp_bytes_read` (`..._written`)."""
    data = files["path"].map(is_data_file).astype(bool)  # an empty table maps to strings
    f = files[data & (files["data_ranks"] >= 1)]
    written = f[f["write_ranks"] >= 1]
    basis = "written" if len(written) else "read"
    use = written if len(written) else f
    col = "write_ranks" if basis == "written" else "data_ranks"
    # POSIX-level bytes (MPI-IO's are the same bytes one layer up), in the basis' direction;
    # the other direction apart
    own, other = ("bytes_written", "bytes_read")
    if basis == "read":
        own, other = other, own
    shared = use[use[col] >= 2]
    fpp = use[use[col] == 1]
    own_ranks = {r for lst in fpp["rank_list"] for r in _expand(lst)}
    if nranks < 2:
        kind = "single rank" if nranks == 1 else "no ranks"
    elif use.empty:
        kind = "none"
    elif shared.empty:
        kind = "file-per-process"
    elif fpp.empty:
        kind = "shared-file"
    else:
        kind = "mixed"
    return {
        "kind": kind,
        "basis": basis,
        "files": len(use),
        "shared_files": len(shared),
        "shared_bytes": int(shared[own].sum()),
        f"shared_{other}": int(shared[other].sum()),
        "max_ranks_per_file": int(use[col].max()) if len(use) else 0,
        "fpp_files": len(fpp),
        "fpp_bytes": int(fpp[own].sum()),
        f"fpp_{other}": int(fpp[other].sum()),
        "ranks_with_own_files": len(own_ranks),
        "shared": [
            {"path": r.path, "ranks": r.rank_list, "nranks": int(getattr(r, col))}
            for r in shared.head(10).itertuples()
        ],
    }


def _expand(lst: str) -> list[int]:
    out: list[int] = []
    for part in lst.split(",") if lst else []:
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def rank_extremes(ranks: pd.DataFrame) -> dict[str, Any]:
    """The slowest and fastest rank by I/O time on files (the time the findings judge: waiting
    on the launcher's pipes and sockets, or reading the runtime's system files, is not a rank's
    file I/O; nor is waiting inside collective MPI-IO calls for a later rank, `collective_wait`
    once summary.from_counts added it), by all I/O time where no rank has any; ties: the lower
    rank; and the spread."""
    if ranks.empty:
        return {}
    t = ranks["file_io_time"].to_numpy(dtype=np.int64)
    by = "file_io_time"
    wait = ranks["collective_wait"] if "collective_wait" in ranks else None
    if wait is not None and wait.any():  # waiting for a later rank inside collective calls
        t, by = t - wait.to_numpy(dtype=np.int64), "net_file_io_time"  # (summary.from_counts)
    if not t.any():
        t, by = ranks["io_time"].to_numpy(dtype=np.int64), "io_time"
    total = (ranks["bytes_read"] + ranks["bytes_written"]).to_numpy(dtype=np.int64)

    def one(i: int) -> dict[str, Any]:
        return {
            "rank": int(ranks["rank"].iloc[i]),
            "io_time": int(ranks["io_time"].iloc[i]),
            "file_io_time": int(ranks["file_io_time"].iloc[i]),
            "net_file_io_time": int(t[i]) if by == "net_file_io_time" else None,
            "bytes": int(total[i]),
            "bytes_read": int(ranks["bytes_read"].iloc[i]),
            "bytes_written": int(ranks["bytes_written"].iloc[i]),
        }

    slow, fast = int(np.argmax(t)), int(np.argmin(t))
    return {
        "by": by,
        "slowest": one(slow),
        "fastest": one(fast),
        "io_time_ratio": float(t[slow] / t[fast]) if t[fast] > 0 else None,
        "io_time_median": float(np.median(t)),
        "bytes_min": int(total.min()),
        "bytes_max": int(total.max()),
        "bytes_median": float(np.median(total)),
    }


def non_rank(pp: pd.DataFrame) -> dict[str, Any]:
    """The processes with no rank (the launcher, its helpers), when the job has ranks."""
    r = pp[pp["rank"].isna()]
    cmds = sorted({str(c).split(" ")[0].rsplit("/", 1)[-1] for c in r["command"] if c})
    return {
        "processes": len(r),
        "commands": cmds[:10],
        "events": int(r["events"].sum()),
        "bytes_read": int(r["bytes_read"].sum()),
        "bytes_written": int(r["bytes_written"].sum()),
        "io_time": int(r["io_time"].sum()),
    }


def job_block(
    ov: dict[str, Any], ranks: pd.DataFrame, pp: pd.DataFrame, files: pd.DataFrame,
    modes: pd.DataFrame,
) -> dict[str, Any]:  # fmt: skip
    """The report's job section: ranks and their extremes, the file layout, MPI-IO's collective
    and independent calls (of `modes`, mpi_modes' table) beside the overview's MPI bytes."""
    nranks = len(ranks)
    jb: dict[str, Any] = {"ranks": nranks}
    if nranks:
        jb.update(rank_extremes(ranks))
        jb["non_rank"] = non_rank(pp)
    jb["layout"] = layout(files, nranks)
    if len(modes):
        by = {
            m: modes[modes["mode"] == m][["calls", "bytes"]].sum().astype(int).to_dict()
            for m in ("collective", "independent")
        }
        jb["mpi"] = {
            "collective_calls": by["collective"]["calls"],
            "collective_bytes": by["collective"]["bytes"],
            "independent_calls": by["independent"]["calls"],
            "independent_bytes": by["independent"]["bytes"],
            "bytes_read": ov["mpi_bytes_read"],
            "bytes_written": ov["mpi_bytes_written"],
            "posix_bytes_inside": ov["posix_bytes_in_mpi"],
        }
    return jb
