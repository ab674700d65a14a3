"""Files iotrace writes, as root in a directory other users can reach: no planted symlink is
followed, a directory another user owns or can write is refused, logs are private by default,
a directory holding another run's trace is not silently merged into, and native code is never
loaded from a shared place.  Symlinks are planted owned by `nobody`, pointing at a root-owned
file that must stay unchanged."""

from __future__ import annotations

import contextlib
import grp
import marshal
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import iotrace

from iotrace.native import source_tag
from iotrace.run import launcher

NOBODY = 65534
VICTIM_TEXT = "root's own file: must stay as it is\n"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="plants files as another user: root")


def _victim(tmp_path: Path, name: str = "victim") -> Path:
    v = tmp_path / name
    v.write_text(VICTIM_TEXT)
    v.chmod(0o644)
    return v


def _plant(link: Path, target: Path) -> None:
    link.symlink_to(target)
    os.lchown(link, NOBODY, NOBODY)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def _own_files(d: Path) -> list[Path]:
    return [p for p in d.iterdir() if not p.is_symlink()]


def test_planted_symlinks_in_trace_dir_not_followed(tmp_path: Path) -> None:
    """In a PID namespace the pids of iotrace, its stracer and the command are small and known:
    every name iotrace could create for them (shim log, stracer log, run record) is planted."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux)")
    victim = _victim(tmp_path)
    out = tmp_path / "trace"
    out.mkdir(mode=0o700)
    host = socket.gethostname().replace("/", "_")
    for pid in range(1, 60):
        for name in (
            f"{host}.{pid}.iot",
            f"{host}.{pid}.stracer",
            f"iotrace-run.{host}.{pid}.json",
        ):
            _plant(out / name, victim)
    data = tmp_path / "data.txt"
    cmd = ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "iotrace",
           "run", "-o", str(out), "--", "sh", "-c", f"echo hello > {data}"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert data.read_text() == "hello\n"
    assert victim.read_text() == VICTIM_TEXT
    assert _mode(victim) == 0o644
    mine = {p.name for p in _own_files(out)}
    assert any(n.endswith(".iot") for n in mine), mine
    assert any(n.endswith(".stracer") for n in mine), mine
    assert any(n.startswith("iotrace-run.") for n in mine), mine
    for p in _own_files(out):
        assert p.stat().st_uid == 0 and _mode(p) == 0o600, (p, oct(_mode(p)))


def test_console_file_symlink_not_followed(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o1777)
    _plant(shared / "console.txt", victim)
    r = iotrace("run", "-o", str(tmp_path / "t"), "--console", str(shared / "console.txt"),
                "--", "true")  # fmt: skip
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert victim.read_text() == VICTIM_TEXT
    fresh = shared / "mine.txt"
    r = iotrace("run", "-o", str(tmp_path / "t2"), "--console", str(fresh), "--", "true")
    assert r.returncode == 0 and "trace written" in fresh.read_text()
    assert _mode(fresh) == 0o600


@pytest.mark.parametrize("via", ["launcher", "python"])
@pytest.mark.parametrize("kind", ["file", "fifo"])
def test_console_file_another_user_made_first_refused(
    public_dir: Path, kind: str, via: str
) -> None:
    """`--console /tmp/x.log` that `nobody` made first in the shared directory: a file of
    theirs got the run's lines (paths, command lines: theirs to read), a FIFO no one reads
    hung iotrace before the command ran.  Refused in one line, status 2, the command not run."""
    shared = public_dir / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    made = shared / "console.log"
    make = f"touch {made}" if kind == "file" else f"mkfifo {made}"
    subprocess.run(["runuser", "-u", "nobody", "--", "sh", "-c", f"{make}; chmod 666 {made}"],
                   check=True)  # fmt: skip
    ran = public_dir / "ran"
    args = ["run", "-o", str(public_dir / "t"), "--console", str(made), "--", "touch", str(ran)]
    if via == "python":
        r = iotrace(*args, timeout=30)
    else:  # the `iotrace` command, which opens it itself
        r = subprocess.run([launcher(), *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    said = "owned by uid 65534" if kind == "file" else "a FIFO no one reads"
    assert said in r.stderr and not ran.exists()
    if kind == "file":
        assert made.read_text() == ""


@pytest.mark.parametrize("via", ["launcher", "python"])
def test_console_device_neither_terminal_nor_null_refused(tmp_path: Path, via: str) -> None:
    """`--console /dev/zero` (or /dev/kmsg, /dev/mem, a watchdog...): a device other than a
    terminal or /dev/null took root's lines (into the kernel's log, memory, a disk) or acted on
    being opened.  Refused unopened, in one line, status 2, the command not run; /dev/null and a
    terminal (a pseudo-terminal's slave) still take them."""

    def run(console: str) -> subprocess.CompletedProcess[str]:
        args = ["run", "-o", str(tmp_path / console.replace("/", "_")), "--console", console,
                "--", "touch", str(tmp_path / "ran")]  # fmt: skip
        if via == "python":
            return iotrace(*args, timeout=60)
        return subprocess.run([launcher(), *args], capture_output=True, text=True, timeout=60)

    for dev in ("/dev/zero", "/dev/full"):
        r = run(dev)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, (dev, r.stderr)
        assert "neither a terminal of yours nor /dev/null" in r.stderr
        assert not (tmp_path / "ran").exists()
    r = run("/dev/null")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    main, tty = os.openpty()
    try:
        r = run(os.ttyname(tty))
        os.set_blocking(main, False)
        said = ""
        with contextlib.suppress(BlockingIOError):  # a line per read: all of them
            while chunk := os.read(main, 65536):
                said += chunk.decode()
    finally:
        os.close(main)
        os.close(tty)
    assert r.returncode == 0 and r.stderr == "" and "trace written" in said, (r.stderr, said)


@pytest.mark.parametrize(
    "what", ["shim", "package", "stracer", "loop", "module", "pycache", "launcher"]
)
def test_install_another_user_could_change_refused(tmp_path: Path, what: str) -> None:
    """An install that another user may change (made under umask 000; a group's directory for
    root): root's run would load their shim into the command, or run their stracer, its C loop,
    any module of the package or its cached bytecode as root.  Refused in one line, status 2,
    the command not run, and so is a command the Python part runs (`report`); the same install
    private runs."""
    import iotrace

    inst = tmp_path / "inst"
    site = inst / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    shutil.copytree(Path(iotrace.__file__).parent, site / "iotrace",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (inst / "bin").mkdir()
    for name in ("iotrace", "iotrace-stracer", "iotrace-py"):
        shutil.copy2(Path(str(launcher())).parent / name, inst / "bin" / name)
    pkg = site / "iotrace"
    (pkg / "analyzer" / "__pycache__").mkdir(mode=0o755)
    target = {"shim": pkg / "libiotrace.so", "package": pkg / "stracer",
              "stracer": inst / "bin" / "iotrace-stracer", "loop": pkg / "stracer" / "_loop.so",
              "module": pkg / "analyzer" / "report.py",
              "pycache": pkg / "analyzer" / "__pycache__",
              "launcher": inst / "bin" / "iotrace"}[what]  # fmt: skip
    ran = tmp_path / "ran"

    def run(out: str) -> subprocess.CompletedProcess[str]:
        cmd = [inst / "bin" / "iotrace", "run", "-o", tmp_path / out, "--no-stracer", "--",
               "touch", ran]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    r = run("t1")
    assert r.returncode == 0 and ran.exists(), r.stderr
    ran.unlink()
    target.chmod(stat.S_IMODE(target.stat().st_mode) | 0o002)
    r = run("t2")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert f"{target} is writable by other users" in r.stderr, r.stderr
    assert "another user could change the code" in r.stderr and not ran.exists()
    for how in ([inst / "bin" / "iotrace"], [sys.executable, "-m", "iotrace"]):
        # `python -m iotrace` imports the copy (PYTHONPATH) and so runs its launcher's check
        r = subprocess.run([*how, "report", tmp_path / "t1"], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(site)), timeout=60)  # fmt: skip
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, (how, r.stderr)
        assert f"{target} is writable by other users" in r.stderr and r.stdout == ""


def test_python_m_imports_nothing_from_the_working_directory(tmp_path: Path) -> None:
    """`python -m iotrace` puts the working directory first on sys.path: root's report in a
    directory `nobody` can write imported their argparse.py (any module iotrace imports).
    Planted there, owned by nobody: none runs, the report is made."""
    work = tmp_path / "work"
    work.mkdir()
    os.chown(work, NOBODY, NOBODY)
    ran = tmp_path / "ran"
    ran.mkdir()
    mods = ("argparse", "signal", "pathlib", "sysconfig", "msgpack", "numpy", "pandas", "json")
    for mod in mods:
        planted = work / f"{mod}.py"
        planted.write_text(f"open({str(ran / mod)!r}, 'w').close()\n")
        os.chown(planted, NOBODY, NOBODY)
    trace = tmp_path / "t"
    r = iotrace("run", "-o", str(trace), "--no-stracer", "--", "cat", "/etc/hostname")
    assert r.returncode == 0, r.stderr
    r = iotrace("report", str(trace), cwd=work)
    assert r.returncode == 0 and "iotrace report" in r.stdout, r.stderr
    assert list(ran.iterdir()) == []


def test_log_never_visible_before_its_header(tmp_path: Path) -> None:
    """A log made by name, then sized, then given its header could be found by a reader (a
    report of a running job) all zeros, and a process killed in between left one (read since
    as a log never written).  Now it is made unnamed (O_TMPFILE) and linked once its header is
    in.  strace holds each of the shim's fallocates 0.3 s, the first in the header's making,
    while the directory is read: every log found there has its header."""
    if shutil.which("strace") is None:
        pytest.skip("needs strace")
    out = tmp_path / "t"
    cmd = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=fallocate",
           "-e", "inject=fallocate:delay_enter=300000",
           sys.executable, "-m", "iotrace", "run", "-o", str(out), "--no-stracer", "--",
           "cat", "/etc/hostname"]  # fmt: skip
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    heads: dict[str, set[bytes]] = {}
    while p.poll() is None:
        with contextlib.suppress(FileNotFoundError):
            for e in os.scandir(out):
                if e.name.endswith(".iot"):
                    with contextlib.suppress(FileNotFoundError), open(e.path, "rb") as f:
                        heads.setdefault(e.name, set()).add(f.read(1))
        time.sleep(0.002)
    _, err = p.communicate()
    assert p.returncode == 0, err
    assert heads and all(b"" not in h and b"\0" not in h for h in heads.values()), heads
    r = iotrace("show", str(out))
    assert r.returncode == 0 and "/etc/hostname" in r.stdout, r.stderr


NO_TMPFILE_C = r"""
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
/* runs argv[1..] where openat(O_TMPFILE) fails EOPNOTSUPP, as on a file system without it */
int main(int argc, char **argv)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 020000000, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EOPNOTSUPP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof *f, .filter = f};
    if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        return 126;
    execvp(argv[1], argv + 1);
    return 127;
}
"""


@pytest.mark.parametrize("mode", [(), ("--no-stracer",)], ids=["full", "shim"])
def test_log_made_by_name_where_the_file_system_has_no_tmpfile(
    tmp_path: Path, mode: tuple[str, ...]
) -> None:
    """Where O_TMPFILE is refused the log is made by name as before: private, its header and
    records there."""
    src = tmp_path / "no_tmpfile.c"
    src.write_text(NO_TMPFILE_C)
    exe = tmp_path / "no_tmpfile"
    subprocess.run(["gcc", "-O", "-o", str(exe), str(src)], check=True)
    out = tmp_path / "t"
    data = tmp_path / "data.txt"
    r = subprocess.run([exe, sys.executable, "-m", "iotrace", "run", "-o", str(out), *mode, "--",
                        "sh", "-c", f"echo hi > {data}; cat {data}"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0 and r.stdout == "hi\n", r.stderr
    assert "fault" not in r.stderr, r.stderr
    logs = list(out.glob("*.iot"))
    assert len(logs) >= 2 and all(_mode(p) == 0o600 for p in logs), logs
    r = iotrace("show", str(out))
    assert r.returncode == 0 and str(data) in r.stdout, r.stderr


@pytest.mark.parametrize("cmd", [("run", "--no-stracer", "--", "true"), ("env",)])
def test_planted_shim_named_by_iotrace_shim_refused(public_dir: Path, cmd: tuple[str, ...]) -> None:
    """IOTRACE_SHIM names the shim to preload (a build tree's): one another user could change
    was refused by `run` but exported by `iotrace env` into root's LD_PRELOAD (and injected by
    `attach`).  Every command refuses it, in one line, status 2, printing nothing else."""
    from iotrace.shim import shim_path

    theirs = public_dir / "theirs"
    theirs.mkdir()
    planted = theirs / "libiotrace.so"
    shutil.copy(shim_path(), planted)
    for p in (theirs, planted):
        os.chown(p, NOBODY, NOBODY)
    env = dict(os.environ, IOTRACE_SHIM=str(planted), IOTRACE_DIR=str(public_dir / "central"))
    r = iotrace(*cmd, env=env, cwd=public_dir)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert f"{planted} is owned by uid 65534" in r.stderr and r.stdout == ""


@pytest.fixture
def small_trace(tmp_path: Path) -> Path:
    out = tmp_path / "t"
    r = iotrace("run", "-o", str(out), "--no-stracer", "--", "cat", "/etc/hostname")
    assert r.returncode == 0, r.stderr
    return out


def test_report_html_temporary_not_followed(tmp_path: Path, small_trace: Path) -> None:
    victim, victim2 = _victim(tmp_path), _victim(tmp_path, "victim2")
    outdir = tmp_path / "shared"
    outdir.mkdir(mode=0o1777)
    html = outdir / "report.html"
    _plant(outdir / "report.html.tmp", victim)  # the old temporary's fixed name
    _plant(html, victim2)
    r = iotrace("report", str(small_trace), "--html", str(html))
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == VICTIM_TEXT and victim2.read_text() == VICTIM_TEXT
    assert not html.is_symlink() and "<html" in html.read_text()
    assert html.stat().st_uid == 0 and _mode(html) == 0o600
    assert {p.name for p in outdir.iterdir()} == {"report.html", "report.html.tmp"}


def test_chrome_export_temporary_not_followed(tmp_path: Path, small_trace: Path) -> None:
    victim = _victim(tmp_path)
    outdir = tmp_path / "shared"
    outdir.mkdir(mode=0o1777)
    out = outdir / "trace.json"
    _plant(outdir / "trace.json.tmp", victim)
    r = iotrace("export", str(small_trace), "--format", "chrome", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == VICTIM_TEXT
    assert out.read_text().startswith('{"displayTimeUnit"')
    assert _mode(out) == 0o600


@pytest.mark.parametrize(
    "cmd", [("report", "{t}", "--html"), ("export", "{t}", "--format", "chrome", "-o"),
            ("diff", "{t}", "{t}", "--html")], ids=["html", "chrome", "diff"],
)  # fmt: skip
def test_output_that_is_a_directory_is_named(tmp_path: Path, small_trace: Path, cmd) -> None:
    """An output path naming a directory: one line naming it, not the temporary beside it
    (was 'iotrace: report: .out.4db8a6b59e15c222.tmp: Is a directory'), nothing left behind."""
    out = tmp_path / "out"
    out.mkdir()
    r = iotrace(*(c.format(t=small_trace) for c in cmd), str(out))
    assert r.returncode == 2
    assert r.stderr == f"iotrace: {cmd[0]}: {out}: Is a directory\n", r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "t"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_dir_symlink_refused(tmp_path: Path, small_trace: Path, fmt: str) -> None:
    target = tmp_path / "roots-dir"
    target.mkdir()
    _victim(target, f"events.{fmt}")
    link = tmp_path / "out"
    _plant(link, target)
    r = iotrace("export", str(small_trace), "--format", fmt, "-o", str(link))
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1 and "symbolic link" in r.stderr, r.stderr
    assert sorted(p.name for p in target.iterdir()) == [f"events.{fmt}"]
    assert (target / f"events.{fmt}").read_text() == VICTIM_TEXT


@pytest.mark.parametrize("mode", [(), ("--no-stracer",)], ids=["full", "shim"])
@pytest.mark.parametrize("how", ["owner", "mode"])
def test_trace_dir_of_others_refused(tmp_path: Path, how: str, mode: tuple[str, ...]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    if how == "owner":
        os.chown(d, NOBODY, NOBODY)
        d.chmod(0o755)
    else:
        d.chmod(0o777)
    ran = tmp_path / "ran"
    r = iotrace("run", "-o", str(d), *mode, "--", "touch", str(ran))
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert ("owned by uid 65534" if how == "owner" else "writable by other users") in r.stderr
    assert not ran.exists() and list(d.iterdir()) == []


@pytest.mark.parametrize("mode", [(), ("--no-stracer",)], ids=["full", "shim"])
@pytest.mark.parametrize("how", ["owner", "mode", "sticky-link", "default"])
def test_trace_dir_another_user_could_move_refused(
    tmp_path: Path, how: str, mode: tuple[str, ...]
) -> None:
    """A directory on the way to the trace directory that another user owns (made first, as
    `nobody` can in /tmp before root's `-o /tmp/a/trace`), may write, or a link of theirs in a
    shared sticky directory: that user could rename the trace directory away mid-run and put
    theirs in its place (the shims find it by its path).  Refused before anything is made."""
    shared = tmp_path / "shared"
    shared.mkdir()
    if how in ("owner", "default"):
        os.chown(shared, NOBODY, NOBODY)
        way, out = shared, shared / "a" / "trace"
    elif how == "mode":
        shared.chmod(0o777)
        way, out = shared, shared / "trace"
    else:
        shared.chmod(0o1777)
        mine = tmp_path / "mine"
        mine.mkdir()
        _plant(shared / "link", mine)
        way, out = shared / "link", shared / "link" / "trace"
    ran = tmp_path / "ran"
    given = () if how == "default" else ("-o", str(out))
    r = iotrace("run", *given, *mode, "--", "touch", str(ran), cwd=shared)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert f": {way} is " in r.stderr and "another user could move the trace" in r.stderr
    assert not ran.exists() and [p.name for p in shared.iterdir()] == (
        ["link"] if how == "sticky-link" else []
    )
    if how == "sticky-link":
        assert list(mine.iterdir()) == []


def _as_user(user: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """iotrace run by `user` (its own groups only), with this interpreter's packages."""
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": ":".join(site)}
    cmd = ["setpriv", f"--reuid={user}", f"--regid={pwd.getpwnam(user).pw_gid}", "--init-groups",
           sys.executable, "-m", "iotrace", *args]  # fmt: skip
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def _private_group_user() -> str | None:
    """A user whose primary group is its own (named as it, no other member), for the contrast."""
    for pw in pwd.getpwall():
        with contextlib.suppress(KeyError):
            gr = grp.getgrgid(pw.pw_gid)
            if pw.pw_uid >= 1000 and gr.gr_name == pw.pw_name and set(gr.gr_mem) <= {pw.pw_name}:
                return pw.pw_name
    return None


@pytest.mark.parametrize("group", ["shared", "own"])
def test_trace_dir_under_a_group_writable_parent_of_a_user(public_dir: Path, group: str) -> None:
    """A user (not root) whose trace directory's parent is writable by a group others are in
    (nobody's is nogroup, a project's group): a member could rename the trace away mid-run and
    put theirs in its place.  Refused in one line, status 2; the user's own private group (the
    user private group Debian makes) is the user alone: accepted."""
    user = "nobody" if group == "shared" else _private_group_user()
    if user is None or not shutil.which("setpriv"):
        pytest.skip("needs setpriv and a user with a private group")
    pw = pwd.getpwnam(user)
    parent = public_dir / "project"
    parent.mkdir()
    os.chown(parent, pw.pw_uid, pw.pw_gid)
    parent.chmod(0o775)
    ran = parent / "ran"
    r = _as_user(user, "run", "-o", str(parent / "trace"), "--no-stracer", "--", "touch",
                 str(ran), cwd=public_dir)  # fmt: skip
    if group == "own":
        assert r.returncode == 0 and ran.exists(), r.stderr
        return
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert f"{parent} is writable by other users (mode 0775, a shared group)" in r.stderr
    assert not ran.exists() and list(parent.iterdir()) == []


@pytest.mark.parametrize("group", ["shared", "own"])
def test_central_dir_under_a_group_writable_parent_of_a_user(public_dir: Path, group: str) -> None:
    """The shims check the way to the central directory again (preload/jobdir.c) without NSS:
    they took any directory of the caller's primary group as the caller's, though others may be
    in it (nobody's nogroup: _apt's and sync's too; `users` on clusters), who could move a job's
    trace away mid-run.  Now only a group `iotrace env` found to be the caller's alone, told in
    IOTRACE_PRIVATE_GID: under a 0775 parent of nobody's the shim makes nothing (env refuses
    it too); under one of a user's own private group, env says so and the job is traced."""
    from iotrace.shim import shim_path

    user = "nobody" if group == "shared" else _private_group_user()
    if user is None or not shutil.which("setpriv"):
        pytest.skip("needs setpriv and a user with a private group")
    pw = pwd.getpwnam(user)
    parent = public_dir / "project"
    central = parent / "central"
    central.mkdir(parents=True)
    for d, mode in ((parent, 0o775), (central, 0o700)):
        os.chown(d, pw.pw_uid, pw.pw_gid)
        d.chmod(mode)
    r = _as_user(user, "env", "--dir", str(central), cwd=public_dir)
    told = f"IOTRACE_PRIVATE_GID={pw.pw_gid}"
    assert (r.returncode, told in r.stdout) == ((2, False) if group == "shared" else (0, True))
    env = {"PATH": os.environ["PATH"], "LD_PRELOAD": str(shim_path()),
           "IOTRACE_DIR": str(central), "SLURM_JOB_ID": "4246"}  # fmt: skip
    env.update([told.split("=")] if group == "own" else [])
    cmd = ["setpriv", f"--reuid={user}", f"--regid={pw.pw_gid}", "--init-groups",
           "sh", "-c", "echo hi > out.txt; cat out.txt"]  # fmt: skip
    r = subprocess.run(cmd, cwd=parent, env=env, capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "hi\n", "")
    jobs = list(central.iterdir())
    if group == "shared":
        assert jobs == []
    else:
        assert [j.name for j in jobs] == ["iotrace-slurm-4246"] and list(jobs[0].glob("*.iot"))


@pytest.mark.parametrize("how", ["parent", "owner", "mode", "link"])
def test_central_dir_another_user_could_change_refused(tmp_path: Path, how: str) -> None:
    """`iotrace env --dir C` (and the shims it exports, which make each job's directory in C):
    a C whose parent `nobody` owns, that `nobody` owns, that others may write unsticky, or a
    path through a link to a directory of theirs: they could rename a root job's directory
    away mid-run and put theirs in its place.  `env` refuses in one line, status 2; the shim
    given that IOTRACE_DIR by hand makes nothing there and the job runs as untraced."""
    from iotrace.shim import shim_path

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    central = theirs / "central"
    central.mkdir(mode=0o700)
    os.chown(theirs, NOBODY, NOBODY)
    if how == "owner":
        theirs.chmod(0o755)
        os.chown(central, NOBODY, NOBODY)
    elif how == "mode":
        theirs.chmod(0o755)
        central.chmod(0o777)
    elif how == "link":  # a link of root's, in a directory of root's, to a directory of theirs
        (tmp_path / "via").symlink_to(theirs)
        central = tmp_path / "via" / "central"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IOTRACE_", "SLURM_"))}
    r = iotrace("env", "--dir", str(central), env=env)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "another user could move a job's trace" in r.stderr and r.stdout == ""
    env.update(LD_PRELOAD=str(shim_path()), IOTRACE_DIR=str(central), SLURM_JOB_ID="4244")
    r = subprocess.run(["sh", "-c", "echo hi > out.txt; cat out.txt"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (r.returncode, r.stdout, r.stderr) == (0, "hi\n", "")
    assert list(central.iterdir()) == []


def test_trace_dir_symlink_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    _plant(link, real)
    r = iotrace("run", "-o", str(link), "--no-stracer", "--", "true")
    assert r.returncode == 2 and "symbolic link" in r.stderr and len(r.stderr.splitlines()) == 1
    assert list(real.iterdir()) == []


def test_squatted_job_dir_refused(tmp_path: Path) -> None:
    """The ranks of a job name the directory after the job: someone who creates it first gets
    a refusal, not the job's trace."""
    work = tmp_path / "work"
    work.mkdir()
    squat = work / "iotrace-pmix-4242"
    squat.mkdir()
    os.chown(squat, NOBODY, NOBODY)
    env = dict(os.environ, PMIX_NAMESPACE="4242")
    r = iotrace("run", "--no-stracer", "--", "true", cwd=work, env=env)
    assert r.returncode == 2 and "owned by uid 65534" in r.stderr
    assert list(squat.iterdir()) == []


def test_default_dir_not_predictable(tmp_path: Path) -> None:
    names = []
    for _ in range(2):
        r = iotrace("run", "--no-stracer", "--", "true", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        names.append(r.stderr.strip().splitlines()[-1].rsplit(" ", 1)[1])
    for n in names:
        assert re.fullmatch(r"iotrace-true-\d{8}-\d{6}-[0-9a-f]{8}", n), n
        assert _mode(tmp_path / n) == 0o700
    assert names[0] != names[1]


def test_modes_private_by_default_and_shared_with_group(tmp_path: Path) -> None:
    old = os.umask(0)  # the modes are iotrace's choice, not the umask's
    try:
        for extra, dmode, fmode in (([], 0o700, 0o600), (["--share-with-group"], 0o750, 0o640)):
            out = tmp_path / f"t{len(extra)}"
            r = iotrace("run", "-o", str(out), *extra, "--", "sh", "-c", "cat /etc/hostname")
            assert r.returncode == 0, r.stderr
            assert _mode(out) == dmode
            files = list(out.iterdir())
            kinds = {p.suffix for p in files}
            assert {".iot", ".stracer", ".json"} <= kinds, files
            for p in files:
                assert _mode(p) == fmode, (p, oct(_mode(p)))
    finally:
        os.umask(old)


def _logs(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.suffix == ".iot")


def test_reuse_refused_force_replaces_append_adds(tmp_path: Path) -> None:
    out = tmp_path / "t"
    r = iotrace("run", "-o", str(out), "--no-stracer", "--", "true")
    assert r.returncode == 0, r.stderr
    first = _logs(out)
    assert len(first) == 1
    ran = tmp_path / "ran"
    r = iotrace("run", "-o", str(out), "--no-stracer", "--", "touch", str(ran))
    assert r.returncode == 2 and not ran.exists()
    assert len(r.stderr.splitlines()) == 1 and "already holds a trace" in r.stderr, r.stderr
    assert _logs(out) == first
    r = iotrace("run", "-o", str(out), "--append", "--no-stracer", "--", "true")
    assert r.returncode == 0, r.stderr
    both = _logs(out)
    assert len(both) == 2 and first[0] in both
    r = iotrace("run", "-o", str(out), "--force", "--no-stracer", "--", "touch", str(ran))
    assert r.returncode == 0, r.stderr
    assert ran.exists()
    now = _logs(out)
    assert len(now) == 1 and now[0] not in both
    assert len(list(out.glob("iotrace-run.*.json"))) == 1


MPIRUN = shutil.which("mpirun")


@pytest.mark.skipif(MPIRUN is None, reason="needs mpirun (Open MPI)")
def test_mpi_ranks_share_one_dir_a_second_job_refuses(tmp_path: Path) -> None:
    """`mpirun -np 3 iotrace run -o job`: three iotrace processes claim one directory at once
    and all join (one job id); a second job into it refuses, or replaces with --force."""
    out = tmp_path / "job"
    env = dict(os.environ, OMPI_MCA_btl="self,vader")
    base = [str(MPIRUN), "--allow-run-as-root", "--oversubscribe", "-np", "3",
            sys.executable, "-m", "iotrace", "run", "-o", str(out), "--no-stracer"]  # fmt: skip

    def job(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *extra, "--", "true"], capture_output=True, text=True,
                              env=env, timeout=180)  # fmt: skip

    r = job()
    assert r.returncode == 0, r.stderr
    first = _logs(out)
    assert len(first) == 3 and len(list(out.glob("iotrace-run.*.json"))) == 3
    r = job()
    assert r.returncode != 0
    assert r.stderr.count("already holds a trace") >= 1, r.stderr
    assert _logs(out) == first
    r = job("--force")
    assert r.returncode == 0, r.stderr
    now = _logs(out)
    assert len(now) == 3 and not set(now) & set(first)


def test_planted_native_library_not_loaded(tmp_path: Path) -> None:
    """A stale installed decoder used to send iotrace looking in /tmp/iotrace-UID for a built
    one: a library planted there by another user ran as root.  Now only the user's own 0700
    cache is used, and an unusable one is one line and the Python decoder."""
    import iotrace.analyzer as an

    pkg = tmp_path / "site" / "iotrace"
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(Path(an.__file__).parent.parent, pkg, ignore=skip)
    src = pkg / "analyzer" / "_decode.c"
    os.utime(pkg / "analyzer" / "_decode.so", (1, 1))  # older than its source: stale
    tag = source_tag(src)  # the name iotrace would look for
    shared_tmp = tmp_path / "tmp"
    planted_dir = shared_tmp / f"iotrace-{os.getuid()}"
    planted_dir.mkdir(parents=True)
    os.chown(planted_dir, NOBODY, NOBODY)
    ran = tmp_path / "planted-code-ran"
    evil = tmp_path / "evil.c"
    evil.write_text(
        "#include <fcntl.h>\n"
        f'__attribute__((constructor)) static void pwn(void) {{ creat("{ran}", 0644); }}\n'
    )
    planted = planted_dir / f"decode-{tag}.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(planted), str(evil)], check=True)
    os.chown(planted, NOBODY, NOBODY)
    code = "from iotrace.analyzer.event_columns import native; print(native() is not None)"
    nobodys = tmp_path / "nobodys-cache"  # root could write there: another user's all the same
    nobodys.mkdir()
    shutil.copy(planted, nobodys / planted.name)
    os.chown(nobodys, NOBODY, NOBODY)
    os.chown(nobodys / planted.name, NOBODY, NOBODY)
    (tmp_path / "a-file").write_text("")
    cases = (
        (nobodys, "False", "owned by uid 65534"),
        (tmp_path / "a-file" / "cache", "False", "the cache is unusable"),  # old code: went to /tmp
        (tmp_path / "my-cache", "True", ""),
    )
    for cache, expect, why in cases:
        env = dict(os.environ, PYTHONPATH=str(pkg.parent), TMPDIR=str(shared_tmp),
                   IOTRACE_CACHE=str(cache))  # fmt: skip
        env.pop("IOTRACE_DECODER", None)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=180)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert not ran.exists(), f"the planted library was loaded (cache {cache})"
        assert r.stdout.strip() == expect, (r.stdout, r.stderr)
        if why:
            assert len(r.stderr.splitlines()) == 1 and why in r.stderr, r.stderr
        else:
            # an editable install's developer: built once into the private cache, 0700
            assert _mode(cache) == 0o700 and list(cache.glob("decode-*.so")), r.stderr


SHM_C = r"""
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    sem_t *s = sem_open(argv[1], O_CREAT, 0600, 1);
    printf("sem_open %d %d\n", s != SEM_FAILED, s == SEM_FAILED ? errno : 0);
    if (s != SEM_FAILED) {
        int posted = sem_post(s);
        printf("sem_post %d sem_close %d\n", posted, sem_close(s));
    }
    s = sem_open(argv[1], 0);
    printf("sem_open again %d %d\n", s != SEM_FAILED, s == SEM_FAILED ? errno : 0);
    printf("sem_unlink %d\n", sem_unlink(argv[1]));
    int fd = shm_open(argv[2], O_CREAT | O_RDWR, 0600);
    printf("shm_open %d %d\n", fd >= 0, fd < 0 ? errno : 0);
    if (fd >= 0) {
        ssize_t w = write(fd, "root's\n", 7);
        printf("write %zd close %d\n", w, close(fd));
    }
    printf("shm_unlink %d\n", shm_unlink(argv[2]));
    return 0;
}
"""


def test_planted_dev_shm_names_as_glibc(tmp_path: Path) -> None:
    """Under a stracer the shim makes sem_open and shm_open itself (wrap_shm.c), in /dev/shm,
    which every user may write: a link, a FIFO or a file of `nobody`'s planted at the names a
    root job uses get what glibc gives them -- the same results and errno, no link followed to
    a root file (a followed one got the semaphore's bytes)."""
    src = tmp_path / "shm.c"
    src.write_text(SHM_C)
    exe = tmp_path / "shm"
    subprocess.run(["gcc", "-O", "-o", str(exe), str(src), "-pthread"], check=True)
    victim = _victim(tmp_path)
    stem = f"iotrace-test-{os.getpid()}"
    names = (Path(f"/dev/shm/sem.{stem}"), Path(f"/dev/shm/{stem}.shm"))
    args = [str(exe), f"/{stem}", f"/{stem}.shm"]

    def plant(kind: str) -> None:
        for p in names:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
            if kind == "link":
                p.symlink_to(victim)
            elif kind == "fifo":
                os.mkfifo(p, 0o666)
            else:
                p.write_bytes(bytes(32))  # a semaphore of value 0
            os.lchown(p, NOBODY, NOBODY)

    try:
        for kind in ("link", "fifo", "file"):
            plant(kind)
            want = subprocess.run(args, capture_output=True, text=True, timeout=30)
            plant(kind)
            out = tmp_path / f"t-{kind}"
            got = iotrace("run", "-o", str(out), "--", *args)
            assert want.returncode == 0, (kind, want.stdout)
            assert (kind, got.returncode, got.stdout) == (kind, 0, want.stdout), got.stderr
            assert victim.read_text() == VICTIM_TEXT and _mode(victim) == 0o644
            r = iotrace("show", str(out))
            assert r.returncode == 0 and f"sem.{stem}" in r.stdout, r.stderr
    finally:
        for p in names:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


SWAP_AT_OPEN = r"""
import subprocess, sys
cache, evil = sys.argv[1], sys.argv[2]
swapped = []

def swap(event, args):
    # at root's open of the cached module, after every check of it: its parent's owner renames
    # root's cache away and puts theirs in its place
    if event == "open" and str(args[0]).endswith(".code") and "_iotrace_ffi_t_" in str(args[0]):
        if not swapped:
            swapped.append(None)
            swapped[0] = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                                         "--clear-groups", "sh", "-c",
                                         f"mv {cache} {cache}.old && mv {evil} {cache}"]).returncode

sys.addaudithook(swap)
from iotrace.native import ffi

print(ffi("t", "int abs(int);").new("int *") is not None, swapped == [0])
"""


def test_native_cache_swapped_after_its_check_not_loaded(tmp_path: Path, public_dir: Path) -> None:
    """The cffi modules and libraries iotrace caches (native.py) were checked by path (ours,
    0700, no other writer) and then loaded by path again: whoever owns a directory on the way
    (a root whose HOME or IOTRACE_CACHE is under a user's directory: a sudo that kept HOME)
    could rename root's cache away between the two and put theirs there, and root ran their
    module.  The swap is made as nobody at the very open (an audit hook in root's process):
    root's own module is loaded, the planted one never runs."""
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv")
    theirs = public_dir / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    cache = theirs / "cache"
    env = dict(os.environ, IOTRACE_CACHE=str(cache))
    code = [sys.executable, "-c", SWAP_AT_OPEN, str(cache), str(tmp_path / "none")]
    r = subprocess.run([*code[:2], "from iotrace.native import ffi; ffi('t', 'int abs(int);')"],
                       env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (mod,) = [p.name for p in cache.glob("_iotrace_ffi_t_*.code")]
    evil = theirs / "evil"
    evil.mkdir()
    ran = tmp_path / "planted-module-ran"
    planted = compile(f"open({str(ran)!r}, 'w').close()\n", mod, "exec")  # the cache's form
    (evil / mod).write_bytes(marshal.dumps(planted))
    for p in (evil, evil / mod):
        os.chown(p, NOBODY, NOBODY)
    code[-1] = str(evil)
    r = subprocess.run(code, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True"]  # swapped, and root's module loaded
    assert not ran.exists(), "the module nobody put in place of root's cache ran as root"


FIFO_AT_MODULE_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
/* maps argv[1], unlinks it and puts a FIFO at the name /proc/PID/maps now gives it, then writes
 * with a raw syscall from code in no file (a JIT's: the stracer reads the maps again), or
 * (argv[2] "code") from the code in that file itself (libunwind-ptrace looks for its file) */
int main(int argc, char **argv)
{
    static const unsigned char code[] = {0xb8, 1, 0, 0, 0, 0x0f, 0x05, 0xc3}; /* write; ret */
    int in_file = argc > 2 && !strcmp(argv[2], "code");
    char fifo[4200], buf[4096];
    snprintf(fifo, sizeof fifo, "%s (deleted)", argv[1]);
    memset(buf, 0xc3, sizeof buf);
    memcpy(buf, code, sizeof code);
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0700);
    if (fd < 0 || write(fd, buf, sizeof buf) != sizeof buf)
        return 1;
    void *m = mmap(NULL, sizeof buf, PROT_READ | (in_file ? PROT_EXEC : 0), MAP_PRIVATE, fd, 0);
    close(fd);
    unlink(argv[1]);
    if (m == MAP_FAILED || mkfifo(fifo, 0600) != 0)
        return 2;
    void *page = in_file ? m : mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return 3;
    if (!in_file)
        memcpy(page, code, sizeof code);
    ((long (*)(int, const char *, size_t))page)(1, "raw\n", 4);
    return 0;
}
"""


@pytest.mark.parametrize("where", ["data", "code"])
def test_fifo_at_a_mapped_files_path_does_not_hold_the_stracer(
    tmp_path: Path, public_dir: Path, where: str
) -> None:
    """Root's stracer opens the files a traced process's maps name (to place its frames): a
    process of nobody's (a command that drops to them, `iotrace attach` by root) mapped a file,
    unlinked it and put a FIFO at `NAME (deleted)`, the name its maps then give: the stracer
    waited in open(2) for a writer, the job with it, past `timeout`, for good.  Now a module
    is opened only if it is a regular file (elf.open_regular), and libunwind-ptrace is asked
    only of modules whose name is one (code run from that file: it opens it by name)."""
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv")
    src = tmp_path / "fifo.c"
    src.write_text(FIFO_AT_MODULE_C)
    exe = public_dir / "fifo_at_module"
    subprocess.run(["gcc", "-O", "-o", str(exe), str(src)], check=True)
    work = public_dir / "work"
    work.mkdir()
    os.chown(work, NOBODY, NOBODY)
    data = work / "data"
    cmd = [sys.executable, "-m", "iotrace", "run", "-o", str(tmp_path / "t"), "--",
           "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", str(exe),
           str(data), where]  # fmt: skip
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        fd = os.open(f"{data} (deleted)", os.O_RDWR | os.O_NONBLOCK)  # let the stracer go
        p.communicate(timeout=60)
        os.close(fd)
        pytest.fail("the stracer was held in open(2) of a FIFO at a mapped file's path")
    assert (p.returncode, out) == (0, "raw\n"), err
    assert "1 missed" in err, err


_TRUNCATED_UNDER_THE_READER = """
import mmap, os, shutil, sys
from iotrace import elf
path = sys.argv[1]
shutil.copyfile(os.path.realpath("/usr/lib/x86_64-linux-gnu/libc.so.6"), path)
real_mmap, real_pread = mmap.mmap, os.pread

def cut() -> None:  # what the file's owner does while root's stracer reads it
    os.truncate(path, 4096)

class Mmap(real_mmap):
    def __new__(cls, *a, **k):
        m = real_mmap.__new__(cls, *a, **k)
        cut()
        return m

def pread(fd, n, off):
    if off > 0:
        cut()
    return real_pread(fd, n, off)

mmap.mmap, os.pread = Mmap, pread
st = os.stat(path)
print(len(elf._functions(path, st.st_ino, st.st_mtime_ns, st.st_size)[0]))
"""


def test_a_mapped_file_truncated_under_the_stracer_does_not_kill_it(tmp_path: Path) -> None:
    """The stracer names frames from the symbols of the files the traced process maps, files
    their owners may change: one truncated while the stracer read it through a mapping killed
    the stracer by SIGBUS, and the job with it (PTRACE_O_EXITKILL).  The symbols are read
    (pread), not mapped: a truncated file reads short, and names nothing."""
    lib = str(tmp_path / "lib.so")
    r = subprocess.run([sys.executable, "-c", _TRUNCATED_UNDER_THE_READER, lib],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip() == "0", (r.returncode, r.stderr)


RAW_WRITE_LIB_C = r"""
/* a write by a raw syscall instruction in the library's own code: a missed write, whose call
 * site root's stracer unwinds through this library's unwind table */
void raw_write(const char *s, unsigned long n)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"(1L), "D"(1L), "S"(s), "d"(n)
                     : "rcx", "r11", "memory");
}
"""
RAW_WRITE_MAIN_C = r"""
void raw_write(const char *s, unsigned long n);
int main(void)
{
    raw_write("raw\n", 4);
    return 0;
}
"""
PT_GNU_EH_FRAME = 0x6474E550


def _forge(lib: Path, how: str) -> None:
    """The library's PT_GNU_EH_FRAME made to point past the file's end (its loader never reads
    it), its table given an encoding libunwind-ptrace does not search (it aborts), or its
    symbol tables said to be 2^62 bytes long (read when it is named as libc is)."""
    b = bytearray(lib.read_bytes())
    if how in ("symbols", "sparse"):
        shoff = int.from_bytes(b[40:48], "little")
        shentsize, shnum = int.from_bytes(b[58:60], "little"), int.from_bytes(b[60:62], "little")
        size = 1 << 62 if how == "symbols" else 1 << 40
        for sh in range(shoff, shoff + shentsize * shnum, shentsize):
            if int.from_bytes(b[sh + 4 : sh + 8], "little") in (2, 11):  # SYMTAB, DYNSYM
                b[sh + 32 : sh + 40] = size.to_bytes(8, "little")  # sh_size
        lib.write_bytes(bytes(b))
        if how == "sparse":  # the 1 TiB within the file: a hole of 2 TiB, no block written
            os.truncate(lib, 1 << 41)
        return
    phoff = int.from_bytes(b[32:40], "little")
    phentsize, phnum = int.from_bytes(b[54:56], "little"), int.from_bytes(b[56:58], "little")
    heads = [phoff + i * phentsize for i in range(phnum)]
    (ph,) = [h for h in heads if int.from_bytes(b[h : h + 4], "little") == PT_GNU_EH_FRAME]
    if how == "offset":
        b[ph + 8 : ph + 16] = (1 << 40).to_bytes(8, "little")  # p_offset
    else:
        b[int.from_bytes(b[ph + 8 : ph + 16], "little") + 3] = 0x1B  # table_enc: pcrel|sdata4
    lib.write_bytes(bytes(b))


@pytest.mark.parametrize("how", ["offset", "encoding", "symbols", "sparse"])
def test_a_forged_library_does_not_kill_the_stracer(
    tmp_path: Path, public_dir: Path, how: str
) -> None:
    """Root's stracer unwinds a missed syscall's site through the unwind tables of the modules
    the traced process maps, modules of other users: libunwind-ptrace read them from the
    module's file, mapped, trusting it: a library of nobody's whose PT_GNU_EH_FRAME points past
    the file's end killed the stracer by SIGSEGV, one whose table has another encoding by
    abort(), and the job with them (PTRACE_O_EXITKILL).  Now stracer/_unwind.c reads the table
    where the loader put it, in the tracee's memory (process_vm_readv: a bad address fails,
    never faults), checked: the forged table is no table, and the app runs as untraced.  A
    library named as libc is (`libc-*.so`: its frames are named from its symbol tables) whose
    symbol tables claim 2^62 bytes made the stracer allocate them: MemoryError, the write went
    unrecorded; a section past the file's end now reads as empty.  So did 1 TiB within a sparse
    file of 2 TiB (no block of it written): a section past elf.py's bound reads as empty too."""
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv")
    (tmp_path / "lib.c").write_text(RAW_WRITE_LIB_C)
    (tmp_path / "main.c").write_text(RAW_WRITE_MAIN_C)
    name = "libc-forged.so" if how in ("symbols", "sparse") else "libraw.so"
    lib, exe = public_dir / name, public_dir / "raw_main"
    subprocess.run(["gcc", "-O", "-shared", "-fPIC", "-o", str(lib), str(tmp_path / "lib.c")],
                   check=True)  # fmt: skip
    subprocess.run(["gcc", "-O", "-o", str(exe), str(tmp_path / "main.c"), f"-L{public_dir}",
                    f"-l:{name}", "-Wl,-rpath,$ORIGIN"], check=True)  # fmt: skip
    _forge(lib, how)
    for p in (lib, exe):
        os.chown(p, NOBODY, NOBODY)
    nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", str(exe)]
    plain = subprocess.run(nobody, capture_output=True, text=True, timeout=60)
    assert (plain.returncode, plain.stdout) == (0, "raw\n"), plain.stderr
    r = subprocess.run([sys.executable, "-m", "iotrace", "run", "-o", str(tmp_path / "t"), "--",
                        *nobody], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "raw\n"), r.stderr
    assert "killed" not in r.stderr and "internal error" not in r.stderr, r.stderr
    m = iotrace("missed", "--all", "-e", "write", str(tmp_path / "t"))  # recorded, placed
    site = "libc-forged.so+0x" if how in ("symbols", "sparse") else "at raw_write"
    assert m.returncode == 0 and site in m.stdout and "4 B" in m.stdout, (m.stdout, r.stderr)


NOP_FDE_C = r"""
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
/* Points its own unwind table's entry for raw_write (in memory: the table's page made writable)
 * at an FDE it builds in anonymous memory: 2 GiB of DW_CFA_nop (zero bytes) to run through
 * before the caller's frame is known; then writes by a raw syscall inside raw_write. */
__attribute__((noinline)) static long raw_write(const char *s, unsigned long n)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"(1L), "D"(1L), "S"(s), "d"(n)
                     : "rcx", "r11", "memory");
    return r;
}

static uintptr_t hdr;
static int find(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size, (void)data;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME)
            hdr = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
    return 1; /* the executable only */
}

int main(void)
{
    dl_iterate_phdr(find, NULL);
    const unsigned char *h = (const unsigned char *)hdr;
    if (!hdr || h[0] != 1 || h[1] != 0x1b || h[2] != 0x03 || h[3] != 0x3b)
        return 2;
    uint32_t count;
    memcpy(&count, h + 8, 4);
    int32_t *table = (int32_t *)(h + 12), want = (int32_t)((uintptr_t)raw_write - hdr);
    uint32_t k = 0;
    for (uint32_t i = 0; i < count; i++)
        if (table[2 * i] <= want)
            k = i;
    size_t size = (size_t)0x80100000;
    unsigned char *r = MAP_FAILED;
    for (uintptr_t at = (hdr + (1ul << 28)) & ~0xffful; r == MAP_FAILED && at < hdr + (1ul << 30);
         at += 1ul << 28)
        r = mmap((void *)at, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (r == MAP_FAILED)
        return 3;
    static const unsigned char cie[24] = {20, 0, 0, 0, 0, 0, 0, 0, 1, 'z', 'R', 0, 1, 0x78, 16,
                                          1, 0x1b, 0x0c, 0x07, 0x08, 0x90, 0x01, 0, 0};
    memcpy(r, cie, sizeof cie);
    uint32_t len = 0x7ffffff0, back = 28;
    int32_t begin = (int32_t)((intptr_t)raw_write - (intptr_t)(r + 32)), range = 0x10000;
    memcpy(r + 24, &len, 4);
    memcpy(r + 28, &back, 4);
    memcpy(r + 32, &begin, 4);
    memcpy(r + 36, &range, 4); /* then aug data length 0 and the nops: zero pages */
    uintptr_t page = (uintptr_t)&table[2 * k + 1] & ~0xffful;
    if (mprotect((void *)page, 8192, PROT_READ | PROT_WRITE))
        return 4;
    table[2 * k + 1] = (int32_t)((intptr_t)(r + 24) - (intptr_t)hdr);
    return raw_write("raw\n", 4) == 4 ? 0 : 5;
}
"""


def test_an_endless_unwind_program_does_not_hold_the_stracer(
    tmp_path: Path, public_dir: Path
) -> None:
    """The CFA programs libunwind runs to find a caller's frame are the tracee's bytes: a
    program of nobody's pointed its unwind table's entry for the function making a raw write
    at an FDE of 2 GiB of DW_CFA_nop (zero pages it mapped), and root's stracer ran through
    them for minutes, every process of the job stopped meanwhile, past `timeout`.  Now an
    unwind reads at most MAX_READS words (_unwind.c): the site keeps the frames found."""
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv")
    src = tmp_path / "nops.c"
    src.write_text(NOP_FDE_C)
    exe = public_dir / "nops"
    subprocess.run(["gcc", "-O", "-o", str(exe), str(src)], check=True)
    cmd = [sys.executable, "-m", "iotrace", "run", "-o", str(tmp_path / "t"), "--",
           "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", str(exe)]  # fmt: skip
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)  # fmt: skip
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        pytest.fail("the stracer was held running a 2 GiB CFA program")
    assert (p.returncode, out) == (0, "raw\n"), err
    assert "1 missed" in err and "at raw_write" in err, err


@pytest.mark.parametrize("how", ["run", "run -e", "report"])
def test_iotraces_python_runs_no_python_code_from_the_callers_environment(
    tmp_path: Path, public_dir: Path, how: str
) -> None:
    """Root running iotrace with a user's environment (`su` without `-`, a root shell that kept
    it): the stracer of `run`, and the Python command (`run -e/--path/-s`, `report`, `attach`,
    ...), Python as root, ran the sitecustomize.py PYTHONPATH named (and, outside a virtual
    environment, the .pth files of the user site directory HOME named), nobody's.  Now of
    Python's variables they keep only PYTHONPATH's directories no other user could change (a
    module system's install: root's sitecustomize.py here, after nobody's on the path, is the
    one that runs), and no user site; the command gets its environment whole (launcher/pyenv.c:
    under the C locale not even Python's LC_CTYPE is added)."""
    evil, home, safe = public_dir / "evil", public_dir / "home", tmp_path / "safe"
    site = home / ".local/lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (site / "site-packages").mkdir(parents=True)
    evil.mkdir()
    safe.mkdir()
    ran, root_ran = tmp_path / "ran", tmp_path / "root-ran"
    code = "open({!r}, 'a').write(__import__('sys').argv[0] + '\\n')\n"
    (evil / "sitecustomize.py").write_text(code.format(str(ran)))
    (site / "site-packages" / "evil.pth").write_text("import os; " + code.format(str(ran)))
    (safe / "sitecustomize.py").write_text(code.format(str(root_ran)))
    for p in (evil, home, *home.rglob("*"), *evil.iterdir()):
        os.lchown(p, NOBODY, NOBODY)
    exe = launcher()
    assert exe is not None
    path = f"{evil}:{safe}:relative"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": path, "HOME": str(home),
           "PYTHONWARNINGS": "default", "LANG": "C"}  # fmt: skip
    said = 'echo "$PYTHONPATH $HOME $PYTHONWARNINGS ${LC_CTYPE-unset}"'
    cmd = [str(exe), "run", *(["-e", "trace=open"] if how == "run -e" else []),
           "-o", str(tmp_path / "t"), "--", "sh", "-c", said]  # fmt: skip
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{path} {home} default unset\n"
    if how == "report":
        r = subprocess.run([str(exe), "report", str(tmp_path / "t")], env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
        assert r.returncode == 0 and "iotrace report" in r.stdout, r.stderr
    assert not ran.exists(), f"root's iotrace ran nobody's code: {ran.read_text()}"
    ran_as = [Path(line).name for line in root_ran.read_text().splitlines()]
    assert ran_as == {"run": ["iotrace-stracer"], "run -e": ["iotrace-py", "iotrace-stracer"],
                      "report": ["iotrace-stracer", "iotrace-py"]}[how]  # fmt: skip


def test_the_stracer_finds_iotrace_installed_in_the_user_site(tmp_path: Path) -> None:
    """`pip install --user` (~/.local/bin/iotrace, the package in ~/.local/lib/python3.X/
    site-packages, the caller's own): the stracer, isolated from the user site (above), did not
    find its package and died at its first import, killing the command (137).  The user site
    where iotrace itself is installed, vetted by the install check, stays on its path."""
    found = launcher()
    assert found is not None
    exe, home = Path(found), tmp_path / "home"
    bin_ = home / ".local/bin"
    lib = home / ".local/lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    bin_.mkdir(parents=True)
    lib.mkdir(parents=True)
    (lib / "site-packages").symlink_to(Path(sys.modules["iotrace"].__file__ or "").parent.parent)
    shutil.copy(exe, bin_ / "iotrace")
    for script in ("iotrace-py", "iotrace-stracer"):  # a Python of the system's, as --user's
        body = (exe.parent / script).read_text().split("\n", 1)[1]
        (bin_ / script).write_text(f"#!{sys._base_executable}\n{body}")
        (bin_ / script).chmod(0o755)
    env = dict(os.environ, HOME=str(home))
    cmd = [str(bin_ / "iotrace"), "run", "-o", str(tmp_path / "t"), "--", "sh", "-c", "exit 3"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
    assert "stracer:" in r.stderr and "checked" in r.stderr, r.stderr


@pytest.mark.parametrize("owner", ["caller", "nobody"])
def test_iotraces_python_keeps_the_callers_own_user_site(
    tmp_path: Path, public_dir: Path, owner: str
) -> None:
    """An iotrace installed for the system's Python (here: its package on a root-owned
    PYTHONPATH) left the caller's user site out unless iotrace itself was there: the caller's
    own `pip install --user` packages (dask for `report --scheduler`) were not found.  Now the
    caller's user site is kept where no other user could change it; nobody's (root given
    nobody's HOME) is still left out."""
    exe = launcher()
    assert exe is not None
    pkg = Path(sys.modules["iotrace"].__file__ or "").parent.parent
    bin_, home = tmp_path / "bin", (tmp_path if owner == "caller" else public_dir) / "home"
    bin_.mkdir()
    shutil.copy(exe, bin_ / "iotrace")
    for script in ("iotrace-py", "iotrace-stracer"):  # the system's Python, as its install's
        body = (Path(exe).parent / script).read_text().split("\n", 1)[1]
        (bin_ / script).write_text(f"#!{sys._base_executable}\n{body}")
        (bin_ / script).chmod(0o755)
    site = home / ".local/lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (site / "site-packages").mkdir(parents=True)
    ran = tmp_path / "ran"
    (site / "site-packages" / "own.pth").write_text(f"import os; open({str(ran)!r}, 'w')\n")
    if owner == "nobody":
        for q in (home, *home.rglob("*")):
            os.lchown(q, NOBODY, NOBODY)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(pkg), "HOME": str(home)}
    trace = Path(__file__).parent / "data" / "readers" / "valid"
    r = subprocess.run([str(bin_ / "iotrace"), "show", str(trace)], env=env,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert ran.exists() == (owner == "caller"), r.stderr


NO_FLINK_C = (
    NO_TMPFILE_C.replace(
        "openat(O_TMPFILE) fails EOPNOTSUPP, as on a file system without it",
        "linkat(AT_EMPTY_PATH) fails ENOENT, as without CAP_DAC_READ_SEARCH before Linux 6.10",
    )
    .replace("SYS_openat", "SYS_linkat")
    .replace("args[2]", "args[4]")
)
NO_FLINK_C = NO_FLINK_C.replace("020000000", "0x1000").replace("EOPNOTSUPP", "ENOENT")


@pytest.mark.parametrize("mode", [(), ("--no-stracer",)], ids=["full", "shim"])
def test_logs_are_named_through_proc_where_linkat_needs_the_capability(
    tmp_path: Path, mode: tuple[str, ...]
) -> None:
    """A log is made unnamed (O_TMPFILE) and named once its header is in:
    linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH before Linux 6.10, which a user's job
    lacks, and then the log is named through /proc/self/fd (linkat AT_SYMLINK_FOLLOW, as the
    file's opener): every process's log there, private, read back whole."""
    src = tmp_path / "no_flink.c"
    src.write_text(NO_FLINK_C)
    exe = tmp_path / "no_flink"
    subprocess.run(["gcc", "-O", "-o", str(exe), str(src)], check=True)
    out, data = tmp_path / "t", tmp_path / "data.txt"
    r = subprocess.run([exe, sys.executable, "-m", "iotrace", "run", "-o", str(out), *mode, "--",
                        "sh", "-c", f"echo hi > {data}; cat {data}"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0 and r.stdout == "hi\n", r.stderr
    assert "fault" not in r.stderr and "create" not in r.stderr, r.stderr
    logs = list(out.glob("*.iot"))
    assert len(logs) >= 2 and all(_mode(p) == 0o600 for p in logs), logs  # sh, cat
    r = iotrace("show", str(out))
    assert r.returncode == 0 and str(data) in r.stdout, r.stderr


def test_attach_shim_to_another_users_process_refused(tmp_path: Path, public_dir: Path) -> None:
    """Root's `attach --shim` of a process of nobody's loaded the shim into it, said "its calls
    are recorded" and "trace written", and wrote nothing: the shim makes its log as the
    process, which may not write root's private trace directory (nor should it).  Now one
    line, status 1, the process untouched (plain attach records its syscalls as root)."""
    from conftest import build

    prog = public_dir / "att_loop"
    shutil.copy(build("att_loop"), prog)
    outs = public_dir / "outs"
    outs.mkdir()
    os.chown(outs, NOBODY, NOBODY)
    app = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            str(prog), *(str(outs / n) for n in ("m", "s", "k"))])  # fmt: skip
    try:
        while not (outs / "m").exists():
            time.sleep(0.05)
        r = iotrace("attach", "--shim", str(app.pid), "-o", str(tmp_path / "t"))
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
        assert f"process {app.pid} runs as uid {NOBODY}" in r.stderr, r.stderr
        maps = Path(f"/proc/{app.pid}/maps").read_text()
        assert "libiotrace" not in maps and app.poll() is None
    finally:
        app.kill()
        app.wait()


def test_a_log_linked_into_another_users_trace_is_not_read(
    tmp_path: Path, public_dir: Path
) -> None:
    """Root asked to read a trace of nobody's (report, export: support for a user): a symbolic
    link nobody planted in it, named like a log, led to a log of root's private trace (its name
    guessed: HOST.PID.iot), and its events (root's paths) came out as nobody's.  Now a trace's
    files are never followed as links: a log so is one line, status 2 (a run record that cannot
    be read is skipped, as a damaged one)."""
    private = tmp_path / "private"
    r = iotrace("run", "--no-stracer", "-o", str(private), "--", "cat", "/etc/hostname")
    assert r.returncode == 0, r.stderr
    (public_dir / "n").mkdir()
    os.chown(public_dir / "n", NOBODY, NOBODY)
    theirs = public_dir / "n" / "theirs"
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        launcher(), "run", "--no-stracer", "-o", str(theirs), "--", "true"],
                       cwd=public_dir, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0 and "trace written" in r.stderr, r.stderr
    rootlog, record = next(private.glob("*.iot")), next(private.glob("iotrace-run.*.json"))
    host = os.uname().nodename
    for name, target in ((f"{host}.99999.iot", rootlog), (f"{host}.99998.stracer", rootlog),
                         ("iotrace-run.x.99997.json", record)):  # fmt: skip
        planted = theirs / name
        planted.symlink_to(target)
        os.lchown(planted, NOBODY, NOBODY)
        for cmd in (["report", "--json"], ["export", "--format", "csv", "-o", str(tmp_path / "x")],
                    ["show"]):  # fmt: skip
            r = iotrace(*cmd, str(theirs))
            assert "hostname" not in r.stdout
            if name.endswith(".json"):  # a run record that cannot be read is skipped
                assert r.returncode == 0, (name, cmd, r.stderr)
                continue
            assert r.returncode == 2 and r.stderr.count("\n") == 1, (name, cmd, r.stderr)
            assert f"{name}: a symbolic link" in r.stderr, (name, cmd, r.stderr)
        planted.unlink()


def test_iotraces_python_keeps_the_output_encoding_asked() -> None:
    """Of Python's variables, those that load no code stay (launcher/pyenv.c): a report's
    output in the encoding PYTHONIOENCODING asks (dropped with the rest at first)."""
    valid = Path(__file__).parent / "data" / "readers" / "valid"
    r = subprocess.run([launcher(), "show", str(valid)], capture_output=True, timeout=60,
                       env=dict(os.environ, PYTHONIOENCODING="utf-16"))  # fmt: skip
    assert r.returncode == 0 and "open(".encode("utf-16-le") in r.stdout, r.stderr


def test_a_refused_attach_leaves_no_directory_behind(public_dir: Path) -> None:
    """nobody's `attach` of a process of root's is refused (EPERM), and it left a trace
    directory behind all the same (the job's mark and a stracer log of a header and no
    record), one more at each try.  Now none is left; a directory given that was there before
    stays, without a log."""
    home = public_dir / "home"
    home.mkdir(mode=0o700)
    os.chown(home, NOBODY, NOBODY)
    kept = home / "kept"
    assert _as_user("nobody", "run", "-o", str(kept), "--", "true", cwd=home).returncode == 0
    before = sorted(p.name for p in kept.iterdir())
    app = subprocess.Popen(["sleep", "120"])
    try:
        for extra in ([], ["-o", str(home / "new")], ["-o", str(kept), "--append"]):
            r = _as_user("nobody", "attach", str(app.pid), *extra, cwd=home)
            assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
            assert f"cannot attach to {app.pid}" in r.stderr, r.stderr
            assert sorted(p.name for p in home.iterdir()) == ["kept"], extra
            assert sorted(p.name for p in kept.iterdir()) == before, extra
        assert app.poll() is None
    finally:
        app.kill()
        app.wait()


def test_a_log_hard_linked_into_another_users_trace_is_not_read(
    tmp_path: Path, public_dir: Path
) -> None:
    """The hard-link twin of the test above: where fs.protected_hardlinks is 0 (a sysctl many
    clusters' images leave off), nobody can link any file of root's into their trace, named
    like a log, and root's report of it read root's private log as nobody's.  The link is made
    here by root, as nobody would there (this machine may forbid it them).  Now a file of
    several names that is not the trace directory's owner's is one line, status 2."""
    private = tmp_path / "private"
    r = iotrace("run", "--no-stracer", "-o", str(private), "--", "cat", "/etc/hostname")
    assert r.returncode == 0, r.stderr
    (public_dir / "n").mkdir()
    os.chown(public_dir / "n", NOBODY, NOBODY)
    theirs = public_dir / "n" / "theirs"
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        launcher(), "run", "--no-stracer", "-o", str(theirs), "--", "true"],
                       cwd=public_dir, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0 and "trace written" in r.stderr, r.stderr
    rootlog = next(private.glob("*.iot"))
    planted = theirs / f"{os.uname().nodename}.99999.iot"
    try:
        os.link(rootlog, planted)
    except OSError as exc:  # another file system
        pytest.skip(f"cannot hard-link {rootlog} into {theirs}: {exc.strerror}")
    for cmd in (["report", "--json"], ["show"]):
        r = iotrace(*cmd, str(theirs))
        assert "hostname" not in r.stdout
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (cmd, r.stderr)
        assert f"{planted.name}: a hard link to a file of uid 0's" in r.stderr, (cmd, r.stderr)
    planted.unlink()
    own = theirs / "own.iot"  # nobody's log linked by nobody (a backup's cp -al): theirs, read
    os.link(next(p for p in theirs.glob("*.iot") if p != own), own)
    r = iotrace("report", "--json", str(theirs))
    assert r.returncode == 0, r.stderr
