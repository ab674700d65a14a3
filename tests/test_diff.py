"""`iotrace diff A B`: two runs of dd with a known change (1,024 writes of 1 KiB against one of
1 MiB), in two directories matched by --map; exact numbers per function and file, and the
findings that went away."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path
from typing import Any

import pytest
from conftest import iotrace
from test_mpi import MPICC, MPIRUN, build_mpi, run_job

KIB, MIB = 1024, 1024 * 1024


def run_dd(tmp_path: Path, name: str, bs: str, count: int) -> tuple[Path, Path]:
    work = tmp_path / f"work_{name}"
    work.mkdir()
    out = tmp_path / name
    p = iotrace("run", "-o", str(out), "--", "dd", "if=/dev/zero", "of=out.bin", f"bs={bs}",
                f"count={count}", cwd=work)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert (work / "out.bin").stat().st_size == MIB
    return out, work


def by(rows: list[dict], key: str) -> dict:
    return {r[key]: r for r in rows}


def test_diff_small_writes_against_large(tmp_path: Path) -> None:
    a, wa = run_dd(tmp_path, "a", "1024", 1024)
    b, wb = run_dd(tmp_path, "b", "1M", 1)
    p = iotrace("diff", str(a), str(b), "--json", "--map", f"{wa}={wb}")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["verdict"].startswith("B against A: ")
    n_gone, n_new = len(d["findings"]["went_away"]), len(d["findings"]["appeared"])
    assert d["verdict"].endswith(f"findings: {n_gone} went away, {n_new} appeared")
    fn = by(d["functions"], "function")
    assert (fn["write"]["calls_a"], fn["write"]["calls_b"], fn["write"]["calls_delta"]) == (
        1024, 1, -1023)  # fmt: skip
    assert (fn["write"]["bytes_a"], fn["write"]["bytes_b"], fn["write"]["bytes_delta"]) == (
        MIB, MIB, 0)  # fmt: skip
    files = by(d["files"], "path")
    out = files[str(wb / "out.bin")]  # A's out.bin mapped onto B's: one row
    assert str(wa / "out.bin") not in files
    assert (out["writes_a"], out["writes_b"], out["writes_delta"]) == (1024, 1, -1023)
    assert (out["bytes_written_a"], out["bytes_written_b"]) == (MIB, MIB)
    assert "/dev/zero" not in files  # a system file: kept apart, as in the report
    assert d["totals"]["writes"]["delta"] == -1023
    # what the change fixed (the time-share finding may come and go with the machine's load)
    access = {"small-writes"}  # out.bin's (its unaligned offsets are the same small writes)
    assert {f["key"] for f in d["findings"]["went_away"]} & access == access
    assert not {f["key"] for f in d["findings"]["appeared"]} & access
    assert not {f["key"] for f in d["findings"]["in_both"]} & access
    # the call site of dd's writes: 1,024 calls then 1, matched by its label
    sites = [s for s in d["sites"] if s["bytes_a"] == MIB and s["calls_a"] == 1024]
    assert sites and {s["calls_b"] for s in sites} == {1}

    # a relative --map is taken against the current directory, as --path is; the runs' pipes
    # (dd's messages on stderr: another inode each run) are compared as one row
    p = iotrace("diff", str(a), str(b), "--json", "--map", "work_a=work_b", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rel = by(json.loads(p.stdout)["files"], "path")
    assert rel[str(wb / "out.bin")] == out and str(wa / "out.bin") not in rel
    assert rel["pipe:[*]"]["writes_a"] >= 1 and rel["pipe:[*]"]["writes_b"] >= 1
    assert not [f for f in rel if f.startswith("pipe:[") and f != "pipe:[*]"]

    # without --map the two out.bin are two files, each present on one side only
    p = iotrace("diff", str(a), str(b), "--json")
    files = by(json.loads(p.stdout)["files"], "path")
    assert (files[str(wa / "out.bin")]["writes_a"], files[str(wa / "out.bin")]["writes_b"]) == (
        1024, 0)  # fmt: skip
    assert (files[str(wb / "out.bin")]["writes_a"], files[str(wb / "out.bin")]["writes_b"]) == (
        0, 1)  # fmt: skip

    # the console: the verdict first, then the tables
    p = iotrace("diff", str(a), str(b), "--map", f"{wa}={wb}")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("B against A: ") and "calls" in lines[0]
    assert "Many small writes" in p.stdout
    page = tmp_path / "diff.html"
    p = iotrace("diff", str(a), str(b), "--map", f"{wa}={wb}", "--html", str(page))
    assert p.returncode == 0, p.stderr
    html = page.read_text()
    assert lines[0].split(";")[0].replace("→", "&") in html.replace("→", "&")
    assert "Many small writes" in html and "Per file" in html and str(wb / "out.bin") in html


def test_diff_bad_input(tmp_path: Path) -> None:
    a, _ = run_dd(tmp_path, "a", "1M", 1)
    for args in (
        (str(a), str(tmp_path / "missing")),
        (str(a), str(a), "--map", "no-equals-sign"),
        (str(a), str(tmp_path / "work_a")),  # a directory, not a trace
    ):
        p = iotrace("diff", *args)
        assert p.returncode == 2, (args, p.stdout)
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr


def test_diff_lets_a_summary_go_before_b_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command keeps of A only what it compares (diff.side) while it summarises B: A's
    Summary holds rows per process (a trace of 100,000 processes: ~2.5 KB each) that diff never
    reads.  The same comparison as diff() of both summaries."""
    from iotrace.analyzer import diff, parts

    from iotrace import cli

    a, wa = run_dd(tmp_path, "a", "1024", 1024)
    b, wb = run_dd(tmp_path, "b", "1M", 1)
    made: list[Any] = []
    real = parts.summarise

    def summarise(*args: Any, **kw: Any) -> Any:
        if made:
            gc.collect()
            assert made[0]() is None, "A's Summary is still held while B's is made"
        s, tr = real(*args, **kw)
        made.append(weakref.ref(s))
        return s, tr

    monkeypatch.setattr(parts, "summarise", summarise)
    argv = ["diff", str(a), str(b), "--json", "--workers", "1", "--map", f"{wa}={wb}"]
    assert cli.main(argv) == 0
    got = capsys.readouterr().out
    maps = diff.parse_maps([f"{wa}={wb}"])
    whole = diff.diff(real(str(a))[0], real(str(b))[0], str(a), str(b), maps)
    assert got == diff.diff_json(whole) + "\n"


@pytest.mark.skipif(not (MPIRUN and MPICC), reason="needs mpirun and mpicc (Open MPI)")
def test_diff_per_rank_on_a_2_rank_mpi_job(tmp_path: Path) -> None:
    """Two 2-rank MPI jobs (tests/progs/mpi_posix.c, a file per rank): B writes and reads back
    16 blocks of 64 KiB per rank where A did 8.  The per-rank table has each rank once, with
    its own numbers on both sides; the ranks' files, in two work directories, match by --map."""
    prog = build_mpi("mpi_posix")
    jobs = []
    for side, nblk in (("a", "8"), ("b", "16")):
        (tmp_path / side).mkdir()
        jobs.append(run_job(tmp_path / side, "launcher", 2, prog, "fpp", nblk, str(64 * KIB)))
    a, b = jobs
    args = (str(a.dir), str(b.dir), "--map", f"{a.work}={b.work}")
    p = iotrace("diff", *args, "--json", "--path", "*/fpp.*.dat")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    ranks = by(d["ranks"], "rank")
    assert sorted(ranks) == [0, 1]
    for r in ranks.values():
        assert (r["writes_a"], r["writes_b"], r["writes_delta"]) == (8, 16, 8)
        assert (r["reads_a"], r["reads_b"], r["reads_delta"]) == (8, 16, 8)
        assert (r["bytes_written_a"], r["bytes_written_b"]) == (8 * 64 * KIB, MIB)
        assert (r["bytes_read_a"], r["bytes_read_b"]) == (8 * 64 * KIB, MIB)
        assert r["io_time_a"] > 0 and r["io_time_b"] > 0
    files = by(d["files"], "path")
    assert sorted(files) == [str(b.work / f"fpp.{i}.dat") for i in (0, 1)]
    # the whole jobs: a row per rank (the launcher's I/O has none), each rank's own I/O with
    # MPI's (a few KiB through its pipes and files, varying from run to run by some bytes)
    d = json.loads(iotrace("diff", *args, "--json").stdout)
    ranks = by(d["ranks"], "rank")
    assert sorted(ranks) == [0, 1]
    for r in ranks.values():
        assert 8 * 64 * KIB < r["bytes_written_a"] < MIB < r["bytes_written_b"] < 2 * MIB
    # the console and HTML show the table
    page = tmp_path / "diff.html"
    out = iotrace("diff", *args, "--path", "*/fpp.*.dat", "--html", str(page)).stdout
    out += iotrace("diff", *args, "--path", "*/fpp.*.dat").stdout
    assert "Per rank" in out and "Per rank" in page.read_text()
