"""PnetCDF (Debian's libpnetcdf-dev, built on Open MPI): a real parallel program writing and
reading back a 2-D variable, collective (2 ranks) and independent (4 ranks).  Checked exactly:
every PnetCDF event of every rank, the MPI-IO bytes under the put/get calls, no byte of the
file moved outside a PnetCDF call, and the analyzer's datasets table (a variable is a dataset).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import BUILD, PROGS
from test_hdf5 import inside
from test_mpi import DATA_FNS, MPICC, check_job_shape, run_job

pytestmark = pytest.mark.skipif(
    not (MPICC and shutil.which("mpirun") and Path("/usr/include/pnetcdf.h").exists()),
    reason="needs mpicc, mpirun and PnetCDF (libpnetcdf-dev)",
)

ROWS, COLS = 8, 64
NC_CLOBBER_64BIT_DATA, NC_NOWRITE = 0x20, 0


def build_pnc(name: str = "pnc_io") -> Path:
    src, out = PROGS / f"{name}.c", BUILD / name
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        BUILD.mkdir(exist_ok=True)
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "pnetcdf"], check=True,
                               capture_output=True, text=True).stdout.split()  # fmt: skip
        cmd = [str(MPICC), "-O1", "-g", "-Wall", "-o", str(out), str(src), *flags]
        subprocess.run(cmd, check=True)
    return out


@pytest.mark.parametrize(("way", "np", "xfer"), [("ranks", 2, "coll"), ("launcher", 4, "indep")])
def test_pnetcdf(tmp_path: Path, way: str, np: int, xfer: str) -> None:
    from iotrace.analyzer import load
    from iotrace.analyzer.summary import summarise

    prog = build_pnc()
    job = run_job(tmp_path, way, np, prog, "t.nc", xfer, str(ROWS), str(COLS), io="ompio")
    check_job_shape(job, prog)
    coll = xfer == "coll"
    f, tb = str(job.work / "t.nc"), ROWS * COLS * 8
    var = f"{f}:temp"
    evs = job.events()
    put = "ncmpi_put_vara_double_all" if coll else "ncmpi_put_vara_double"
    for r in range(np):
        assert f"rank {r} of {np} ok" in job.proc.stdout
        mine = [e for e in evs if e["fn"].startswith("ncmpi_") and e["rank"] == r]
        got = [(e["fn"], e["path"], e["req"], e["ret"], e["offset"], e["flags"], e["mode"],
                e["aux"] if e["fn"] not in ("ncmpi_create", "ncmpi_open") else None)
               for e in mine]  # fmt: skip
        data = (tb, tb, r * tb)
        file_call = (f, None, 0, None, None, None, None)
        indep = [] if coll else [("ncmpi_begin_indep_data", *file_call)]
        assert got == [
            ("ncmpi_create", f, None, 0, None, NC_CLOBBER_64BIT_DATA, None, None),
            ("ncmpi_enddef", *file_call),
            *indep,
            (put, var, *data, int(coll), 8, ROWS * COLS),
            *([] if coll else [("ncmpi_end_indep_data", *file_call)]),
            ("ncmpi_close", *file_call),
            ("ncmpi_open", f, None, 0, None, NC_NOWRITE, None, None),
            ("ncmpi_get_vara_all", var, *data, 1, 8, ROWS * COLS),
            ("ncmpi_close", *file_call),
        ], r
    # the MPI-IO bytes under the puts and gets are theirs, over the ranks
    for kind in ("put", "get"):
        calls = [e for e in evs if e["fn"].startswith(f"ncmpi_{kind}_")]
        mpi = [x for e in calls for x in inside(e, evs, lambda x: x["fn"].startswith("MPI_File_")
               and x["ret"] > 0)]  # fmt: skip
        assert sum(x["ret"] for x in mpi) == sum(e["ret"] for e in calls) == np * tb, kind
    lib = [e for e in evs if e["fn"].startswith("ncmpi_")]
    under = {id(x) for e in lib for x in inside(e, evs, lambda x: x["path"] == f)}
    on_file = [e for e in evs if e["path"] == f and e["fn"] in DATA_FNS]
    assert on_file and [x for x in on_file if id(x) not in under] == []
    # the datasets table
    s = summarise(load(job.dir))
    row: dict[str, Any] = s.datasets.set_index("dataset").loc["temp"].to_dict()
    assert (row["file"], row["library"], row["ranks"]) == (f, "PnetCDF", f"0-{np - 1}")
    assert [row[k] for k in ("writes", "reads", "bytes_written", "bytes_read")] == [
        np, np, np * tb, np * tb]  # fmt: skip
    assert row["collective_share"] == (1.0 if coll else 0.5)
    assert row["mpi_bytes"] == 2 * np * tb
    ov = s.overview["datasets"]
    assert (ov["writes"], ov["reads"], ov["bytes_written"]) == (np, np, np * tb)
    assert ov["posix_raw_bytes"] == 2 * np * tb and ov["posix_metadata_bytes"] > 0


R, C = 4, 8  # pnc_more: each rank's rows and the columns of d, f, i


def _more_expected(r: int, f: str, coll: bool) -> list[tuple[Any, ...]]:
    """(fn, path, req, offset, flags, mode, aux) of rank r's puts and gets in one pass of
    pnc_more (collective or independent)."""
    b, sfx = r * R, "_all" if coll else ""
    d, fv, iv = f"{f}:d", f"{f}:f", f"{f}:i"

    def at(y: int, x: int, size: int = 8) -> int:
        return (y * C + x) * size

    flexible_get = [] if coll else [("ncmpi_get_vara", d, R * C * 8, at(b, 0), 0, 8, R * C)]
    return [
        (f"ncmpi_put_vara{sfx}", d, C * 8, at(b, 0), int(coll), 8, C),
        (f"ncmpi_put_var1{sfx}", d, 8, at(b + 1, 0), int(coll), 8, 1),
        (f"ncmpi_put_vars{sfx}", d, (C - 1) * 8, at(b + 1, 1), int(coll), 8, C - 1),
        (f"ncmpi_put_varm{sfx}", d, 2 * C * 8, at(b + 2, 0), int(coll), 8, 2 * C),
        (f"ncmpi_put_vara_float{sfx}", fv, R * C * 4, at(b, 0, 4), int(coll), 4, R * C),
        (f"ncmpi_put_vara_int{sfx}", iv, R * C * 4, at(b, 0, 4), int(coll), 4, R * C),
        (f"ncmpi_get_var1{sfx}", d, 8, at(b, 0), int(coll), 8, 1),
        (f"ncmpi_get_vars{sfx}", d, C * 8, at(b, 0), int(coll), 8, C),
        (f"ncmpi_get_varm{sfx}", d, R * C * 8, at(b, 0), int(coll), 8, R * C),
        *flexible_get,
        (f"ncmpi_get_vara_double{sfx}", d, R * C * 8, at(b, 0), int(coll), 8, R * C),
        (f"ncmpi_get_vara_float{sfx}", fv, R * C * 4, at(b, 0, 4), int(coll), 4, R * C),
        (f"ncmpi_get_vara_int{sfx}", iv, R * C * 4, at(b, 0, 4), int(coll), 4, R * C),
    ]


def test_pnetcdf_other_forms(tmp_path: Path) -> None:
    """The one-element (var1), strided (vars) and mapped (varm) calls, collective and
    independent, and the typed float/int and flexible vara calls: each an event with its bytes,
    offset and elements, the MPI-IO bytes under them theirs, and rows of the datasets table.
    The nonblocking posts (iput, bput, iget): events with their bytes and request ids, their data
    under ncmpi_wait_all / ncmpi_wait (raw data of the file)."""
    from iotrace.analyzer import load
    from iotrace.analyzer.summary import summarise

    prog = build_pnc("pnc_more")
    np = 2
    job = run_job(tmp_path, "ranks", np, prog, "m.nc", io="ompio")
    check_job_shape(job, prog)
    f = str(job.work / "m.nc")
    evs = job.events()
    data = [e for e in evs if e["fn"].startswith(("ncmpi_put_", "ncmpi_get_"))]
    for r in range(np):
        assert f"rank {r} of {np} ok" in job.proc.stdout
        got = [(e["fn"], e["path"], e["req"], e["offset"], e["flags"], e["mode"], e["aux"])
               for e in data if e["rank"] == r]  # fmt: skip
        assert got == _more_expected(r, f, True) + _more_expected(r, f, False), r
        assert all(e["ret"] == e["req"] and e["errno"] == 0 for e in data)
    posts = [
        e
        for e in evs
        if e["fn"]
        in ("ncmpi_iput_vara", "ncmpi_iget_vara", "ncmpi_bput_vara", "ncmpi_wait_all", "ncmpi_wait")
    ]
    for r in range(np):
        got = [(e["fn"], e["path"], e["req"], e["offset"], e["flags"], e["mode"],
                e["aux"][0] if isinstance(e["aux"], list | tuple) else e["aux"])
               for e in posts if e["rank"] == r]  # fmt: skip
        blk = R * C
        assert got == [
            ("ncmpi_iput_vara", f"{f}:d", blk * 8, r * blk * 8, 0, 8, blk),
            ("ncmpi_bput_vara", f"{f}:f", blk * 4, r * blk * 4, 0, 4, blk),
            ("ncmpi_iget_vara", f"{f}:i", blk * 4, r * blk * 4, 0, 4, blk),
            ("ncmpi_wait_all", f, 3, None, 1, None, None),
            ("ncmpi_iget_vara", f"{f}:d", blk * 8, r * blk * 8, 0, 8, blk),
            ("ncmpi_wait", f, 1, None, 0, None, None),
        ], r
        ids = [e["aux"][1] for e in posts if e["rank"] == r and e["fn"] != "ncmpi_wait"
               and e["fn"] != "ncmpi_wait_all"]  # fmt: skip
        assert len(set(ids[:3])) == 3 and all(i >= 0 for i in ids)
    waits = [e for e in posts if e["fn"].startswith("ncmpi_wait")]
    moved = sum(x["ret"] for e in waits for x in inside(e, evs, lambda x: x["fn"].startswith(
        "MPI_File_") and x["ret"] > 0))  # fmt: skip
    assert moved == np * R * C * (8 + 4 + 4 + 8)
    for kind in ("put", "get"):
        calls = [e for e in data if e["fn"].startswith(f"ncmpi_{kind}_")]
        mpi = [x for e in calls for x in inside(e, evs, lambda x: x["fn"].startswith("MPI_File_")
               and x["ret"] > 0)]  # fmt: skip
        assert sum(x["ret"] for x in mpi) == sum(e["ret"] for e in calls), kind
    s = summarise(load(job.dir))
    d = s.datasets.set_index("dataset")
    want = {}
    nb = [
        ("ncmpi_iput_vara", f"{f}:d", R * C * 8),
        ("ncmpi_bput_vara", f"{f}:f", R * C * 4),
        ("ncmpi_iget_vara", f"{f}:i", R * C * 4),
        ("ncmpi_iget_vara", f"{f}:d", R * C * 8),
    ]
    for r in range(np):
        for e in _more_expected(r, f, True) + _more_expected(r, f, False) + nb:
            w = want.setdefault(e[1].rsplit(":", 1)[1], [0, 0, 0, 0])
            put = e[0].startswith(("ncmpi_put_", "ncmpi_iput", "ncmpi_bput"))
            w[0 if put else 1] += 1
            w[2 if put else 3] += e[2]
    assert {n: d.loc[n, ["writes", "reads", "bytes_written", "bytes_read"]].tolist()
            for n in want} == want  # fmt: skip
    assert (d["library"] == "PnetCDF").all()
    # d: 8 collective calls, 9 independent ones (the flexible get_vara is independent only) and
    # 2 nonblocking posts (neither: counted not collective); f, i: 2, 2 and 1 (per rank)
    assert d["collective_share"].to_dict() == {"d": 8 / 19, "f": 2 / 5, "i": 2 / 5}
    # the data the waits moved: raw data, of no dataset
    ov = s.overview["datasets"]
    assert ov["posix_raw_bytes"] == sum(d["posix_bytes"]) + moved
