"""The analyzer's C code done again in Python: the tests' oracle, never used at run time.

- PyDecoder: the C decoder's contract (analyzer/event_columns.py, `Decoder.scan`) through the
  one Python reader of records (tracefile.Records), msgpack record by record;
- map_ids: iot_map_ids (one log's ids and times mapped in place, analyzer/load.py);
- prev_in_group, union_length: the group scans (analyzer/group_scans.py) with a stable sort;
- bandwidth_sums: job.bandwidth_sums in numpy alone (its calls within one bin are iot_one_bin's).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from iotrace.analyzer.event_columns import NULL_BITS, RAW_DTYPES, RawColumns, ScanResult

from iotrace import format as fmt
from iotrace.tracefile import BadChunk, BadRecordAt, Records

# An EVENT's base fields after the type: (position, null bit, kept as a column, is aux)
_BASE = tuple(
    (i, NULL_BITS.get(f.name, 0) if f.nullable else 0, bool(f.dtype), f.kind == "aux")
    for i, f in enumerate(fmt.EVENT[: fmt.EVENT_BASE_FIELDS])
    if i
)
_ENDS = tuple(fmt.EVENT_FIELDS[fmt.EVENT_BASE_FIELDS :])  # fd2 path2 offset2


class _Bad(Exception):
    pass


class PyDecoder:
    """The C decoder's oracle, for tests: the same contract through the Python reader of records
    (tracefile.Records), msgpack record by record, about 50 times slower."""

    name = "python"

    def scan(
        self,
        buf: Any,
        first: int,
        stop: int,
        chunk: int,
        out: RawColumns | None,
        n_other: int,
    ) -> ScanResult:
        others: list[tuple[int, int]] = []
        rows: list[tuple[Any, ...]] = []
        n_ends = 0
        records = Records(buf, first, stop, chunk, 32768, None)  # fn: int16, as the C columns
        try:
            for start, end, tid, rec in records:
                if rec[0] == fmt.Rec.EVENT:
                    new = _event_rows(rec, tid, start)
                    rows += new
                    n_ends += len(new) - 1
                else:
                    others.append((start, end - start))
        except BadChunk as exc:
            return self._error(exc.code, exc.off)
        except BadRecordAt as exc:
            return self._error(3, exc.start)
        except _Bad as exc:
            return self._error(3, int(exc.args[0]))
        if out is not None:
            _store(rows, out)
        other_off = np.array([o for o, _ in others], dtype=np.int64)
        other_len = np.array([ln for _, ln in others], dtype=np.int64)
        truncated = records.truncated
        return ScanResult(len(rows), len(others), truncated, 0, -1, other_off, other_len, n_ends)

    @staticmethod
    def _error(code: int, off: int) -> ScanResult:
        empty = np.empty(0, dtype=np.int64)
        return ScanResult(0, 0, False, code, off, empty, empty)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _event_rows(rec: list[Any], tid: int, here: int) -> list[tuple[Any, ...]]:
    """One event as the raw columns' values (RAW_DTYPES order): one row, two for a call with
    two ends (the end read after the end written, as the C decoder does)."""
    row = _event_row(rec, tid, here)
    if len(rec) < len(fmt.EVENT):
        return [row]
    nulls = row[-1] & ~(NULL_BITS["fd"] | NULL_BITS["path"] | NULL_BITS["offset"])
    nulls |= NULL_BITS["end2"]
    vals = list(row)
    for end2, v in zip(_ENDS, rec[fmt.EVENT_BASE_FIELDS :], strict=False):
        name = fmt.END2_COLUMNS[end2]
        if v is None:
            nulls |= NULL_BITS[name]
            v = 0
        elif not _is_int(v):
            raise _Bad(here)
        vals[list(RAW_DTYPES).index(name)] = v
    vals[-1] = nulls
    return [row, tuple(vals)]


def _event_row(rec: list[Any], tid: int, here: int) -> tuple[Any, ...]:
    """One event's base fields as the raw columns' values (RAW_DTYPES order)."""
    nulls = 0
    vals: list[int] = [tid]
    for i, bit, kept, aux in _BASE:
        v = rec[i]
        if aux:  # nil, an integer or an array ([dev, inode]); not kept
            if isinstance(v, (list, tuple)):
                nulls |= bit | NULL_BITS["auxpair"]
            elif v is None:
                nulls |= bit
            elif not _is_int(v):
                raise _Bad(here)
            continue
        if v is None:
            nulls |= bit
            v = 0
        elif not _is_int(v):
            raise _Bad(here)
        if kept:
            vals.append(v)
        elif i == fmt.EV.mode and v & 2:
            nulls |= NULL_BITS["mode_w"]
    vals.append(nulls)
    return tuple(vals)


def _wrap(v: int, bits: int) -> int:
    """Two's-complement wrap, as the C decoder's casts do."""
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _store(rows: list[tuple[Any, ...]], out: RawColumns) -> None:
    if not rows:
        return
    cols = list(zip(*rows, strict=True))
    for name, col in zip(RAW_DTYPES, cols, strict=True):
        dtype = np.dtype(RAW_DTYPES[name])
        if name == "fn":
            col = tuple(-1 if v < 0 or v > 32767 else v for v in col)
        elif dtype.kind == "i":
            bits = dtype.itemsize * 8
            lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            col = tuple(v if lo <= v <= hi else _wrap(v, bits) for v in col)
        out[name][: len(col)] = np.array(col, dtype=dtype)


def map_ids(
    cols: dict[str, np.ndarray], shift: int, fn_lut: np.ndarray, path_lut: np.ndarray, base: int
) -> int:
    """iot_map_ids (_decode.c) in numpy: one log's columns mapped in place; the top stack id."""
    cols["t_start"] += shift
    fn = cols["fn"]
    fn[(fn < 0) | (fn >= len(fn_lut) - 1)] = len(fn_lut) - 1
    fn[:] = fn_lut[fn]
    nl = cols["nulls"]
    ids, null = cols["path"], (nl & NULL_BITS["path"]) != 0
    ok = ~null & (ids >= 0) & (ids < len(path_lut))
    ids[:] = np.where(ok, path_lut[np.where(ok, ids, 0)], -1).astype(np.int32)
    st = cols["stack"]
    st_null = ((nl & NULL_BITS["stack"]) != 0) | (st < 0)
    st[:] = np.where(st_null, -1, st + base)
    return int(st.max(initial=-1))


def prev_in_group(group: np.ndarray, val: np.ndarray, ngroups: int, first: int) -> np.ndarray:
    """For each i: val of the previous element of its group (`first` for a group's first)."""
    out = np.empty(len(val), dtype=np.int64)
    order = np.argsort(group, kind="stable")
    g, v = group[order], val[order]
    prev = np.empty_like(v)
    if len(v):
        prev[0] = first
        prev[1:] = v[:-1]
        new = np.ones(len(v), dtype=bool)
        new[1:] = g[1:] != g[:-1]
        prev[new] = first
    out[order] = prev
    return out


def union_length(group: np.ndarray, start: np.ndarray, end: np.ndarray, ngroups: int) -> np.ndarray:
    """Per group: the total length of the union of its intervals [start, end), in start order."""
    total = np.zeros(max(ngroups, 1), dtype=np.int64)
    if len(start) == 0:
        return total[:ngroups]
    order = np.argsort(group, kind="stable")
    g, s, e = group[order], start[order], end[order]
    reach = pd.Series(e).groupby(g).cummax().to_numpy()
    new = np.ones(len(s), dtype=bool)
    new[1:] = g[1:] != g[:-1]
    covered = s.copy()
    covered[1:] = np.maximum(s[1:], reach[:-1])
    covered[new] = s[new]
    part = np.clip(e - covered, 0, None)
    np.add.at(total, g, part)
    return total[:ngroups]


def bandwidth_sums(a: Any, span: int, bins: int) -> np.ndarray:
    """job.bandwidth_sums, every call in numpy: its bins by job._floor_div, in the input's order."""
    from iotrace.analyzer.access import WRITE
    from iotrace.analyzer.job import _floor_div

    span = max(int(span), 1)
    w = span / bins
    edges = np.arange(bins + 1) * w
    m = a.data
    row = (a.op[m] == WRITE).astype(np.int64) * (bins + 1)
    s, e = a.t_start[m].astype(np.float64), a.t_end[m].astype(np.float64)
    b = a.bytes[m].astype(np.float64)
    b0 = np.clip(_floor_div(s, w), 0, bins - 1)
    b1 = np.clip(_floor_div(np.maximum(e - 1, s), w), 0, bins - 1)
    one = b0 == b1

    def binned(at: np.ndarray, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.bincount(at + rows, weights=weights, minlength=2 * (bins + 1)).reshape(2, -1)

    acc = binned(b0, np.where(one, b, 0.0), row)
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
    return acc[:, :bins].copy()
