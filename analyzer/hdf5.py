"""The HDF5 layer (docs/analyzer.md, "HDF5"): per dataset, its H5Dread/H5Dwrite calls tied to
the MPI-IO and POSIX calls they made, and the POSIX bytes under HDF5 split into raw data (inside
H5Dread/H5Dwrite) and HDF5's metadata (inside its other calls: H5Fcreate, H5Dcreate, H5Fflush,
H5Fclose..., where the metadata cache is written and read).

A call is *under* an HDF5 call by the same rule as POSIX under MPI-IO (job.ties): same process
and thread, its span inside the HDF5 call's.  An H5Dread/H5Dwrite event's path is
"FILE:DATASET"; its flags say whether the transfer was collective (bit 0: asked with
H5Pset_dxpl_mpio) and how HDF5 did it (bits 1-3: H5D_mpio_actual_io_mode_t).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .access import READ, WRITE, Arrays, compact_ranks
from .fmt import fmt_bytes, fmt_int, fmt_pct, fmt_time
from .job import ties

DATA_CALLS = ("H5Dread", "H5Dwrite")
# H5D_mpio_actual_io_mode_t (H5Ppublic.h): how HDF5 did a collective transfer
ACTUAL_IO_MODES = ("none collective", "chunk independent", "chunk collective", "chunk mixed",
                   "contiguous collective")  # fmt: skip

# an independent H5Dwrite of fewer bytes than this is small: on a parallel file system, many of
# them from several ranks are what collective I/O (two-phase, a few aggregators) is for
SMALL_WRITE = 64 * 1024

DATASET_COLUMNS = [
    "dataset", "file", "ranks", "writes", "reads", "bytes_written", "bytes_read", "time",
    "collective_share", "independent_small", "done_independently", "mpi_calls", "mpi_bytes",
    "posix_calls", "posix_bytes",
]  # fmt: skip


def split_path(path: str) -> tuple[str, str]:
    """(FILE, /NAME) of a dataset's path "FILE:/NAME" (the name is after the last ':/')."""
    i = path.rfind(":/")
    return (path[:i], path[i + 1 :]) if i >= 0 else (path, "")


def _data_rows(a: Arrays) -> np.ndarray:
    fns = np.array([f in DATA_CALLS for f in a.functions] + [False])
    return np.flatnonzero(fns[a.fn] & a.hdf5)


def hdf5_layer(a: Arrays, ev: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(the datasets table, the layer's overview numbers); empty/{} without HDF5 events."""
    if not a.hdf5.any():
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in DATASET_COLUMNS}), {}
    parent = ties(a, a.hdf5)
    rows = _data_rows(a)
    flags = ev["flags"].to_numpy(dtype=np.int64, na_value=-1)
    # raw data vs metadata: POSIX data events by the kind of HDF5 call they ran under
    under = parent >= 0
    in_data = np.zeros(a.n, dtype=bool)
    in_data[under] = np.isin(parent[under], rows)
    posix = a.data
    ov = {
        "writes": int((a.op[rows] == WRITE).sum()),
        "reads": int((a.op[rows] == READ).sum()),
        "bytes_written": int(a.bytes[rows][a.op[rows] == WRITE].sum()),
        "bytes_read": int(a.bytes[rows][a.op[rows] == READ].sum()),
        "posix_raw_bytes": int(a.bytes[posix & in_data].sum()),
        "posix_metadata_bytes": int(a.bytes[posix & under & ~in_data].sum()),
        "posix_metadata_calls": int((posix & under & ~in_data).sum()),
    }
    if len(rows) == 0:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in DATASET_COLUMNS}), ov
    tied = np.flatnonzero(in_data)
    t = pd.DataFrame(
        {
            "call": parent[tied],
            "mpi": a.mpi_data[tied],
            "posix": posix[tied],
            "bytes": a.bytes[tied],
        }
    )
    t["path"] = a.path[t["call"].to_numpy()]
    d = pd.DataFrame(
        {
            "path": a.path[rows],
            "write": a.op[rows] == WRITE,
            "bytes": a.bytes[rows],
            "dur": a.dur[rows],
            "rank": a.rank[rows],
        }
    )
    fl = flags[rows]
    d["collective"] = (fl >= 0) & (fl & 1 == 1)
    # asked collective, done independently by HDF5 (chunks or selections it could not combine)
    actual = np.where(fl >= 0, fl >> 1, -1)
    d["done_indep"] = d["collective"] & np.isin(actual, [0, 1])
    d["small_indep"] = d["write"] & ~d["collective"] & (d["bytes"] < SMALL_WRITE)
    out = []
    for code, g in d.groupby("path", sort=False):
        file, name = split_path(a.paths[int(code)])
        mine = t[t["path"] == code]
        mpi, px = mine[mine["mpi"]], mine[mine["posix"]]
        out.append(
            {
                "dataset": name,
                "file": file,
                "ranks": compact_ranks([int(r) for r in pd.unique(g["rank"]) if r >= 0]),
                "writes": int(g["write"].sum()),
                "reads": int((~g["write"]).sum()),
                "bytes_written": int(g.loc[g["write"], "bytes"].sum()),
                "bytes_read": int(g.loc[~g["write"], "bytes"].sum()),
                "time": int(g["dur"].sum()),
                "collective_share": float(g["collective"].mean()),
                "independent_small": int(g["small_indep"].sum()),
                "done_independently": int(g["done_indep"].sum()),
                "mpi_calls": len(mpi),
                "mpi_bytes": int(mpi["bytes"].sum()),
                "posix_calls": len(px),
                "posix_bytes": int(px["bytes"].sum()),
            }
        )
    res = pd.DataFrame(out, columns=DATASET_COLUMNS)
    res["total"] = res["bytes_written"] + res["bytes_read"]
    res = res.sort_values(["total", "dataset"], ascending=[False, True]).drop(columns="total")
    return res.reset_index(drop=True), ov


def overview_text(h5: dict[str, Any]) -> str:
    """The HDF5 layer in one line (report and HTML)."""
    return (
        f"wrote {fmt_bytes(h5['bytes_written'])} in {h5['writes']:,} H5Dwrite, read "
        f"{fmt_bytes(h5['bytes_read'])} in {h5['reads']:,} H5Dread (not added to the totals); "
        f"POSIX bytes under HDF5: {fmt_bytes(h5['posix_raw_bytes'])} raw data, "
        f"{fmt_bytes(h5['posix_metadata_bytes'])} metadata in {h5['posix_metadata_calls']:,} "
        "calls"
    )


def table_rows(d: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """The datasets table as the report and the HTML show it: headers, formatted rows."""
    heads = ["dataset", "file", "ranks", "writes", "written", "reads", "read", "time",
             "collective", "MPI-IO under", "POSIX under"]  # fmt: skip
    rows = [
        [r.dataset, r.file, r.ranks, fmt_int(r.writes), fmt_bytes(r.bytes_written),
         fmt_int(r.reads), fmt_bytes(r.bytes_read), fmt_time(r.time),
         fmt_pct(r.collective_share), f"{fmt_int(r.mpi_calls)} / {fmt_bytes(r.mpi_bytes)}",
         f"{fmt_int(r.posix_calls)} / {fmt_bytes(r.posix_bytes)}"]
        for r in d.itertuples()
    ]  # fmt: skip
    return heads, rows
