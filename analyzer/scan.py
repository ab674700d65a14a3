"""`scan(DIR)`: the events table as a lazy frame, for traces that do not fit in memory.

Over a trace directory: a Dask DataFrame, one partition per part of the trace (analyzer/parts.py:
whole processes, each part's load within the memory bound), loaded only when computed, on the
local cores or on the Dask cluster of the current `distributed.Client`.  The parts are cut as
the bounded commands cut them, from the same options record (parts.Bounded: `memory`, `workers`,
`part_bytes`; a bare directory takes every default): the bound shared by the local cores, or,
with a current Client, by its workers, less the cluster's own memory (parts.cluster_bound).
Over a Parquet export (`iotrace export DIR --format parquet -o OUT`): a Dask DataFrame, or with
`engine="duckdb"` a DuckDB relation (SQL over the files, nothing loaded up front).  Same columns
as `load(DIR).events` (in Dask the text columns are categoricals of unknown categories, each
partition its own); within a partition the rows are in time order.  `stack_id` over a trace
directory is numbered per part (parts after the first: not the ids of `load`); the Parquet
export has the trace-wide ones.

    from iotrace.analyzer import scan
    ev = scan("iotrace-job-dir")
    ev = scan(parts.Bounded("iotrace-job-dir", memory="8G", workers=4))
    ev.groupby("path", observed=True)["bytes"].sum().compute()
    scan("export-dir", engine="duckdb").aggregate("path, sum(bytes)").df()
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from iotrace import cluster

from .load import Part, load
from .parts import Bounded, cluster_bound, plan

ENGINES = ("dask", "duckdb")


def _part_events(trace_dir: str, part: Part) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a log cut short: load(DIR) says it
        return load(trace_dir, progress=False, part=part).events


def _client_workers() -> int | None:
    """The workers of the current distributed.Client (the cluster the frame is computed on), or
    None without one."""
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        client = get_client()
    except ValueError:  # no client
        return None
    return len(client.scheduler_info().get("workers", {})) or 1


def scan(b: Bounded | str | os.PathLike[str], engine: str = "dask") -> Any:
    """The events of a trace directory or of a Parquet export, lazily (module docstring).
    `b`: the directory, or parts.Bounded for the memory bound, the workers, `part_bytes` and
    `range_bytes` the parts are cut for (its `scheduler` and `select` are not for a lazy frame:
    compute it with a distributed.Client of that scheduler; filter the frame)."""
    b = Bounded.of(b)
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: one of {', '.join(ENGINES)}")
    if b.scheduler is not None or b.select is not None:
        raise ValueError(
            "scan: no scheduler or select (compute the frame with a distributed.Client of the "
            "scheduler; filter the frame)"
        )
    d = Path(b.trace_dir)
    events = d / "events"
    if events.is_dir():  # a Parquet export
        if engine == "duckdb":
            import duckdb

            return duckdb.read_parquet(str(events / "**" / "*.parquet"), hive_partitioning=True)
        import dask.dataframe as dd

        return dd.read_parquet(str(events), categories=[])  # the partition keys as plain text
    if engine == "duckdb":
        raise ValueError(f"{d}: DuckDB reads a Parquet export (iotrace export --format parquet)")
    import dask
    import dask.dataframe as dd

    on = _client_workers()
    bound, n = cluster_bound(b, on is not None, on or 0)
    parts = plan(d, bound, n, b.part_bytes, b.range_bytes)
    meta = _part_events(str(d), Part(0, 0, False)).iloc[0:0]
    for c in meta.columns:
        if isinstance(meta[c].dtype, pd.CategoricalDtype):
            meta[c] = meta[c].cat.set_categories([])
    # each task pickled whole (cluster.task, call): a cluster's scheduler unpickles the tasks
    # it is given, and would import the analyzer, pandas and pyarrow for this function and Part
    tasks = [cluster.task(_part_events, (str(d), p)) for p in parts]
    return dd.from_delayed(
        [dask.delayed(cluster.call)(t) for t in tasks], meta=meta, verify_meta=False
    )
