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

Under an H5Dread/H5Dwrite, HDF5 also reads and writes metadata (a chunked dataset's chunk
index).  Its SELECTION record says how many bytes of the file the call's selection covers and
how many chunks it touches: the MPI-IO data calls under it, latest first, are raw data while
they add up to no more than the larger of those bytes and the touched chunks' bytes (a chunk
that fits HDF5's chunk cache is read whole), the earlier ones metadata (HDF5 looks the chunks up
before it moves them); a POSIX call under one of those MPI-IO calls is what that call is, a
POSIX call right under the HDF5 call (no MPI-IO driver) goes by the same rule.  Not exact when
the chunks are read in part (larger than the chunk cache) and a metadata read fits in what the
whole chunks would have been, nor for metadata read after raw data in the same call.

The chunking of a chunked dataset (its SHAPE record: dimensions, chunk dimensions) is compared
with its reads and writes (their SELECTION records: the chunks each selection's bounding box
touches, and how many of them only in part): `chunking_findings`.
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

# PnetCDF's nonblocking posts (a dataset's read or write, its data moved later) and the waits
# under which their data moves (raw data of the file, no dataset's)
POSTS = ("ncmpi_iput_vara", "ncmpi_iget_vara", "ncmpi_bput_vara")
WAITS = ("ncmpi_wait_all", "ncmpi_wait")

# an independent dataset write of fewer bytes than this is small: on a parallel file system, many of
# them from several ranks are what collective I/O (two-phase, a few aggregators) is for
SMALL_WRITE = 64 * 1024

DATASET_COLUMNS = [
    "dataset", "file", "library", "ranks", "writes", "reads", "bytes_written", "bytes_read", "time",
    "collective_share", "independent_small", "done_independently", "mpi_calls", "mpi_bytes",
    "posix_calls", "posix_bytes", "metadata_bytes", "dims", "chunk", "chunk_bytes",
    "chunked_calls", "chunked_bytes", "chunks_touched", "chunks_partial",
]  # fmt: skip
# merged over parts (analyzer/parts.py) by sum; dims, chunk, chunk_bytes: the first known
DATASET_SUMS = [
    "writes", "reads", "bytes_written", "bytes_read", "time", "independent_small",
    "done_independently", "mpi_calls", "mpi_bytes", "posix_calls", "posix_bytes", "metadata_bytes",
    "chunked_calls", "chunked_bytes", "chunks_touched", "chunks_partial",
]  # fmt: skip
SHAPE_COLUMNS = ["dims", "chunk", "chunk_bytes"]

# chunking that mismatches the access pattern (chunking_findings), out of at least this many
# reads and writes on a chunked dataset: more than this share of the chunks they touch only
# touched in part (accesses cut across chunks, or many accesses share each chunk)...
CHUNK_MIN_CALLS = 4
CHUNK_PARTIAL_SHARE = 0.5
# ...or at least this many chunks per access on average (chunks much smaller than accesses)
CHUNKS_PER_ACCESS = 16


def split_path(path: str, family: str) -> tuple[str, str]:
    """(FILE, NAME) of a dataset's path "FILE:NAME": an HDF5 name starts with '/', a netCDF
    name has none."""
    i = path.rfind(":/") if family == "hdf5" else path.rfind(":")
    return (path[:i], path[i + 1 :]) if i >= 0 else (path, "")


def _records(a: Arrays, chunking: pd.DataFrame | None, rows: np.ndarray) -> pd.DataFrame:
    """The SHAPE/SELECTION record (chunking's columns) of each of `rows` (events), in their
    order: size -1, bytes -1 where it has none."""
    key = pd.DataFrame({"proc": a.proc[rows], "tid": a.tid[rows], "t_start": a.t_start[rows]})
    if chunking is None or chunking.empty:
        c = pd.DataFrame(columns=["proc", "tid", "t_start", "size", "dims", "chunk", "bytes",
                                  "chunks", "partial"])  # fmt: skip
    else:
        c = chunking.drop_duplicates(["proc", "tid", "t_start"])
    m = key.astype(np.int64).merge(c.astype({k: np.int64 for k in ("proc", "tid", "t_start")}),
                                   how="left", on=["proc", "tid", "t_start"])  # fmt: skip
    for col in ("size", "bytes", "chunks", "partial"):
        m[col] = m[col].fillna(-1).astype(np.int64)
    for col in ("dims", "chunk"):
        m[col] = m[col].fillna("")
    return m


def _raw_first(idx: np.ndarray, call: np.ndarray, a: Arrays, want: np.ndarray) -> np.ndarray:
    """Of the events idx under the library calls call (rows), those that are raw data: in each
    call, latest first, while their bytes add up to no more than want[call]."""
    if len(idx) == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((-a.t_start[idx], call))
    cs = pd.Series(a.bytes[idx][order]).groupby(call[order]).cumsum().to_numpy()
    raw = np.empty(len(idx), dtype=bool)
    raw[order] = cs <= want[call[order]]
    return raw


def _raw_data(
    a: Arrays, parent: np.ndarray, in_data: np.ndarray, want: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the POSIX and of the MPI-IO data events that moved raw data under the library's
    reads and writes (in_data: under one of them; the others under its calls: metadata).
    want: per event row, the bytes of the file its selection covers (-1: unknown, everything
    under it is raw data)."""
    known = in_data.copy()
    known[in_data] = want[parent[in_data]] >= 0
    raw, mpi_raw = in_data & a.data & ~known, in_data & a.mpi_data & ~known
    if not known.any():
        return raw, mpi_raw
    mpi = np.flatnonzero(known & a.mpi_data)
    mpi_raw[mpi] = _raw_first(mpi, parent[mpi], a, want)
    px = np.flatnonzero(known & a.data)
    if len(mpi):  # a POSIX call under an MPI-IO call is what that call is
        mparent = ties(a, a.mpi)[px]
        via = mparent >= 0
        raw[px[via]] = mpi_raw[mparent[via]]
        px = px[~via]
    raw[px] = _raw_first(px, parent[px], a, want)
    return raw, mpi_raw


def layer(
    a: Arrays,
    ev: pd.DataFrame,
    chunking: pd.DataFrame | None = None,
    shapes_before: dict[str, tuple[str, str, int]] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(the datasets table, the layer's overview numbers); empty/{} without such events.
    chunking: the trace's HDF5 SHAPE and SELECTION records (Trace.chunking); `shapes_before`:
    _shapes of the process's events before these (a range of a process), by path, updated."""
    if not a.datalib.any():
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in DATASET_COLUMNS}), {}
    parent = ties(a, a.datalib)
    rows = np.flatnonzero(a.datalib & ((a.op == READ) | (a.op == WRITE)))
    family = np.array([family_of(f) for f in a.functions] + [""])[a.fn]
    flags = ev["flags"].to_numpy(dtype=np.int64, na_value=-1)
    sel = _records(a, chunking, rows)
    shapes = _shapes(a, chunking)
    if shapes_before is not None:  # the first open's shape: an earlier range's if it had one
        code = {p: i for i, p in enumerate(a.paths)}
        for c, got in shapes.items():
            shapes_before.setdefault(a.paths[c], got)
        shapes = {code[p]: got for p, got in shapes_before.items() if p in code}
    # the raw data a call may move: its selection's bytes, or the whole chunks it touches
    # (HDF5 reads a chunk that fits its chunk cache whole)
    chunk_bytes = np.array([shapes.get(int(c), ("", "", 0))[2] for c in a.path[rows]], np.int64)
    want = np.full(a.n, -1, dtype=np.int64)
    nbytes = sel["bytes"].to_numpy()
    want[rows] = np.where(
        nbytes < 0, -1, np.maximum(nbytes, sel["chunks"].to_numpy() * chunk_bytes)
    )
    # raw data vs metadata: POSIX data events under the library's reads and writes, by the
    # bytes their selections cover; under its other calls: metadata
    under = parent >= 0
    posix = a.data
    in_data = np.zeros(a.n, dtype=bool)
    waits = np.flatnonzero(np.isin(a.fn, [i for i, f in enumerate(a.functions) if f in WAITS]))
    in_data[under] = np.isin(parent[under], np.concatenate([rows, waits]))
    raw, mpi_raw = _raw_data(a, parent, in_data, want)
    ov = {
        "writes": int((a.op[rows] == WRITE).sum()),
        "reads": int((a.op[rows] == READ).sum()),
        "bytes_written": int(a.bytes[rows][a.op[rows] == WRITE].sum()),
        "bytes_read": int(a.bytes[rows][a.op[rows] == READ].sum()),
        "posix_raw_bytes": int(a.bytes[raw].sum()),
        "posix_metadata_bytes": int(a.bytes[posix & under & ~raw].sum()),
        "posix_metadata_calls": int((posix & under & ~raw).sum()),
    }
    if len(rows) == 0:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in DATASET_COLUMNS}), ov
    tied = np.flatnonzero(in_data)
    t = pd.DataFrame(
        {
            "call": parent[tied],
            "mpi": mpi_raw[tied],
            "posix": raw[tied],
            "meta": posix[tied] & ~raw[tied],
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
            "chunks": sel["chunks"].to_numpy(),
            "partial": sel["partial"].to_numpy(),
        }
    )
    fl = flags[rows]
    d["collective"] = (fl >= 0) & (fl & 1 == 1)
    # HDF5: asked collective, done independently (chunks or selections it could not combine)
    actual = np.where(fl >= 0, fl >> 1, -1)
    d["done_indep"] = d["collective"] & np.isin(actual, [0, 1]) & (d["family"] == "hdf5")
    post = np.isin(a.fn[rows], [i for i, f in enumerate(a.functions) if f in POSTS])
    # a nonblocking post is neither: its wait decides how the data moves
    d["small_indep"] = d["write"] & ~d["collective"] & (d["bytes"] < SMALL_WRITE) & ~post
    out = []
    for code, g in d.groupby("path", sort=False):
        fam = str(g["family"].iloc[0])
        file, name = split_path(a.paths[int(code)], fam)
        mine = t[t["path"] == code]
        mpi, px = mine[mine["mpi"]], mine[mine["posix"]]
        ck = g[g["chunks"] >= 0]
        dims, chunk, chunk_bytes = shapes.get(int(code), ("", "", 0))
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
                "metadata_bytes": int(mine.loc[mine["meta"], "bytes"].sum()),
                "dims": dims,
                "chunk": chunk,
                "chunk_bytes": chunk_bytes,
                "chunked_calls": len(ck),
                "chunked_bytes": int(ck["bytes"].sum()),
                "chunks_touched": int(ck["chunks"].sum()),
                "chunks_partial": int(ck["partial"].sum()),
            }
        )
    res = pd.DataFrame(out, columns=DATASET_COLUMNS)
    res["total"] = res["bytes_written"] + res["bytes_read"]
    res = res.sort_values(["total", "dataset"], ascending=[False, True]).drop(columns="total")
    return res.reset_index(drop=True), ov


def _shapes(a: Arrays, chunking: pd.DataFrame | None) -> dict[int, tuple[str, str, int]]:
    """Path code of a dataset -> (dims, chunk dims, bytes of a chunk) from the SHAPE record of
    its first open or create (H5Dcreate2, H5Dopen2, H5Oopen)."""
    if chunking is None or chunking.empty or not (chunking["size"] >= 0).any():
        return {}
    fns = [i for i, f in enumerate(a.functions) if f in ("H5Dcreate2", "H5Dopen2", "H5Oopen")]
    opens = np.flatnonzero(a.datalib & (a.path >= 0) & np.isin(a.fn, fns))
    got = _records(a, chunking, opens)
    out: dict[int, tuple[str, str, int]] = {}
    for code, r in zip(a.path[opens].tolist(), got.itertuples(), strict=True):
        if r.size >= 0 and code not in out:
            n = r.size * int(np.prod([int(x) for x in r.chunk.split("x")])) if r.chunk else 0
            out[code] = (r.dims, r.chunk, n)
    return out


def merge(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The datasets tables of parts of a trace as one (analyzer/parts.py): per dataset sums,
    the ranks' union, the collective share weighted by calls, the first shape known."""
    from .job import _expand

    tables = [t for t in tables if len(t)]
    if not tables:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in DATASET_COLUMNS})
    d = pd.concat(tables, ignore_index=True)
    d = d.assign(n=d["writes"] + d["reads"])
    d["collective"] = d["collective_share"] * d["n"]
    g = d.groupby(["dataset", "file", "library"], sort=False)
    out = g[[*DATASET_SUMS, "n", "collective"]].sum()
    out["ranks"] = g["ranks"].agg(lambda r: compact_ranks([x for lst in r for x in _expand(lst)]))
    known = d[d["dims"] != ""].groupby(["dataset", "file", "library"], sort=False)
    for c in SHAPE_COLUMNS:
        out[c] = known[c].first()
    out["dims"] = out["dims"].fillna("")
    out["chunk"] = out["chunk"].fillna("")
    out["chunk_bytes"] = out["chunk_bytes"].fillna(0).astype(np.int64)
    out = out.reset_index()
    out["collective_share"] = out["collective"] / out["n"].clip(lower=1)
    out["total"] = out["bytes_written"] + out["bytes_read"]
    out = out.sort_values(["total", "dataset"], ascending=[False, True])
    return out[DATASET_COLUMNS].reset_index(drop=True)


def chunking_findings(d: pd.DataFrame) -> list[dict[str, Any]]:
    """Chunked datasets whose chunks mismatch how they are read and written: per such dataset
    its subject ("FILE:NAME"), what is wrong, the time and bytes of its reads and writes, and
    the numbers behind it."""
    out: list[dict[str, Any]] = []
    if d.empty or "chunked_calls" not in d:
        return out
    for r in d[d["chunked_calls"] >= CHUNK_MIN_CALLS].itertuples():
        calls, touched, partial = int(r.chunked_calls), int(r.chunks_touched), int(r.chunks_partial)
        per_call, share = touched / calls, partial / max(touched, 1)
        access = r.chunked_bytes / calls
        if share > CHUNK_PARTIAL_SHARE:
            what = (
                "each access cuts across chunks it covers only in part"
                if per_call >= 2
                else "many accesses share each chunk, each covering a part of it"
            )
        elif per_call >= CHUNKS_PER_ACCESS:
            what = "chunks much smaller than the accesses: each access is split into many chunks"
        else:
            continue
        out.append(
            {
                "subject": f"{r.file}:{r.dataset}",
                "what": what,
                "time": float(r.time),
                "bytes": int(r.bytes_written + r.bytes_read),
                "numbers": dict(
                    calls=calls,
                    chunks_touched=touched,
                    chunks_partial=partial,
                    chunks_per_call=per_call,
                    partial_share=share,
                    access_bytes=access,
                    chunk_bytes=int(r.chunk_bytes),
                    dims=r.dims,
                    chunk=r.chunk,
                ),
            }
        )
    return out


def overview_text(ov: dict[str, Any]) -> str:
    """The layer in one line (report and HTML)."""
    return (
        f"wrote {fmt_bytes(ov['bytes_written'])} in {ov['writes']:,} dataset writes, read "
        f"{fmt_bytes(ov['bytes_read'])} in {ov['reads']:,} reads (not added to the totals); "
        f"POSIX bytes under the library: {fmt_bytes(ov['posix_raw_bytes'])} raw data, "
        f"{fmt_bytes(ov['posix_metadata_bytes'])} metadata in {ov['posix_metadata_calls']:,} "
        "calls"
    )
