"""An app that sandboxes itself with seccomp behaves traced exactly as untraced (preload/sandbox.c):
the shim makes no syscall of its own once the app's filter is in, in both modes."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import build, iotrace

from iotrace.calls import KIO_WHEN
from iotrace.tracefile import log_paths, read_log

N = 300


def untraced(prog: str, *args: str, cwd) -> tuple[int, str, bytes]:
    p = subprocess.run([prog, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, (cwd / "out").read_bytes()


@pytest.mark.parametrize("how", ["kill", "killsys", "libseccomp", "errno", "strict", "exec"])
@pytest.mark.parametrize("mode", ["stracer", "shim"])
def test_an_app_that_sandboxes_itself_runs_as_untraced(trace, mode, how):
    """tests/progs/sandbox.c writes, installs a filter (killing the process, or failing the call
    with EPERM, on any syscall it does not list; with prctl, syscall(SYS_seccomp) or libseccomp,
    which probes the kernel with installs it refuses first; or strict mode), then writes N
    records, starts a thread and a child, exits (or execs itself, under the filter too): its output,
    its file and its status are the untraced run's (the shim's own syscalls -- the exit reading,
    a new thread's id, a child's log, the log's growth, the new image's start -- killed it
    before).  The trace holds the events after the filter; with the shim alone it says why it
    has no counters at the end; with the stracer (its end reading, the shim's sums read in its
    memory, the calls the shim could not record) it explains every byte the kernel counted."""
    prog = str(build("sandbox"))
    want = untraced(prog, how, "out", str(N), cwd=trace.work)
    assert want[0] == 0, want
    t = trace(prog, how, "out", str(N), extra=("--no-stracer",) if mode == "shim" else ())
    got = (t.proc.returncode, t.proc.stdout, (trace.work / "out").read_bytes())
    assert got == want, t.proc.stderr
    if mode == "shim":  # no counters at the end, and why
        assert "installed a seccomp filter, after which the shim makes no syscall" in t.proc.stderr
    elif how != "exec":  # the stracer's end reading, with the shim's sums in its memory: exact
        assert "the trace explains 100.0% of the" in t.proc.stderr, t.proc.stderr
    (log,) = [lg for lg in map(read_log, log_paths(t.dir)) if not lg.header.get("forked")]
    assert [KIO_WHEN[r[1]] for r in log.kio] == ["start", "seccomp"]
    # room for all: dropped only the calls of a thread the shim could not set up (the thread's
    # write; under strict mode every call after it: N writes and "done")
    assert log.seccomp is not None and log.seccomp[1] == (N + 1 if how == "strict" else 1)
    writes = [e for e in t.events("write") if e["path"] and e["path"].endswith("/out")]
    after = [e for e in writes if e["t_start"] > log.kio[-1][2]]
    # the records; not under strict mode (no clock: the TSC is off), nor the thread's and the
    # child's writes (the stracer has those, in its log)
    assert len(after) == (0 if how == "strict" else N), len(after)
    # the stracer's reading at the end: every byte explained (but after an exec, the new image's
    # loader: the stracer takes it for the loader before a shim, which never starts there)
    if mode == "stracer" and how != "exec":
        js = json.loads(iotrace("report", "--json", str(t.dir)).stdout)["completeness"]
        assert [p["bytes_pct"] for p in js["processes"]] == [100.0] * len(js["processes"]), js


def test_records_past_the_room_made_ahead_are_counted_as_dropped(trace):
    """Past the 4 MiB made ahead of the filter the shim drops records (more room is a syscall)
    and counts them in the log; the app runs on untouched, and the log reads to its end."""
    n = 150_000
    prog = str(build("sandbox"))
    want = untraced(prog, "kill", "out", str(n), cwd=trace.work)
    t = trace(prog, "kill", "out", str(n), extra=("--no-stracer",))
    assert (t.proc.returncode, t.proc.stdout, (trace.work / "out").read_bytes()) == want
    (log,) = [lg for lg in map(read_log, log_paths(t.dir)) if not lg.header.get("forked")]
    assert log.seccomp is not None
    after = [e for e in t.events() if e["t_start"] > log.seccomp[0]]
    writes = [e for e in after if e["fn"] == "write"]
    # the first ones after the filter, in order, then none: each one lost is counted
    assert 0 < len(writes) < n and log.seccomp[1] > 0, (len(writes), log.seccomp)
    offsets = [e["offset"] for e in writes]
    assert offsets == sorted(set(offsets)) and offsets[0] == len("before the filter\n"), offsets[:3]
    # every event after it, recorded or counted: n writes, n + 1 printf, stdout's flushes (a
    # pipe: 4 KiB), pthread_create, the thread's write, fork; and the exit record if lost
    flushes = -(-(len(t.proc.stdout) - len("before the filter\n")) // 4096)
    lost_exit = log.exit_time is None
    assert len(after) + log.seccomp[1] == 2 * n + 1 + flushes + 3 + lost_exit, log.seccomp


def _after_the_filter(prefix: Path) -> collections.Counter[str]:
    """The syscalls `strace -ff -o prefix` saw the sandboxed program make after its prctl, and
    those of the thread and the child it started then."""
    out: collections.Counter[str] = collections.Counter()
    for f in prefix.parent.glob(prefix.name + ".*"):
        lines = f.read_text().splitlines()
        start = next((i for i, ln in enumerate(lines) if "PR_SET_SECCOMP" in ln), None)
        if start is None:
            continue
        kids = []
        for ln in lines[start + 1 :]:
            if not ln.startswith(("---", "+++")):  # signals, the end
                out[ln.split("(", 1)[0]] += 1
            if m := re.match(r"clone3?\(.*\) = (\d+)", ln):
                kids.append(m.group(1))
        for kid in kids:
            for ln in (prefix.parent / f"{prefix.name}.{kid}").read_text().splitlines():
                if not ln.startswith(("---", "+++")):
                    out[ln.split("(", 1)[0]] += 1
    return out


def test_the_shim_makes_no_syscall_after_the_filter(trace, tmp_path):
    """strace, the oracle: after the app's filter, its process, its thread and its child make
    the same syscalls traced (the shim alone) as untraced -- none of the shim's own, not even
    one the filter allows (fstat, mmap, madvise, futex...)."""
    prog = str(build("sandbox"))
    run = [sys.executable, "-m", "iotrace", "run", "--no-stracer", "-o", str(tmp_path / "t")]
    runs = {}
    for name, cmd in (("untraced", [prog]), ("traced", [*run, "--", prog])):
        prefix = tmp_path / name
        p = subprocess.run(["strace", "-ff", "-o", str(prefix), *cmd, "kill", "out", "50"],
                           cwd=trace.work, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert p.returncode == 0, p.stderr
        runs[name] = _after_the_filter(prefix)
    assert runs["traced"] == runs["untraced"] and runs["untraced"]["write"] >= 50, runs
