"""`iotrace attach PID`: a running loop writer (two threads, a child now and then) is attached,
recorded, detached on Ctrl-C and left running; every call it made in between is in the trace,
none from before."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import build, iotrace
from iotrace.analyzer import load

from iotrace.calls import SYSCALL_BY_NAME

SHOW_TIME = re.compile(r"^\[pid \d+ tid \d+\] \+(\d+\.\d+) ")


def _tracer_pid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("TracerPid:"):
            return int(line.split()[1])
    raise AssertionError("no TracerPid")


def _records(path: Path) -> int:
    return path.stat().st_size // 8 if path.exists() else 0


def _in_reads(pid: int, n: int) -> bool:
    """The process has `n` threads, each blocked in read(2) (a fixed wait, 0.3 s, may not
    have got them there under load)."""
    tids = os.listdir(f"/proc/{pid}/task")
    calls = [Path(f"/proc/{pid}/task/{t}/syscall").read_text().split()[0] for t in tids]
    return len(tids) == n and calls == [str(SYSCALL_BY_NAME["read"].nr)] * n


def _writes_on(main: Path, after: int) -> None:
    """att_loop writes more records to `main` than `after` (within a minute: a fixed 0.3 s
    may pass without its turn on a loaded machine)."""
    end = time.monotonic() + 60
    while _records(main) <= after:
        assert time.monotonic() < end, "the app wrote nothing more"
        time.sleep(0.02)


def _lines(path: Path) -> int:  # att_loop's side file: 2-byte lines
    return path.stat().st_size // 2 if path.exists() else 0


def _attached(*args: str) -> subprocess.Popen[str]:
    """`iotrace attach ARGS` running, once it said it attached (its stderr read on after)."""
    at = subprocess.Popen([sys.executable, "-m", "iotrace", "attach", *args],
                          stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert at.stderr is not None
    assert "attached to" in at.stderr.readline()
    return at


def _recorded_for_a_while(at: subprocess.Popen[str], said: str, main: Path, side: Path) -> str:
    """Ctrl-C to a running attach of att_loop once it said `said` (it records from there) and
    the app wrote 12 more records to `main` (a fork among them) and 6 more lines to `side` (a
    fixed wait, 1.5 s, left fewer when the attach's start took longer under load); its whole
    stderr, once it ended."""
    assert at.stderr is not None
    lines = []
    while not lines or said not in lines[-1]:
        lines.append(at.stderr.readline())
        assert lines[-1], lines  # it said it, before its end
    since = _records(main), _lines(side)
    while _records(main) < since[0] + 12 or _lines(side) < since[1] + 6:
        time.sleep(0.05)
    at.send_signal(signal.SIGINT)
    _, err = at.communicate(timeout=60)
    return "".join(lines) + err


def _detached(at: subprocess.Popen[str]) -> str:
    """Ctrl-C to a running attach: the rest of its stderr, once it ended with status 0."""
    at.send_signal(signal.SIGINT)
    _, err = at.communicate(timeout=60)
    assert at.returncode == 0, err
    return err


def test_attach_records_between_and_detaches(tmp_path: Path) -> None:
    main, side, kid = tmp_path / "main.out", tmp_path / "side.out", tmp_path / "kid.out"
    app = subprocess.Popen([str(build("att_loop")), str(main), str(side), str(kid)])
    try:
        while _records(main) < 5:
            time.sleep(0.05)
        out = tmp_path / "trace"
        at = subprocess.Popen([sys.executable, "-m", "iotrace", "attach", str(app.pid), "-o",
                               str(out)], stderr=subprocess.PIPE, text=True)  # fmt: skip
        before = _records(main)
        err = _recorded_for_a_while(at, "attached to", main, side)
        after = _records(main)
        assert at.returncode == 0, err
        assert f"detached from {app.pid}" in err and f"trace written to {out}" in err
        assert "iotrace: the trace explains 100.0% of the " in err, err  # its closing line
        # left running, untraced, still writing
        assert app.poll() is None and _tracer_pid(app.pid) == 0
        _writes_on(main, after)
    finally:
        app.kill()
        app.wait()
    ev = load(out).events
    assert set(ev["class"]) == {"attached"} and not ev["missed"].any()
    writes = ev[(ev["function"] == "pwrite64") & (ev["path"] == str(main))]
    offs = sorted(int(o) for o in writes["offset"])
    n = len(writes)
    assert 10 <= n <= after - before + 2, (n, before, after)
    # every record written while attached, none before: consecutive offsets, from about the
    # record the file had when attach started
    assert offs == list(range(offs[0], offs[0] + 8 * n, 8))
    assert offs[0] >= 8 * (before - 1)
    # the other thread and the children forked while attached
    assert (ev["path"] == str(side)).sum() >= 5
    assert ev[ev["path"] == str(kid)]["pid"].nunique() >= 1
    assert set(ev[ev["path"] == str(side)]["tid"]) - {app.pid}

    # show: a trace of stracer logs alone, each event marked, times since the attach began
    shown = iotrace("show", str(out))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == len(ev) and all(ln.endswith(" [attached]") for ln in lines)
    times = [float(SHOW_TIME.match(ln).group(1)) for ln in lines]  # type: ignore[union-attr]
    assert times == sorted(times) and times[-1] < 30, times[-1]
    pw = [ln for ln in lines if "pwrite64(" in ln and f"<{main}>, " in ln]
    assert [int(ln.split(", ")[3].split(")")[0]) for ln in pw] == offs
    kid_lines = iotrace("show", str(out), "--path", str(kid)).stdout.splitlines()
    assert kid_lines and all(str(kid) in ln for ln in kid_lines)
    # report: the same calls, by function and by file
    rep = iotrace("report", str(out), "--json")
    assert rep.returncode == 0, rep.stderr
    d = json.loads(rep.stdout)
    assert d["overview"]["events"] == len(ev)
    assert {f["function"]: f["calls"] for f in d["functions"]}["pwrite64"] == n
    files = {f["path"]: f for f in d["files"]}
    assert (files[str(main)]["writes"], files[str(main)]["bytes_written"]) == (n, 8 * n)
    # completeness of the interval: the kernel's counters at the attach (every thread stopped)
    # are the baseline, those at each process's exit stop or at the detach the end; every byte
    # and read/write syscall between is explained, in the process and the children it forked
    # (was: no completeness at all, "iotrace attach: the counters would hold the I/O before it")
    line = d["completeness"]["line"]
    assert line.startswith("the trace explains 100.0% of the ") and " and 100.0% of the " in line
    assert "between the attach and the end" in line, line
    rows = d["completeness"]["processes"]
    assert {r["pid"] for r in rows} >= {app.pid} and len(rows) >= 2, rows
    for r in rows:
        for c in ("rchar", "wchar", "syscr", "syscw"):
            assert r[f"kernel_{c}"] == r[f"explained_{c}"], r
    # (the >= 5 records written before the attach are in the counters but not the trace: the
    # equality holds only with the baseline taken off)
    (main_row,) = [r for r in rows if r["pid"] == app.pid]
    assert main_row["kernel_wchar"] >= 8 * n, main_row


def test_attach_bad_pid_is_one_line(tmp_path: Path) -> None:
    r = iotrace("attach", "999999999", "-o", str(tmp_path / "t"))
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    for pids in ((), ("1", "-p", "1")):  # none, or two (strace's -p and the PID)
        r = iotrace("attach", *pids, "-o", str(tmp_path / "t"))
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert not (tmp_path / "t").exists()
    # --shim into a static program: no libc to load it with; it runs on
    files = [str(tmp_path / f"{f}.out") for f in "mst"]
    app = subprocess.Popen([str(build("att_loop", "-static")), *files])
    try:
        r = iotrace("attach", "--shim", str(app.pid), "-o", str(tmp_path / "s"))
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
        assert "no libc" in r.stderr and app.poll() is None and _tracer_pid(app.pid) == 0
        # -o naming a file
        r = iotrace("attach", str(app.pid), "-o", files[0])
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
        assert "cannot write a trace in" in r.stderr and "Not a directory" in r.stderr
    finally:
        app.kill()
        app.wait()
    # --shim into a process that has it already (under iotrace run)
    run = subprocess.Popen([sys.executable, "-m", "iotrace", "run", "--no-stracer", "-o",
                            str(tmp_path / "r"), "--", str(build("att_loop")), *files])  # fmt: skip
    try:
        kids: list[str] = []
        while not kids:
            time.sleep(0.05)
            kids = Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split()
        while "libiotrace" not in Path(f"/proc/{kids[0]}/maps").read_text():
            time.sleep(0.05)
        r = iotrace("attach", "--shim", kids[0], "-o", str(tmp_path / "s2"))
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
        assert "has the shim already" in r.stderr
    finally:
        run.terminate()
        run.wait()


def test_attach_shim_records_calls_with_stacks_and_detaches(tmp_path: Path) -> None:
    """`attach --shim`: the shim is loaded into the running loop writer; its calls (the other
    thread's and the children's too) are the shim's events, with stacks, until the detach; then
    the process runs on untraced, its calls bound to libc again (no more events)."""
    main, side, kid = tmp_path / "main.out", tmp_path / "side.out", tmp_path / "kid.out"
    app = subprocess.Popen([str(build("att_loop")), str(main), str(side), str(kid)])
    out = tmp_path / "trace"
    try:
        while _records(main) < 5:
            time.sleep(0.05)
        at = subprocess.Popen([sys.executable, "-m", "iotrace", "attach", "--shim",
                               str(app.pid), "-o", str(out)], stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
        before = _records(main)
        err = _recorded_for_a_while(at, "shim loaded into", main, side)
        after = _records(main)
        assert at.returncode == 0, err
        assert f"shim loaded into {app.pid}" in err and f"detached from {app.pid}" in err
        assert app.poll() is None and _tracer_pid(app.pid) == 0
        recorded = len(load(out).events)
        _writes_on(main, after)  # still writing, now unrecorded
        assert len(load(out).events) == recorded
    finally:
        app.kill()
        app.wait()
    t = load(out)
    ev = t.events
    assert set(ev["class"]) == {"covered"}  # the shim's own events, no stracer's
    writes = ev[(ev["function"] == "pwrite") & (ev["path"] == str(main))]
    offs = sorted(int(o) for o in writes["offset"])
    n = len(writes)
    assert 10 <= n <= after - before + 2, (n, before, after)
    assert offs == list(range(offs[0], offs[0] + 8 * n, 8))
    assert (ev["path"] == str(side)).sum() >= 5
    assert ev[ev["path"] == str(kid)]["pid"].nunique() >= 1
    shown = iotrace("show", str(out), "--stacks", "--path", str(main)).stdout.splitlines()
    assert shown[0].startswith(f"[pid {app.pid} tid {app.pid}]") and " pwrite(" in shown[0]
    assert shown[1].startswith("    at main")


def test_detach_mid_read_leaves_no_failed_call(tmp_path: Path) -> None:
    """Ctrl-C while two threads block in a read: the detach's own interrupt cuts each read with
    -ERESTARTSYS, which the kernel restarts after the detach -- the app's reads never fail and
    get their data; the trace has no failed call (was: two reads `-1 512 (Unknown error 512)`,
    "2 failed calls" in the report), and every syscall the kernel counted is explained."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    prog = ("import os, sys, threading\ngot = {}\n"
            "t = threading.Thread(target=lambda: got.update(t=os.read(int(sys.argv[1]), 9)))\n"
            "t.start()\nm = os.read(0, 9)\nt.join()\nprint(m, got['t'])\n")  # fmt: skip
    app = subprocess.Popen([sys.executable, "-c", prog, str(r2)], stdin=r1, pass_fds=(r2,),
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    os.close(r1)
    os.close(r2)
    out = tmp_path / "trace"
    try:
        while not _in_reads(app.pid, 2):  # both threads blocked in their reads
            time.sleep(0.05)
        at = _attached("-p", str(app.pid), "-o", str(out))
        time.sleep(0.5)
        err = _detached(at)
        assert "the trace explains 100.0% of the " in err, err
        os.write(w1, b"hello")
        os.write(w2, b"x")
        stdout, _ = app.communicate(timeout=30)
    finally:
        app.kill()
        app.wait()
    assert app.returncode == 0
    assert stdout == "b'hello' b'x'\n"
    ev = load(out).events
    assert not (ev["errno"] != 0).any(), ev[["function", "ret", "errno"]]
    shown = iotrace("show", str(out), "--failed")
    assert shown.returncode == 0 and shown.stdout == "", shown.stdout


CUT = "= ? ERESTARTSYS (To be restarted if SA_RESTART is set)"


def _cut_read_checked(out: Path, reads: tuple[int, int]) -> None:
    """The raw read a SA_RESTART SIGALRM cut, in trace `out`: shown as strace shows it, then
    its restart with the 5 bytes; no failed call in the report or in `show --failed`; `reads`
    the read calls and bytes the report counts (as the kernel: the cut call is one)."""
    shown = iotrace("show", str(out))
    assert shown.returncode == 0, shown.stderr
    got = re.findall(r" read\(3<pipe:\[\d+\]>, \w+, 64\) (= .*) <[\d.]+> ", shown.stdout)
    assert got == [CUT, "= 5"], shown.stdout
    failed = iotrace("show", str(out), "--failed")
    assert failed.returncode == 0 and " read(" not in failed.stdout, failed.stdout
    rep = iotrace("report", str(out), "--json")
    assert rep.returncode == 0, rep.stderr
    d = json.loads(rep.stdout)
    (read,) = [f for f in d["functions"] if f["function"] == "read"]
    assert (read["calls"], read["bytes"], read["errors"]) == (*reads, 0), read
    assert d["overview"]["errors"] == 0 and "error 512" not in shown.stdout
    assert d["completeness"]["line"].startswith("the trace explains 100.0% of the ")


def test_cut_read_is_no_failed_call(tmp_path: Path) -> None:
    """A raw read(2) on a pipe that a SA_RESTART signal cuts: the kernel restarts it, the app
    never sees it fail.  Under `run` (a bypass) and under `attach` (every read recorded) the
    stracer records the cut call as strace does, `= ? ERESTARTSYS`, not as a failure (was:
    `= -1 512 (Unknown error 512)`, a failed call in the report); strace is the oracle."""
    prog = str(build("restart_read"))
    st = subprocess.run(["strace", "-qq", "-e", "trace=read", "-e", "signal=none", prog],
                        capture_output=True, text=True, timeout=60)  # fmt: skip
    assert st.returncode == 0 and st.stdout == "read 5 alarms 1\n", st.stderr
    oracle = re.findall(r"^read\(3, .*, 64\) +(= .*)$", st.stderr, re.M)
    assert oracle == [CUT, "= 5"], st.stderr

    r = iotrace("run", "-o", str(tmp_path / "run"), "--", prog)
    assert r.returncode == 0 and r.stdout == "read 5 alarms 1\n", r.stderr
    _cut_read_checked(tmp_path / "run", (2, 5))

    app = subprocess.Popen([prog, "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)  # fmt: skip
    assert app.stdin is not None
    try:
        at = _attached(str(app.pid), "-o", str(tmp_path / "att"))
        app.stdin.write("x")
        app.stdin.close()
        stdout = app.stdout.read() if app.stdout else ""
        assert app.wait(timeout=60) == 0 and stdout == "read 5 alarms 1\n"
        _, err = at.communicate(timeout=60)  # the attach ends with the process
        assert at.returncode == 0, err
        assert f"iotrace: {app.pid} ended while attached" in err and "runs on" not in err, err
    finally:
        app.kill()
        app.wait()
    _cut_read_checked(tmp_path / "att", (3, 6))  # and the byte read from stdin


def test_attach_without_io_is_one_process_checked(tmp_path: Path) -> None:
    """An attach to a process that makes no I/O while attached (a `sleep`): the trace is of
    that one process, from the attach to the detach, and its completeness is checked (the
    attach and end readings: 0 of 0) (was: "0 process(es)", run time 0 and "no shim and no
    stracer read the kernel's counters ... this trace cannot check itself")."""
    app = subprocess.Popen(["sleep", "60"])
    out = tmp_path / "trace"
    try:
        at = _attached(str(app.pid), "-o", str(out))
        time.sleep(0.3)
        _detached(at)
        assert app.poll() is None  # left running
    finally:
        app.kill()
        app.wait()
    rep = iotrace("report", str(out))
    assert rep.returncode == 0, rep.stderr
    assert "cannot check itself" not in rep.stdout and "static" not in rep.stdout, rep.stdout
    d = json.loads(iotrace("report", str(out), "--json").stdout)
    ov = d["overview"]
    assert (ov["processes"], ov["events"], ov["errors"]) == (1, 0, 0), ov
    assert ov["run_time"] >= 300_000_000, ov  # from the attach to the detach
    line = d["completeness"]["line"]
    assert line.startswith("the trace explains 100.0% of the 0 B and 100.0% of the 0 "), line
    assert [r["pid"] for r in d["completeness"]["processes"]] == [app.pid]
