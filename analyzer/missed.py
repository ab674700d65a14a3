"""Missed I/O as tables: the stracer's bypass events grouped by process, syscall and call site
(`Trace.missed`), and by call site over all processes (`Summary.missed_sites`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import schema

if TYPE_CHECKING:
    from .trace import Trace


def missed_table(trace: Trace) -> pd.DataFrame:
    """The missed syscalls (the stracer's events) grouped by process, syscall and call site."""
    ev = trace.events
    m = ev[ev["missed"]]
    if m.empty:
        return schema.empty_frame(schema.MISSED_COLUMNS)
    via = m["via"].astype(str)
    m = m.assign(
        # an operation an asynchronous engine carried out: "pwrite64 via io_uring"
        function=m["function"]
        .astype(str)
        .where(via == "", m["function"].astype(str) + " via " + via),
        dur=m["t_end"] - m["t_start"],
        site=m["stack_id"].fillna(-1).astype(np.int64),
        failed=(m["errno"] != 0).astype(np.int64),
        nbytes=m["bytes"].fillna(0),
    )
    g = m.groupby(["host", "pid", "proc", "function", "site"], observed=True, dropna=False)
    df = g.agg(
        rank=("rank", "first"),
        count=("t_start", "size"),
        errors=("failed", "sum"),
        bytes=("nbytes", "sum"),
        time=("dur", "sum"),
        first=("t_start", "min"),
        paths=("path", lambda s: ", ".join(sorted({str(p) for p in s.dropna()})[:5])),
    ).reset_index()
    df["stack_id"] = df["site"].where(df["site"] >= 0)
    # a call site: its innermost frames outside libc, by function and file (lines differ
    # between the calls of one function)
    labels = _labels(trace, [int(x) for x in df["site"] if x >= 0], skip_libc=True)
    df["site"] = [labels.get(int(x), "an unknown call site") for x in df["site"]]
    df["host"] = df["host"].astype(str)
    df["function"] = df["function"].astype(str)
    df = df.sort_values(["count", "first"], ascending=[False, True])
    return df[list(schema.MISSED_COLUMNS)].astype(schema.MISSED_COLUMNS).reset_index(drop=True)  # type: ignore[arg-type]


def _labels(trace: Trace, ids: list[int], skip_libc: bool = False) -> dict[int, str]:
    """Call-site labels without line numbers."""
    from .symbols import site_labels, symbolise

    if not ids:
        return {}
    st = symbolise(trace, ids)
    st["line"] = pd.array([None] * len(st), dtype="Int32")
    return site_labels(st, skip_libc=skip_libc)


MISSED_SITE_COLUMNS = ["site", "functions", "count", "errors", "bytes", "ranks", "pids", "paths"]


def missed_sites(missed: pd.DataFrame) -> pd.DataFrame:
    """The missed syscalls by call site (the same code in several processes: one row)."""
    if missed.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in MISSED_SITE_COLUMNS})
    from .access import compact_ranks

    rows = []
    for site, g in missed.groupby("site", sort=False):
        paths = sorted({p for ps in g["paths"] for p in ps.split(", ") if p})
        rows.append(
            {
                "site": site,
                "functions": ", ".join(
                    f"{fn} {int(c):,}"
                    for fn, c in g.groupby("function")["count"]
                    .sum()
                    .sort_values(ascending=False)
                    .items()
                ),
                "count": int(g["count"].sum()),
                "errors": int(g["errors"].sum()),
                "bytes": int(g["bytes"].sum()),
                "ranks": compact_ranks([int(r) for r in g["rank"].dropna()]),
                "pids": ", ".join(str(p) for p in sorted(set(g["pid"].tolist()))[:8]),
                "paths": ", ".join(paths[:5]) + (f" (+{len(paths) - 5})" if len(paths) > 5 else ""),
            }
        )
    df = pd.DataFrame(rows, columns=MISSED_SITE_COLUMNS)
    return df.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)
