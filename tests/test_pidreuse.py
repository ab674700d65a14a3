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
    shown = iotrace("show", "--pid", str(first), str(out))
    assert shown.returncode == 0, shown.stderr
    writes = [ln for ln in shown.stdout.splitlines() if "write(" in ln]
    assert [ln.rsplit("= ", 1)[1].split()[0] for ln in writes] == ["1000", "3000", "5000"]


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


@pytest.mark.parametrize("mode,fork", [("full", ""), ("full", "-f"), ("no-stracer", "-f")])
def test_a_time_namespace_s_clock_is_put_on_the_host_s(tmp_path, mode, fork) -> None:
    """A program exec'd (and with -f forked) in a time namespace (unshare --time, its
    CLOCK_MONOTONIC a day ahead): its logs' times are the host's clock, as the stracer's and
    its parent's are, so that its images and processes are told apart by their times (the
    run's line said 33.6% when its log began a day after the stracer saw it exec)."""
    shifted = ["unshare", *([fork] if fork else []), "-T", "--monotonic", "86400"]
    if subprocess.run([*shifted, "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare --time is not permitted here")
    out = tmp_path / "trace"
    script = "cat /etc/passwd > x; head -c 5000 /dev/zero > y"
    extra = ["--no-stracer"] if mode == "no-stracer" else []
    run = iotrace("run", "-o", str(out), *extra, "--", *shifted, "sh", "-c", script, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    line = [ln for ln in run.stderr.splitlines() if "the trace explains" in ln]
    assert len(line) == 1 and OK in line[0], run.stderr
    got = json.loads(iotrace("report", "--json", str(out)).stdout)
    assert got["completeness"]["line"] == line[0].removeprefix("iotrace: ")
    assert all(r["bytes_pct"] == 100.0 for r in got["completeness"]["processes"])
