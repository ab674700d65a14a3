"""The labelled corpus: small programs (C, Python, Open MPI with 2 and 4 ranks), each with one
known I/O pathology, traced for real; the report's first finding must be that pathology, about
the right subject, with the program's own numbers as its evidence; clean programs get nothing
above info.  Programs: tests/progs/corpus.c, tests/progs/corpus_mpi.c, and the Python below.
Each report is made as `iotrace report` makes it, on the bounded path (analyzer/parts.py, here a
part per process), and must equal the in-memory one, findings included."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import build, same_report
from iotrace.analyzer import load, parts, summarise
from iotrace.analyzer.insights import Insight
from iotrace.analyzer.report import report_dict
from iotrace.analyzer.summary import Summary
from test_mpi import MPICC, MPIRUN, _shim_has_mpi, build_mpi, needs_mpich, run_job

NO_STRACER = ("--no-stracer",)  # the shim sees all of these programs' I/O

needs_mpi = pytest.mark.skipif(
    not (MPIRUN and MPICC and _shim_has_mpi()), reason="needs Open MPI and the shim's MPI-IO"
)

META_PY = """
import os
os.makedirs("many", exist_ok=True)
for i in range(1500):
    p = f"many/f{i}"
    with open(p, "w"):
        pass
    os.stat(p)
for i in range(1500):
    os.remove(f"many/f{i}")
"""


def _report(d: Path, system: bool = False) -> Summary:
    """The bounded path's summary (a part per process), checked against the in-memory one."""
    s = parts.summarise(parts.Bounded(d, workers=1, part_bytes=1), system=system)[0]
    diff = same_report(report_dict(summarise(load(d), system=system)), report_dict(s))
    assert not diff, diff[:10]
    return s


def _findings(s: Summary) -> list[Insight]:
    """The findings, less a rank imbalance by time alone: on a loaded machine (the suite's) a
    rank the scheduler held back is slower with the same bytes; not the program's pathology."""
    return [
        i
        for i in s.insights
        if not (i.key == "rank-imbalance" and all(o["by"] == "time" for o in i.numbers["outliers"]))
    ]


def _above_info(s: Summary) -> list[str]:
    return [f"{i.level} {i.key}: {i.title}" for i in _findings(s) if i.level != "info"]


@pytest.mark.parametrize(
    ("mode", "key", "subject", "calls", "nbytes"),
    [
        ("small", "small-writes", "small.dat", 20_000, 20_000 * 64),
        ("random", "random-access", "random.dat", 4_000, 4_000 * 512),
    ],
)
def test_c_pathology_is_the_first_finding(trace, mode, key, subject, calls, nbytes) -> None:
    t = trace(build("corpus"), mode, extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    first = s.insights[0]
    assert (first.key, first.subject) == (key, str(trace.work / subject)), s.insights
    assert (first.evidence["calls"], first.evidence["bytes"]) == (calls, nbytes)
    assert 0 < first.evidence["time"] <= s.overview["file_io_time"]
    assert first.evidence["share"] == pytest.approx(
        first.evidence["time"] / s.overview["file_io_time"]
    )
    if mode == "small":  # nearly all of the program's file I/O (random's 1 MiB writes before
        # its reads take from 10% to most of its I/O time, depending on the machine's load)
        assert first.evidence["share"] > 0.5
    # one finding per file and direction: the unaligned and small reads of random.dat are the
    # random finding's, not findings of their own
    assert [i.subject for i in s.insights].count(str(trace.work / subject)) == 1


def test_c_clean_sequential_write(trace) -> None:
    t = trace(build("corpus"), "seq", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    assert _above_info(s) == []
    assert s.overview["bytes_written"] == 32 << 20 and s.overview["writes"] == 32


def test_end_of_file_reads_are_no_small_accesses(trace) -> None:
    # 200 reads of 4 KiB and 400 reads of 0 B at the end of the file (a reader following a
    # growing file): the latter are no accesses of the file (were two thirds of its reads small)
    t = trace(build("corpus"), "eof", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    assert [i.key for i in s.insights if "access" in i.key or i.key.startswith("small")] == []
    f = s.files.set_index("path").loc[str(trace.work / "eof.dat")]
    assert (f["reads"], f["bytes_read"]) == (600, 200 * 4096)


def test_python_metadata_storm_names_the_data_directory(trace) -> None:
    (trace.work / "meta.py").write_text(META_PY)
    t = trace(sys.executable, "meta.py", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    first = s.insights[0]
    assert (first.key, first.subject) == ("metadata-storm", str(trace.work / "many"))
    assert first.level == "high"
    d = s.directories.set_index("directory").loc[str(trace.work / "many")]
    assert d["files"] == 1500 and d["ops"] >= 1500 * 3  # open (create), stat, unlink each
    # the interpreter's own files are kept apart, and their cost is told
    assert not any("/lib/python" in p for p in s.files["path"])
    assert not any("/lib/python" in p for p in s.directories["directory"])
    sysio = s.overview["system_io"]
    assert sysio["calls"] > 0 and sysio["files"] > 0 and sysio["bytes"] > 0
    every = _report(t.dir, system=True)
    assert any("/lib/python" in p for p in every.files["path"])


REREAD_PY = """
import os
with open("conf.dat", "wb") as f:
    f.write(os.urandom(64 << 10))
for _ in range(200):
    fd = os.open("conf.dat", os.O_RDONLY)
    while os.read(fd, 4096):
        pass
    os.close(fd)
"""


def test_rereading_a_reopened_file_is_sequential(trace) -> None:
    """A file opened again and read from its start each time is read sequentially, not at
    random (each open starts the process's streams on it again): a Python program reading a
    64 KiB file whole 200 times, which no finding named (now reread)."""
    (trace.work / "reread.py").write_text(REREAD_PY)
    t = trace(sys.executable, "reread.py", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    row = s.files.set_index("path").loc[str(trace.work / "conf.dat")]
    assert row["reads"] >= 200 * 16 and row["random"] == 0, row
    assert not [i for i in s.insights if i.key == "random-access"], s.insights
    # 200 passes over its 64 KiB: the file read again and again is the finding
    first = s.insights[0]
    assert (first.key, first.subject) == ("reread", str(trace.work / "conf.dat")), s.insights
    assert first.numbers["files"][0]["bytes_read"] == 200 * (64 << 10)


@needs_mpi
@pytest.mark.parametrize("np", [2, 4])
def test_mpi_heavy_rank_is_named(tmp_path: Path, np: int) -> None:
    job = run_job(tmp_path, "launcher", np, build_mpi("corpus_mpi"), "heavy")
    s = _report(job.dir)
    first = _findings(s)[0]
    assert first.key == "rank-imbalance" and first.subject.startswith("rank"), s.insights
    by_bytes = [o for o in first.numbers["outliers"] if "bytes" in o["by"]]
    assert [o["rank"] for o in by_bytes] == [1], first.numbers
    assert by_bytes[0]["bytes"] >= 16 << 20
    assert first.level in ("high", "warn")


@needs_mpi
@pytest.mark.parametrize("mpi", ["openmpi", "mpich"])
def test_mpi_runtime_failures_are_told_apart_from_the_apps(tmp_path: Path, mpi: str) -> None:
    """The MPI runtime's own failed calls were the failed-calls finding: Open MPI's mkdir -p of
    its session directory ("most on /tmp": EEXIST), MPICH's UCX probing ucx.conf in $HOME and
    the working directory ("most on ~/ucx.conf").  They are the runtime's, told after the
    findings; the app's own failed opens stay the finding, alone."""
    if mpi == "mpich":
        needs_mpich()
    job = run_job(tmp_path, "launcher", 2, build_mpi("corpus_mpi", mpi), "probe", mpi=mpi)
    s = _report(job.dir)
    keys = {i.key: i for i in s.insights}
    app = keys["failed-calls"]
    assert app.numbers["by_call"] == {"open ENOENT": 100}, app.numbers
    assert app.subject in {str(job.work / f"missing.{r}.conf") for r in range(2)}
    rt = keys["runtime-failed-calls"]
    paths = rt.numbers["paths"]
    assert rt.level == "info", rt.numbers
    if mpi == "openmpi":
        assert "/tmp" in paths and rt.numbers["by_call"].get("mkdir EEXIST", 0) >= 2, rt.numbers
    else:  # Debian's MPICH runs on UCX
        assert str(job.work / "ucx.conf") in paths, rt.numbers
        assert rt.numbers["by_call"].get("fopen ENOENT", 0) >= 4, rt.numbers
    assert not any(p.startswith(str(job.work / "missing.")) for p in paths)
    assert s.insights.index(rt) > s.insights.index(app)  # context: after the findings
    # system files judged too: the runtime's probes whose callers are none of its libraries
    # (Open MPI's hwloc through libudev, libpciaccess and libz: /run/udev, pci.ids) are its
    # own by the whole chain of their stacks, not the app's
    by = {i.key: i for i in _report(job.dir, system=True).insights}["failed-calls"]
    by = by.numbers["by_call"]
    # MPICH: libnl-route's constructor (UCX's verbs transport dlopen'd) stats and opens
    # /etc/libnl/classid below the loader's frames: no runtime library among the 8 kept
    udev = by.get("fopen ENOENT", 0)  # hwloc's through libudev: 10 if the app's
    assert by["open ENOENT"] == 100 and udev <= (2 if mpi == "mpich" else 0), by


@needs_mpi
def test_mpi_failures_without_stacks_are_not_blamed_on_the_app(tmp_path: Path) -> None:
    """Traced with --stack 0, a failed call of a rank has no chain to tell whose it is: the
    runtime's probes were the app's failed-calls finding.  Now they are said to be untold,
    the app's and the runtime's alike; the launcher's own stay the runtime's."""
    prog = build_mpi("corpus_mpi")
    job = run_job(tmp_path, "launcher", 2, prog, "probe", opts=("--stack", "0"))
    keys = {i.key: i for i in _report(job.dir).insights}
    assert "failed-calls" not in keys, keys["failed-calls"].numbers
    untold = keys["untold-failed-calls"]
    assert untold.level == "info" and untold.numbers["by_call"]["open ENOENT"] == 100
    assert {str(job.work / f"missing.{r}.conf") for r in range(2)} <= set(untold.numbers["paths"])
    assert keys["runtime-failed-calls"].numbers["failed"] >= 1  # mpirun's, by its process


@needs_mpi
def test_mpi_independent_small_writes_to_a_shared_file(tmp_path: Path) -> None:
    job = run_job(tmp_path, "launcher", 4, build_mpi("corpus_mpi"), "indep")
    s = _report(job.dir)
    first = _findings(s)[0]
    assert (first.key, first.subject) == ("independent-mpiio", str(job.work / "shared.dat"))
    assert (first.evidence["calls"], first.evidence["bytes"]) == (4000, 4000 * 256)
    # the POSIX writes inside those calls are the same requests: no finding of their own
    assert not [i for i in s.insights if i.key in ("small-writes", "shared-file")]


@needs_mpi
def test_mpi_collective_write_through_aggregators_is_fine(tmp_path: Path) -> None:
    job = run_job(tmp_path, "launcher", 4, build_mpi("corpus_mpi"), "coll", io="ompio")
    s = _report(job.dir)
    assert s.job["mpi"]["collective_bytes"] == 4 * 16 * 256 * 1024
    # OMPIO's aggregator(s) wrote the other ranks' data: recognised, not blamed
    assert s.job["mpi"]["aggregators"]
    assert not [i for i in _findings(s) if i.key in ("rank-imbalance", "independent-mpiio")]
    assert _above_info(s) == []


def test_fio_random_reads_agree_with_fios_report(trace) -> None:
    """fio's own JSON report against ours: the same reads and bytes, the time inside the calls
    within fio's latency, and the random reads the first finding."""
    if not shutil.which("fio"):
        pytest.skip("fio missing")
    t = trace("fio", "--name=j", "--filename=fio.dat", "--size=4M", "--bs=4k", "--rw=randread",
              "--ioengine=psync", "--randrepeat=1", "--output-format=json", "--output=fio.json",
              extra=NO_STRACER)  # fmt: skip
    assert t.proc.returncode == 0, t.proc.stderr
    fio = json.loads((trace.work / "fio.json").read_text())["jobs"][0]["read"]
    s = _report(t.dir)
    f = s.files.set_index("path").loc[str(trace.work / "fio.dat")]
    assert (f["reads"], f["bytes_read"]) == (fio["total_ios"], fio["io_bytes"]) == (1024, 4 << 20)
    # fio times each read around its call: ours (inside the call) is within that
    fio_ns = fio["lat_ns"]["mean"] * fio["total_ios"]
    assert 0.5 * fio_ns <= f["read_time"] <= 1.05 * fio_ns
    first = s.insights[0]
    assert (first.key, first.subject) == ("random-access", str(trace.work / "fio.dat"))
    assert (first.evidence["calls"], first.evidence["bytes"]) == (1024, 4 << 20)
    assert first.evidence["time"] == f["read_time"]
