"""A pid reused within one run (a loop of short-lived processes passes pid_max in minutes) names
two processes one after the other: each its own process, its kernel counters and its bytes its
own (iotrace.incarnation), in `iotrace run`'s closing line (the stracer's, the launcher's
without it), `report` (both paths) and `show --pid`.  Made deterministic in a PID namespace
of its own, where the program sets ns_last_pid so that its second child gets its first's pid."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from conftest import build, iotrace, report_in_memory, report_of_parts, same_report

OK = "the trace explains 100.0% of the"


def _in_pidns(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    """`iotrace ARGS` as the first process of a PID namespace of its own."""
    cmd = ["unshare", "-pf", "--mount-proc"]
    if not shutil.which("unshare") or subprocess.run([*cmd, "true"]).returncode != 0:
        pytest.skip("unshare -pf --mount-proc is not permitted here")
    return subprocess.run([*cmd, sys.executable, "-m", "iotrace", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize("mode", ["full", "no-stracer"])
def test_a_reused_pid_is_two_processes(tmp_path, mode) -> None:
    prog = build("pid_reuse")
    out = tmp_path / "trace"
    extra = ["--no-stracer"] if mode == "no-stracer" else []
    run = _in_pidns("run", "-o", str(out), *extra, "--", str(prog), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    first, second = map(int, run.stdout.split())
    assert first == second  # the pid was reused
    # the program, its first child, its second (exec'd): 3 processes, each explained
    line = [ln for ln in run.stderr.splitlines() if "the trace explains" in ln]
    assert len(line) == 1 and OK in line[0] and line[0].endswith("in 3 processes"), run.stderr
    report = iotrace("report", "--json", str(out))
    assert report.returncode == 0, report.stderr
    got = json.loads(report.stdout)
    assert got["completeness"]["line"] == line[0].removeprefix("iotrace: ")
    rows = [r for r in got["completeness"]["processes"] if r["pid"] == first]
    # each one's own bytes: 1000 B written; 3000 B, then 5000 B by the program it exec'd
    assert sorted(r["kernel_wchar"] for r in rows) == [1000, 8000], rows
    assert all(r["bytes_pct"] == 100.0 for r in got["completeness"]["processes"])
    # the in-memory path says the same, and (with the stracer's processes to place too) the
    # bounded one a part per process, or per time range of a log
    ref = report_in_memory(out)
    assert not same_report(ref["completeness"], got["completeness"])
    if mode == "full":
        assert not same_report(ref, report_of_parts(out))
        assert not same_report(ref, report_of_parts(out, range_bytes=1))
    # show: both processes, the second named P#2
    _shown_apart(out, first)
    _exports_apart(out, tmp_path, first)


def _shown_apart(out, pid: int) -> None:
    """`show --pid P` shows both processes of the pid, the second as `P#2`."""
    shown = iotrace("show", "--pid", str(pid), str(out))
    assert shown.returncode == 0, shown.stderr
    writes = [ln for ln in shown.stdout.splitlines() if "write(" in ln and ".dat" in ln]
    got = [(ln.split(" tid ")[0], ln.rsplit("= ", 1)[1].split()[0]) for ln in writes]
    p, p2 = f"[pid {pid}", f"[pid {pid}#2"
    assert got == [(p, "1000"), (p2, "3000"), (p2, "5000")], shown.stdout


def _exports_apart(out, tmp_path, pid: int) -> None:
    """The exports keep the two processes of the pid apart: a Chrome track each, Parquet's
    process columns, a Darshan rank each (a.dat the first's, b.dat and c.dat the second's)."""
    import pandas as pd

    chrome = tmp_path / "t.json"
    assert iotrace("export", str(out), "--format", "chrome", "-o", str(chrome)).returncode == 0
    ev = json.loads(chrome.read_text())["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in ev if e["name"] == "process_name"}
    wrote = {e["args"]["path"].rsplit("/", 1)[-1]: e["pid"] for e in ev
             if e["name"] == "write" and str(e["args"].get("path")).endswith(".dat")}  # fmt: skip
    assert wrote["a.dat"] != wrote["b.dat"] == wrote["c.dat"], wrote
    assert f"(pid {pid} @" in names[wrote["a.dat"]], names
    assert f"(pid {pid}#2 @" in names[wrote["b.dat"]], names
    pq = tmp_path / "pq"
    assert iotrace("export", str(out), "--format", "parquet", "-o", str(pq)).returncode == 0
    pr = pd.read_parquet(pq / "processes.parquet")
    pr = pr[pr["pid"] == pid]
    assert sorted(pr.groupby("process_start")["process_nth"].first()) == [1, 2], pr
    dar = tmp_path / "t.darshan"
    done = iotrace("export", str(out), "--format", "darshan", "-o", str(dar))
    if done.returncode != 0 and "darshan" in done.stderr and "install" in done.stderr:
        return  # libdarshan-util not installed (iotrace[darshan])
    assert done.returncode == 0, done.stderr
    import darshan

    rep = darshan.DarshanReport(str(dar), read_all=True)
    c = rep.records["POSIX"].to_df()["counters"]
    rank = {rep.name_records[int(i)].rsplit("/", 1)[-1]: int(r)
            for i, r in zip(c["id"], c["rank"], strict=True)}  # fmt: skip
    assert rank["a.dat"] != rank["b.dat"] == rank["c.dat"], rank
    assert rep.metadata["job"]["nprocs"] == 3


def test_a_killed_process_is_not_taken_for_the_next_of_its_pid(tmp_path) -> None:
    """Its first child killed (SIGKILL: no exit record, no shim reading at its end), the
    stracer's end of that process is its own: not the exit of the next one with its pid."""
    out = tmp_path / "trace"
    run = _in_pidns("run", "-o", str(out), "--", str(build("pid_reuse")), "kill", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    first, second = map(int, run.stdout.split())
    assert first == second
    from iotrace.analyzer import load

    tr = load(out)
    pr = tr.processes[tr.processes["pid"] == first].sort_values("start")
    assert list(pr["ended"]) == ["signal 9", "exec", "exit"], pr
    rows = tr.completeness[tr.completeness["pid"] == first]
    assert sorted(rows["kernel_wchar"]) == [1000, 8000], rows
    killed = rows[rows["kernel_wchar"] == 1000]["cause"].iloc[0]
    assert killed.startswith("ended by SIGKILL"), killed


@pytest.mark.parametrize(
    "mode,fork,where",
    [("full", "", "app"), ("full", "-f", "app"), ("no-stracer", "-f", "app"), ("full", "", "run")],
)
def test_a_time_namespace_s_clock_is_put_on_the_run_s(tmp_path, mode, fork, where) -> None:
    """A program exec'd (and with -f forked) in a time namespace (unshare --time, its
    CLOCK_MONOTONIC a day ahead): its logs' times are on the clock of the stracer and of its
    parent, so that its images and processes are told apart by their times (the run's line
    said 33.6% when its log began a day after the stracer saw it exec); and so are they when
    `iotrace run` itself runs in one (`where` "run": a shim on the host's clock said 53.9%)."""
    shifted = ["unshare", *([fork] if fork else []), "-T", "--monotonic", "86400"]
    if subprocess.run([*shifted, "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare --time is not permitted here")
    out = tmp_path / "trace"
    script = ["sh", "-c", "cat /etc/passwd > x; head -c 5000 /dev/zero > y"]
    args = ["run", "-o", str(out), *(["--no-stracer"] if mode == "no-stracer" else []), "--"]
    if where == "app":
        run = iotrace(*args, *shifted, *script, cwd=tmp_path)
    else:
        run = subprocess.run([*shifted, sys.executable, "-m", "iotrace", *args, *script],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    line = [ln for ln in run.stderr.splitlines() if "the trace explains" in ln]
    assert len(line) == 1 and OK in line[0], run.stderr
    got = json.loads(iotrace("report", "--json", str(out)).stdout)
    assert got["completeness"]["line"] == line[0].removeprefix("iotrace: ")
    assert all(r["bytes_pct"] == 100.0 for r in got["completeness"]["processes"])


def test_a_child_forked_into_a_time_namespace_after_clearenv_is_on_the_run_s_clock(
    tmp_path,
) -> None:
    """`iotrace run` in a time namespace (a day ahead): the app clears its environment, makes a
    time namespace of its own and forks; the child's shim lost the run's offset with the
    environment (IOTRACE_TIMENS) and put its times a day off the stracer's.  Now the offset is
    read once, when the shim starts: every process is explained whole."""
    shifted = ["unshare", "-f", "-T", "--monotonic", "86400"]
    if subprocess.run([*shifted, "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare --time is not permitted here")
    out = tmp_path / "trace"
    run = subprocess.run([*shifted, sys.executable, "-m", "iotrace", "run", "-o", str(out), "--",
                          str(build("timens_fork")), "y"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0 and (tmp_path / "y").stat().st_size == 5000, run.stderr
    line = [ln for ln in run.stderr.splitlines() if "the trace explains" in ln]
    assert len(line) == 1 and OK in line[0], run.stderr
    got = json.loads(iotrace("report", "--json", str(out)).stdout)
    assert all(r["bytes_pct"] == 100.0 for r in got["completeness"]["processes"]), got


def test_a_reused_pid_of_a_program_without_the_shim(tmp_path) -> None:
    """A static program (no shim: the stracer records every syscall): each process explained
    once, `show` and `missed` name the pid's second process P#2."""
    out = tmp_path / "trace"
    run = _in_pidns("run", "-o", str(out), "--", str(build("pid_reuse", "-static")), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    first, second = map(int, run.stdout.split())
    assert first == second
    # each image's I/O once: the second child's 3,000 B before its exec were its events and,
    # taken for the exec's reads, before its (static) program too (128.2% here)
    line = [ln for ln in run.stderr.splitlines() if "the trace explains" in ln]
    assert len(line) == 1 and OK in line[0] and line[0].endswith("in 3 processes"), run.stderr
    got = json.loads(iotrace("report", "--json", str(out)).stdout)["completeness"]
    assert all(r["bytes_pct"] == 100.0 for r in got["processes"]), got["processes"]
    _shown_apart(out, first)
    missed = iotrace("missed", "--json", str(out))
    assert missed.returncode == 0, missed.stderr
    wrote = {g["path"].rsplit("/", 1)[-1]: g["process_nth"] for g in json.loads(missed.stdout)
             if g["syscall"] == "write" and str(g["path"]).endswith(".dat")}  # fmt: skip
    assert wrote == {"a.dat": 1, "b.dat": 2, "c.dat": 2}, wrote
    text = iotrace("missed", str(out)).stdout
    assert f"a.dat, 1000 B [pid {first}]" in text and f"b.dat, 3000 B [pid {first}#2]" in text


def test_the_rule_in_numpy_is_the_rule() -> None:
    """incarnation.of_rows (the exports' processes, 200,000 rows at once) gives each row the
    process starts() and of() give it, on every order, tie and kind of rows."""
    import random

    import numpy as np

    from iotrace import incarnation as inc

    rnd = random.Random(1)
    for _ in range(2000):
        rows = [(rnd.randrange(3), rnd.randrange(6), rnd.randrange(3))
                for _ in range(rnd.randrange(1, 12))]  # fmt: skip
        g, t, k = (np.array(c) for c in zip(*rows, strict=True))
        start, nth = inc.of_rows(g, t, k)
        for i, (gi, ti, _) in enumerate(rows):
            b = inc.starts([(r[1], r[2]) for r in rows if r[0] == gi])
            assert (start[i], nth[i]) == (inc.of(b, ti), b.index(inc.of(b, ti)) + 1), rows
