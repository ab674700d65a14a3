"""The data libraries' layer, HDF5 and PnetCDF (docs/analyzer.md, "Datasets: HDF5 and
PnetCDF"): per dataset (an HDF5 dataset, a netCDF variable) its read and write calls tied to the
MPI-IO and POSIX calls they made, and the POSIX bytes under the library split into raw data
(inside its reads and writes) and its metadata (inside its other calls: H5Fcreate, H5Dcreate,
H5Fflush, H5Fclose, ncmpi_create, ncmpi_close..., where headers and the metadata cache are
written and read).

A call is *under* a library call by the same rule as POSIX under MPI-IO (job.ties): same process
and thread, its span inside the library call's.  A read or write event's path is "FILE:NAME";
its flags bit 0 says whether the transfer was collective (HDF5: asked with H5Pset_dxpl_mpio;
PnetCDF: an *_all call), bits 1-3 of an HDF5 one how HDF5 did it (H5D_mpio_actual_io_mode_t).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .access import READ, WRITE, Arrays, compact_ranks
from .fmt import fmt_bytes
from .job import ties
from .schema import family_of

LIBRARIES = {"hdf5": "HDF5", "pnetcdf": "PnetCDF"}  # families of the layer, and their names
# H5D_mpio_actual_io_mode_t (H5Ppublic.h): how HDF5 did a collective transfer
ACTUAL_IO_MODES = ("none collective", "chunk independent", "chunk collective", "chunk mixed",
                   "contiguous collective")  # fmt: skip

# an independent dataset write of fewer bytes than this is small: on a parallel file system, many of
# them from several ranks are what collective I/O (two-phase, a few aggregators) is for
SMALL_WRITE = 64 * 1024

DATASET_COLUMNS = [
    "dataset", "file", "library", "ranks", "writes", "reads", "bytes_written", "bytes_read", "time",
    "collective_share", "independent_small", "done_independently", "mpi_calls", "mpi_bytes",
    "posix_calls", "posix_bytes",
]  # fmt: skip


def split_path(path: str, family: str) -> tuple[str, str]:
    """(FILE, NAME) of a dataset's path "FILE:NAME": an HDF5 name starts with '/', a netCDF
    name has none."""
    i = path.rfind(":/") if family == "hdf5" else path.rfind(":")
    return (path[:i], path[i + 1 :]) if i >= 0 else (path, "")


def layer(a: Arrays, ev: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(the datasets table, the layer's overview numbers); empty/{} without such events."""
    if not a.datalib.any():
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in DATASET_COLUMNS}), {}
    parent = ties(a, a.datalib)
    rows = np.flatnonzero(a.datalib & ((a.op == READ) | (a.op == WRITE)))
    family = np.array([family_of(f) for f in a.functions] + [""])[a.fn]
    flags = ev["flags"].to_numpy(dtype=np.int64, na_value=-1)
    # raw data vs metadata: POSIX data events by the kind of library call they ran under
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
            "family": family[rows],
            "write": a.op[rows] == WRITE,
            "bytes": a.bytes[rows],
            "dur": a.dur[rows],
            "rank": a.rank[rows],
        }
    )
    fl = flags[rows]
    d["collective"] = (fl >= 0) & (fl & 1 == 1)
    # HDF5: asked collective, done independently (chunks or selections it could not combine)
    actual = np.where(fl >= 0, fl >> 1, -1)
    d["done_indep"] = d["collective"] & np.isin(actual, [0, 1]) & (d["family"] == "hdf5")
    d["small_indep"] = d["write"] & ~d["collective"] & (d["bytes"] < SMALL_WRITE)
    out = []
    for code, g in d.groupby("path", sort=False):
        fam = str(g["family"].iloc[0])
        file, name = split_path(a.paths[int(code)], fam)
        mine = t[t["path"] == code]
        mpi, px = mine[mine["mpi"]], mine[mine["posix"]]
        out.append(
            {
                "dataset": name,
                "file": file,
                "library": LIBRARIES.get(fam, fam),
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


def overview_text(ov: dict[str, Any]) -> str:
    """The layer in one line (report and HTML)."""
    return (
        f"wrote {fmt_bytes(ov['bytes_written'])} in {ov['writes']:,} dataset writes, read "
        f"{fmt_bytes(ov['bytes_read'])} in {ov['reads']:,} reads (not added to the totals); "
        f"POSIX bytes under the library: {fmt_bytes(ov['posix_raw_bytes'])} raw data, "
        f"{fmt_bytes(ov['posix_metadata_bytes'])} metadata in {ov['posix_metadata_calls']:,} "
        "calls"
    )
