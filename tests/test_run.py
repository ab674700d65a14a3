"""`iotrace run` and `iotrace show`: exit status, errors, signals, and the trace directory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import build, iotrace

# full tracing (Python and its stracer) and the shim alone (the C launcher, launcher/)
MODES = pytest.mark.parametrize("mode", [(), ("--no-stracer",)], ids=["full", "shim"])


@MODES
def test_exit_status_and_run_record(trace, mode):
    t = trace(build("fd_basic"), "a\u00e9\U0001f600", extra=mode)
    assert t.proc.returncode == 7
    assert f"iotrace: trace written to {t.dir}" in t.proc.stderr
    (run_file,) = t.dir.glob("iotrace-run.*.json")
    text = run_file.read_text()
    rec = json.loads(text)
    assert text == json.dumps(rec, indent=1) + "\n"  # as Python's json writes it
    assert rec["status"] == 7 and rec["returncode"] == 7
    assert rec["argv"] == [str(build("fd_basic")), "a\u00e9\U0001f600"]
    assert rec["end_mono_ns"] > rec["start_mono_ns"]


@MODES
def test_missing_command_is_one_line_127(tmp_path, mode):
    r = iotrace("run", "-o", str(tmp_path / "t"), *mode, "--", "no-such-command-xyz")
    assert r.returncode == 127
    assert r.stderr.strip() == "iotrace: no-such-command-xyz: command not found"


@MODES
def test_not_executable_is_126(tmp_path, mode):
    f = tmp_path / "plain.txt"
    f.write_text("hi")
    r = iotrace("run", "-o", str(tmp_path / "t"), *mode, "--", str(f))
    assert r.returncode == 126 and len(r.stderr.strip().splitlines()) == 1


@MODES
def test_signal_death_is_the_commands(trace, mode):
    """iotrace dies by the signal that killed the command (as strace does): whoever waits for
    it sees what it would have seen untraced, not an exit of 128+N."""
    t = trace(build("signal_exit"), str(signal.SIGTERM), extra=mode)
    assert t.proc.returncode == -signal.SIGTERM
    assert len(t.events("write")) == 1


def test_show_format(trace):
    t = trace(build("fd_basic"))
    r = iotrace("show", str(t.dir))
    assert r.returncode == 0, r.stderr
    data = trace.work / "data.bin"
    pat = re.compile(
        r"^\[pid (\d+) tid (\d+)\] \+\d+\.\d{6} write\(3<" + re.escape(str(data)) + r">, 1000\) "
        r"= 1000 <\d+\.\d{6}>$"
    )
    writes = [ln for ln in r.stdout.splitlines() if pat.match(ln)]
    assert len(writes) == 4
    assert any(
        'open("' + str(trace.work / "missing/nothing") + '", O_RDONLY) = -1 ENOENT '
        "(No such file or directory)" in ln
        for ln in r.stdout.splitlines()
    )
    assert any(
        f'open("{data}", O_RDWR|O_CREAT|O_TRUNC, 0640) = 3' in ln for ln in r.stdout.splitlines()
    )


def test_show_rank_prefix(trace):
    env = dict(os.environ, OMPI_COMM_WORLD_RANK="3", OMPI_COMM_WORLD_SIZE="4")
    t = trace(build("fd_basic"), env=env)
    assert t.logs[0].header["rank"] == 3 and t.logs[0].header["size"] == 4
    r = iotrace("show", str(t.dir))
    assert r.stdout.splitlines()[0].startswith("[rank 3 pid ")


def test_bad_trace_dirs_one_line_status_2(tmp_path):
    cases = {}
    cases["missing"] = tmp_path / "nope"
    empty = tmp_path / "empty"
    empty.mkdir()
    cases["empty"] = empty
    notours = tmp_path / "notours"
    notours.mkdir()
    (notours / "x.1.iot").write_bytes(b"\x93\x01\x02\x03garbage")
    cases["notours"] = notours
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases["file"] = afile
    for name, path in cases.items():
        r = iotrace("show", str(path))
        assert r.returncode == 2, name
        assert len(r.stderr.strip().splitlines()) == 1, (name, r.stderr)
        assert "Traceback" not in r.stderr


def test_truncated_log_reads_up_to_last_record(trace):
    t = trace(build("fd_basic"))
    (log,) = t.dir.glob("*.iot")
    data = log.read_bytes()
    full = len(t.events("write"))
    chunk = t.logs[0].header["chunk_size"]
    last = max(off for off in range(chunk, len(data), chunk) if data[off] == 0xC6)
    committed = int.from_bytes(data[last + 1 : last + 5], "big")
    log.write_bytes(data[: last + 5 + committed // 2])  # cut inside the last records
    r = iotrace("show", str(t.dir))
    assert r.returncode == 0
    assert "cut short" in r.stderr
    assert 0 < sum(" write(" in ln for ln in r.stdout.splitlines()) <= full


def test_corrupt_log_is_status_2(trace):
    t = trace(build("fd_basic"))
    (log,) = t.dir.glob("*.iot")
    data = bytearray(log.read_bytes())
    chunk = 32 * 1024
    data[chunk] = 0x42  # a chunk that is neither written nor empty
    log.write_bytes(bytes(data))
    r = iotrace("show", str(t.dir))
    assert r.returncode == 2 and "corrupt" in r.stderr and "Traceback" not in r.stderr


def test_sigkill_loses_no_completed_event(tmp_path):
    prog = build("proc_kill")
    out = tmp_path / "t"
    work = tmp_path / "w"
    work.mkdir()
    p = subprocess.Popen(
        [sys.executable, "-m", "iotrace", "run", "-o", str(out), "--", str(prog), "5000"],
        cwd=work, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert p.stderr.readline().strip() == "ready"
    (log,) = out.glob("*.iot")
    pid = int(log.name.split(".")[-2])
    os.kill(pid, signal.SIGKILL)
    assert p.wait(timeout=30) == -signal.SIGKILL
    from iotrace.tracefile import read_log

    evs = read_log(log).events
    assert sum(1 for e in evs if e[7] == 10) == 5000  # every completed 10-byte write


@MODES
def test_ctrl_c_reaches_the_app(tmp_path, mode):
    prog = build("proc_kill")
    work = tmp_path / "w"
    work.mkdir()
    p = subprocess.Popen(
        [sys.executable, "-m", "iotrace", "run", "-o", str(tmp_path / "t"), *mode, "--",
         str(prog), "1"],
        cwd=work, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert p.stderr.readline().strip() == "ready"
    time.sleep(0.2)
    os.killpg(p.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    assert p.wait(timeout=30) == -signal.SIGINT


@MODES
def test_sigterm_to_iotrace_is_forwarded(tmp_path, mode):
    prog = build("proc_kill")
    work = tmp_path / "w"
    work.mkdir()
    p = subprocess.Popen(
        [sys.executable, "-m", "iotrace", "run", "-o", str(tmp_path / "t"), *mode, "--",
         str(prog), "1"],
        cwd=work, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert p.stderr.readline().strip() == "ready"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == -signal.SIGTERM
