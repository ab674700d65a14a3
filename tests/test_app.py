"""The traced command sees what it would untraced: the signal dispositions and mask iotrace was
given, SIGPIPE deaths, a stderr on which iotrace's lines never land inside the command's, and
iotrace's lines elsewhere with --console; background children left by the command are named, and
Ctrl-C ends them.  Every check compares the default run, --no-stracer and the untraced command."""

from __future__ import annotations

import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import build

from iotrace.calls import STDIO_ARENA

MODES = [(), ("--no-stracer",)]
MODE_IDS = ["stracer", "no-stracer"]
STATUS = ["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]
# what a launcher may give a command: nohup's SIGHUP, a background job's SIGINT/SIGQUIT, a
# daemon's SIGCHLD, and a blocked mask
IGNORED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR2, signal.SIGCHLD)
BLOCKED = {signal.SIGUSR1, signal.SIGWINCH, signal.SIGALRM, signal.SIGTERM}


def iotrace_cmd(tmp: Path, mode: tuple[str, ...], *cmd: str, name: str = "t") -> list[str]:
    return [sys.executable, "-m", "iotrace", "run", "-o", str(tmp / name), *mode, "--", *cmd]


def given() -> None:
    """A launcher's settings, in the child before it execs iotrace (or the command)."""
    for s in IGNORED:
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED)


def run(cmd: list[str], launcher: bool = False, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, preexec_fn=given if launcher else None,
        **kw,
    )  # fmt: skip


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("launcher", [False, True], ids=["plain", "ignored+blocked"])
def test_signal_dispositions_and_mask_pass_through(tmp_path, mode, launcher):
    """SigIgn and SigBlk of the command are those iotrace was given (SIGPIPE and SIGXFSZ were
    left ignored by the stracer's Python)."""
    untraced = run(STATUS, launcher)
    traced = run(iotrace_cmd(tmp_path, mode, *STATUS), launcher)
    assert traced.returncode == 0, traced.stderr
    assert traced.stdout == untraced.stdout
    # the classic signals (1-31) are the test's to set; real-time ones (32+) may come ignored
    # from whatever started the suite (a CI runner), and pass through unchanged all the same
    ign, blk = _mask(untraced.stdout, "SigIgn"), _mask(untraced.stdout, "SigBlk")
    if launcher:
        assert (ign, blk) == (0x10807, 0x8006200)  # the test sets what it means to
    else:
        assert ign == 0


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_argv0_is_the_name_given(tmp_path, mode):
    """The command's argv[0] is the word it was given, as a shell passes it, not the path found
    on PATH: programs print it in their messages (`sort: cannot read`, bash's `bash: line 1`)."""
    cmd = ["sh", "-c", 'echo "$0"; sort no-such-file']
    untraced = run(cmd, cwd=tmp_path)
    traced = run(iotrace_cmd(tmp_path, mode, *cmd), cwd=tmp_path)
    assert untraced.stdout == "sh\n" and untraced.stderr.startswith("sort: ")
    assert (traced.returncode, traced.stdout) == (untraced.returncode, untraced.stdout)
    assert traced.stderr.startswith(untraced.stderr), traced.stderr


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_sigpipe_and_sigxfsz_given_ignored_stay_ignored(tmp_path, mode):
    """`trap '' PIPE XFSZ; iotrace run -- cmd`: the command starts with both ignored, as
    untraced (Python ignores them itself before iotrace's code runs: the `iotrace` command, a C
    launcher, notes them first), and the launcher's variable is not in its environment."""
    launcher = Path(sys.executable).with_name("iotrace")
    probe = ["sh", "-c", "grep -E '^SigIgn' /proc/self/status; env | grep -c IOTRACE_GIVEN"]
    for trap in ("trap '' PIPE XFSZ; ", ""):
        untraced = run(["bash", "-c", trap + shlex.join(probe)])
        cmd = [str(launcher), "run", "-o", str(tmp_path / f"t{len(trap)}"), *mode, "--", *probe]
        traced = run(["bash", "-c", trap + shlex.join(cmd)])
        assert traced.stdout == untraced.stdout, traced.stderr
        want = 0x1001000 if trap else 0  # bits of SIGPIPE (13) and SIGXFSZ (25)
        assert _mask(traced.stdout, "SigIgn") & 0x1001000 == want
        assert traced.stdout.endswith("\n0\n")


def _mask(status: str, field: str) -> int:
    """A signal set of /proc/PID/status, signals 1-31 only."""
    line = next(x for x in status.splitlines() if x.startswith(field + ":"))
    return int(line.split()[1], 16) & 0x7FFFFFFF


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_sigpipe_pipelines(tmp_path, mode):
    """A writer whose reader is gone dies of SIGPIPE, in the command and as iotrace's status."""
    # never returned under the stracer (bash's builtin echo ignored EPIPE forever)
    loop = ["bash", "-c", "while :; do echo x; done | head -1"]
    traced = run(iotrace_cmd(tmp_path, mode, *loop, name="t1"))
    assert (traced.returncode, traced.stdout) == (0, "x\n"), traced.stderr
    # yes exited 1 with "Broken pipe" instead of dying of SIGPIPE
    yes = ["bash", "-c", "yes | head -1; echo ${PIPESTATUS[0]}"]
    assert run(yes).stdout == "y\n141\n"
    traced = run(iotrace_cmd(tmp_path, mode, *yes, name="t2"))
    assert traced.stdout == "y\n141\n", traced.stderr
    assert "Broken pipe" not in traced.stderr
    # iotrace's own status: killed by SIGPIPE (141 in PIPESTATUS), as yes would be
    iot = " ".join(iotrace_cmd(tmp_path, mode, "yes", name="t3"))
    traced = run(["bash", "-c", f"{iot} | head -1; echo ${{PIPESTATUS[0]}}"])
    assert traced.stdout == "y\n141\n", traced.stderr


MPIRUN = shutil.which("mpirun")


def mpirun(np: int) -> list[str]:
    root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    return [str(MPIRUN), *root, "--oversubscribe", "-np", str(np)]


@pytest.mark.skipif(MPIRUN is None, reason="needs mpirun (Open MPI)")
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_signals_under_mpirun(tmp_path, mode):
    """`mpirun ... iotrace run` and `iotrace run -- mpirun ...`: each rank starts with the
    dispositions and mask it gets untraced, and a rank's SIGPIPE death is mpirun's to see."""
    env = dict(os.environ, OMPI_MCA_btl="self,vader")
    untraced = run([*mpirun(2), *STATUS], True, env=env)
    assert untraced.returncode == 0, untraced.stderr
    inside = run([*mpirun(2), *iotrace_cmd(tmp_path, mode, *STATUS, name="in")], True, env=env)
    outside = run(iotrace_cmd(tmp_path, mode, *mpirun(2), *STATUS, name="out"), True, env=env)
    for traced in (inside, outside):
        assert traced.returncode == 0, traced.stderr
        assert sorted(traced.stdout.splitlines()) == sorted(untraced.stdout.splitlines())
    yes = "yes | head -1; echo ${PIPESTATUS[0]}"
    inside = run([*mpirun(1), *iotrace_cmd(tmp_path, mode, "bash", "-c", yes, name="yin")], env=env)
    outside = run(iotrace_cmd(tmp_path, mode, *mpirun(1), "bash", "-c", yes, name="yout"), env=env)
    assert (inside.stdout, outside.stdout) == ("y\n141\n", "y\n141\n"), (inside, outside)


def _seqpacket_run(cmd: list[str], cwd: Path) -> tuple[int, list[bytes]]:
    """Run cmd with stderr on a SOCK_SEQPACKET socket: every write(2) to it, from iotrace, its
    stracer or the command, arrives as one message, in order."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with a, b:
        p = subprocess.Popen(cmd, cwd=cwd, stderr=b, stdout=subprocess.DEVNULL)
        b.close()
        msgs = []
        while m := a.recv(1 << 16):
            msgs.append(m)
        return p.wait(timeout=60), msgs


def test_console_lines_whole_and_around_the_commands(tmp_path):
    """Each console line of iotrace is one write(2), and none lands inside a line the command
    writes in pieces (raw syscalls the stracer announces) on the same stderr."""
    prog = build("app_partial")
    rc, msgs = _seqpacket_run(iotrace_cmd(tmp_path, (), str(prog)), tmp_path)
    assert rc == 0
    ours = [m for m in msgs if m.startswith(b"iotrace:")]
    assert any(b"missed I/O: write on socket:" in m for m in ours), msgs
    assert any(m.startswith(b"iotrace: trace written to") for m in ours), msgs
    for m in ours:
        assert m.endswith(b"\n") and m.count(b"\n") == 1, m
    text = b"".join(msgs).decode()
    assert text.count("app: part one, part two, part three\n") == 3, text
    # a real program: glibc's error() writes `cat: `, the name, `: ` + strerror, `\n` apart
    rc, msgs = _seqpacket_run(iotrace_cmd(tmp_path, (), "cat", "/nonexistent", name="c"), tmp_path)
    text = b"".join(msgs).decode()
    assert rc == 1 and "cat: /nonexistent: No such file or directory\n" in text, text


@pytest.mark.skipif(MPIRUN is None, reason="needs mpirun (Open MPI)")
def test_console_file_shared_by_ranks(tmp_path):
    """`mpirun -np 2 iotrace run --console FILE`: both ranks' lines in FILE, each whole; the
    ranks' stderr untouched."""
    prog = build("app_partial")
    console = tmp_path / "console.txt"
    env = dict(os.environ, OMPI_MCA_btl="self,vader")
    cmd = iotrace_cmd(tmp_path, (), str(prog))
    r = run([*mpirun(2), *cmd[:4], "--console", str(console), *cmd[4:]], env=env)
    assert r.returncode == 0, r.stderr
    # two ranks write their lines in pieces: they may interleave (as untraced), but each piece
    # is whole and nothing of iotrace's is among them
    for piece in ("app: part one, ", "part two, ", "part three\n"):
        assert r.stderr.count(piece) == 6, r.stderr
    assert "iotrace" not in r.stderr
    lines = console.read_text().splitlines()
    assert all(ln.startswith(("iotrace: rank 0: ", "iotrace: rank 1: ")) for ln in lines), lines
    for r in range(2):  # each rank's lines say whose they are
        assert sum(ln.startswith(f"iotrace: rank {r}: trace written to") for ln in lines) == 1
        assert sum(ln.startswith(f"iotrace: rank {r}: missed I/O: write on") for ln in lines) == 1


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_console_file(tmp_path, mode):
    """--console FILE: iotrace's lines go to FILE (appended), the command's stderr is exactly
    what it is untraced."""
    prog = build("app_partial")
    console = tmp_path / "console.txt"
    console.write_text("before\n")
    untraced = run([str(prog)])
    cmd = iotrace_cmd(tmp_path, mode, str(prog))
    traced = run([*cmd[:4], "--console", str(console), *cmd[4:]])
    assert traced.returncode == 0
    assert traced.stderr == untraced.stderr
    lines = console.read_text().splitlines()
    assert lines[0] == "before" and lines[-1] == f"iotrace: trace written to {tmp_path / 't'}"
    assert all(ln.startswith("iotrace: ") for ln in lines[1:]), lines
    if not mode:
        assert any("missed I/O: write on" in ln for ln in lines), lines
    # errors of the run itself go there too; a console that cannot be opened is one line
    traced = run([*cmd[:4], "--console", str(console), "--", "no-such-command-xyz"])
    assert traced.returncode == 127 and traced.stderr == ""
    assert console.read_text().splitlines()[-1] == "iotrace: no-such-command-xyz: command not found"
    traced = run([*cmd[:4], "--console", str(tmp_path / "no" / "such"), *cmd[4:]])
    assert traced.returncode == 2
    assert traced.stderr.strip().startswith("iotrace: run: --console ")
    assert traced.stderr.count("\n") == 1


@pytest.mark.parametrize("deaf", [False, True], ids=["sleep", "sleep-ignoring-SIGTERM"])
def test_background_child_named_and_ctrl_c_ends_it(tmp_path, deaf):
    """The command exits and leaves a traced child running: one line names it (pid and
    command) and says what Ctrl-C does; Ctrl-C (SIGINT to iotrace) ends it (SIGTERM; a child
    that ignores SIGTERM: the second Ctrl-C, SIGKILL); iotrace exits with the command's
    status.  The command exits once its child runs sleep (its /proc/PID/comm): a child not yet
    exec'd when the stracer names it (0.2 s after the exit; a loaded machine) is named sh."""
    child = "(trap '' TERM; exec sleep 300)" if deaf else "sleep 300"
    execd = 'until read -r c < /proc/$!/comm && [ "$c" = sleep ]; do :; done'
    p = subprocess.Popen(
        iotrace_cmd(tmp_path, (), "sh", "-c", f"{child} & {execd}; exit 5"),
        cwd=tmp_path, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _ctrl_c_ends_it(p, deaf)
    finally:
        if p.poll() is None:  # never leave it (nor its sleep) behind
            for _ in range(2):
                p.send_signal(signal.SIGINT)
                time.sleep(0.5)
            p.kill()
            p.wait()


def _ctrl_c_ends_it(p: subprocess.Popen[str], deaf: bool) -> None:
    assert p.stderr is not None
    line = p.stderr.readline()
    m = re.match(
        r"iotrace: sh exited with status 5; 1 traced process it started still runs: "
        r"pid (\d+) \(sleep 300\)\. iotrace waits for it .*; Ctrl-C ends it \(SIGTERM, a "
        r"second Ctrl-C SIGKILL\)$",
        line,
    )
    assert m, line
    pid = int(m.group(1))
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read() == b"sleep\x00300\x00"
    time.sleep(0.5)
    assert p.poll() is None  # still waiting for it
    p.send_signal(signal.SIGINT)
    if deaf:
        time.sleep(1)
        assert p.poll() is None and os.path.exists(f"/proc/{pid}")  # SIGTERM ignored
        # the second Ctrl-C; again until it ends: two that reach a stracer a loaded machine
        # has not run between them are one (its handler runs once for both: SIGTERM only)
        for _ in range(60):
            p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                pass
    assert p.wait(timeout=30) == 5
    rest = p.stderr.read()
    assert "iotrace: trace written to" in rest
    assert not os.path.exists(f"/proc/{pid}")  # ended (and reaped by iotrace)


def test_stracer_killed_after_the_command_exited(tmp_path):
    """The stracer dies while it waits for a child the command left behind: the child dies
    with it (PTRACE_O_EXITKILL), the line says so, and the status is still the command's."""
    p = subprocess.Popen(
        iotrace_cmd(tmp_path, (), "sh", "-c", "sleep 300 & exit 5"),
        cwd=tmp_path, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert p.stderr is not None
        line = p.stderr.readline()
        pid = int(re.search(r"still runs: pid (\d+) ", line).group(1))  # type: ignore[union-attr]
        stracer = int(next((tmp_path / "t").glob("*.stracer")).name.split(".")[-2])
        os.kill(stracer, signal.SIGKILL)
        assert p.wait(timeout=30) == 5
        rest = p.stderr.read()
        assert f"ERROR: the stracer (pid {stracer}) was killed by SIGKILL; the processes the " \
               "command left behind were killed with it" in rest  # fmt: skip
        assert _dies(pid)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def _dies(pid: int, timeout: float = 10) -> bool:
    """pid is gone or a zombie (killed; reaped by whoever inherits it) within timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rpartition(b")")[2].split()[0] in (b"Z", b"X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_background_child_when_iotrace_ignores_sigint(tmp_path):
    """iotrace started with SIGINT ignored (a background job of a script) keeps ignoring it
    after the command exits; the line says what ends the child instead: SIGTERM to iotrace."""
    p = subprocess.Popen(
        iotrace_cmd(tmp_path, (), "sh", "-c", "sleep 300 & exit 5"),
        cwd=tmp_path, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    try:
        assert p.stderr is not None
        line = p.stderr.readline()
        assert line.endswith(
            f"; SIGTERM to iotrace run (pid {p.pid}) ends it (SIGTERM, a second SIGTERM SIGKILL)\n"
        ), line
        pid = int(re.search(r"still runs: pid (\d+) ", line).group(1))  # type: ignore[union-attr]
        p.send_signal(signal.SIGINT)
        time.sleep(1)
        assert p.poll() is None and os.path.exists(f"/proc/{pid}")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 5
        assert _dies(pid)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            p.send_signal(signal.SIGTERM)
            p.wait()


FLIP = """
import os, sys, threading
from pathlib import Path
from iotrace.tracefile import kio_records
log = Path(sys.argv[1])
small = log.stat().st_size
stop = []
def flip():  # another rank's shim: its log grows by a chunk, is trimmed at exit, ...
    fd = os.open(log, os.O_RDWR)
    while not stop:
        os.ftruncate(fd, small + (4 << 20))
        os.ftruncate(fd, small)
t = threading.Thread(target=flip)
t.start()
try:
    for _ in range(3000):
        try:
            kio_records(log)
        except Exception:
            pass
finally:
    stop.append(1)
    t.join()
"""


def test_closing_line_survives_logs_trimmed_while_read(tmp_path):
    """`mpirun -np 2 iotrace run -o DIR`: each iotrace reads the job's logs for its closing
    line while the other rank's shim may trim its log (at exit): reading a mapped page past the
    new end killed iotrace with SIGBUS after the command had succeeded (status 135, ~1 run in
    20 under load).  Here the trimming is done in a loop on a real log."""
    traced = run(iotrace_cmd(tmp_path, ("--no-stracer",), "true"))
    assert traced.returncode == 0, traced.stderr
    log = tmp_path / "log.iot"
    log.write_bytes(next((tmp_path / "t").glob("*.iot")).read_bytes())
    r = run([sys.executable, "-c", FLIP, str(log)])
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_descriptor_numbers_while_the_log_grows(tmp_path, mode):
    """600 threads come and go, each writing once (its first chunk of the log: 19 MiB of them)
    while the main thread opens and closes /dev/null (at most 100,000 times, a few MiB of
    events: on a fast machine its events filled the log past its 32 MiB, whose growth reopens
    it: 'other 9'): every open gets the lowest free number, as untraced.  The log's growth used
    to reopen it by name every 4 MiB: an open at that moment got the next number (17-61 of them
    in 2,000 threads)."""
    prog = str(build("fd_grow"))
    assert run([prog, "600"]).stdout == "other 0\n"
    traced = run(iotrace_cmd(tmp_path, mode, prog, "600"))
    assert (traced.returncode, traced.stdout) == (0, "other 0\n"), traced.stderr


def soft_nofile_below_hard() -> None:
    """A soft RLIMIT_NOFILE below the hard one (a login node's 1024 of 4096 or more)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard - 1), hard))


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_descriptor_numbers_beside_measured_calls(tmp_path, mode):
    """A worker thread makes 20,000 calls the shim measures with the thread's own counters
    (setlocale, dlopen) while the main thread opens and closes /dev/null: every open gets the
    lowest free number, as untraced.  Each reading opened /proc/thread-self/io for a moment: an
    open then got the next number (49,781 of the opens with the shim alone, 18,253 under the
    stracer).  The thread's counters descriptor is now kept above the soft RLIMIT_NOFILE
    (which reads as before), closed at the thread's end, and before a listing of /proc/self/fd
    (which listed 1024 too: the main thread's, after a measured call, here and in a Python
    that imported a C module after a thread ran); the app's close of its number fails with
    EBADF as untraced (it closed the shim's: 0)."""
    prog = str(build("fd_measured", "-ldl"))
    untraced = subprocess.run(
        [prog, "20000"], capture_output=True, text=True, timeout=120,
        preexec_fn=soft_nofile_below_hard,
    )  # fmt: skip
    assert "close -1 Bad file descriptor\nother 0\n" in untraced.stdout, untraced.stderr
    traced = subprocess.run(
        iotrace_cmd(tmp_path, mode, prog, "20000"), capture_output=True, text=True, timeout=120,
        preexec_fn=soft_nofile_below_hard,
    )  # fmt: skip
    assert (traced.returncode, traced.stdout) == (0, untraced.stdout), traced.stderr
    assert re.search(r"explains 100\.0% of the .* and 100\.0% of the [\d,]+ read", traced.stderr)
    cmd = [sys.executable, "-c", LIST_FDS]
    untraced = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, preexec_fn=soft_nofile_below_hard
    )
    traced = subprocess.run(
        iotrace_cmd(tmp_path, mode, *cmd, name="py"), capture_output=True, text=True,
        timeout=120, preexec_fn=soft_nofile_below_hard,
    )  # fmt: skip
    assert (traced.returncode, traced.stdout) == (0, untraced.stdout), traced.stderr


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_children_made_beside_a_kept_descriptor_have_the_apps_limit(tmp_path, mode):
    """Threads come and go, each keeping its counters descriptor above the soft RLIMIT_NOFILE
    (the limit raised for a moment) while the main thread makes 1,000 children each way (fork,
    posix_spawn, vfork+exec), each checking its soft limit against the parent's: a child made
    during a raise inherited it (of 3,000 each way: 16 forks, 10 spawns, 5 vforks); none now."""
    prog = str(build("fork_limit", "-pthread"))
    want = "fork 0\nspawn 0\nvfork 0\n"
    untraced = subprocess.run(
        [prog, "1000"], capture_output=True, text=True, timeout=300,
        preexec_fn=soft_nofile_below_hard,
    )  # fmt: skip
    assert untraced.stdout == want, untraced.stderr
    traced = subprocess.run(
        iotrace_cmd(tmp_path, mode, prog, "1000"), capture_output=True, text=True, timeout=300,
        preexec_fn=soft_nofile_below_hard,
    )  # fmt: skip
    assert (traced.returncode, traced.stdout) == (0, want), traced.stderr


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_dup2_onto_a_kept_counters_descriptor_is_the_apps(tmp_path, mode):
    """The app raises its soft RLIMIT_NOFILE and dup2s its file onto the old limit's number,
    where the shim kept a worker thread's counters descriptor; the worker exits; the app
    writes there and closes it.  The worker's exit closed the app's file (write -1 EBADF, its
    data lost) and close refused the number as the shim's (EBADF): now as untraced."""
    prog = str(build("fd_kept_dup2", "-ldl"))
    want = "dup2 1\nwrite 5 Success\nclose 0 Success\n"
    kw = dict(capture_output=True, text=True, timeout=120, preexec_fn=soft_nofile_below_hard)
    untraced = subprocess.run([prog, str(tmp_path / "u")], **kw)
    assert (untraced.stdout, (tmp_path / "u").read_text()) == (want, "data\n"), untraced.stderr
    traced = subprocess.run(iotrace_cmd(tmp_path, mode, prog, str(tmp_path / "t.out")), **kw)
    assert (traced.returncode, traced.stdout) == (0, want), traced.stderr
    assert (tmp_path / "t.out").read_text() == "data\n"


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_close_range_below_a_kept_counters_descriptor_leaves_none(tmp_path, mode):
    """A worker thread's counters descriptor is kept above the soft RLIMIT_NOFILE; the app
    closes 3..100 with close_range, then lists its descriptors: as untraced.  The shim forgot
    its descriptor there without closing it: the listing had 1024."""
    prog = str(build("fd_kept_close_range", "-ldl"))
    kw = dict(capture_output=True, text=True, timeout=120, preexec_fn=soft_nofile_below_hard)
    untraced = subprocess.run([prog], **kw)
    assert untraced.stdout == "fds 0 1 2 3\n", untraced.stderr
    traced = subprocess.run(iotrace_cmd(tmp_path, mode, prog), **kw)
    assert (traced.returncode, traced.stdout) == (0, untraced.stdout), traced.stderr


# a thread run, then a C module imported (dlopen: measured), then the descriptors listed
LIST_FDS = (
    "import os, threading\n"
    "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
    "import _decimal\n"
    "print(sorted(os.listdir('/proc/self/fd')))\n"
)


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_signal_gives_back_the_handler_sigaction_set(tmp_path, mode):
    """A handler set with sigaction, then replaced with signal() and sigset(): each gives back
    the app's handler.  With the shim alone they gave back the shim's, which runs the app's
    behind it ('old 0')."""
    prog = str(build("sig_signal_old"))
    assert run([prog]).stdout == "old 1\nsigset 1\n"
    traced = run(iotrace_cmd(tmp_path, mode, prog))
    assert (traced.returncode, traced.stdout) == (0, "old 1\nsigset 1\n"), traced.stderr


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_handlers_read_back_and_called_as_set(tmp_path, mode):
    """Handlers with and without SA_SIGINFO and SA_RESTART: sigaction gives each back as the
    program set it, each is called with its arguments, a pipe read SIGALRM cuts fails with EINTR
    or is restarted until the handler's byte comes.  With the shim alone a handler runs behind
    the shim's, which counts the kernel's restart of the read (it explained 1 call less: the
    kernel counts a restarted call each time it runs)."""
    prog = str(build("sig_query"))
    untraced = run([prog])
    assert "restart: read 1 x errno -\n" in untraced.stdout, untraced.stderr
    traced = run(iotrace_cmd(tmp_path, mode, prog))
    assert (traced.returncode, traced.stdout) == (0, untraced.stdout), traced.stderr
    assert re.search(r"explains 100\.0% of the .* and 100\.0% of the [\d,]+ read", traced.stderr)


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_aio_completions_collected_in_a_signal_handler(tmp_path, mode):
    """SIGEV_SIGNAL completions: the handler calls aio_error and aio_return (async-signal-safe)
    while the main thread posts the next aio_write, 20,000 uncollected requests outstanding.  The
    handler's aio_return waited forever for the shim's table of outstanding requests, whose lock
    its own thread held (killed by the timeout, 124; untraced it ends in 0.1 s)."""
    prog = str(build("aio_sig"))
    assert run([prog, "2000"]).stdout == "collected 2000\n"
    traced = run(iotrace_cmd(tmp_path, mode, "timeout", "30", prog, "2000"))
    assert (traced.returncode, traced.stdout) == (0, "collected 2000\n"), traced.stderr


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_a_write_in_a_dl_iterate_phdr_callback_while_another_thread_dlopens(tmp_path, mode):
    """The write's stack needs libunwind (a function without unwind tables), and it is made in a
    dl_iterate_phdr callback (the loader's lock held) while another thread loads a library: the
    shim loaded libunwind there and waited for that thread's dlopen, which waited for the
    callback's lock (killed by the timeout, 124, in 3 runs of 3; untraced it ends at once)."""
    prog = str(build("dl_phdr"))
    assert run([prog]).stdout == "w\ndone\n"
    traced = run(iotrace_cmd(tmp_path, mode, "timeout", "20", prog))
    assert (traced.returncode, traced.stdout) == (0, "w\ndone\n"), traced.stderr


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_an_address_space_limit_leaves_the_app_its_memory(tmp_path, mode):
    """`ulimit -v` (a batch system's memory limit is RLIMIT_AS too) counts every mapped byte: the
    shim's 256 MiB window on its log made a malloc that fits untraced fail (280 MiB under the
    program's own size + 300 MiB).  Under a finite RLIMIT_AS the log is mapped 4 MiB at a time.
    A limit the app sets itself (Python's resource.setrlimit) meets the 32 MiB window its log
    was given without one, and under the stracer the stdio arena gives back its 4 GiB
    reservation but what it committed: 64 MiB under its size + 128 MiB fit, where the 256 MiB
    window or the 4 GiB took it all."""
    prog = str(build("as_limit"))
    size = int(run([prog, "size"]).stdout)  # KiB mapped at main, untraced
    cmd = ["bash", "-c", f"ulimit -v {size + (300 << 10)}; exec {prog} 280"]
    assert run(cmd).stdout == "malloc 280 MiB ok\n"
    traced = run(iotrace_cmd(tmp_path, mode, *cmd))
    assert (traced.returncode, traced.stdout) == (0, "malloc 280 MiB ok\n"), traced.stderr
    assert "100.0% of the" in traced.stderr, traced.stderr  # and its log holds its I/O
    cmd = [prog, "set", str(size + (128 << 10)), "64"]
    assert run(cmd).stdout == "malloc 64 MiB ok\n"
    traced = run(iotrace_cmd(tmp_path, mode, *cmd, name="self"))
    assert (traced.returncode, traced.stdout) == (0, "malloc 64 MiB ok\n"), traced.stderr


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_streams_left_for_the_final_flush_come_out_in_its_order(tmp_path, mode):
    """A wide stream opened first, a narrow one after (first in glibc's list), stdout last, all
    on one pipe and left for stdio's final flush: the shim flushed the wide stream in its exit
    handler (its bytes are known only by its flush), ahead of the narrow one ("wide" came out
    first).  Every stream before it in the list is now flushed there too, in the list's order."""
    prog = str(build("wide_order"))
    untraced = run([prog])
    assert (untraced.returncode, untraced.stdout) == (0, "narrow\nwide\nstdout\n")
    traced = run(iotrace_cmd(tmp_path, mode, prog))
    assert (traced.returncode, traced.stdout) == (0, untraced.stdout), traced.stderr
    assert re.search(r"explains 100\.0% of the .* and 100\.0% of the \d+ read", traced.stderr)


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_a_fixed_mapping_where_the_stdio_arena_waits(tmp_path, mode):
    """The app maps 1 MiB with MAP_FIXED_NOREPLACE at an address it chose, in the 4 GiB window
    the shim reserves under the stracer for stdio buffers (calls.STDIO_ARENA, PROT_NONE): it got
    EEXIST where untraced nothing is there.  The window gives back its unused part first; the
    app's stdio goes on (a file written and read back through it)."""
    prog = str(build("fixed_map"))
    addr = f"{STDIO_ARENA + (256 << 20):x}"
    work = tmp_path / "w"
    work.mkdir()
    assert run([prog, addr], cwd=work).stdout == "mapped 1000\n"
    traced = run(iotrace_cmd(tmp_path, mode, prog, addr), cwd=work)
    assert (traced.returncode, traced.stdout) == (0, "mapped 1000\n"), traced.stderr
    assert re.search(r"explains 100\.0% of the .* and 100\.0% of the \d+ read", traced.stderr)
