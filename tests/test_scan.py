"""scan(DIR): the events as a lazy Dask DataFrame over the logs (a partition per part of the
trace) or over a Parquet export, and as a DuckDB relation over the export: the same events as
load(DIR).events."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import build, iotrace
from iotrace.analyzer import load, parts, scan

KEY = ["t_start", "proc", "tid", "function"]


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns as str, rows in one order, no stack ids (numbered per part by scan)."""
    df = df.drop(columns=["stack_id"]).copy()
    for c in df.columns:
        if isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype(str)
    return df.sort_values(KEY, kind="stable").reset_index(drop=True)


def test_scan_over_logs_and_over_the_parquet_export_has_the_events(trace, tmp_path):
    t = trace("sh", "-c", f"{build('proc_fork')} && {build('st_raw')} x")
    assert t.proc.returncode == 0, t.proc.stderr
    ev = load(t.dir).events
    lazy = scan(parts.Bounded(t.dir, part_bytes=1))  # a partition per process
    assert lazy.npartitions >= 3 and list(lazy.columns) == list(ev.columns)
    got = lazy.compute()
    pd.testing.assert_frame_equal(_plain(got), _plain(ev), check_dtype=False)
    # the parts cut as the bounded commands cut them (parts.Bounded): each process in time
    # ranges of ~64 events, a partition each; on a Dask client's cluster, for its workers
    ranged = scan(parts.Bounded(t.dir, part_bytes=1, range_bytes=1))
    assert ranged.npartitions > lazy.npartitions
    pd.testing.assert_frame_equal(_plain(ranged.compute()), _plain(ev), check_dtype=False)
    with pytest.raises(ValueError, match="scheduler or select"):
        scan(parts.Bounded(t.dir, scheduler="tcp://127.0.0.1:9"))
    # a query that never holds the events
    by_path = lazy.groupby("path", observed=True)["bytes"].sum().compute()
    assert int(by_path.sum()) == int(ev["bytes"].sum())

    out = tmp_path / "pq"
    r = iotrace("export", str(t.dir), "--format", "parquet", "-o", str(out))
    assert r.returncode == 0, r.stderr
    rel = scan(out, engine="duckdb")
    ((n, nbytes),) = rel.aggregate("count(*), sum(bytes)").fetchall()
    assert (n, int(nbytes)) == (len(ev), int(ev["bytes"].sum()))
    assert set(rel.columns) >= set(ev.columns)
    assert len(scan(out).compute()) == len(ev)
