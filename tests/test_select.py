"""Filters when reading: `show`, `report`, `missed` and `export` take --rank, --pid, --path,
-e/--function, --failed/--succeeded and --from/--to (iotrace.select), one function over the
events; exact events present and absent on programs with known calls."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from conftest import build, iotrace
from test_mpi import MPICC, MPIRUN, _shim_has_mpi, build_mpi, run_job

LINE = re.compile(r"^\[(?:rank (\d+) )?pid (\d+) tid \d+\] \+(\d+\.\d+) (\S+?)\((.*)\) = (.*)$")


def shown(trace_dir: Path, *opts: str, cwd: Path | None = None) -> list[tuple[str, str, str]]:
    """`show` with `opts`: (function, arguments, result) per line; every line parses."""
    p = iotrace("show", str(trace_dir), *opts, cwd=cwd)
    assert p.returncode == 0, p.stderr
    out = []
    for line in p.stdout.splitlines():
        m = LINE.match(line)
        assert m, line
        out.append((m[4], m[5], m[6]))
    return out


def times(trace_dir: Path) -> list[tuple[float, str, str]]:
    p = iotrace("show", str(trace_dir))
    return [(float(m[3]), m[4], m[5]) for m in map(LINE.match, p.stdout.splitlines()) if m]


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sel")
    work = tmp / "work"
    work.mkdir()
    p = iotrace("run", "-o", str(tmp / "t"), "--", str(build("sel_mix")), cwd=work)
    assert p.returncode == 0, p.stderr
    return tmp / "t", work


def test_show_path_failed_succeeded(mix) -> None:
    t, work = mix
    a = shown(t, "--path", "*/a.dat")
    assert [fn for fn, _, _ in a] == ["open", "write", "write", "write", "close"]
    assert all("a.dat" in args for _, args, _ in a)
    # a relative glob is taken against the current directory
    assert [fn for fn, _, _ in shown(t, "--path", "b.dat", cwd=work)] == [
        "open", "write", "write", "close"]  # fmt: skip
    both = shown(t, "--path", "*/a.dat", "--path", "*/b.dat")
    assert len(both) == 9
    everything = shown(t)
    failed = shown(t, "--failed")
    assert all("ENOENT" in res or re.search(r"^-?\d+ E[A-Z]+ ", res) for _, _, res in failed)
    mine = [(fn, args) for fn, args, _ in failed if "missing" in args]
    assert mine == [("open", f'"{work}/missing/x", O_RDONLY'), ("stat", f'"{work}/missing"')]
    ok = shown(t, "--succeeded")
    assert not [r for _, _, r in ok if re.search(r" E[A-Z]+ \(", r)]
    assert len(ok) + len(failed) == len(everything)
    # filters combine: failed calls on a.dat: none
    assert shown(t, "--failed", "--path", "*/a.dat") == []


def test_function_filter(mix) -> None:
    t, _ = mix
    assert [fn for fn, _, _ in shown(t, "-e", "write", "--path", "*.dat")] == ["write"] * 5
    assert [fn for fn, _, _ in shown(t, "--function", "%desc,!write", "--path", "*/a.dat")] == [
        "open", "close"]  # fmt: skip
    everything = shown(t)
    no_writes = shown(t, "-e", "!write")
    assert len(no_writes) == len(everything) - sum(fn == "write" for fn, _, _ in everything)
    p = iotrace("report", str(t), "--json", "-e", "%write")
    assert {f["function"] for f in json.loads(p.stdout)["functions"]} == {"write"}
    p = iotrace("show", str(t), "-e", "no_such_call")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_show_time_window(mix) -> None:
    t, _ = mix
    evs = times(t)
    last_a = max(s for s, _, args in evs if "a.dat" in args)
    first_b = min(s for s, _, args in evs if "b.dat" in args)
    assert first_b - last_a > 0.25  # the program's 300 ms sleep
    mid = f"{(last_a + first_b) / 2:.6f}"
    later = shown(t, "--from", mid)
    assert len(later) == sum(1 for s, _, _ in evs if s >= float(mid))
    assert not [a for _, a, _ in later if "a.dat" in a]
    assert len([a for _, a, _ in later if "b.dat" in a]) == 4
    earlier = shown(t, "--to", mid)
    assert len(earlier) + len(later) == len(evs)
    assert not [a for _, a, _ in earlier if "b.dat" in a]
    # the same window in report: the times are the same (seconds since the job's start)
    p = iotrace("report", str(t), "--json", "--from", mid)
    files = {f["path"] for f in json.loads(p.stdout)["files"]}
    assert any(f.endswith("/b.dat") for f in files) and not any(f.endswith("/a.dat") for f in files)


def test_report_and_export_filtered(mix, tmp_path: Path) -> None:
    t, work = mix
    p = iotrace("report", str(t), "--json", "--path", "*/a.dat")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert [f["path"] for f in r["files"]] == [str(work / "a.dat")]
    assert (r["overview"]["bytes_written"], r["overview"]["writes"]) == (300, 3)
    assert r["completeness"]["line"].startswith("not checked: the events are filtered")
    p = iotrace("export", str(t), "--format", "csv", "-o", str(tmp_path / "csv"),
                "--path", "*/b.dat", "--succeeded")  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader((tmp_path / "csv" / "events.csv").open()))
    assert [(r["function"], r["bytes"]) for r in rows] == [
        ("open", ""), ("write", "50"), ("write", "50"), ("close", "")]  # fmt: skip
    p = iotrace("report", str(t), "--json", "--failed")
    r = json.loads(p.stdout)
    assert r["overview"]["errors"] == r["overview"]["events"] >= 2
    assert r["overview"]["selection"] == "--failed"
    p = iotrace("report", str(t), "--path", "/nowhere/*")
    assert "No event passes the filters (--path /nowhere/*)." in p.stdout


def test_missed_filtered(trace) -> None:
    t = trace(build("st_raw"), "raw.out")
    assert t.proc.returncode == 0, t.proc.stderr

    def groups(*opts: str) -> list[dict]:
        p = iotrace("missed", str(t.dir), "--json", *opts)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    every = groups()
    assert {g["syscall"] for g in every} >= {"openat", "write", "close"}
    raw = groups("--path", "*/raw.out")
    assert {g["syscall"] for g in raw} == {"openat", "write", "close"}
    assert all(g["path"].endswith("/raw.out") for g in raw)
    assert groups("--path", "*/nothing-here") == []
    pid = every[0]["pid"]
    assert groups("--pid", str(pid)) == every
    assert groups("--pid", str(pid + 100000)) == []
    assert groups("--from", "3600") == []


@pytest.mark.skipif(not (MPIRUN and MPICC and _shim_has_mpi()), reason="needs Open MPI")
def test_rank_filter(tmp_path: Path) -> None:
    job = run_job(tmp_path, "ranks", 2, build_mpi("mpi_posix"), "fpp", "2", "4096")
    p = iotrace("show", str(job.dir), "--rank", "1")
    lines = p.stdout.splitlines()
    assert lines and all(line.startswith("[rank 1 ") for line in lines)
    assert any("fpp.1.dat" in line for line in lines)
    assert not any("fpp.0.dat" in line for line in lines)
    p = iotrace("report", str(job.dir), "--json", "--rank", "0")
    r = json.loads(p.stdout)
    dat = sorted(f["path"] for f in r["files"] if f["path"].endswith(".dat"))
    assert dat == [str(job.work / "fpp.0.dat")]
    assert r["overview"]["bytes_written"] >= 2 * 4096


def test_bad_filters_are_one_line(mix, tmp_path: Path) -> None:
    t, _ = mix
    for cmd in ("show", "report", "missed", "export"):
        extra = ("--format", "csv", "-o", str(tmp_path / "o")) if cmd == "export" else ()
        for opts in (("--rank", "x"), ("--pid", "3-1"), ("--from", "-1"), ("--to", "nan"),
                     ("--from", "2", "--to", "1")):  # fmt: skip
            p = iotrace(cmd, str(t), *extra, *opts)
            assert p.returncode == 2, (cmd, opts)
            assert len(p.stderr.strip().splitlines()) == 1, (cmd, opts, p.stderr)
            assert "Traceback" not in p.stderr
    p = iotrace("show", str(tmp_path / "missing"), "--path", "*")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1


def test_strace_spellings(mix, tmp_path: Path) -> None:
    """What a strace user types: -P, %%stat and its kin, %net, /REGEX, ?name (no error when
    nothing of that name is traced), the old class spelling without %; other qualifiers
    (read=, status=) one line, status 2."""
    t, _ = mix
    ((fn, args, res),) = shown(t, "-e", "%%stat", "-P", "*/missing")
    assert (fn, args, res.split(" <")[0]) == ("stat", f'"{t.parent}/work/missing"',
                                              "-1 ENOENT (No such file or directory)")  # fmt: skip
    assert [fn for fn, _, _ in shown(t, "-e", "/^(open|close)$", "-P", "*/a.dat")] == [
        "open", "close"]  # fmt: skip
    assert [fn for fn, _, _ in shown(t, "-e", "?futex,write", "-P", "*/b.dat")] == ["write"] * 2
    assert [fn for fn, _, _ in shown(t, "-e", "trace=desc", "-P", "*/b.dat")] == [
        "open", "write", "write", "close"]  # fmt: skip
    assert shown(t, "-e", "%net") == []
    for spec in ("read=3", "status=failed", "/(", "/^nosuch$", "%signal", "futex"):
        p = iotrace("show", str(t), "-e", spec)
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, (spec, p.stderr)
    # recording: %network keeps socket and connect (a failed one), nothing else
    prog = ("import socket\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect('nosock')\n"
            "except OSError:\n    pass\nopen('f.txt', 'w').write('x')\n")  # fmt: skip
    p = iotrace("run", "--no-stracer", "-o", str(tmp_path / "n"), "-e", "trace=%network", "--",
                "python3", "-c", prog, cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    got = shown(tmp_path / "n")
    assert {fn for fn, _, _ in got} == {"socket", "connect"}, got
    assert [r.split(" <")[0] for fn, _, r in got if fn == "connect"] == [
        "-1 ENOENT (No such file or directory)"]  # fmt: skip
    p = iotrace("run", "--no-stracer", "-o", str(tmp_path / "p"), "-P", "f.txt", "--",
                "python3", "-c", prog, cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    got = shown(tmp_path / "p")
    assert got and all(f"{tmp_path}/f.txt" in a for _, a, _ in got), got


def test_syscall_names_without_a_function(tmp_path: Path) -> None:
    """-e getdents64: a syscall of the stracer's table that no shim function covers selects the
    stracer's records of it (was: "unknown function"), by name, /REGEX, and `!` keeps them."""
    p = iotrace("run", "-o", str(tmp_path / "t"), "--", str(build("sel_dents")), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    t = tmp_path / "t"
    want = [("getdents64", f"3<{tmp_path}>")]
    assert [(fn, a.split(",")[0]) for fn, a, _ in shown(t, "-e", "getdents64")] == want
    assert [(fn, a.split(",")[0]) for fn, a, _ in shown(t, "-e", "/^getdents")] == want
    assert "getdents64" in [fn for fn, _, _ in shown(t, "-e", "!write")]
    assert "getdents64" not in [fn for fn, _, _ in shown(t, "-e", "!getdents64")]
    # recording: the shim records none of it; the stracer still reports the bypass
    p = iotrace("run", "-o", str(tmp_path / "r"), "-e", "trace=getdents64", "--",
                str(build("sel_dents")), cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "write" not in [fn for fn, _, _ in shown(tmp_path / "r")]
