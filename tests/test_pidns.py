"""A command that starts a PID namespace of its own (`unshare -pf --mount-proc`, a container's
runtime): the shim inside names its logs by the pids in it, which `iotrace run`'s closing line
cannot match to the run's (the stracer's and the kernel's pids are the outer ones).  The line
says so, in both modes, rather than a bare "explains 0.1%" or "no counters", and so does the
report's completeness line."""

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


@pytest.mark.parametrize("extra", [(), ("--no-stracer",)])
def test_pid_namespace_is_said_on_the_closing_line(trace, extra) -> None:
    t = trace(*_unshare(), "sh", "-c", SCRIPT, extra=extra)
    assert t.proc.returncode == 0, t.proc.stderr
    assert (trace.work / "big.dat").stat().st_size == 1 << 20
    line = [ln for ln in t.proc.stderr.splitlines() if NOTE in ln]
    assert len(line) == 1 and line[0].startswith("iotrace: "), t.proc.stderr
    assert f"1 process {NOTE}" in line[0]
    assert ("(the kernel's counts of them are, as not explained)" in line[0]) == (not extra)
    report = iotrace("report", "--json", str(t.dir))  # its completeness line says it too
    assert report.returncode == 0, report.stderr
    assert f"1 process {NOTE}" in json.loads(report.stdout)["completeness"]["line"]
    # the same command without a namespace of its own: explained, nothing said
    plain = trace("sh", "-c", SCRIPT, extra=extra)
    assert NOTE not in plain.proc.stderr
    assert "the trace explains 100.0% of the" in plain.proc.stderr, plain.proc.stderr
