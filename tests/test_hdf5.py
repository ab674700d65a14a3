"""HDF5: real parallel HDF5 programs (Debian's libhdf5-openmpi, linked shared: `h5pcc -shlib`;
h5pcc links libhdf5 statically by default, and a static libhdf5's calls never reach the shim)
under Open MPI, 2 and 4 ranks, collective and independent, contiguous and chunked.  Checked
exactly against what the program did: every HDF5 event of every rank, the MPI-IO bytes inside
H5Dwrite/H5Dread, no byte of the file moved outside an HDF5 call, and the analyzer's datasets
table and raw data / metadata split.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import BUILD, PROGS
from test_mpi import DATA_FNS, Job, check_job_shape, needs_mpich, run_job

H5PCC = shutil.which("h5pcc")
H5PCC_MPICH = shutil.which("h5pcc.mpich")  # libhdf5-mpich-dev, beside Open MPI's default

pytestmark = pytest.mark.skipif(
    not (H5PCC and shutil.which("mpirun")), reason="needs h5pcc (libhdf5-openmpi-dev) and mpirun"
)

ROWS, COLS, N = 8, 64, 16  # per rank: ROWS x COLS doubles of /g/temp, N strided ints of /g/idx
H5F_ACC_RDONLY, H5F_ACC_TRUNC = 0, 2
H5D_CONTIGUOUS, H5D_CHUNKED = 1, 2
CONTIG_COLLECTIVE = 4  # H5D_mpio_actual_io_mode_t


def build_h5(name: str, mpi: str = "openmpi") -> Path:
    src = PROGS / f"{name}.c"
    out = BUILD / (name if mpi == "openmpi" else f"{name}.{mpi}")
    cc = H5PCC if mpi == "openmpi" else H5PCC_MPICH
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        BUILD.mkdir(exist_ok=True)
        cmd = [str(cc), "-shlib", "-O1", "-g", "-Wall", "-o", str(out), str(src)]
        subprocess.run(cmd, check=True, cwd=BUILD)  # h5pcc leaves its .o in the cwd
    return out


def expected_h5(r: int, np: int, coll: bool, chunk: bool, f: str) -> list[tuple[Any, ...]]:
    """(fn, path, req, ret, offset, flags, mode, aux) of rank r's HDF5 events, in order; ret
    None: a handle (not compared)."""
    temp, idx = f"{f}:/g/temp", f"{f}:/g/idx"
    tb, ib = ROWS * COLS * 8, N * 4  # each rank's bytes of each dataset
    layout = H5D_CHUNKED if chunk else H5D_CONTIGUOUS
    chunk_bytes = ROWS // 2 * COLS * 8 if chunk else None
    # H5Dwrite/H5Dread's flags: collective asked (bit 0), HDF5's actual I/O mode << 1
    wt = (1 | (CONTIG_COLLECTIVE if not chunk else 2) << 1) if coll else 0
    wi = (1 | CONTIG_COLLECTIVE << 1) if coll else 0
    # aux: [blocks (HDF5's: count x 1-element blocks, no block size given), last byte offset]
    sel_t = [ROWS * COLS, ((r + 1) * ROWS * COLS - 1) * 8]
    return [
        ("H5Pset_fapl_mpio", None, None, 0, None, None, None, np),
        ("H5Fcreate", f, None, None, None, H5F_ACC_TRUNC, None, None),
        ("H5Dcreate2", temp, np * tb, None, None, layout, 8, chunk_bytes),
        ("H5Dcreate2", idx, np * ib, None, None, H5D_CONTIGUOUS, 4, None),
        ("H5Pset_dxpl_mpio", None, None, 0, None, int(coll), None, None),
        ("H5Dwrite", temp, tb, tb, r * tb, wt, 8, sel_t),
        ("H5Dwrite", idx, ib, ib, r * 4, wi, 4, [N, (r + (N - 1) * np) * 4]),
        ("H5Fflush", f, None, 0, None, 1, None, None),
        ("H5Dclose", idx, None, 0, None, None, None, None),
        ("H5Dclose", temp, None, 0, None, None, None, None),
        ("H5Fclose", f, None, 0, None, None, None, None),
        ("H5Fopen", f, None, None, None, H5F_ACC_RDONLY, None, None),
        ("H5Dopen2", temp, np * tb, None, None, layout, 8, chunk_bytes),
        ("H5Dread", temp, tb, tb, r * tb, wt, 8, sel_t),
        ("H5Dclose", temp, None, 0, None, None, None, None),
        ("H5Fclose", f, None, 0, None, None, None, None),
    ]


def inside(outer: dict[str, Any], evs: list[dict[str, Any]], pred: Any) -> list[dict[str, Any]]:
    """Events matching pred made inside `outer`: same thread, within its time span."""
    return [
        e for e in evs
        if e is not outer and pred(e) and e["pid"] == outer["pid"] and e["tid"] == outer["tid"]
        and outer["t_start"] <= e["t_start"] and e["t_end"] <= outer["t_end"]
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("way", "np", "xfer", "layout", "stracer", "mpi"),
    [
        ("ranks", 2, "coll", "contig", False, "openmpi"),
        ("launcher", 4, "indep", "chunk", False, "openmpi"),
        ("ranks", 4, "coll", "chunk", False, "openmpi"),
        ("launcher", 2, "indep", "contig", True, "openmpi"),  # with the stracer: none missed
        # MPICH's HDF5 and ROMIO, through the MPICH-built shim `iotrace run` picks by itself
        ("launcher", 2, "coll", "chunk", False, "mpich"),
    ],
)
def test_parallel_hdf5(
    tmp_path: Path, way: str, np: int, xfer: str, layout: str, stracer: bool, mpi: str
) -> None:
    if mpi == "mpich":
        needs_mpich()
        if not H5PCC_MPICH:
            pytest.skip("needs h5pcc.mpich (libhdf5-mpich-dev)")
    prog = build_h5("h5_io", mpi)
    job = run_job(tmp_path, way, np, prog, "t.h5", xfer, layout, str(ROWS), str(COLS), str(N),
                  io="ompio", stracer=stracer, mpi=mpi)  # fmt: skip
    check_job_shape(job, prog)
    if stracer:
        assert ", 0 missed," in job.proc.stderr, job.proc.stderr
    for r in range(np):
        assert f"rank {r} of {np} ok" in job.proc.stdout
    coll, chunk = xfer == "coll", layout == "chunk"
    f = str(job.work / "t.h5")
    evs = job.events()
    h5 = [e for e in evs if e["fn"].startswith("H5")]
    for r in range(np):
        mine = [e for e in h5 if e["rank"] == r]
        want = expected_h5(r, np, coll, chunk, f)
        assert [e["fn"] for e in mine] == [w[0] for w in want], r
        for e, (fn, path, req, ret, off, flags, mode, aux) in zip(mine, want, strict=True):
            ax = list(e["aux"]) if isinstance(e["aux"], list | tuple) else e["aux"]
            got = (e["path"], e["req"], e["offset"], e["flags"], e["mode"], ax)
            assert got == (path, req, off, flags, mode, aux), (r, fn)
            assert e["ret"] == ret if ret is not None else e["ret"] > 0, (r, fn)
            assert e["errno"] == 0
    check_ties(job, evs, f, chunk)
    check_datasets(job, evs, f, coll, chunk)


def check_ties(job: Job, evs: list[dict[str, Any]], f: str, chunked: bool) -> None:
    """MPI-IO inside H5Dwrite/H5Dread carries exactly their bytes (over all ranks: collective
    I/O may move one rank's bytes in another's call); no byte of the file moves outside an
    HDF5 call; HDF5's own metadata moves inside its other calls."""
    on_file = [e for e in evs if e["path"] == f and e["fn"] in DATA_FNS]
    data_calls = [e for e in evs if e["fn"] in ("H5Dwrite", "H5Dread")]
    for fn in ("H5Dwrite", "H5Dread"):
        calls = [e for e in data_calls if e["fn"] == fn]
        kind = "write" if fn == "H5Dwrite" else "read"

        def mpi_data(x: dict[str, Any], kind: str = kind) -> bool:
            return x["fn"].startswith("MPI_File_") and kind in x["fn"]

        mpi = [x for e in calls for x in inside(e, evs, mpi_data)]
        moved, asked = sum(x["ret"] for x in mpi), sum(e["ret"] for e in calls)
        # reading a chunked dataset, HDF5 also reads its chunk index inside H5Dread (the
        # analyzer's metadata: check_datasets)
        assert moved == asked or (chunked and fn == "H5Dread" and moved > asked), fn
    h5 = [e for e in evs if e["fn"].startswith("H5")]
    under = {id(x) for e in h5 for x in inside(e, evs, lambda x: x["path"] == f)}
    assert [x for x in on_file if id(x) not in under] == []
    raw = {id(x) for e in data_calls for x in inside(e, evs, lambda x: x["path"] == f)}
    meta = [x for x in on_file if id(x) not in raw]
    assert sum(x["ret"] for x in meta if "write" in x["fn"]) > 0
    assert job.np >= 2


def check_datasets(job: Job, evs: list[dict[str, Any]], f: str, coll: bool, chunk: bool) -> None:
    """The analyzer's datasets table and HDF5 overview; HDF5 bytes kept out of the POSIX
    totals and of the files table."""
    from iotrace.analyzer import load
    from iotrace.analyzer.summary import summarise

    s = summarise(load(job.dir))
    np_, tb, ib = job.np, ROWS * COLS * 8, N * 4
    ranks = f"0-{np_ - 1}"
    d = s.datasets.set_index("dataset")
    assert list(d.index) == ["/g/temp", "/g/idx"]
    assert (d["file"] == f).all() and (d["ranks"] == ranks).all()
    assert (d["library"] == "HDF5").all()
    assert d.loc["/g/temp", ["writes", "reads", "bytes_written", "bytes_read"]].tolist() == [
        np_, np_, np_ * tb, np_ * tb]  # fmt: skip
    assert d.loc["/g/idx", ["writes", "reads", "bytes_written", "bytes_read"]].tolist() == [
        np_, 0, np_ * ib, 0]  # fmt: skip
    assert (d["collective_share"] == float(coll)).all()
    assert d["independent_small"].tolist() == [0 if coll else np_, 0 if coll else np_]
    assert (d["done_independently"] == 0).all()
    # 2 datasets x np small independent writes: the insight from 8 on (4 ranks)
    keys = {i.key for i in s.insights}
    assert ("dataset-small-independent" in keys) == (not coll and np_ == 4)
    assert "hdf5-collective-done-independently" not in keys
    # under the calls: the MPI-IO bytes of the calls; reading a chunked dataset, HDF5 also reads
    # its chunk index there (metadata: each rank's selection is two whole chunks, the rest is it)
    under = {name: sum(x["ret"] for e in evs if e["path"] == f"{f}:{name}"
                       and e["fn"] in ("H5Dwrite", "H5Dread")
                       for x in inside(e, evs, lambda x: x["fn"].startswith("MPI_File_")
                                       and x["ret"] > 0))
             for name in ("/g/temp", "/g/idx")}  # fmt: skip
    assert d["mpi_bytes"].to_dict() == {"/g/temp": 2 * np_ * tb, "/g/idx": np_ * ib}
    meta = under["/g/temp"] - 2 * np_ * tb
    assert d["metadata_bytes"].to_dict() == {"/g/temp": meta, "/g/idx": 0}
    assert under["/g/idx"] == np_ * ib
    assert (meta > 0) == chunk
    h5 = s.overview["datasets"]
    assert (h5["writes"], h5["reads"]) == (2 * np_, np_)
    assert (h5["bytes_written"], h5["bytes_read"]) == (np_ * (tb + ib), np_ * tb)
    # POSIX bytes under HDF5 calls: raw data under H5Dread/H5Dwrite, metadata under the others
    # (any file: OMPIO's side files at H5Fcreate's MPI_File_open too)
    split = {True: 0, False: 0}
    for e in evs:
        if e["fn"].startswith("H5"):
            mine = inside(e, evs, lambda x: x["fn"] in DATA_FNS and x["ret"] > 0)
            split[e["fn"] in ("H5Dwrite", "H5Dread")] += sum(x["ret"] for x in mine)
    # (the chunk index read under H5Dread: metadata, one POSIX read per MPI-IO read here)
    assert (h5["posix_raw_bytes"], h5["posix_metadata_bytes"]) == (
        split[True] - meta, split[False] + meta)  # fmt: skip
    assert split[False] > 0 and split[True] - meta == np_ * (2 * tb + ib)
    if np_ == 4 and not coll:  # once: the report and the HTML show the table and the insight
        report = [sys.executable, "-m", "iotrace", "report", str(job.dir)]
        rep = subprocess.run([*report, "--html", str(job.dir / "r.html")], capture_output=True,
                             text=True)  # fmt: skip
        wide = dict(os.environ, COLUMNS="300")
        out = subprocess.run(report, capture_output=True, text=True, env=wide)
        assert rep.returncode == out.returncode == 0, rep.stderr + out.stderr
        assert "Datasets: HDF5, PnetCDF" in out.stdout
        assert "Small independent dataset writes: 8" in out.stdout
        row = next(ln for ln in out.stdout.splitlines() if "/g/temp" in ln and f" {f} " in ln)
        cells = [c.strip() for c in row.strip("│ ").split("│")]
        assert cells[2:8] == ["HDF5", ranks, "4", "16.0 KiB", "4", "16.0 KiB"]
        assert cells[-1] == f"{ROWS // 2}x{COLS}"  # the chunk dimensions
        html = (job.dir / "r.html").read_text()
        assert "<h2>Datasets: HDF5, PnetCDF</h2>" in html and "/g/idx" in html
    # the files table: the file's POSIX bytes only, no row per dataset
    files = s.files.set_index("path")
    wrote = sum(e["ret"] for e in evs if e["path"] == f and e["fn"] in DATA_FNS
                and "write" in e["fn"] and e["ret"] > 0)  # fmt: skip
    assert files.loc[f, "bytes_written"] == wrote
    assert not [p for p in files.index if ":/g/" in p]


def test_collective_done_independently(tmp_path: Path) -> None:
    """A collective H5Dwrite with a datatype conversion (floats into a dataset of doubles):
    HDF5 1.10 does it independently.  The event says so (collective asked, actual I/O mode
    none collective), the datasets table counts it, and the report has the insight."""
    from iotrace.analyzer import load
    from iotrace.analyzer.summary import summarise

    prog = build_h5("h5_io")
    job = run_job(tmp_path, "ranks", 2, prog, "t.h5", "coll", "contig", str(ROWS), str(COLS),
                  str(N), "conv", io="ompio")  # fmt: skip
    f = str(job.work / "t.h5")
    w = [e for e in job.events() if e["fn"] == "H5Dwrite" and e["path"] == f"{f}:/g/temp"]
    assert sorted((e["rank"], e["flags"], e["mode"], e["req"], e["ret"]) for e in w) == [
        (r, 1, 4, ROWS * COLS * 4, ROWS * COLS * 4) for r in range(2)]  # fmt: skip
    s = summarise(load(job.dir))
    d = s.datasets.set_index("dataset")
    assert d["done_independently"].to_dict() == {"/g/temp": 2, "/g/idx": 0}
    found = [i for i in s.insights if i.key == "hdf5-collective-done-independently"]
    assert len(found) == 1 and found[0].numbers == {"calls": 2, "datasets": 1}


CROWS, CCOLS, CBLOCK = 16, 16, 4  # h5_chunks: per rank CROWS x CCOLS doubles, CBLOCK rows a call


def test_chunking_against_access_pattern(tmp_path: Path) -> None:
    """Two chunked datasets written and read back block by block (CBLOCK whole rows): /g/good
    chunked as the blocks, /g/bad in column strips (CROWS x 2).  The shapes and each call's
    chunks touched are recorded (SHAPE, SELECTION), the datasets table sums them, the
    "chunking mismatches" finding names /g/bad and not /g/good.  Read back through H5Oopen/
    H5Oclose, the datasets' reads know their chunks all the same; the transfer property list
    set collective again, the last read is collective (the shim's cache of transfer modes
    forgets a list whose mode is set).  Raw data and metadata under
    H5Dread/H5Dwrite: the MPI-IO calls that fall in the datasets' chunks (where HDF5 says they
    are: H5Dget_chunk_info) are raw data, exactly; the others (the chunk index) metadata."""
    from iotrace.analyzer import load
    from iotrace.analyzer.summary import summarise

    prog = build_h5("h5_chunks")
    np_ = 2
    job = run_job(tmp_path, "ranks", np_, prog, "c.h5", str(CROWS), str(CCOLS), str(CBLOCK),
                  io="ompio")  # fmt: skip
    check_job_shape(job, prog)
    f = str(job.work / "c.h5")
    sel_bytes, nblocks = CBLOCK * CCOLS * 8, CROWS // CBLOCK
    # per call: (chunks touched, in part); /g/bad: CCOLS/2 strips, each cut by the block
    touch = {"/g/good": (1, 0), "/g/bad": (CCOLS // 2, CCOLS // 2)}
    chunk = {"/g/good": (CBLOCK, CCOLS), "/g/bad": (CROWS, 2)}
    for log in job.logs:
        if log.header["rank"] is None:
            continue
        fns = {(e[0], e[2]): log.functions[e[1]] for e in log.events}
        paths = {(e[0], e[2]): log.strings.get(e[5]) for e in log.events}
        # a SHAPE at each create and open of a dataset (H5Dcreate2, H5Oopen), none for "/g"
        got = sorted((fns[k], paths[k], v) for k, v in log.shapes.items())
        assert got == sorted(
            [(fn, f"{f}:{name}", (8, (np_ * CROWS, CCOLS), chunk[name]))
             for fn in ("H5Dcreate2", "H5Oopen") for name in chunk]
            + [("H5Oopen", f"{f}:/g/good", (8, (np_ * CROWS, CCOLS), chunk["/g/good"]))]
        )  # fmt: skip
        sel = sorted((fns[k], paths[k], v) for k, v in log.selections.items())
        assert sel == sorted(
            [(fn, f"{f}:{name}", (sel_bytes, *touch[name]))
             for fn in ("H5Dwrite", "H5Dread") for name in chunk for _ in range(nblocks)]
            + [("H5Dread", f"{f}:/g/good", (sel_bytes, *touch["/g/good"]))]
        )  # fmt: skip
    evs = job.events()
    opens = [(e["rank"], e["fn"], e["path"], e["flags"], e["mode"], e["aux"]) for e in evs
             if e["fn"] in ("H5Oopen", "H5Oclose")]  # fmt: skip
    for r in range(np_):
        assert [o[1:] for o in opens if o[0] == r] == [
            ("H5Oopen", f"{f}:/g", None, None, None),
            ("H5Oopen", f"{f}:/g/good", H5D_CHUNKED, 8, CBLOCK * CCOLS * 8),
            ("H5Oclose", f"{f}:/g/good", None, None, None),
            ("H5Oopen", f"{f}:/g/bad", H5D_CHUNKED, 8, CROWS * 2 * 8),
            ("H5Oclose", f"{f}:/g/bad", None, None, None),
            ("H5Oopen", f"{f}:/g/good", H5D_CHUNKED, 8, CBLOCK * CCOLS * 8),
            ("H5Oclose", f"{f}:/g/good", None, None, None),
            ("H5Oclose", f"{f}:/g", None, None, None),
        ]  # fmt: skip
        reads = [e["flags"] & 1 for e in evs if e["fn"] == "H5Dread" and e["rank"] == r]
        assert reads == [0] * 2 * nblocks + [1]

    s = summarise(load(job.dir))
    d = s.datasets.set_index("dataset")
    for name, (n, part) in touch.items():
        # writes and reads of each dataset (/g/good: and its collective read)
        calls = 2 * np_ * nblocks + (np_ if name == "/g/good" else 0)
        row = d.loc[name]
        assert (row["dims"], row["chunk"]) == (f"{np_ * CROWS}x{CCOLS}", "x".join(
            map(str, chunk[name])))  # fmt: skip
        assert row["chunk_bytes"] == 8 * chunk[name][0] * chunk[name][1]
        assert (row["chunked_calls"], row["chunked_bytes"]) == (calls, calls * sel_bytes)
        assert (row["chunks_touched"], row["chunks_partial"]) == (calls * n, calls * part)
    found = [i for i in s.insights if i.key == "hdf5-chunking-mismatch"]
    assert [i.subject for i in found] == [f"{f}:/g/bad"]
    assert found[0].numbers["chunks_per_call"] == CCOLS // 2
    assert found[0].numbers["partial_share"] == 1.0

    # the oracle of raw data: where HDF5 put each dataset's chunks
    extents: dict[str, list[tuple[int, int]]] = {name: [] for name in chunk}
    for ln in job.proc.stdout.splitlines():
        if ln.startswith("chunk "):
            _, name, addr, size = ln.split()
            extents[name].append((int(addr), int(addr) + int(size)))
    assert [len(extents[n]) for n in chunk] == [np_ * nblocks, np_ * CCOLS // 2]
    for name in chunk:
        raw = meta = 0
        posix_meta = 0
        for e in evs:
            if e["path"] != f"{f}:{name}" or e["fn"] not in ("H5Dwrite", "H5Dread"):
                continue
            for x in inside(e, evs, lambda x: x["fn"].startswith("MPI_File_") and x["ret"] > 0):
                lo, hi = x["offset"], x["offset"] + x["ret"]
                if any(a <= lo and hi <= b for a, b in extents[name]):
                    raw += x["ret"]
                else:
                    meta += x["ret"]
                    posix_meta += sum(p["ret"] for p in inside(x, evs, lambda p: p["fn"]
                                                               in DATA_FNS))  # fmt: skip
        assert meta > 0  # the chunk index, read under the first H5Dread
        assert (d.loc[name, "mpi_bytes"], d.loc[name, "metadata_bytes"]) == (raw, posix_meta)
    # written: the selections; read: whole chunks (they fit HDF5's chunk cache)
    calls = 2 * np_ * nblocks
    assert d.loc["/g/good", "mpi_bytes"] == (calls + np_) * sel_bytes
    assert d.loc["/g/bad", "mpi_bytes"] == calls // 2 * sel_bytes + np_ * CROWS * CCOLS * 8


# h5py built for Open MPI (Debian's python3-h5py-mpi) in the system's Python: libhdf5 and libmpi
# come in with the extension modules, loaded RTLD_LOCAL, outside the global scope the shim's
# lookups searched.  No h5py + MPICH test: Debian builds h5py's MPI flavour for Open MPI alone
# (python3-h5py-mpi needs libhdf5-openmpi and libopenmpi3; there is no python3-h5py-mpich), and
# its mpi4py too; PyPI's h5py wheels are serial, so one for MPICH means building mpi4py and h5py
# from source against libhdf5-mpich in every CI run.  MPICH's parallel HDF5 is tested in C
# (test_parallel_hdf5's "mpich" case).
SYS_PY = Path("/usr/bin/python3")
H5PY_SCRIPT = """
import h5py, numpy as np
from mpi4py import MPI
comm = MPI.COMM_WORLD
rank, size, n = comm.rank, comm.size, 1 << 14
with h5py.File("p.h5", "w", driver="mpio", comm=comm) as f:
    d = f.create_dataset("x", (size * n,), dtype="f8")
    with d.collective:
        d[rank * n:(rank + 1) * n] = np.full(n, rank, dtype="f8")
with h5py.File("p.h5", "r", driver="mpio", comm=comm) as f:
    back = f["x"][((rank + 1) % size) * n:((rank + 1) % size + 1) * n]
print(f"rank {rank} read {int(back.sum())} mpi {h5py.get_config().mpi}")
"""


def _h5py_mpi() -> bool:
    env = dict(os.environ, H5PY_ALWAYS_USE_MPI="1")
    code = "import h5py, mpi4py; assert h5py.get_config().mpi"
    return SYS_PY.exists() and subprocess.run([SYS_PY, "-c", code], env=env,
                                              capture_output=True).returncode == 0  # fmt: skip


@pytest.mark.skipif(not _h5py_mpi(), reason="needs Debian's python3-h5py-mpi")
def test_h5py_mpio_in_python(tmp_path: Path) -> None:
    """h5py's mpio driver, a collective write and an independent read-back, 2 ranks: the app
    runs (it died by SIGABRT: "no libc function 'H5Pset_fapl_mpio' to wrap") and each rank's
    MPI-IO bytes are its block (they were 0: Open MPI's MPI_BYTE, a weak reference, unresolved)."""
    script = tmp_path / "h5p.py"
    script.write_text(H5PY_SCRIPT)
    job = run_job(tmp_path, "ranks", 2, SYS_PY, str(script), io="ompio")
    n = 1 << 14
    for r in range(2):
        assert f"rank {r} read {((r + 1) % 2) * n} mpi True" in job.proc.stdout
    f = str(job.work / "p.h5")
    evs = [e for e in job.events() if e["path"] == f]
    for r in range(2):
        mine = [e for e in evs if e["rank"] == r]
        coll = [e for e in mine if e["fn"] == "MPI_File_write_at_all"]
        assert [e["ret"] for e in coll] == [n * 8], coll
        reads = sum(e["ret"] for e in mine if e["fn"] == "MPI_File_read_at")
        assert reads >= n * 8
    from iotrace.analyzer import load, summarise

    s = summarise(load(job.dir))
    assert s.ranks["mpi_bytes_written"].min() >= n * 8
    row = s.datasets.set_index("dataset").loc["/x"]
    assert (row["bytes_written"], row["bytes_read"]) == (2 * n * 8, 2 * n * 8)
