"""The analyzer's view of a job (issue 5, "Analysis for jobs"): real Open MPI runs of the
programs of test_mpi.py, the report's job numbers checked exactly against what they did."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import iotrace
from iotrace.analyzer import load, schema, summarise
from iotrace.analyzer.fmt import fmt_bytes
from test_mpi import MPICC, MPIRUN, _shim_has_mpi, build_mpi, run_job

pytestmark = [
    pytest.mark.skipif(not (MPIRUN and MPICC), reason="needs mpirun and mpicc (Open MPI)"),
    pytest.mark.skipif(not _shim_has_mpi(), reason="shim built without MPI-IO wrappers"),
]

NBLK, BS = 8, 64 * 1024
B, C = 64 * 1024, 4 * 1024


def rank_bytes(ev: pd.DataFrame, path: str, fn: str) -> dict[int, int]:
    m = ev[(ev["path"] == path) & (ev["function"] == fn)]
    return {int(r): int(b) for r, b in m.groupby("rank")["bytes"].sum().items()}


def check_ranks_apart(s, job) -> None:
    """The per-rank table has the ranks and only them; the launcher is reported apart."""
    assert s.ranks["rank"].tolist() == list(range(job.np))
    assert s.job["ranks"] == job.np
    nr = s.job["non_rank"]
    if job.way == "launcher":
        assert nr["processes"] >= 1 and set(nr["commands"]) <= {"mpirun", "orterun"}
    else:
        assert nr["processes"] == 0
    # slowest and fastest by I/O time on files, less any wait in collectives for a later rank
    r = s.ranks
    by = "net_file_io_time" if r["collective_wait"].any() else "file_io_time"
    t = dict(zip(r["rank"], r["file_io_time"] - r["collective_wait"], strict=True))
    assert s.job["by"] == by
    assert s.job["slowest"][by] == max(t.values()) == t[s.job["slowest"]["rank"]]
    assert s.job["fastest"][by] == min(t.values()) == t[s.job["fastest"]["rank"]]
    # the ranks' bytes are their processes' (POSIX level), the launcher's left out
    pp = s.processes
    for r in range(job.np):
        mine = pp[pp["rank"] == r]
        row = s.ranks[s.ranks["rank"] == r].iloc[0]
        assert row["bytes_written"] == mine["bytes_written"].sum()
        assert row["bytes_read"] == mine["bytes_read"].sum()


@pytest.mark.parametrize(("way", "np"), [("ranks", 2), ("launcher", 4)])
def test_file_per_process(tmp_path: Path, way: str, np: int) -> None:
    job = run_job(tmp_path, way, np, build_mpi("mpi_posix"), "fpp", str(NBLK), str(BS))
    tr = load(job.dir)
    s = summarise(tr)
    check_ranks_apart(s, job)
    ev = tr.events
    files = s.files.set_index("path")
    for r in range(np):
        p = str(job.work / f"fpp.{r}.dat")
        assert rank_bytes(ev, p, "write") == {r: NBLK * BS}
        assert rank_bytes(ev, p, "pread") == {r: NBLK * BS}
        assert files.loc[p, "rank_list"] == str(r) and files.loc[p, "write_ranks"] == 1
        assert files.loc[p, "bytes_written"] == files.loc[p, "bytes_read"] == NBLK * BS
        row = s.ranks[s.ranks["rank"] == r].iloc[0]
        assert row["bytes_written"] >= NBLK * BS and row["bytes_read"] >= NBLK * BS
    lay = s.job["layout"]
    assert lay["kind"] == "file-per-process" and lay["basis"] == "written"
    assert (lay["fpp_files"], lay["shared_files"], lay["ranks_with_own_files"]) == (np, 0, np)
    # written, POSIX level; what was read from them apart
    assert (lay["fpp_bytes"], lay["fpp_bytes_read"]) == (np * NBLK * BS, np * NBLK * BS)
    # the aggregate bandwidth holds every POSIX byte once
    bw = s.bandwidth
    assert abs(int(bw["bytes_written"].sum()) - s.overview["bytes_written"]) <= len(bw)
    assert abs(int(bw["bytes_read"].sum()) - s.overview["bytes_read"]) <= len(bw)
    assert s.overview["mpi_bytes_written"] == 0 and s.mpi.empty


@pytest.mark.parametrize(("way", "np"), [("ranks", 4), ("launcher", 2)])
def test_shared_file(tmp_path: Path, way: str, np: int) -> None:
    job = run_job(tmp_path, way, np, build_mpi("mpi_posix"), "shared", str(NBLK), str(BS))
    s = summarise(load(job.dir))
    check_ranks_apart(s, job)
    shared = str(job.work / "shared.dat")
    f = s.files.set_index("path").loc[shared]
    assert f["rank_list"] == f"0-{np - 1}" and f["write_ranks"] == f["data_ranks"] == np
    assert f["bytes_written"] == f["bytes_read"] == np * NBLK * BS
    lay = s.job["layout"]
    assert lay["kind"] == "shared-file" and lay["shared_files"] == 1 and lay["fpp_files"] == 0
    assert lay["shared"][0] == {"path": shared, "ranks": f"0-{np - 1}", "nranks": np}
    shared_ins = next(i for i in s.insights if i.key == "shared-file")
    assert shared_ins.numbers["files"][0] == {
        "path": shared, "ranks": np, "bytes_written": np * NBLK * BS}  # fmt: skip


@pytest.mark.parametrize(("way", "np"), [("ranks", 2), ("launcher", 4)])
def test_mpiio_collective_independent_and_ties(tmp_path: Path, way: str, np: int) -> None:
    job = run_job(tmp_path, way, np, build_mpi("mpi_io"), "mio.dat", str(B), str(C))
    tr = load(job.dir)
    s = summarise(tr)
    check_ranks_apart(s, job)
    nb = np * B
    mpi = s.mpi.set_index("function")
    expect = {  # function: mode (calls = np each; bytes = np * B each, MPI level)
        "MPI_File_write_at_all": "collective",
        "MPI_File_write_all": "collective",
        "MPI_File_read_at_all": "collective",
        "MPI_File_write_at": "independent",
        "MPI_File_write": "independent",
        "MPI_File_iwrite_at": "independent",
        "MPI_File_iwrite": "independent",
        "MPI_File_read_at": "independent",
        "MPI_File_iread_at": "independent",
        "MPI_File_iread": "independent",
    }
    for fn, mode in expect.items():
        r = mpi.loc[fn]
        assert (r["mode"], r["calls"], r["bytes"], r["ranks"]) == (mode, np, nb, f"0-{np - 1}"), fn
        # ROMIO: every byte of an MPI-IO call goes through POSIX calls inside it, once
        assert r["posix_bytes"] == nb, fn
    for fn in ("MPI_File_write_at", "MPI_File_write"):
        assert (
            mpi.loc[fn, "summary"] == f"{fn}: {np} calls, {fmt_bytes(nb)} → {np} pwrite of 64.0 KiB"
        )
    assert mpi.loc["MPI_File_read_at", "posix"] == f"{np} pread of 64.0 KiB"
    assert (
        mpi.loc["MPI_File_open", "calls"] == np + 2 and mpi.loc["MPI_File_seek", "calls"] == 3 * np
    )
    modes = {(r.mode, r.kind): (r.calls, r.bytes) for r in s.mpi_modes.itertuples()}
    assert modes == {
        ("collective", "write"): (2 * np, 2 * nb),
        ("collective", "read"): (np, nb),
        ("independent", "write"): (4 * np, 4 * nb),
        ("independent", "read"): (3 * np, 3 * nb),
    }
    jm = s.job["mpi"]
    assert (jm["collective_calls"], jm["collective_bytes"]) == (3 * np, 3 * nb)
    assert (jm["independent_calls"], jm["independent_bytes"]) == (7 * np, 7 * nb)
    # bytes counted once: totals are POSIX level, MPI level apart
    ov = s.overview
    assert (ov["mpi_bytes_written"], ov["mpi_bytes_read"]) == (6 * nb, 4 * nb)
    assert ov["posix_bytes_in_mpi"] == 10 * nb
    data = str(job.work / "mio.dat")
    f = s.files.set_index("path").loc[data]
    assert (f["bytes_written"], f["bytes_read"]) == (6 * nb, 4 * nb)  # POSIX, once
    assert (f["mpi_bytes_written"], f["mpi_bytes_read"]) == (6 * nb, 4 * nb)
    ev = tr.events
    fn = ev["function"].astype(str)
    posix = ev[~fn.str.startswith("MPI_") & ~fn.map(schema.is_stdio_call).astype(bool)]
    for op, key in (("write", "bytes_written"), ("read", "bytes_read")):
        assert ov[key] == posix[posix["op"] == op]["bytes"].sum()
    for r in range(np):
        row = s.ranks[s.ranks["rank"] == r].iloc[0]
        assert (row["mpi_bytes_written"], row["mpi_bytes_read"]) == (6 * B, 4 * B)
    assert s.job["layout"]["kind"] == "shared-file"
    # JSON and HTML carry the same
    rep = json.loads(iotrace("report", str(job.dir), "--json").stdout)
    assert rep["job"]["mpi"] == {k: v if k == "aggregators" else int(v) for k, v in jm.items()}
    assert {r["function"]: r["calls"] for r in rep["mpi"]}["MPI_File_write_all"] == np
    assert len(rep["bandwidth"]["bytes_written"]) == len(s.bandwidth)
    html = tmp_path / "r.html"
    assert iotrace("report", str(job.dir), "--html", str(html)).returncode == 0
    text = html.read_text()
    assert "MPI-IO: collective vs independent" in text and "slowest rank" in text
    assert f"{np} pwrite of 64.0 KiB" in text


def test_rank_raw_syscalls_in_report(tmp_path: Path) -> None:
    """Launched over mpirun, with the stracer: each rank's raw pwrite64s carry its rank."""
    n, bs = 4, 4096
    job = run_job(tmp_path, "launcher", 2, build_mpi("mpi_raw"), str(n), str(bs), stracer=True)
    tr = load(job.dir)
    ev = tr.events
    for r in range(2):
        p = str(job.work / f"raw.{r}.dat")
        m = ev[(ev["path"] == p) & ev["missed"]]
        assert m["function"].astype(str).tolist() == ["openat", *["pwrite64"] * n, "close"]
        assert (m["rank"] == r).all() and (m["source"] == "stracer").all()
        w = m[m["function"] == "pwrite64"]
        assert w["bytes"].tolist() == [bs] * n and w["offset"].tolist() == [
            i * bs for i in range(n)
        ]
        f = tr.files.set_index("path").loc[p]
        assert f["bytes_written"] == (n + 1) * bs and f["missed"] == n + 2  # + the libc write
    s = summarise(tr)
    site = s.missed_sites[s.missed_sites["site"].str.startswith("raw_blocks (mpi_raw.c)")]
    assert (
        len(site) == 1 and site["ranks"].iloc[0] == "0-1" and site["count"].iloc[0] == 2 * (n + 2)
    )
    assert site["bytes"].iloc[0] == 2 * n * bs
    assert s.ranks["missed"].min() >= n + 2


def test_ranks_waiting_in_collectives_for_a_late_rank_are_not_slow(tmp_path: Path) -> None:
    """Rank 1 comes 0.25 s late to each of two collective writes (OMPIO: the wait lands in them
    or in the collective close).  Rank 0's time inside those calls is waiting for rank 1, not
    I/O: no rank-imbalance finding blames rank 0 for it (it did, "high"); a collective-wait finding
    names rank 1, the one that came late; rank 0's wait is in the ranks table."""
    prog = build_mpi("mpi_late")
    job = run_job(tmp_path, "ranks", 2, prog, "late.dat", io="ompio")
    s = summarise(load(job.dir))
    keys = {i.key: i for i in s.insights}
    # Rank 0's wait is not its I/O: a finding on rank 0 may remain only from what a loaded
    # machine adds to its calls (35 ms at load 17 once), never from the 0.5 s of waiting
    imb = keys.get("rank-imbalance")
    if imb is not None and imb.subject == "rank 0":
        assert imb.numbers["outliers"][0]["io_time"] < 125_000_000, imb
    late = keys["collective-wait"]
    assert late.subject == "rank 1" and late.numbers["late"][0]["rank"] == 1
    # rank 0 waited; the wait in a write_all is taken out of its file I/O time (collective_wait),
    # the wait in the close was never in it (an open's or close's time is no file I/O time)
    waited = {int(r): w for r, w in late.numbers["waited"].items()}
    assert waited[0] > 300_000_000 > waited.get(1, 0) and late.numbers["wait"] >= waited[0]
    r = s.ranks.set_index("rank")
    assert r.loc[0, "collective_wait"] <= waited[0]
    assert r.loc[0, "file_io_time"] - r.loc[0, "collective_wait"] < 125_000_000, r
    assert s.job["by"] in ("net_file_io_time", "file_io_time")
