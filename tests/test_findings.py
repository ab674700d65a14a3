"""Findings that must name exactly the planted problem: real programs (tests/progs/findings.c,
findings_mpi.c), each with one known I/O problem whose calls, bytes, files and ranks the program
fixes; the report's first finding must be that problem, about that file, directory or rank,
with the program's own counts as its evidence, and nothing false beside it.  Each report is the
bounded path's, equal to the in-memory one (test_corpus._report)."""

from __future__ import annotations

import html
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import build, iotrace
from iotrace.analyzer.fmt import fmt_bytes
from iotrace.analyzer.insights import CONTEXT, Insight
from test_analyzer import _chromium, _chromium_flags
from test_corpus import NO_STRACER, _above_info, _findings, _report, needs_mpi
from test_mpi import build_mpi, needs_mpich, run_job


def _fn_time(s, fn: str) -> int:
    return int(s.functions.set_index("function").loc[fn, "time"])


def _said_everywhere(d: Path, first: Insight, tmp_path: Path) -> None:
    """The first finding the same in the console, the JSON and the HTML page as Chromium
    renders it."""
    out = iotrace("report", str(d), env={**os.environ, "COLUMNS": "400"})
    assert out.returncode == 0 and first.title in out.stdout, out.stdout
    js = json.loads(iotrace("report", "--json", str(d)).stdout)["insights"][0]
    assert (js["key"], js["subject"], js["title"]) == (first.key, first.subject, first.title)
    assert js["evidence"] == json.loads(json.dumps(first.evidence))
    page = tmp_path / "report.html"
    assert iotrace("report", str(d), "--html", str(page)).returncode == 0
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed and cannot be installed here")
    dom = subprocess.run([chromium, *_chromium_flags(tmp_path), "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert first.title in html.unescape(dom.stdout)


def test_an_fsync_per_write_is_the_first_finding(trace) -> None:
    """200 writes of 8 KiB, each followed by an fsync: nearly all the I/O time is in fsync, and
    the report said nothing of it (its only line was the I/O time share).  Each fsync made 5 ms
    long (preloaded slow_fsync), as on a disk: on tmpfs, under load, the 200 took 42 ms of a
    longer I/O time, an info."""
    lib = build("slow_fsync", "-shared", "-fPIC", "-ldl")
    env = {**os.environ, "LD_PRELOAD": str(lib), "SLOW_FSYNC_MS": "5"}
    t = trace(build("findings"), "fsync", extra=NO_STRACER, env=env)
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


def test_three_checkpoint_fsyncs_taking_the_io_time_are_the_first_finding(trace) -> None:
    """make demo's program: 3 checkpoints (1 MiB), each fsync'd once: the fsyncs were nearly
    all the I/O time, too few for frequent-sync, and the first finding was "1 calls failed"
    (info) of a stat of a missing file; no finding named the fsyncs (now the first, an info
    ranked by its time: whether each sync is needed is the app's to know).  Each fsync made 100 ms
    long (preloaded slow_fsync), as on a disk: on tmpfs or a fast SSD it costs microseconds."""
    lib = build("slow_fsync", "-shared", "-fPIC", "-ldl")
    env = {**os.environ, "LD_PRELOAD": str(lib), "SLOW_FSYNC_MS": "100"}
    t = trace(build("findings"), "ckpt", extra=NO_STRACER, env=env)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    first = s.insights[0]
    paths = {str(trace.work / f"ckpt.{c}") for c in range(3)}
    assert (first.key, first.subject in paths) == ("sync-time", True), s.insights
    sync = _fn_time(s, "fsync")
    assert (first.evidence["calls"], first.evidence["bytes"]) == (3, 3 << 20)
    assert first.evidence["time"] == sync - sync // 3  # one sync after the last write stays
    assert [f["path"] for f in first.numbers["files"]] == sorted(
        paths, key=lambda p: -next(f["time"] for f in first.numbers["files"] if f["path"] == p)
    )
    assert all((f["syncs"], f["writes"]) == (1, 4) for f in first.numbers["files"])
    assert first.title.startswith("3 fsync calls took ") and "(and 2 more file(s))" in first.title
    assert "restart needs" in first.detail and "fdatasync" in first.detail
    assert not [i for i in s.insights if i.key == "frequent-sync"]
    # info: whether each checkpoint must be durable is the app's to know
    assert first.level == "info" and not [i for i in s.insights if i.level != "info"], s.insights
    assert next(i for i in s.insights if i.key == "failed-calls").title.startswith("1 call failed")


def test_two_outputs_each_fsynced_once_are_no_sync_time(trace) -> None:
    """2 outputs (mesh.dat, fields.dat) each fsync'd once after its last write, each fsync made
    100 ms long (slow_fsync): each sync is the one its output needs, and the report said "2
    fsync calls took 99% of the file I/O time" with one of them at stake."""
    lib = build("slow_fsync", "-shared", "-fPIC", "-ldl")
    env = {**os.environ, "LD_PRELOAD": str(lib), "SLOW_FSYNC_MS": "100"}
    t = trace(build("findings"), "outputs", extra=NO_STRACER, env=env)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    assert _fn_time(s, "fsync") >= 200_000_000  # the syncs were the I/O time
    assert not [i for i in s.insights if "sync" in i.key], s.insights
    assert _above_info(s) == []


@needs_mpi
def test_each_rank_fsyncing_its_own_output_once_is_no_sync_time(tmp_path, monkeypatch) -> None:
    """4 ranks each write out.R.dat and fsync it once (100 ms each, slow_fsync): out.0.dat ..
    out.3.dat are 4 outputs, not 4 versions of one (as ckpt.0 .. ckpt.2 of one process are)."""
    lib = build("slow_fsync", "-shared", "-fPIC", "-ldl")
    monkeypatch.setenv("LD_PRELOAD", str(lib))
    monkeypatch.setenv("SLOW_FSYNC_MS", "100")
    job = run_job(tmp_path, "launcher", 4, build_mpi("findings_mpi"), "ownsync")
    s = _report(job.dir)
    assert _fn_time(s, "fsync") >= 400_000_000
    assert not [i for i in s.insights if "sync" in i.key], s.insights


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
    most on shared.dat", the app's.  MPICH's MPI_File_open can spend ~250 ms a rank setting up
    its communication around 0.1 ms of POSIX calls (how long depends on the machine: here rank 1
    comes 300 ms late, which rank 0 waits for inside the open): counted as file I/O time, it made
    the independent writes' 3 ms 1.2% of it, an "info"; the opens' and closes' own time is not
    file I/O time (the POSIX calls inside them are)."""
    needs_mpich()
    prog = build_mpi("corpus_mpi", "mpich")
    job = run_job(tmp_path, "launcher", 2, prog, "indep", "late", mpi="mpich")
    s = _report(job.dir)
    shared = str(job.work / "shared.dat")
    keys = {i.key: i for i in s.insights}
    ind = keys["independent-mpiio"]
    assert ind.subject == shared and _findings(s)[0] is ind, s.insights
    assert (ind.evidence["calls"], ind.evidence["bytes"]) == (2000, 2000 * 256)
    opens = _fn_time(s, "MPI_File_open") + _fn_time(s, "MPI_File_close")
    assert s.overview["file_io_time"] < opens, (s.overview["file_io_time"], opens)
    assert ind.level == "high" and ind.evidence["share"] > 0.5, ind.evidence
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
    # the same lookups are a metadata storm spread over the 6 directories (600 each, under the
    # 1,000 of one directory: none was told), after the failures that say why
    storm = s.insights[1]
    assert (storm.key, storm.subject) == ("metadata-storm", str(trace.work)), s.insights
    assert storm.evidence["calls"] == 3600 and storm.numbers["by_function"] == {
        "open": 1800,
        "stat": 1800,
    }
    assert "1,800 failed" not in storm.detail and "600 failed" in storm.detail


def test_a_metadata_storm_spread_over_directories_is_named(trace) -> None:
    """300 files created and stat'd in each of 6 directories: 900 metadata operations in each,
    under the 1,000 of one directory, 5,400 in all, nearly all the I/O time: no finding said
    anything."""
    t = trace(build("findings"), "spread", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    first = s.insights[0]
    store = str(trace.work / "store")
    assert (first.key, first.subject, first.level) == ("metadata-storm", store, "high"), s.insights
    assert first.title.startswith(
        f"Metadata storm over 6 directories under {store}: 5,400 metadata operations"
    )
    assert first.title.endswith("at most 900 in one"), first.title
    assert first.evidence["calls"] == 5400
    assert first.numbers["by_function"] == {"close": 1800, "open": 1800, "stat": 1800}
    assert [d["ops"] for d in first.numbers["directories"]] == [900] * 5  # TOP_SUBJECTS
    assert [i.key for i in s.insights if i.level != "info"] == ["metadata-storm"]


def test_an_input_read_whole_at_each_step_is_named(trace) -> None:
    """A 1 MiB input opened and read whole 40 times (64 KiB reads), beside a 4 MiB output
    written once: large sequential reads, and no finding said anything."""
    t = trace(build("findings"), "reread", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    first, path = s.insights[0], str(trace.work / "input.dat")
    assert (first.key, first.subject) == ("reread", path), s.insights
    pid = int(s.processes["pid"].iloc[0])
    assert (
        first.title == f"Process {pid} read {path} 40.0 times over: 40.0 MiB read for its 1.0 MiB"
    )
    (f,) = first.numbers["files"]
    read_time = int(s.files.set_index("path").loc[path, "read_time"])
    assert (f["bytes_read"], f["size"], f["read_time"]) == (40 << 20, 1 << 20, read_time)
    assert first.evidence["bytes"] == 39 << 20
    assert first.evidence["time"] == read_time - read_time * (1 << 20) // (40 << 20)
    assert "read it once" in first.detail
    assert [i.key for i in _findings(s) if i.key not in CONTEXT] == ["reread"]


def test_a_file_stat_in_a_loop_is_named_in_its_storm(trace) -> None:
    """A wait for poll/flag.done polled with 5,000 stats: the storm named the directory and
    "1 files", not the file nor the loop."""
    t = trace(build("findings"), "statpoll", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    first, flag = s.insights[0], str(trace.work / "poll" / "flag.done")
    assert (first.key, first.subject) == ("metadata-storm", str(trace.work / "poll")), s.insights
    assert first.title.endswith("5,002 of them on flag.done"), first.title
    by = {"stat": 5000, "close": 1, "open": 1}
    assert first.numbers["file"] == {"path": flag, "ops": 5002, "ranks": 0, "by_function": by}
    assert f"{flag}: 5,002 of them (stat 5,000, close 1, open 1)" in first.detail
    assert "MPI_Bcast" not in first.detail and "stat it once" in first.detail
    assert [i.key for i in s.insights if i.level != "info"] == ["metadata-storm"]


@needs_mpi
@pytest.mark.parametrize("mpi", ["openmpi", "mpich"])
def test_every_rank_reopening_one_input_is_named_in_its_storm(tmp_path, mpi) -> None:
    """4 ranks each open, read 64 B of and close params.in 500 times: the storm named the
    directory and "1 files" (MPICH: 2, its UCX probes), not the file nor that every rank
    opens it."""
    if mpi == "mpich":
        needs_mpich()
    job = run_job(tmp_path, "launcher", 4, build_mpi("findings_mpi", mpi), "sameopen", mpi=mpi)
    s = _report(job.dir)
    params = str(job.work / "params.in")
    # the opens' and the small reads' times are alike (under load either may come first)
    assert _findings(s)[0].key in ("metadata-storm", "small-reads"), s.insights
    first = next(i for i in _findings(s) if i.key == "metadata-storm")
    assert first.subject == str(job.work), s.insights
    assert first.title.endswith("4,002 of them on params.in by 4 ranks"), first.title
    assert first.numbers["file"] == {"path": params, "ops": 4002, "ranks": 4,
                                     "by_function": {"close": 2001, "open": 2001}}  # fmt: skip
    assert "by 4 ranks" in first.detail and "MPI_Bcast" in first.detail
    # the reads are small too (64 B), and of params.in; nothing else is above info
    assert {i.key for i in _findings(s) if i.level != "info"} <= {"metadata-storm", "small-reads"}
    told = [i for i in _findings(s) if i.key not in CONTEXT]
    assert not [i for i in told if i.subject not in (str(job.work), params)], s.insights


def test_fseek_before_each_small_fread_is_read_amplification(trace, tmp_path) -> None:
    """2,000 records of 100 B read with fseek + fread at scattered offsets of a 1 MiB file: stdio
    refills its 4 KiB buffer for each (8 MiB read from the file for 200,000 B asked).  The report
    said "random access" of the refills, with the advice to sort the requests; the finding now
    says what stdio read for what the app asked, and the Darshan export's STDIO and POSIX
    counters are the program's."""
    t = trace(build("findings"), "records", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    path = str(trace.work / "records.dat")
    first = s.insights[0]
    assert (first.key, first.subject) == ("stdio-read-amplification", path), s.insights
    refills = s.functions.set_index("function").loc["stdio_refill"]
    assert refills["calls"] >= 2000 and refills["bytes"] == refills["calls"] * 4096
    assert first.evidence["calls"] == refills["calls"]
    assert first.evidence["bytes"] == refills["bytes"]
    assert first.evidence["time"] == _fn_time(s, "stdio_refill")
    (f,) = first.numbers["files"]
    assert (f["calls"], f["bytes"], f["seeks"]) == (2000, 200_000, 2000)
    assert first.title == (
        f"stdio read {fmt_bytes(refills['bytes'])} of {path} for the 195.3 KiB the app's reads "
        f"asked ({refills['bytes'] / 200_000:.1f}x)"
    )
    assert "2,000 reads of 100 B on average (195.3 KiB) after 2,000 seeks" in first.detail
    assert "pread" in first.detail
    assert [i.key for i in _findings(s) if i.level != "info"] == ["stdio-read-amplification"]
    _said_everywhere(t.dir, first, tmp_path)
    darshan = pytest.importorskip("darshan")
    out = tmp_path / "records.darshan"
    got = iotrace("export", str(t.dir), "--format", "darshan", "-o", str(out), "--workers", "1")
    assert got.returncode == 0, got.stderr
    rep = darshan.DarshanReport(str(out), read_all=True)

    def counters(mod: str) -> dict[str, int]:
        c = rep.records[mod].to_df()["counters"]
        c = c[[rep.name_records.get(int(i)) == path for i in c["id"].to_numpy()]]
        return {k: int(v) for k, v in c.iloc[0].items() if k not in ("id", "rank")}

    st, px = counters("STDIO"), counters("POSIX")
    assert (st["STDIO_READS"], st["STDIO_BYTES_READ"], st["STDIO_SEEKS"]) == (2000, 200_000, 2000)
    assert (px["POSIX_READS"], px["POSIX_BYTES_READ"]) == (refills["calls"], refills["bytes"])


@needs_mpi
def test_an_mpi_file_sync_per_collective_write_is_found(tmp_path, monkeypatch) -> None:
    """2 ranks, 64 collective writes of 64 KiB each to ckpt.dat, an MPI_File_sync after each:
    the syncs were left out of the frequent-sync finding (POSIX ones only), and no finding
    said anything.  The fsync inside each made 2 ms long (preloaded slow_fsync), as on a disk:
    on tmpfs the 128 took 0.16 ms in all, an info."""
    monkeypatch.setenv("LD_PRELOAD", str(build("slow_fsync", "-shared", "-fPIC", "-ldl")))
    monkeypatch.setenv("SLOW_FSYNC_MS", "2")
    job = run_job(tmp_path, "launcher", 2, build_mpi("findings_mpi"), "mpisync")
    s = _report(job.dir)
    path = str(job.work / "ckpt.dat")
    first = _findings(s)[0]
    assert (first.key, first.subject) == ("frequent-sync", path), s.insights
    assert first.level in ("high", "warn"), first
    assert (first.evidence["calls"], first.evidence["bytes"]) == (128, 128 * 65536)
    assert first.evidence["time"] == _fn_time(s, "MPI_File_sync")
    assert first.numbers["files"] == [
        {"path": path, "functions": "MPI_File_sync", "syncs": 128, "writes": 128,
         "bytes_written": 128 * 65536, "time": first.evidence["time"]}
    ]  # fmt: skip
    assert first.title.startswith(f"MPI_File_sync after every write to {path}: 128 calls")
    assert not [i for i in s.insights if i.key == "independent-mpiio"]


def test_small_scattered_reads_by_four_threads_are_random_access(trace) -> None:
    """16 MiB written in 1 MiB writes (fine), then 4 threads pread 1,000 pieces of 512 B each at
    scattered offsets of the file: random access to it, its reads' evidence the program's."""
    t = trace(build("findings"), "threads", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    path = str(trace.work / "big.dat")
    found = _findings(s)
    first = found[0]
    assert (first.key, first.subject) == ("random-access", path), s.insights
    assert (first.evidence["calls"], first.evidence["bytes"]) == (4000, 4000 * 512)
    assert first.evidence["time"] == _fn_time(s, "pread")
    assert f"{path}: 4,000 reads of 512 B on average" in first.detail
    assert [i.key for i in found if i.level != "info"] in ([], ["random-access"])
    assert not [i for i in s.insights if i.key in ("small-writes", "unaligned-access")]


def test_a_log_written_line_by_line_unbuffered_is_small_writes(trace) -> None:
    """3,000 lines of 60 B through an unbuffered stream (setvbuf _IONBF): a write each."""
    t = trace(build("findings"), "logline", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    path = str(trace.work / "run.log")
    first = s.insights[0]
    assert (first.key, first.subject, first.level) == ("small-writes", path, "high"), s.insights
    assert (first.evidence["calls"], first.evidence["bytes"]) == (3000, 3000 * 60)
    assert first.evidence["time"] == _fn_time(s, "stdio_flush")
    assert "3,000 of 3,000 writes small, 60 B on average" in first.detail
    assert [i.key for i in s.insights if i.level != "info"] == ["small-writes"]


def test_an_msync_per_mapped_page_is_frequent_sync(trace) -> None:
    """A 4 MiB file mapped MAP_SHARED, each of its 1,024 pages stored to and msync'd alone:
    the finding said "msync after every write" of a file with no write call, 0 bytes at stake;
    it now says what was stored through the mapping and synced.  Each msync made 1 ms long
    (preloaded slow_fsync), as on a disk: on tmpfs the 1,024 took 0.7 ms in all, an info."""
    lib = build("slow_fsync", "-shared", "-fPIC", "-ldl")
    env = {**os.environ, "LD_PRELOAD": str(lib), "SLOW_FSYNC_MS": "1"}
    t = trace(build("findings"), "msync", extra=NO_STRACER, env=env)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    path = str(trace.work / "mapped.dat")
    first = s.insights[0]
    assert (first.key, first.subject, first.level) == ("frequent-sync", path, "high"), s.insights
    assert (first.evidence["calls"], first.evidence["bytes"]) == (1024, 4 << 20)
    assert first.evidence["time"] == _fn_time(s, "msync")
    assert first.title.startswith(
        f"msync after every 4.0 KiB stored through a shared mapping to {path}: 1,024 calls"
    ), first.title
    assert first.numbers["files"][0]["msync_bytes"] == 4 << 20
    assert [i.key for i in s.insights if i.level != "info"] == ["frequent-sync"]
    assert s.overview["mapped_shared"]["msyncs"] == 1024


@needs_mpi
def test_the_rank_writing_16_times_more_in_a_collective_write_is_named(tmp_path) -> None:
    """4 ranks, one MPI_File_write_at_all to out.dat: rank 3 16 MiB, the others 1 MiB each.
    The rank imbalance names rank 3 by its bytes (no aggregator excuses it), and nothing else
    is above info."""
    job = run_job(tmp_path, "launcher", 4, build_mpi("findings_mpi"), "imbalance")
    s = _report(job.dir)
    imb = next(i for i in s.insights if i.key == "rank-imbalance")
    assert imb.subject.startswith(("rank 3", "ranks 3")) and s.insights[0] is imb, s.insights
    out, *slow = imb.numbers["outliers"]
    assert out["rank"] == 3 and out["bytes"] == 16 << 20 and "bytes" in out["by"], out
    # on a loaded machine (the suite's) a rank the scheduler held back is slower, not heavier
    assert all(o["by"] == "time" for o in slow), slow
    assert imb.numbers["median_bytes"] == 1 << 20
    assert imb.evidence["bytes"] == (16 << 20) + sum(o["bytes"] for o in slow)
    assert [i.key for i in s.insights if i.level != "info"] == ["rank-imbalance"]
    r = s.ranks.set_index("rank")
    assert [int(r.loc[k, "mpi_bytes_written"]) for k in range(4)] == [1 << 20] * 3 + [16 << 20]


@needs_mpi
def test_every_rank_reading_the_whole_input_is_found(tmp_path) -> None:
    """4 ranks each read all 8 MiB of input.dat: 32 MiB read for 8 MiB, where one rank could
    read it and broadcast it.  No finding said anything (large sequential reads are fine one by
    one)."""
    path = str(tmp_path / "input.dat")
    Path(path).write_bytes(b"i" * (8 << 20))
    job = run_job(tmp_path, "launcher", 4, build_mpi("findings_mpi"), "readall", path)
    s = _report(job.dir)
    first = _findings(s)[0]
    assert (first.key, first.subject) == ("read-by-every-rank", path), s.insights
    assert first.title == (
        f"4 ranks each read the whole of {path}: 32.0 MiB read for a file of 8.0 MiB"
    )
    assert first.evidence["bytes"] == 32 << 20
    f = s.files.set_index("path").loc[path]
    assert first.evidence["time"] == f["read_time"] - f["read_time"] // 4
    assert first.numbers["files"] == [
        {"path": path, "size": 8 << 20, "ranks": [0, 1, 2, 3], "bytes_read": 32 << 20,
         "time": first.evidence["time"]}
    ]  # fmt: skip
    assert "MPI_Bcast" in first.detail and "Ranks 0, 1, 2, 3 read all" in first.detail
    assert not [i for i in _findings(s) if i.level != "info" and i.key != first.key]


@needs_mpi
@pytest.mark.parametrize(
    ("mode", "mpi"), [("readat", "openmpi"), ("readatall", "openmpi"), ("readat", "mpich")]
)
def test_every_rank_reading_the_whole_input_through_mpiio_is_found(tmp_path, mode, mpi) -> None:
    """4 ranks each read all 8 MiB of input.dat through MPI-IO (MPI_File_read_at, or
    MPI_File_read_at_all): the finding saw POSIX reads only, and said nothing."""
    if mpi == "mpich":
        needs_mpich()
    path = str(tmp_path / "input.dat")
    Path(path).write_bytes(b"i" * (8 << 20))
    job = run_job(tmp_path, "launcher", 4, build_mpi("findings_mpi", mpi), mode, path, mpi=mpi)
    s = _report(job.dir)
    found = {i.key: i for i in s.insights}
    every = found.get("read-by-every-rank")
    assert every is not None and every.subject == path, s.insights
    assert every.title == (
        f"4 ranks each read the whole of {path}: 32.0 MiB read for a file of 8.0 MiB"
    )
    assert every.numbers["files"][0]["ranks"] == [0, 1, 2, 3]
    assert every.numbers["files"][0]["bytes_read"] == 32 << 20
    assert "MPI_Bcast" in every.detail and "MPI_File_read_at" in every.detail
    assert not [i for i in _findings(s) if i.level != "info" and i.key != every.key], s.insights


@needs_mpi
def test_every_rank_reading_a_whole_hdf5_dataset_is_found(tmp_path) -> None:
    """4 ranks each H5Dread all 8 MiB of a dataset of an input made before the job (HDF5's
    MPI-IO driver: MPI_File_read_at under it): ranks 1-3 read 152 B less than the file's end
    (its metadata read once, on rank 0), which "at least the file's highest offset" missed."""
    from test_hdf5 import H5PCC, build_h5
    from test_mpi import mpirun

    if not H5PCC:
        pytest.skip("needs h5pcc (libhdf5-openmpi-dev)")
    prog, path = build_h5("findings_h5"), str(tmp_path / "in.h5")
    env = dict(os.environ, OMPI_MCA_btl="self,vader")
    made = subprocess.run([*mpirun(1, "openmpi"), str(prog), "make", path], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert made.returncode == 0, made.stderr
    job = run_job(tmp_path, "launcher", 4, prog, "read", path)
    s = _report(job.dir)
    every = next((i for i in s.insights if i.key == "read-by-every-rank"), None)
    assert every is not None and every.subject == path, s.insights
    assert every.numbers["files"][0]["ranks"] == [0, 1, 2, 3]
    assert every.numbers["files"][0]["bytes_read"] >= 4 * (8 << 20)
    assert "MPI_File_read_at" in every.detail
    assert not [i for i in s.insights if i.key == "independent-mpiio"], s.insights
