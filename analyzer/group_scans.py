"""Per-group scans over events in time order: C when compiled (O(n), no sort), numpy otherwise.

Grouping 10 million events by a key with a stable sort costs 1-2 s here; one pass in C with a
per-group slot costs ~30 ms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .event_columns import native


def dense(key: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense int64 codes 0..k-1 for the values of `key` (hash-based, no sort), and k."""
    codes, uniques = pd.factorize(key, sort=False)
    return codes.astype(np.int64, copy=False), len(uniques)


def prev_in_group(group: np.ndarray, val: np.ndarray, ngroups: int, first: int) -> np.ndarray:
    """For each i: val of the previous element of its group (`first` for a group's first)."""
    group = np.ascontiguousarray(group, dtype=np.int64)
    val = np.ascontiguousarray(val, dtype=np.int64)
    out = np.empty(len(val), dtype=np.int64)
    nat = native()
    if nat is not None:
        last = np.empty(max(ngroups, 1), dtype=np.int64)
        nat.lib.iot_prev_in_group(
            nat.ptr("int64_t *", group),
            nat.ptr("int64_t *", val),
            len(val),
            nat.ptr("int64_t *", last),
            ngroups,
            first,
            nat.ptr("int64_t *", out),
        )
        return out
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
    """Per group: the total length of the union of its intervals [start, end), given in start
    order."""
    group = np.ascontiguousarray(group, dtype=np.int64)
    start = np.ascontiguousarray(start, dtype=np.int64)
    end = np.ascontiguousarray(end, dtype=np.int64)
    total = np.zeros(max(ngroups, 1), dtype=np.int64)
    nat = native()
    if nat is not None:
        reach = np.empty_like(total)
        nat.lib.iot_union_length(
            nat.ptr("int64_t *", group),
            nat.ptr("int64_t *", start),
            nat.ptr("int64_t *", end),
            len(start),
            nat.ptr("int64_t *", reach),
            nat.ptr("int64_t *", total),
            ngroups,
        )
        return total[:ngroups]
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
