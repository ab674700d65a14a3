"""The job over time for the HTML page's plots, as sums that merge over parts of a trace
(analyzer/parts.py adds them; summarise makes them of the whole trace at once):

- the rank x time heatmap: per rank and time bin, the bytes moved (POSIX level) and the time
  inside I/O calls on data files (an MPI-IO call's POSIX calls are inside its time: counted
  once, in the MPI-IO call);
- the timeline's lanes: per process the time inside I/O calls, and for the processes with the
  most of it the bars where they were inside calls, by kind (calls closer than span/SEGMENTS
  merged into one bar), and the ticks of the stracer's missed syscalls.  A process is whole in
  a part, so its bars are exact there; the top MAX_ROWS of the job are among the top MAX_ROWS
  of their parts.  A process cut into time ranges (analyzer/ranges.py) carries each kind's
  last bar, still open, from range to range (Open): a bar across a cut is one bar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from iotrace.calls import Op
from iotrace.record import field, record

from .access import OP_CODE, READ, WRITE, Arrays

HEATMAP_BINS = 120  # time bins of the rank x time heatmap
MAX_ROWS = 32  # processes shown in the timeline
SEGMENTS = 800  # timeline resolution: calls closer than span/SEGMENTS merge into one bar
BAR_COLUMNS = ["proc", "cls", "start", "width"]  # cls: 0 read, 1 write, 2 metadata, 3 other
Open = dict[tuple[int, int], tuple[int, int]]  # (proc, cls) -> its last bar's start and reach


@record
class Lanes:
    busy: dict[int, int] = field(default_factory=dict)  # proc -> ns inside I/O calls
    bars: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=BAR_COLUMNS))
    missed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["proc", "t"]))

    def top(self) -> list[int]:
        """The processes shown: the most time inside I/O calls (ties: the first process)."""
        return sorted(self.busy, key=lambda p: (-self.busy[p], p))[:MAX_ROWS]

    def add(self, o: Lanes) -> None:
        """Another part's lanes (other processes) added; only the top processes' bars kept."""
        for p, ns in o.busy.items():  # a process cut into ranges: its ranges' sum
            self.busy[p] = self.busy.get(p, 0) + ns
        keep = set(self.top())
        bars, missed = _cat(self.bars, o.bars), _cat(self.missed, o.missed)
        bars = bars[bars["proc"].isin(keep)]  # in lanes' order (a process's ranges in turn)
        self.bars = bars.sort_values(["proc", "cls", "start"], kind="stable").reset_index(drop=True)
        # a process's ranges may tick the same segment (a cut inside it)
        missed = missed[missed["proc"].isin(keep)].drop_duplicates()
        self.missed = missed.sort_values(["proc", "t"]).reset_index(drop=True)


def _cat(x: pd.DataFrame, y: pd.DataFrame) -> pd.DataFrame:
    return y if x.empty else x if y.empty else pd.concat([x, y], ignore_index=True)


@record
class OverTime:
    span: int = 1  # the span (ns) the bins were cut for
    heatmap: dict[int, np.ndarray] = field(default_factory=dict)  # rank -> [bytes, time] x bins
    lanes: Lanes = field(default_factory=Lanes)

    def add(self, o: OverTime) -> None:
        for r, g in o.heatmap.items():
            self.heatmap[r] = self.heatmap[r] + g if r in self.heatmap else g
        self.lanes.add(o.lanes)


def _per_bin(
    row: np.ndarray, s: np.ndarray, e: np.ndarray, w: np.ndarray, nrows: int, span: int, bins: int
) -> np.ndarray:
    """rows x bins: each interval's weight w spread evenly over [s, e) (at s if empty)."""
    width = span / bins
    out = np.zeros((nrows, bins + 1), dtype=np.float64)
    diff = np.zeros((nrows, bins + 2), dtype=np.float64)
    s, e = s.astype(np.float64), np.maximum(e, s).astype(np.float64)
    b0 = np.clip((s // width).astype(np.int64), 0, bins - 1)
    b1 = np.clip((np.maximum(e - 1, s) // width).astype(np.int64), 0, bins - 1)
    one = b0 == b1
    np.add.at(out, (row[one], b0[one]), w[one])
    m = ~one
    if m.any():
        rate = w[m] / (e[m] - s[m])
        r, c0, c1 = row[m], b0[m], b1[m]
        np.add.at(out, (r, c0), rate * ((c0 + 1) * width - s[m]))
        np.add.at(out, (r, c1), rate * (e[m] - c1 * width))
        np.add.at(diff, (r, c0 + 1), rate * width)  # the full bins between
        np.add.at(diff, (r, c1), -rate * width)
        out += np.cumsum(diff, axis=1)[:, : bins + 1]
    return out[:, :bins]


def heatmap(a: Arrays, parent: np.ndarray, span: int, bins: int = HEATMAP_BINS) -> dict:
    """rank -> 2 x bins: bytes moved, ns inside I/O calls on data files (parent: job.mpi_ties)."""
    has = a.rank >= 0
    if not has.any():
        return {}
    ranks = np.unique(a.rank[has])
    row_of = np.full(int(ranks.max()) + 1, -1, dtype=np.int64)
    row_of[ranks] = np.arange(len(ranks))
    span = max(int(span), 1)
    d = has & a.data
    io = has & a.io & a.datafile & ~(parent >= 0)
    grids = [
        _per_bin(row_of[a.rank[m]], a.t_start[m], a.t_end[m], w, len(ranks), span, bins)
        for m, w in (
            (d, a.bytes[d].astype(np.float64)),
            (io, (a.t_end[io] - a.t_start[io]).astype(np.float64)),
        )
    ]
    return {int(r): np.stack([grids[0][i], grids[1][i]]) for i, r in enumerate(ranks)}


def _classes(a: Arrays) -> np.ndarray:
    """0 read, 1 write, 2 metadata (open/close/meta), 3 other I/O, -1 not I/O."""
    cls = np.full(a.n, 3, dtype=np.int8)
    cls[a.op == READ] = 0
    cls[a.op == WRITE] = 1
    for o in (Op.OPEN, Op.CLOSE, Op.META):
        cls[a.op == OP_CODE[o.value]] = 2
    cls[~a.io] = -1
    return cls


def lanes(a: Arrays, span: int, carry: Open | None = None, last: bool = True) -> Lanes:
    """The timeline's lanes of the processes in `a` (whole processes, or with `carry` a time
    range of one: each kind's bar still open at its start carried in, its last bar carried out
    unless `last`)."""
    out = Lanes()
    tol = max(span // SEGMENTS, 1)
    carry = {} if carry is None else carry
    rows = []
    if a.n == 0:
        if last:
            _flush(carry, rows, tol)
        if rows:
            out.bars = pd.concat(rows, ignore_index=True)
        return out
    io = a.io
    procs = np.unique(a.proc[io])
    k = int(a.proc.max()) + 1
    busy = np.bincount(a.proc[io], weights=(a.t_end - a.t_start)[io], minlength=k)
    out.busy = {int(p): int(busy[p]) for p in procs}
    shown = np.zeros(k, dtype=bool)
    shown[out.top()] = True
    cls = _classes(a)
    sel = np.flatnonzero(shown[a.proc] & (cls >= 0))
    key = a.proc[sel].astype(np.int64) * 4 + cls[sel]
    order = sel[np.argsort(key, kind="stable")]  # per (process, kind), in start order
    bounds = np.flatnonzero(np.diff(np.sort(key, kind="stable"))) + 1
    for grp in np.split(order, bounds) if len(order) else []:
        k = (int(a.proc[grp[0]]), int(cls[grp[0]]))
        s, e = a.t_start[grp], a.t_end[grp]
        if k in carry:  # the bar open at the range's start: its first call
            cs, ce = carry.pop(k)
            s, e = np.r_[np.int64(cs), s], np.r_[np.int64(ce), e]
        reach = np.maximum.accumulate(e)
        new = np.ones(len(s), dtype=bool)
        new[1:] = s[1:] > reach[:-1] + tol
        idx = np.flatnonzero(new)
        starts = s[new]
        ends = reach[np.r_[idx[1:] - 1, len(s) - 1]]
        if not last:  # the last bar may go on in the next range
            carry[k] = (int(starts[-1]), int(ends[-1]))
            starts, ends = starts[:-1], ends[:-1]
        rows.append(_bars(k, starts, ends, tol))
    if last:
        _flush(carry, rows, tol)
    if rows:
        out.bars = pd.concat(rows, ignore_index=True)
    mm = a.missed & shown[a.proc]
    if mm.any():  # one tick per process and timeline segment
        t = pd.DataFrame({"proc": a.proc[mm].astype(np.int64), "t": a.t_start[mm] // tol * tol})
        out.missed = t.drop_duplicates().sort_values(["proc", "t"]).reset_index(drop=True)
    return out


def _bars(k: tuple[int, int], starts: np.ndarray, ends: np.ndarray, tol: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "proc": np.full(len(starts), k[0], dtype=np.int64),
            "cls": np.full(len(starts), k[1], dtype=np.int64),
            "start": starts.astype(np.int64),
            "width": np.maximum(ends - starts, tol // 2 + 1).astype(np.int64),
        }
    )


def _flush(carry: Open, rows: list[pd.DataFrame], tol: int) -> None:
    """The bars still open at a process's end."""
    for k, (s, e) in sorted(carry.items()):
        rows.append(_bars(k, np.array([s], dtype=np.int64), np.array([e], dtype=np.int64), tol))
    carry.clear()


def over_time(
    a: Arrays, parent: np.ndarray, span: int, carry: Open | None = None, last: bool = True
) -> OverTime:
    """The plots' sums of `a` (carry, last: a time range of a process, lanes)."""
    return OverTime(span, heatmap(a, parent, span), lanes(a, span, carry, last))
