"""`scan(DIR)`: the events table as a lazy frame, for traces that do not fit in memory.

Over a trace directory: a Dask DataFrame, one partition per part of the trace (analyzer/parts.py:
whole processes, each part's load within the memory bound), loaded only when computed, on the
local cores or on the Dask cluster of the current `distributed.Client`.  Over a Parquet export
(`iotrace export DIR --format parquet -o OUT`): a Dask DataFrame, or with `engine="duckdb"` a
DuckDB relation (SQL over the files, nothing loaded up front).  Same columns as `load(DIR).events`
(in Dask the text columns are categoricals of unknown categories, each partition its own); within
a partition the rows are in time order.  `stack_id` over a trace directory is numbered per part
(parts after the first: not the ids of `load`); the Parquet export has the trace-wide ones.

    from iotrace.analyzer import scan
    ev = scan("iotrace-job-dir")
    ev.groupby("path", observed=True)["bytes"].sum().compute()
    scan("export-dir", engine="duckdb").aggregate("path, sum(bytes)").df()
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from .load import Part, load
from .parts import local_cores, memory_bound, plan

ENGINES = ("dask", "duckdb")


def _part_events(trace_dir: str, part: Part) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a log cut short: load(DIR) says it
        return load(trace_dir, progress=False, part=part).events


def scan(
    trace_dir: str | Path,
    engine: str = "dask",
    memory: str | int | None = None,
    part_bytes: int | None = None,
) -> Any:
    """The events of a trace directory or of a Parquet export, lazily (module docstring).
    `memory`: the bound the parts are cut for (parts.memory_bound); `part_bytes`: cut them at
    this many bytes of logs instead."""
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: one of {', '.join(ENGINES)}")
    d = Path(trace_dir)
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

    parts = plan(d, memory_bound(memory), local_cores(), part_bytes)
    meta = _part_events(str(d), Part(0, 0, False)).iloc[0:0]
    for c in meta.columns:
        if isinstance(meta[c].dtype, pd.CategoricalDtype):
            meta[c] = meta[c].cat.set_categories([])
    return dd.from_delayed(
        [dask.delayed(_part_events)(str(d), p) for p in parts], meta=meta, verify_meta=False
    )
