"""Findings that must name exactly the planted problem: real programs (tests/progs/findings.c,
findings_mpi.c), each with one known I/O problem whose calls, bytes, files and ranks the program
fixes; the report's first finding must be that problem, about that file, directory or rank,
with the program's own counts as its evidence, and nothing false beside it.  Each report is the
bounded path's, equal to the in-memory one (test_corpus._report)."""

from __future__ import annotations

import json

import pytest
from conftest import build, iotrace
from test_corpus import NO_STRACER, _above_info, _findings, _report, needs_mpi
from test_mpi import build_mpi, needs_mpich, run_job


def _fn_time(s, fn: str) -> int:
    return int(s.functions.set_index("function").loc[fn, "time"])


def test_an_fsync_per_write_is_the_first_finding(trace) -> None:
    """200 writes of 8 KiB, each followed by an fsync: nearly all the I/O time is in fsync, and
    the report said nothing of it (its only line was the I/O time share)."""
    t = trace(build("findings"), "fsync", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    first = s.insights[0]
    path = str(trace.work / "journal.dat")
    assert (first.key, first.subject, first.level) == ("frequent-sync", path, "high"), s.insights
    assert (first.evidence["calls"], first.evidence["bytes"]) == (200, 200 * 8192)
    assert first.evidence["time"] == _fn_time(s, "fsync")
    assert first.numbers["files"] == [
        {"path": path, "functions": "fsync", "syncs": 200, "writes": 200,
         "bytes_written": 200 * 8192, "time": first.evidence["time"]}
    ]  # fmt: skip
    assert "fsync after every write to " + path in first.title
    assert [i.key for i in s.insights if i.level != "info"] == ["frequent-sync"]
    # the console and the JSON say it as well
    out = iotrace("report", str(t.dir))
    assert out.returncode == 0 and "fsync after every write" in out.stdout, out.stderr
    js = json.loads(iotrace("report", "--json", str(t.dir)).stdout)
    assert js["insights"][0]["key"] == "frequent-sync"


def test_one_fsync_at_the_end_is_fine(trace) -> None:
    t = trace(build("findings"), "onesync", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    assert _above_info(s) == []
    assert not [i for i in s.insights if i.key == "frequent-sync"]


def test_reopen_per_record_blames_its_directory_not_the_big_one(trace) -> None:
    """Dir A: a file opened, appended 200 bytes and closed per record (2,000 times); dir B: one
    64 MiB file in 1 MiB writes.  A's metadata storm and small writes; nothing about B."""
    t = trace(build("findings"), "reopen", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    keys = {i.key: i for i in _findings(s)}
    a, log = str(trace.work / "A"), str(trace.work / "A" / "log.dat")
    storm = keys["metadata-storm"]
    assert storm.subject == a and storm.evidence["calls"] == 4000, storm
    assert storm.numbers["by_function"] == {"open": 2000, "close": 2000}
    small = keys["small-writes"]
    assert small.subject == log
    assert (small.evidence["calls"], small.evidence["bytes"]) == (2000, 2000 * 200)
    assert s.insights[0].key in ("metadata-storm", "small-writes")
    assert not [i for i in s.insights if "/B" in i.subject or "big.dat" in i.title]


@needs_mpi
def test_the_rank_making_small_unaligned_writes_to_a_shared_file_is_named(tmp_path) -> None:
    """4 ranks write their 4 MiB block of slow/shared.dat, the last one alone in 4,096 pwrites
    of 1 KiB off the 4 KiB grid, the others in one pwrite each; then each writes 4 MiB of its
    own under fast/.  The small writes are named with their rank (no rank was named), and their
    evidence is theirs (it was 4,099 calls with the 4 MiB of the 4,096 small ones; the detail
    said "4,099 writes of 4.0 KiB on average" where the small ones were of 1 KiB)."""
    job = run_job(tmp_path, "launcher", 4, build_mpi("findings_mpi"), "straggler")
    s = _report(job.dir)
    shared = str(job.work / "slow" / "shared.dat")
    f = s.files.set_index("path")
    assert (f.loc[shared, "writes"], f.loc[shared, "bytes_written"]) == (3 + 4096, 16 << 20)
    for r in range(4):
        assert f.loc[str(job.work / "fast" / f"rank.{r}.dat"), "bytes_written"] == 4 << 20
    found = _findings(s)
    small = next(i for i in found if i.key == "small-writes")
    assert small.subject == shared
    assert f"Many small writes to {shared} by rank 3: 4,096 of 4,099 writes" in small.title
    assert (small.evidence["calls"], small.evidence["bytes"]) == (4096, 4096 * 1024)
    assert "4,096 of 4,099 writes small, 1.0 KiB on average" in small.detail
    assert "rank 3 alone of the 4 ranks that write it" in small.detail
    assert small.numbers["ranks"] == [{"rank": 3, "calls": 4096, "small": 4096}] + [
        {"rank": r, "calls": 1, "small": 0} for r in range(3)
    ]
    # nothing blames the fine ranks or the files under fast/
    assert found[0].key in ("small-writes", "rank-imbalance"), found
    assert not [i for i in s.insights if "/fast" in i.subject], s.insights
    imb = [i for i in s.insights if i.key == "rank-imbalance"]
    assert not imb or imb[0].subject == "rank 3", imb
    # the Darshan export's counters per rank and file are the program's (and the report's)
    darshan = pytest.importorskip("darshan")
    out = tmp_path / "job.darshan"
    got = iotrace("export", str(job.dir), "--format", "darshan", "-o", str(out), "--workers", "1")
    assert got.returncode == 0, got.stderr
    rep = darshan.DarshanReport(str(out), read_all=True)
    c = rep.records["POSIX"].to_df()["counters"]
    c = c[[rep.name_records.get(int(i)) == shared for i in c["id"].to_numpy()]]
    per = {int(r.rank): (r.POSIX_WRITES, r.POSIX_BYTES_WRITTEN, r.POSIX_SIZE_WRITE_100_1K)
           for r in c.itertuples()}  # fmt: skip
    assert per == {0: (1, 4 << 20, 0), 1: (1, 4 << 20, 0), 2: (1, 4 << 20, 0),
                   3: (4096, 4 << 20, 4096)}  # fmt: skip


@needs_mpi
def test_mpich_independent_writes_without_false_failed_calls(tmp_path) -> None:
    """MPICH, 2 ranks, 1,000 independent MPI_File_write_at of 256 B each into shared.dat: the
    independent MPI-IO finding on it, and no failed-calls finding: ROMIO lstats the file before
    MPI_File_open creates it (ENOENT inside a call that succeeded) and that was "2 calls failed,
    most on shared.dat", the app's."""
    needs_mpich()
    job = run_job(tmp_path, "launcher", 2, build_mpi("corpus_mpi", "mpich"), "indep", mpi="mpich")
    s = _report(job.dir)
    shared = str(job.work / "shared.dat")
    keys = {i.key: i for i in s.insights}
    ind = keys["independent-mpiio"]
    assert ind.subject == shared and _findings(s)[0] is ind, s.insights
    assert (ind.evidence["calls"], ind.evidence["bytes"]) == (2000, 2000 * 256)
    assert "failed-calls" not in keys, keys["failed-calls"].numbers
    rt = keys["runtime-failed-calls"]
    assert rt.numbers["by_call"].get("lstat ENOENT") == 2 and shared in rt.numbers["paths"]


def test_a_search_path_probed_names_its_directories(trace) -> None:
    """300 modules looked for in 6 directories (a stat and an open of each missing path): each
    path failed twice, and the finding said "most on path0/mod0.so", one path of 1,800."""
    t = trace(build("findings"), "search", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    first = s.insights[0]
    dirs = {str(trace.work / f"path{d}"): 600 for d in range(5)}
    assert (first.key, first.subject) == ("failed-calls", str(trace.work / "path0")), s.insights
    assert (
        first.title
        == f"3,600 calls failed on 1,800 paths in 6 directories, most in {first.subject}"
    )
    assert first.numbers["by_call"] == {"open ENOENT": 1800, "stat ENOENT": 1800}
    assert first.numbers["directories"] == dirs  # the first 5 (TOP_SUBJECTS)
    assert first.evidence["calls"] == 3600
