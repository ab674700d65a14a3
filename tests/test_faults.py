"""Faults never cost the app its data or its exit status (issue 10), and the app meets its own
RLIMIT_FSIZE exactly as untraced (issue 11).  Each case runs the command untraced, under
`iotrace run --no-stracer` and under `iotrace run`, and compares what the app did."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Traced, build, iotrace
from iotrace.analyzer import load
from iotrace.stracer import slog

from iotrace.run import launcher
from iotrace.tracefile import log_paths, read_log

MODES = (("--no-stracer",), ())
FAULT = "could not record everything"


def untraced(*cmd: str | os.PathLike[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=120, **kw)


def lines(stderr: str, what: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("iotrace:") and what in ln]


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                   check=True, timeout=30)  # fmt: skip
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, timeout=30)


def test_trace_disk_full_keeps_the_app_and_what_was_written(tmp_path: Path) -> None:
    prog = build("ft_fill")
    want = untraced(prog, 200000, 20000, tmp_path / "out")
    assert want.returncode == 7 and want.stdout == "wrote 220000\n"
    for mode in MODES:
        with tmpfs(tmp_path / f"disk{len(mode)}", "320k") as disk:
            out = tmp_path / "out"
            out.unlink()
            p = iotrace("run", "-o", str(disk / "t"), *mode, "--",
                        str(prog), "200000", "20000", str(out), timeout=300)  # fmt: skip
            assert (p.returncode, p.stdout) == (want.returncode, want.stdout), p.stderr
            assert out.stat().st_size == 220000
            assert "Traceback" not in p.stderr
            said = lines(p.stderr, FAULT)
            assert len(said) == 1, p.stderr
            assert "No space left on device" in said[0]
            assert "killed?" not in p.stderr  # said once: no other line guesses at it
            if not mode:
                assert "the stracer's log" in said[0]
                (sl,) = slog.log_files(disk / "t")
                assert slog.read(sl).missed  # what the stracer wrote before the disk filled
            (log,) = log_paths(disk / "t")
            assert len(read_log(log).events) > 1000  # the shim's log, up to the full disk


def test_little_free_space_still_gets_a_log(tmp_path: Path) -> None:
    """The shim used to need 4 MiB free to start."""
    for mode in MODES:
        with tmpfs(tmp_path / f"disk{len(mode)}", "1m") as disk:
            p = iotrace("run", "-o", str(disk / "t"), *mode, "--", "cat", "/etc/hostname")
            assert p.returncode == 0 and p.stdout == Path("/etc/hostname").read_text()
            assert not lines(p.stderr, FAULT), p.stderr
            (log,) = log_paths(disk / "t")
            assert any(read_log(log).events)


def test_the_run_record_keeps_the_fault_files_room(tmp_path: Path) -> None:
    """The fault file's 64 KiB, reserved at the start so that the shims' lines fit on a full
    disk, are not freed after the command's exit (a free sleeps until the device discards the
    blocks on a `discard` mount: 3-5 ms a run on this VM): the run record is written into them,
    and no empty fault file is left."""
    for mode in MODES:
        t = tmp_path / f"t{len(mode)}"
        p = iotrace("run", "-o", str(t), *mode, "--", "sh", "-c", "exit 3")
        assert p.returncode == 3, p.stderr
        assert not list(t.glob("iotrace-faults.*")), list(t.iterdir())
        (rec,) = t.glob("iotrace-run.*.json")
        assert json.loads(rec.read_text())["returncode"] == 3
        assert rec.stat().st_blocks * 512 >= 1 << 16, rec.stat()


def test_a_fault_line_as_the_run_ends_is_said(tmp_path: Path) -> None:
    """A shim's fault line that comes between the launcher's look at the empty fault file and
    its rename into the run record (made to come there by renameat2 preloaded into iotrace):
    the file gets its name back and the line is said; no run record's name holds it."""
    lib = build("late_fault", "-shared", "-fPIC")
    env = {**os.environ, "LD_PRELOAD": str(lib)}
    for mode in MODES:
        t = tmp_path / f"t{len(mode)}"
        p = iotrace("run", "-o", str(t), *mode, "--", "sh", "-c", "exit 3", env=env)
        assert p.returncode == 3, p.stderr
        assert len(lines(p.stderr, FAULT)) == 1, p.stderr
        assert "No space left on device" in p.stderr, p.stderr
        (rec,) = t.glob("iotrace-run.*.json")
        assert json.loads(rec.read_text())["returncode"] == 3


def test_no_descriptor_free_to_grow_the_log(tmp_path: Path) -> None:
    """Every descriptor in use when the log must grow past the 32 MiB it was given at its
    creation (1.6 M writes: ~39 MiB): it stops there, and the fault is said at exit (when the
    shim can open the fault file again), not lost; the writes before it are in the trace."""
    prog = build("ft_fill")
    want = untraced(prog, 1600000, 0, "/dev/null", 4)
    assert want.returncode == 7
    for mode in MODES:
        t = tmp_path / f"t{len(mode)}"
        p = iotrace("run", "-o", str(t), *mode, "--", prog, "1600000", "0", "/dev/null", "4")
        assert (p.returncode, p.stdout) == (want.returncode, want.stdout), p.stderr
        said = lines(p.stderr, FAULT)
        assert len(said) == 1 and "Too many open files" in said[0], p.stderr
        files = load(t).files
        assert 1_000_000 < int(files.loc[files["path"] == "/dev/null", "writes"].sum()) < 1_600_000


def test_trace_dir_moved_mid_run(tmp_path: Path) -> None:
    """A trace directory moved mid-run (`mv` by its owner) was said "removed during the run: no
    trace was kept" though its logs were all where it went.  Now the line says where."""
    script = 'echo one; mv "$1" "$1.moved"; cat /etc/hostname; echo two; exit 5'
    for mode in MODES:
        t = tmp_path / f"t{len(mode)}"
        p = iotrace("run", "-o", str(t), *mode, "--", "sh", "-c", script, "sh", str(t))
        assert (p.returncode, p.stdout.splitlines()[0]) == (5, "one"), p.stderr
        said = lines(p.stderr, "during the run")
        assert len(said) == 1 and f"was moved to {t}.moved during the run" in said[0], p.stderr
        assert any(Path(f"{t}.moved").glob("*.iot"))


def test_trace_dir_removed_mid_run(tmp_path: Path) -> None:
    script = 'echo one; rm -rf "$1"; cat /etc/hostname; echo two; exit 5'
    want = untraced("sh", "-c", script, "sh", tmp_path / "nothing")
    for mode in MODES:
        t = tmp_path / f"t{len(mode)}"
        p = iotrace("run", "-o", str(t), *mode, "--", "sh", "-c", script, "sh", str(t))
        assert (p.returncode, p.stdout) == (5, want.stdout), p.stderr
        assert "Traceback" not in p.stderr
        assert len(lines(p.stderr, "was removed during the run")) == 1, p.stderr
        assert len(lines(p.stderr, "")) <= 3, p.stderr  # and the stracer's summary


def test_trace_path_longer_than_path_max(tmp_path: Path) -> None:
    deep = "/".join(["d" * 200] * 22)  # 4,400 bytes
    want = untraced("sh", "-c", "echo hi; exit 4")
    for mode in MODES:
        p = iotrace("run", "-o", deep, *mode, "--", "sh", "-c", "echo hi; exit 4", cwd=tmp_path)
        assert (p.returncode, p.stdout) == (want.returncode, want.stdout), p.stderr
        assert len(lines(p.stderr, "the command runs untraced")) == 1, p.stderr
        assert "Traceback" not in p.stderr


NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def as_nobody(
    *cmd: str | os.PathLike[str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """iotrace run by user nobody (with this interpreter's packages on its path)."""
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": ":".join(site)}
    return subprocess.run(
        [*NOBODY, sys.executable, "-m", "iotrace", *map(str, cmd)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_unwritable_trace_dir_runs_the_app_untraced(public_dir: Path) -> None:
    if not shutil.which("setpriv") or not os.access(sys.executable, os.X_OK):
        pytest.skip("needs setpriv")
    ro = public_dir / "ro"
    ro.mkdir()
    os.chown(ro, 65534, 65534)
    ro.chmod(0o555)
    for mode in MODES:
        p = as_nobody("run", "-o", ro, *mode, "--", "sh", "-c", "echo hi; exit 6", cwd=public_dir)
        assert (p.returncode, p.stdout) == (6, "hi\n"), p.stderr
        assert len(lines(p.stderr, "the command runs untraced")) == 1, p.stderr
        assert "Traceback" not in p.stderr


def test_file_size_limit_kills_dd_as_untraced(tmp_path: Path) -> None:
    """dd past `ulimit -f` dies of SIGXFSZ (153), traced or not."""
    out = tmp_path / "out"
    script = f"ulimit -f 400; dd if=/dev/zero of={out} bs=1k count=1000 2>/dev/null"
    want = untraced("sh", "-c", script)
    assert want.returncode == 128 + 25
    size = out.stat().st_size  # dash counts 512-byte blocks
    for mode in MODES:
        out.unlink()
        p = iotrace("run", "-o", str(tmp_path / f"t{len(mode)}"), *mode, "--", "sh", "-c", script)
        assert p.returncode == want.returncode, p.stderr
        assert out.stat().st_size == size
        assert "Traceback" not in p.stderr


def test_file_size_limit_small_writer_runs(tmp_path: Path) -> None:
    """The shim's own log growth used to raise SIGXFSZ in the app (under ~4 MiB)."""
    script = "ulimit -f 2048; cat /etc/hostname > copy; ls -l copy | wc -l; exit 3"
    want = untraced("sh", "-c", script, cwd=tmp_path)
    for mode in MODES:
        t = tmp_path / f"t{len(mode)}"
        p = iotrace("run", "-o", str(t), *mode, "--", "sh", "-c", script, cwd=tmp_path)
        assert (p.returncode, p.stdout) == (want.returncode, want.stdout), p.stderr
        assert not lines(p.stderr, FAULT), p.stderr
        assert any(read_log(log).events for log in log_paths(t))


def test_iotrace_under_a_file_size_limit(tmp_path: Path) -> None:
    """iotrace itself under `ulimit -f 8`: its logs cannot be written; one line says so, and the
    app runs as untraced (the stracer used to die with a traceback)."""
    prog = build("ft_fill")
    cmd = f"{prog} 100 100 {tmp_path / 'out'}"
    want = untraced("sh", "-c", f"ulimit -f 8; {cmd}")
    assert want.returncode == 7
    for mode in MODES:
        run = f"{sys.executable} -m iotrace run -o {tmp_path / f't{len(mode)}'} {' '.join(mode)}"
        p = untraced("sh", "-c", f"ulimit -f 8; {run} -- {cmd}")
        assert (p.returncode, p.stdout) == (want.returncode, want.stdout), p.stderr
        assert "Traceback" not in p.stderr
        said = lines(p.stderr, FAULT)
        assert len(said) == 1 and "File too large" in said[0], p.stderr


@pytest.mark.parametrize("blocks", ["0", "1"])
def test_iotrace_started_under_a_tiny_file_size_limit(tmp_path: Path, blocks: str) -> None:
    """`ulimit -f 0` (or 1 KiB) on `iotrace` itself, as a shell gives it (SIGXFSZ not ignored):
    iotrace's own first write (its marker) raised SIGXFSZ in iotrace, which died (153) before
    the command ran.  Now its files fail, said in one line, and the command runs as untraced:
    its output to a pipe, its own SIGXFSZ when it writes a file past the limit."""
    out = tmp_path / "out"
    cmd = f"echo ok; dd if=/dev/zero of={out} bs=1k count=4 2>/dev/null; echo after $?"
    want = untraced("sh", "-c", f"ulimit -f {blocks}; exec sh -c '{cmd}'")
    assert (want.returncode, want.stdout) == (0, "ok\nafter 153\n")
    size = out.stat().st_size
    for mode in MODES:
        out.unlink()
        run = f"{launcher()} run -o {tmp_path / f't{len(mode)}'} {' '.join(mode)}"
        p = untraced("sh", "-c", f"ulimit -f {blocks}; exec {run} -- sh -c '{cmd}'")
        assert (p.returncode, p.stdout) == (0, want.stdout), (mode, p.stderr)
        assert out.stat().st_size == size
        assert "Traceback" not in p.stderr and "File too large" in p.stderr, p.stderr


def test_environment_whole_under_a_tiny_file_size_limit(tmp_path: Path) -> None:
    """`ulimit -f 1` on iotrace: a full run handed its stracer the command's arguments and
    environment in a memfd, which RLIMIT_FSIZE cut at 1 KiB -- the command started with part of
    its environment (and no shim: a flood of false missed-I/O lines).  Now the command gets all
    of it (the shim alone, said in one line), and one line says its logs could not be written."""
    env = dict(os.environ, T_BIG="x" * 3000, T_LAST="last")
    show = "env | grep -v -e '^IOTRACE_' -e '^LD_PRELOAD=' | sort; echo \"$@\""
    want = untraced("sh", "-c", f"ulimit -f 1; exec sh -c '{show}' x a 'b c'", env=env)
    for mode in MODES:
        run = f"{launcher()} run -o {tmp_path / f't{len(mode)}'} {' '.join(mode)}"
        p = untraced("sh", "-c", f"ulimit -f 1; exec {run} -- sh -c '{show}' x a 'b c'",
                     env=env)  # fmt: skip
        assert (p.returncode, p.stdout) == (0, want.stdout), (mode, p.stderr)
        assert len(lines(p.stderr, FAULT)) == 1 and not lines(p.stderr, "missed I/O"), p.stderr


def test_i386_child_is_named_as_untraced(tmp_path: Path) -> None:
    prog = build("ft_id", "-m32")
    script = f"{prog} {tmp_path / 'out'}; echo $?"
    want = untraced("sh", "-c", script)
    assert want.stdout == f"euid {os.geteuid()}\n9\n"
    for mode in MODES:
        t = tmp_path / f"t{len(mode)}"
        p = iotrace("run", "-o", str(t), *mode, "--", "sh", "-c", script)
        assert (p.returncode, p.stdout) == (0, want.stdout), p.stderr
        if mode:
            continue  # the shim alone: ld.so says it cannot preload a 64-bit shim into it
        said = lines(p.stderr, "runs i386 code")
        assert len(said) == 1 and str(prog) in said[0], p.stderr
        m = iotrace("missed", str(t))
        assert m.returncode == 0
        assert len(lines(m.stderr, "(i386 code)")) == 1, m.stderr


def test_setuid_program_as_nobody_says_it_loses_privileges(public_dir: Path) -> None:
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv")
    prog = public_dir / "ft_id"
    shutil.copy(build("ft_id"), prog)
    os.chown(prog, 0, 0)
    prog.chmod(0o4755)
    work = public_dir / "work"
    work.mkdir()
    os.chown(work, 65534, 65534)
    want = untraced(*NOBODY, prog, cwd=work)
    if want.stdout != "euid 0\n":
        pytest.skip("set-user-ID bits ignored here (nosuid mount?)")
    p = as_nobody("run", "-o", "t0", "--no-stracer", "--", prog, cwd=work)
    assert (p.returncode, p.stdout) == (9, "euid 0\n"), p.stderr
    assert not lines(p.stderr, "set-user-ID"), p.stderr
    p = as_nobody("run", "-o", "t1", "--", prog, cwd=work)
    assert p.returncode == 9, p.stderr
    said = lines(p.stderr, "set-user-ID")
    assert len(said) == 1 and "--no-stracer keeps them" in said[0], p.stderr


@pytest.mark.parametrize("limit", [5, 6, 8, 16, 64, 512])
def test_low_nofile_limit_same_fds_and_emfile(tmp_path: Path, limit: int) -> None:
    """libunwind's pipe used to take fds 4-5 (below a limit of 64), shifting every fd the app
    got and bringing EMFILE early; at 5 the app's opendir failed."""
    prog = build("ft_nofile")
    want = untraced(prog, limit)
    assert want.returncode == 0 and "Too many open files" in want.stdout
    for mode in MODES:
        p = iotrace("run", "-o", str(tmp_path / f"t{len(mode)}"), *mode, "--", prog, str(limit))
        assert p.returncode == 0, p.stderr
        assert p.stdout == want.stdout


@pytest.mark.parametrize("limit", [4, 5])
def test_tiny_nofile_limit_given_to_iotrace(tmp_path: Path, limit: int) -> None:
    """`ulimit -n 4` (or 5) on `iotrace` itself: it held the trace directory and needed a pipe
    to start the command, which then did not run ("iotrace: sh: Too many open files", 126).
    Now the command runs as untraced (iotrace says in one line what it could not do)."""
    src = tmp_path / "in"
    src.write_text("hello\n")
    cmd = f"cat {src}; echo $?"
    want = untraced("sh", "-c", f"ulimit -n {limit}; exec sh -c '{cmd}'")
    assert (want.returncode, want.stdout) == (0, "hello\n0\n")
    for mode in MODES:
        run = f"{launcher()} run -o {tmp_path / f't{len(mode)}'} {' '.join(mode)}"
        p = untraced("sh", "-c", f"ulimit -n {limit}; exec {run} -- sh -c '{cmd}'")
        assert (p.returncode, p.stdout) == (0, want.stdout), (mode, p.stderr)


def test_an_exec_with_one_descriptor_free_gets_its_log(tmp_path: Path) -> None:
    """An image exec'd with one descriptor free below RLIMIT_NOFILE: the shim creates its log
    by name when the trace directory's check finds no descriptor for itself."""
    for mode in MODES:
        t = tmp_path / f"t{len(mode)}"
        p = iotrace("run", "-o", str(t), *mode, "--", "sh", "-c", "ulimit -n 4; exec cat /dev/null")
        assert p.returncode == 0 and not lines(p.stderr, FAULT), p.stderr
        exes = [Path(read_log(log).header["exe"]).name for log in log_paths(t)]
        assert "cat" in exes, (mode, exes)


def test_libunwinds_pipe_is_not_among_the_apps_descriptors(tmp_path: Path) -> None:
    """libunwind's pipe for its address checks sat at RLIMIT_NOFILE-8 (4088, 4089 here): in
    /proc/self/fd and in a count of open descriptors, in both modes.  It no longer exists."""
    prog = build("fd_list")
    want = untraced(prog)
    assert want.returncode == 0 and "handler" in want.stdout, want.stderr
    for mode in MODES:
        p = iotrace("run", "-o", str(tmp_path / f"t{len(mode)}"), *mode, "--", prog)
        assert (p.returncode, p.stdout) == (0, want.stdout), p.stderr


def test_inherited_descriptors_reach_the_app(tmp_path: Path) -> None:
    """`iotrace run -- app 3<file`: fd 3 is the app's (--no-stracer used to close it)."""
    src = tmp_path / "in"
    src.write_text("hello\n")
    for mode in MODES:
        run = f"{sys.executable} -m iotrace run -o {tmp_path / f't{len(mode)}'} {' '.join(mode)}"
        p = untraced("sh", "-c", f"{run} -- sh -c 'cat <&3' 3<{src}")
        assert (p.returncode, p.stdout) == (0, "hello\n"), p.stderr


@pytest.mark.parametrize("how", ["vm", "vfork", "fork"])
def test_clone_children_that_are_not_threads(tmp_path: Path, how: str) -> None:
    """clone(CLONE_VM) children share the parent thread's TLS (seen: hangs on a shim lock,
    SIGSEGV, unreadable logs); clone without CLONE_VM runs no atfork handler (its writes went
    into the parent's mapped log).  The app runs as untraced and every log reads back."""
    prog = build("ft_clonevm")
    (tmp_path / "u").mkdir()
    want = untraced(prog, how, tmp_path / "u")
    assert want.returncode == 0 and "bad 0" in want.stdout
    for mode in MODES:
        out = tmp_path / f"o{len(mode)}"
        out.mkdir()
        t = tmp_path / f"t{len(mode)}"
        p = iotrace("run", "-o", str(t), *mode, "--", prog, how, str(out), timeout=240)
        assert (p.returncode, p.stdout) == (0, want.stdout), p.stderr
        shown = iotrace("show", str(t))
        assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
        # the shim's writes (the stracer's lines end with their class: [libc], [bypass])
        writes = [ln for ln in shown.stdout.splitlines() if " write(" in ln and ln[-1] != "]"]
        # fork: every child's writes, in logs of their own; vfork: the parent's (it waits while
        # a child runs); vm: at most the parent's (none while children share its memory)
        if how == "vm":
            assert len(writes) <= 2000
        else:
            assert len(writes) == {"fork": 5 * 2000, "vfork": 2000}[how]


@pytest.mark.parametrize("closed", ["0", "1", "2", "012"])
def test_standard_descriptors_closed_at_start(tmp_path: Path, closed: str) -> None:
    """A command started with some of 0-2 closed (cron, a daemon's child) sees them closed, as
    untraced, and its first open gets the lowest.  Before, iotrace's own descriptors landed
    there: a full run's stracer got its pipe or the trace directory as stdin, died ("Fatal
    Python error: init_sys_streams") and the command was killed unrun (status 137)."""
    prog = build("ft_stdclosed")
    shut = " ".join(f"{fd}>&-" for fd in closed)
    want = untraced("sh", "-c", f"exec {prog} {tmp_path / 'u.txt'} {shut}")
    assert want.returncode == 5
    for mode in MODES:
        t = tmp_path / f"t{len(mode)}"
        out = tmp_path / f"o{len(mode)}.txt"
        run = f"{launcher()} run -o {t} {' '.join(mode)}"
        p = untraced("sh", "-c", f"exec {run} -- {prog} {out} {shut}")
        assert p.returncode == 5, (mode, p.stdout, p.stderr)
        assert out.read_text() == (tmp_path / "u.txt").read_text(), mode
        opens = [e for e in Traced(p, t).events("open") if e["path"] == str(out)]
        assert [e["ret"] for e in opens] == [int(closed[0])], mode


def test_no_subreaper_after_the_stracer_was_unavailable(tmp_path: Path) -> None:
    """Under another ptracer (strace) the stracer cannot attach and the launcher runs the
    command itself with the shim alone: a process the command orphans is reparented as it would
    be untraced (to init or the caller's subreaper), not to iotrace (the stracer's subreaper
    kept: orphans became iotrace's children)."""
    if not shutil.which("strace"):
        pytest.skip("needs strace")
    pid = tmp_path / "pid"
    script = (f'sh -c "sleep 30 & echo \\$! > {pid}"; sleep 0.2; '
              f"awk '/^PPid/{{print $2}}' /proc/$(cat {pid})/status; "
              f"echo $PPID; kill $(cat {pid})")  # fmt: skip
    cmd = ["strace", "-f", "-qq", "-e", "trace=none", "-e", "signal=none", "-o", "/dev/null",
           launcher(), "run", "-o", str(tmp_path / "t"), "--", "sh", "-c", script]  # fmt: skip
    try:
        r = untraced(*cmd)
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid.read_text()), 9)
    assert r.returncode == 0 and "iotrace: no stracer:" in r.stderr, r.stderr
    orphan_parent, iotrace_pid = r.stdout.split()
    assert orphan_parent != iotrace_pid, r.stdout


def _install_copy(tmp_path: Path) -> Path:
    """A prefix with copies of the C launchers (bin/iotrace, bin/iotrace-py) and this iotrace
    package as its site-packages: a test puts its own bin/iotrace-stracer beside them."""
    exe = Path(launcher() or "")
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    lib = prefix / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    lib.mkdir(parents=True)
    (lib / "site-packages").symlink_to(Path(sys.modules["iotrace"].__file__ or "").parent.parent)
    for name in ("iotrace", "iotrace-py"):
        shutil.copy(exe.parent / name, prefix / "bin" / name)
    return prefix


def test_a_stracer_that_cannot_start_leaves_the_command_to_the_shim(tmp_path: Path) -> None:
    """The stracer died before it started the command (its imports failed: a broken install,
    here an iotrace-stracer that exits at its first import): the launcher said the command was
    killed with it and ended -9 though the command never ran.  Now it runs, with the shim alone,
    its output and status as untraced, and one line says why."""
    prefix = _install_copy(tmp_path)
    stracer = prefix / "bin" / "iotrace-stracer"
    stracer.write_text(f"#!{sys.executable}\nimport iotrace_missing_dependency\n")
    stracer.chmod(0o755)
    t = tmp_path / "t"
    p = untraced(prefix / "bin" / "iotrace", "run", "-o", t, "--", "sh", "-c", "echo ran; exit 3")
    assert (p.returncode, p.stdout) == (3, "ran\n"), p.stderr
    assert "no stracer: the stracer" in p.stderr and "before it started" in p.stderr, p.stderr
    assert "killed with it" not in p.stderr, p.stderr
    assert [e["ret"] for e in Traced(p, t).events("write")] == [4]


@pytest.mark.parametrize("when", ["stopped", "starting"])
def test_a_stracer_killed_before_it_seized_the_command(tmp_path: Path, when: str) -> None:
    """The stracer killed (OOM, a user's kill) after it forked the command but before it seized
    it: the child, its seccomp filter in place, stopped itself for good (or was about to) and
    `iotrace run` waited on nothing, said the command "killed with it" and ended -9.  The
    command had not run (never exec'd): the launcher ends that child and runs the command with
    the shim alone, its output and status as untraced, one line saying why, nothing left."""
    prefix = _install_copy(tmp_path)
    # the real stracer, killed by SIGKILL in the parent of its first fork (the command's),
    # once the child has stopped itself or at once
    wait = "while open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0] != 'T': pass"
    stracer = prefix / "bin" / "iotrace-stracer"
    stracer.write_text(f"""#!{sys.executable}
import os, signal, sys
from iotrace.stracer.boot import main
fork = os.fork
def killed_fork():
    pid = fork()
    if pid:
        {wait if when == "stopped" else "pass"}
        os.kill(os.getpid(), signal.SIGKILL)
    return pid
os.fork = killed_fork
sys.exit(main())
""")
    stracer.chmod(0o755)
    t = tmp_path / "t"
    p = untraced(prefix / "bin" / "iotrace", "run", "-o", t, "--", "sh", "-c", "echo ran; exit 3")
    assert (p.returncode, p.stdout) == (3, "ran\n"), p.stderr
    said = lines(p.stderr, "no stracer:")
    assert len(said) == 1 and "was killed by SIGKILL before it started the command" in said[0]
    assert "killed with it" not in p.stderr, p.stderr
    assert [e["ret"] for e in Traced(p, t).events("write")] == [4]
    assert not list(t.glob("*.stracer")), "a stracer log of a run it did not trace"


def test_a_stracer_killed_after_the_command_exited_keeps_its_status(tmp_path: Path) -> None:
    """The stracer killed (OOM, a user's kill; or a fault in its summary or end line) after the
    command exited, before its last line: the command's status, which the stracer alone had
    reaped, was lost: `iotrace run` said the command was killed with it and ended 137 for a
    command that had exited 3.  Now the stracer says the status as the command exits: 3, and
    one line says the stracer died after it."""
    prefix = _install_copy(tmp_path)
    stracer = prefix / "bin" / "iotrace-stracer"
    stracer.write_text(f"""#!{sys.executable}
import os, signal, sys
from iotrace.stracer import launch
from iotrace.stracer.boot import main
said = launch._report
def killed_at_end(fd, line):
    if line.startswith("end "):
        os.kill(os.getpid(), signal.SIGKILL)
    said(fd, line)
launch._report = killed_at_end
sys.exit(main())
""")
    stracer.chmod(0o755)
    t = tmp_path / "t"
    p = untraced(prefix / "bin" / "iotrace", "run", "-o", t, "--", "sh", "-c", "echo ran; exit 3")
    assert (p.returncode, p.stdout) == (3, "ran\n"), p.stderr
    said = lines(p.stderr, "ERROR:")
    assert len(said) == 1 and "was killed by SIGKILL after the command exited" in said[0], said
    assert "killed with it" not in p.stderr, p.stderr


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _until(pred, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("mode", MODES)
def test_sigtstp_to_iotrace_stops_the_command(tmp_path: Path, mode: tuple[str, ...]) -> None:
    """SIGTSTP to iotrace's pid (what `kill -TSTP` of the job's pid does; Ctrl-Z sends it to
    the command too) stopped iotrace alone and left the command running.  Now the command stops
    as it would untraced, then iotrace (its waiting parent sees it stopped); SIGCONT to iotrace
    resumes both, and the command ends as untraced.  In a process group of its own whose parent
    (this one) is in another group of the session: not orphaned, or the kernel would drop the
    stops (untraced too).  The command waits for its standard input to end, closed here once
    it has been stopped and resumed: a command that slept a while could end before a loaded
    machine got the stop to it."""
    out = tmp_path / "t"
    p = subprocess.Popen([launcher(), "run", "-o", str(out), *mode, "--", str(build("st_sleep")),
                          "read"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, process_group=0)  # fmt: skip
    try:
        _until(lambda: out.exists() and any(out.glob("*.iot")))
        app = int(next(out.glob("*.iot")).name.split(".")[-2])
        os.kill(p.pid, signal.SIGTSTP)
        _until(lambda: _state(app) in "Tt" and _state(p.pid) == "T")
        time.sleep(0.5)  # stays so
        assert _state(app) in "Tt" and _state(p.pid) == "T"
        os.kill(p.pid, signal.SIGCONT)
        _until(lambda: _state(p.pid) != "T")
        stdout, stderr = p.communicate(timeout=60)
    finally:
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
    assert (p.returncode, stdout) == (0, "done\n"), stderr


RAW_WRITE_C = r"""
long NAME(const char *s, unsigned long n)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"(1L), "D"(1L), "S"(s), "d"(n)
                     : "rcx", "r11", "memory");
    return r;
}
"""
THREE_MODULES_C = r"""
long raw_m(const char *s, unsigned long n), raw_a(const char *, unsigned long),
    raw_b(const char *, unsigned long);
int main(void)
{
    return raw_m("m\n", 2) + raw_a("a\n", 2) + raw_b("b\n", 2) == 6 ? 0 : 1;
}
"""


def test_an_addr2line_that_does_not_answer_holds_the_job_briefly(tmp_path: Path) -> None:
    """A new call site outside libc is symbolised while its thread is stopped: an addr2line
    that does not answer (a huge or hostile module's debug info, a starved node; here the real
    one, stopped before it starts) held the job 10 s per module, and 2 s more to end it: raw
    writes from three modules, 36 s.  Now a lookup gets 2 s and after two such the stracer
    asks no more (sites keep module and offset; the analyzer names them after the run): two
    addr2line started, not one a module (each logs its start before it stops), whatever the
    machine's speed; the job's wait is bounded only against a hang."""
    addr2line = shutil.which("addr2line")
    if addr2line is None:
        pytest.skip("needs binutils' addr2line")
    (tmp_path / "raw.c").write_text(RAW_WRITE_C)
    (tmp_path / "main.c").write_text(THREE_MODULES_C + RAW_WRITE_C.replace("NAME", "raw_m"))
    libs = [str(tmp_path / f"lib{lib}.so") for lib in ("a", "b")]
    for lib in libs:
        name = f"-DNAME=raw_{lib[-4]}"
        subprocess.run(["gcc", "-O", "-shared", "-fPIC", name, "-o", lib, str(tmp_path / "raw.c")],
                       check=True)  # fmt: skip
    exe = tmp_path / "three"
    subprocess.run(["gcc", "-O", "-o", str(exe), str(tmp_path / "main.c"), *libs,
                    f"-Wl,-rpath,{tmp_path}"], check=True)  # fmt: skip
    stalled = tmp_path / "bin"
    stalled.mkdir()
    started = tmp_path / "started"
    (stalled / "addr2line").write_text(
        f'#!/bin/sh\necho $$ >> {started}\nkill -STOP $$\nexec {addr2line} "$@"\n'
    )
    (stalled / "addr2line").chmod(0o755)
    env = dict(os.environ, PATH=f"{stalled}:{os.environ['PATH']}")
    p = subprocess.Popen([launcher(), "run", "-o", str(tmp_path / "t"), "--", str(exe)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)  # fmt: skip
    try:
        out, err = p.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        pytest.fail("the job was held while addr2line did not answer")
    assert (p.returncode, out) == (0, "m\na\nb\n"), err
    assert len(started.read_text().split()) == 2, "lookups asked after two ran out of time"
    for site in ("three+0x", "liba.so+0x", "libb.so+0x"):  # each said, by module+offset
        assert f" at {site}" in err, err
    r = iotrace("missed", str(tmp_path / "t"))  # the analyzer names them
    assert r.returncode == 0 and "at raw_a <- main" in r.stdout and "at raw_b <- main" in r.stdout
    left = [d for d in Path("/proc").iterdir()
            if d.name.isdigit() and str(stalled).encode() in _cmdline(d)]  # fmt: skip
    assert left == [], "an addr2line of the stracer's left behind"


def _cmdline(d: Path) -> bytes:
    try:
        return (d / "cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize(("limit", "value", "said"), [
    ("RLIMIT_NOFILE", 4, "the open-file limit (ulimit -n 4) is below"),
    ("RLIMIT_NOFILE", 10, "the open-file limit (ulimit -n 10) is below"),
    ("RLIMIT_AS", 200 << 20, "the address-space limit (ulimit -v 204800) is below"),
    ("RLIMIT_AS", 430 << 20, "the address-space limit (ulimit -v 440320) is below"),
])  # fmt: skip
@pytest.mark.parametrize("cmd", ["report", "csv", "parquet"])
def test_a_small_limit_given_to_the_analyzer_is_one_line(
    tmp_path: Path, limit: str, value: int, said: str, cmd: str
) -> None:
    """`ulimit -n 4` (Python's site module cannot start) or `ulimit -v` of a batch job (pandas'
    libraries cannot be mapped, an allocation fails) gave a traceback of 20-50 lines, status 1.
    Now one line, status 2 (the launcher for the first, the command for the second).  At
    `ulimit -v` 390-440 MiB pyarrow could not start its threads: an export ended in a traceback,
    waited for them for good (Parquet) or aborted (std::bad_alloc); a limit below what the
    analyzer needs (cli._little_address_space) is now said first, for every such command."""
    import resource

    trace = Path(__file__).parent / "data" / "readers" / "valid"
    args = ["report", str(trace)] if cmd == "report" else ["export", str(trace), "--format", cmd,
                                                             "-o", str(tmp_path / "x")]  # fmt: skip
    lim = getattr(resource, limit)
    r = subprocess.run([launcher(), *args], capture_output=True, text=True, timeout=60,
                       preexec_fn=lambda: resource.setrlimit(lim, (value, value)))  # fmt: skip
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr[-2000:]
    assert r.stderr.startswith("iotrace: ") and said in r.stderr, r.stderr


def test_a_low_soft_open_file_limit_is_raised_for_the_analyzer(trace) -> None:
    """A soft `ulimit -Sn 10` under a higher hard limit: the report is the one an unlimited run
    gives (it went on without what it could not open: echo's call sites unsymbolised)."""
    import resource

    t = trace("/bin/echo", "x")
    assert t.proc.returncode == 0, t.proc.stderr
    full = subprocess.run([launcher(), "report", str(t.dir)], capture_output=True, text=True)

    def low() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (10, 4096))

    r = subprocess.run(
        [launcher(), "report", str(t.dir)], capture_output=True, text=True, preexec_fn=low
    )
    assert r.returncode == full.returncode == 0 and r.stdout == full.stdout, r.stderr[-2000:]


def test_a_stracer_that_cannot_fork_the_command_leaves_it_to_the_shim(public_dir: Path) -> None:
    """`ulimit -u` of a user's processes (RLIMIT_NPROC) reached by the stracer's own fork of the
    command: the stracer printed a 9-line traceback (BlockingIOError) before the command ran
    with the shim alone.  Now one line says why.  A uid of its own (no process of it runs
    elsewhere) makes the count exact: the launcher and the stracer take the limit of 2."""
    uid = 61_997
    d = public_dir / "u"
    d.mkdir()
    os.chown(d, uid, uid)
    import resource

    def two() -> None:
        resource.setrlimit(resource.RLIMIT_NPROC, (2, 2))

    p = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                        launcher(), "run", "-o", str(d / "t"), "--", "sh", "-c",
                        "echo ran; exit 3"], cwd=d, capture_output=True, text=True, timeout=120,
                       preexec_fn=two)  # fmt: skip
    assert (p.returncode, p.stdout) == (3, "ran\n"), p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    assert "no stracer: it could not start the command (Resource temporarily" in p.stderr
