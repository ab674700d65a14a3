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


def build_pnc() -> Path:
    src, out = PROGS / "pnc_io.c", BUILD / "pnc_io"
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
