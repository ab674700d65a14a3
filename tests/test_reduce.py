"""A part's reduction made with numpy (analyzer/access.py, insights.py, parts.py) equals what
pandas' groupbys and sorts make of the same events, on a real trace: files of data, pipes, a
name that is no file (getaddrinfo's), two ranks (PMI_RANK) on a shared file, one reading a pipe."""

from __future__ import annotations

import numpy as np
import pandas as pd
from conftest import build
from iotrace.analyzer import load, parts
from iotrace.analyzer.access import (
    ALIGN,
    SMALL,
    WRITE,
    arrays,
    classify,
    file_columns,
    file_rows,
    files_table,
    held,
    sort_files,
)
from iotrace.analyzer.insights import PATTERN_COLUMNS, Counts
from iotrace.analyzer.job import BANDWIDTH_BINS, _floor_div, bandwidth_sums, mpi_ties
from iotrace.analyzer.summary import file_mask

from iotrace.record import replace


def _trace(trace):
    rank = f"PMI_SIZE=2 {build('an_rank')} shared.dat"
    ranks = f"echo x | PMI_RANK=0 {rank} stdin & PMI_RANK=1 {rank}"  # rank 0 reads a pipe
    cmd = f"{build('an_pattern')} && ({ranks}; wait) && {build('nss_lookup')} && echo x | cat"
    t = trace("sh", "-c", cmd)
    assert t.proc.returncode == 0, t.proc.stderr
    tr = load(t.dir)
    a = arrays(tr.events)
    a.stopped = held(tr.events, tr.stops)
    return tr, a, classify(a)


def _check_per_path(tr, a, cols) -> None:
    ev = tr.events.assign(end=tr.events["offset"] + tr.events["bytes"])
    procs = ev.groupby("path", observed=True)["proc"].nunique()
    ends = ev[a.data & a.has_offset].groupby("path", observed=True)["end"].max()
    for i, p in enumerate(a.paths):
        assert cols["processes"][i] == procs.get(p, 0), p
        assert cols["max_offset"][i] == ends.get(p, 0), p


def _patterns_oracle(a, c, base: np.ndarray) -> pd.DataFrame:
    """Counts.patterns by a groupby of the events in `base` per (path, direction)."""
    known = np.zeros(a.n, dtype=bool)
    known[c.idx] = True
    rand = np.zeros(a.n, dtype=bool)
    rand[c.idx[~c.sequential]] = True
    small = a.bytes < SMALL
    unaligned = a.has_offset & (a.offset % ALIGN != 0)
    df = pd.DataFrame(
        {
            "path": [a.paths[i] for i in a.path[base]],
            "direction": np.where(a.op[base] == WRITE, "write", "read"),
            "calls": 1,
            "bytes": a.bytes[base],
            "time": a.dur[base],
            "small": small[base].astype(np.int64),
            "small_time": np.where(small, a.dur, 0)[base],
            "small_bytes": np.where(small, a.bytes, 0)[base],
            "known": known[base].astype(np.int64),
            "random": rand[base].astype(np.int64),
            "unaligned": unaligned[base].astype(np.int64),
            "unaligned_time": np.where(unaligned, a.dur, 0)[base],
        }
    )
    return df.groupby(["path", "direction"], sort=True).sum().reset_index()[PATTERN_COLUMNS]


def test_a_parts_tables_are_the_groupbys_of_its_events(trace):
    tr, a, c = _trace(trace)
    assert (a.rank >= 0).any() and any(not p.startswith("/") for p in a.paths), a.paths
    # the files table: picked and ordered before the frame is made, as pandas picks and sorts
    cols = file_columns(a, c)
    df = pd.DataFrame(cols)
    ref = sort_files(file_rows(df[df["ops"] > 0]))
    got = files_table(tr.events, a, c)
    assert len(got) >= 5 and list(got["path"]) != sorted(got["path"])
    pd.testing.assert_frame_equal(got, ref)
    # per path its processes, the furthest end of an access at a known offset: of the whole
    # trace, and of each part of one process
    _check_per_path(tr, a, cols)
    assert max(cols["processes"]) >= 2 and max(cols["max_offset"]) > 0
    pl = parts.plan(tr.dir, parts.MEMORY_DEFAULT, 1, part_bytes=1)
    assert len(pl) >= 4
    for part in pl:
        tp = parts.load_part(str(tr.dir), part)
        ap = arrays(tp.events)
        _check_per_path(tp, ap, file_columns(ap, classify(ap)))
    # the access patterns per (path, direction), made in one frame
    parent = mpi_ties(a)
    cnt = Counts.of(tr, a, c, parent, False)
    base = a.data & file_mask(a, False) & (parent < 0) & (a.bytes > 0)
    oracle = _patterns_oracle(a, c, base)
    assert {"read", "write"} <= set(oracle["direction"]) and oracle["random"].sum() > 0
    pd.testing.assert_frame_equal(cnt.patterns, oracle, check_dtype=False)
    assert list(cnt.patterns.dtypes[2:]) == [np.int64] * (len(PATTERN_COLUMNS) - 2)
    # the (path, rank) pairs, in the order met, whether the rank wrote or moved bytes
    ok = (a.path >= 0) & (a.rank >= 0)
    pairs = pd.DataFrame(
        {
            "p": a.path[ok],
            "rank": a.rank[ok],
            "wrote": (a.moved & (a.op == WRITE))[ok],
            "moved": a.moved[ok],
        }
    )
    pairs = pairs.groupby(["p", "rank"], sort=False).max().reset_index()
    pairs.insert(0, "path", [a.paths[i] for i in pairs.pop("p")])
    got = parts._file_ranks(a)
    assert set(got["rank"]) == {0, 1} and (got["wrote"] != got["moved"]).any(), got
    pd.testing.assert_frame_equal(got, pairs, check_dtype=False)
    _check_bandwidth(a)


def _check_bandwidth(a) -> None:
    """Reads and writes binned in one pass: each call's bytes spread over the bins its span
    covers, per direction, as a loop over the calls spreads them."""
    # bins a fourth of the longest call's time, that call a few bins in (the calls before it:
    # in the first bin, those past the span in the last)
    data = np.flatnonzero(a.data)
    long = data[np.argmax(a.dur[data])]
    w = max(int(a.dur[long]) // 4, 1)
    shift = int(a.t_start[long]) - 5 * w // 2
    a = replace(a, t_start=a.t_start - shift, t_end=a.t_end - shift)
    span = w * BANDWIDTH_BINS
    edges = np.arange(BANDWIDTH_BINS + 1) * w
    want = np.zeros((2, BANDWIDTH_BINS))
    spread = 0
    for i in data.tolist():
        row, s, e, b = int(a.op[i] == WRITE), float(a.t_start[i]), float(a.t_end[i]), a.bytes[i]
        b0, b1 = (int(np.clip(_floor_div(np.array([x]), w)[0], 0, BANDWIDTH_BINS - 1))
                  for x in (s, max(e - 1, s)))  # fmt: skip
        if b0 == b1:
            want[row, b0] += b
            continue
        spread += 1
        rate = b / (e - s)
        want[row, b0] += rate * (edges[b0 + 1] - s)
        want[row, b1] += rate * (e - edges[b1])
        want[row, b0 + 1 : b1] += rate * w
    assert spread > 0 and want[0].any() and want[1].any(), (spread, w)
    np.testing.assert_allclose(bandwidth_sums(a, span), want, rtol=1e-9, atol=1e-3)
