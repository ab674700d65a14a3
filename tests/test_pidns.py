"""A command that starts a PID namespace of its own (`unshare -pf --mount-proc`, a container's
runtime): the shim inside names its logs, pids and threads by the ids in it, the stracer and the
kernel's counters by the run's.  Under the stracer its records of both (PROC "nspid") take the
logs back to the run's pids: one process each, the kernel's bytes counted once and explained,
the stracer's stops matched to the calls of those threads.  With the shim alone nothing knows
the run's pids: `iotrace run`'s closing line says so rather than a bare "explains 0.1%", and so
does the report's completeness line."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from conftest import iotrace

NOTE = "began a PID namespace of its own (unshare -p, a container)"
SCRIPT = "head -c 1048576 /dev/zero > big.dat; cat big.dat > /dev/null"


def _unshare() -> list[str]:
    cmd = ["unshare", "-pf", "--mount-proc"]
    if not shutil.which("unshare") or subprocess.run([*cmd, "true"]).returncode != 0:
        pytest.skip("unshare -pf --mount-proc is not permitted here")
    return cmd


def test_pid_namespace_under_the_stracer_is_the_runs(trace) -> None:
    t = trace(*_unshare(), "sh", "-c", SCRIPT)
    assert t.proc.returncode == 0, t.proc.stderr
    assert (trace.work / "big.dat").stat().st_size == 1 << 20
    assert NOTE not in t.proc.stderr
    # the kernel's 4 MiB (1 MiB each: head's read and write, cat's) once, all explained
    ok = "the trace explains 100.0% of the 4.0 MiB and 100.0% of the"
    assert ok in t.proc.stderr, t.proc.stderr
    report = iotrace("report", "--json", str(t.dir))
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["completeness"]["line"].startswith(ok)
    from iotrace.analyzer import load

    tr = load(t.dir)
    pr = tr.processes
    # unshare, its child (the namespace's pid 1, exec'd sh), head and cat: each one process,
    # by the run's pids, in the shim's rows and in the stracer's (sh's forks before their exec)
    assert len(set(pr["pid"])) == 4, pr
    assert 0 not in set(pr["ppid"]) and min(pr["pid"]) > 3, pr
    ev = tr.events
    assert set(ev["pid"]) <= set(pr["pid"]) and set(ev["tid"]) <= set(pr["pid"])
    held = tr.stops  # the stops the stracer held those threads in: theirs
    assert len(held) and set(held["tid"]) <= set(pr["pid"])
    # two namespaces alive at once, each with its pid 1 (unshare's child, then sh) and 2 (cat):
    # each log to its own process, by the program it ran then
    u = " ".join(_unshare())
    two = f"{u} sh -c 'cat big.dat > a; sleep 0.2' & sleep 0.1; {u} sh -c 'cat big.dat > b'; wait"
    t = trace("sh", "-c", two)
    assert t.proc.returncode == 0 and ok.replace("4.0", "4.1") in t.proc.stderr, t.proc.stderr
    pids = set(load(t.dir).processes["pid"])  # sh, 2 unshare, their 2 sh, 2 cat, 2 sleep
    assert len(pids) == 9 and min(pids) > 3, pids


def test_pid_namespace_without_the_stracer_is_said(trace) -> None:
    t = trace(*_unshare(), "sh", "-c", SCRIPT, extra=("--no-stracer",))
    assert t.proc.returncode == 0, t.proc.stderr
    assert (trace.work / "big.dat").stat().st_size == 1 << 20
    line = [ln for ln in t.proc.stderr.splitlines() if NOTE in ln]
    assert len(line) == 1 and line[0].startswith("iotrace: "), t.proc.stderr
    assert f"1 process {NOTE}" in line[0]
    assert "(the kernel's counts of them are, as not explained)" not in line[0]
    report = iotrace("report", "--json", str(t.dir))  # its completeness line says it too
    assert report.returncode == 0, report.stderr
    assert f"1 process {NOTE}" in json.loads(report.stdout)["completeness"]["line"]
    # the same command without a namespace of its own: explained, nothing said
    plain = trace("sh", "-c", SCRIPT, extra=("--no-stracer",))
    assert NOTE not in plain.proc.stderr
    assert "the trace explains 100.0% of the" in plain.proc.stderr, plain.proc.stderr
