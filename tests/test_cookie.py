"""The cookie fast path (docs/stracer.md, preload/sysraw.h): under the stracer a wrapper makes its
real call as a raw syscall carrying the run's cookie, which the seccomp filter lets through
without a ptrace stop.  The program must see exactly what it sees untraced and under the shim
alone (results, errno values, EINTR, cancellation, fortify aborts, files), the calls must not
stop, and the shim's own syscalls must not stop either."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import build, iotrace

from iotrace.calls import EVENT_FIELDS
from iotrace.tracefile import log_paths, read_log

SUMMARY = re.compile(
    r"stracer: (\d+) I/O syscalls checked: (\d+) covered by the shim, (\d+) by the loader "
    r"before the shim, (\d+) by the shim itself, (\d+) missed, (\d+) inside libc functions"
)
MODES = ("plain", "stracer", "shim")


def counts(stderr: str) -> dict[str, int]:
    m = SUMMARY.search(stderr)
    assert m, stderr
    names = ("checked", "covered", "loader", "shim", "missed", "libc")
    return dict(zip(names, map(int, m.groups()), strict=True))


def run(mode: str, exe: Path, *args: str, cwd: Path, out: Path, stack: int = 8, env=None):
    """The program untraced, under `iotrace run` (the stracer) or `iotrace run --no-stracer`."""
    cwd.mkdir(parents=True, exist_ok=True)
    if mode == "plain":
        return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True,
                              timeout=60)  # fmt: skip
    extra = ("--no-stracer",) if mode == "shim" else ()
    return iotrace("run", "-o", str(out), "--stack", str(stack), *extra, "--", str(exe), *args,
                   cwd=cwd, timeout=60, env=env)  # fmt: skip


def events(out: Path) -> list[tuple]:
    """(function, ret, errno, fd) of every event of the one process."""
    (path,) = log_paths(out)
    log = read_log(path)
    i = {f: EVENT_FIELDS.index(f) for f in ("fn", "ret", "errno", "fd")}
    return [(log.functions[e[i["fn"]]], e[i["ret"]], e[i["errno"]], e[i["fd"]])
            for e in log.events]  # fmt: skip


def files(d: Path) -> dict[str, bytes | str]:
    return {p.name: (p.read_bytes() if p.is_file() else "<dir>") for p in sorted(d.iterdir())
            if not p.is_symlink()}  # fmt: skip


def three(tmp_path: Path, *args: str, link: bool = False) -> dict:
    exe = build("ck_calls")
    res = {}
    for mode in MODES:
        work = tmp_path / mode
        work.mkdir()
        if link:
            (work / "link").symlink_to("f1")
        res[mode] = run(mode, exe, *args, cwd=work, out=tmp_path / f"trace-{mode}")
    return res


def same_everywhere(tmp_path: Path, prog: str) -> tuple[dict, str]:
    """PROG untraced, with the stracer and with the shim alone (--stack 0): each exits 0 and
    they print the same and leave the same files.  The runs, and the untraced output."""
    exe = build(prog)
    r = {}
    for mode in MODES:
        r[mode] = run(mode, exe, cwd=tmp_path / mode, out=tmp_path / f"trace-{mode}", stack=0)
        assert r[mode].returncode == 0, (mode, r[mode].stderr)
    plain = r["plain"].stdout
    assert r["stracer"].stdout == plain and r["shim"].stdout == plain
    assert files(tmp_path / "stracer") == files(tmp_path / "plain") == files(tmp_path / "shim")
    return r, plain


def test_calls_same_results_without_stops(tmp_path):
    r = three(tmp_path, link=True)
    for mode in MODES:
        assert r[mode].returncode == 0, (mode, r[mode].stderr)
    plain = r["plain"].stdout
    assert r["stracer"].stdout == plain
    assert r["shim"].stdout == plain
    # the errno values the raw path must give as libc does
    for line in ("write bad buffer             -1 EFAULT", "read bad buffer              -1 EFAULT",
                 "write bad fd                 -1 EBADF", "stat missing                 -1 ENOENT",
                 "fstat AT_FDCWD               -1 EBADF", "__xstat 3                    -1 EINVAL",
                 "dup2 same                    3 -", "stat bad path                -1 EFAULT",
                 "preadv far                   4 -"):  # fmt: skip
        assert line in plain
    assert files(tmp_path / "stracer") == files(tmp_path / "plain") == files(tmp_path / "shim")
    # the same events, with or without the stracer
    evs = events(tmp_path / "trace-stracer")
    assert evs == events(tmp_path / "trace-shim")
    assert len(evs) > 150
    c = counts(r["stracer"].stderr)
    assert c["missed"] == 0
    # ~170 wrapped calls made their syscall without a stop: what still stops is stdout's flush
    # at exit (libc-internal writes)
    assert c["covered"] <= 4, c


def test_eintr_and_sa_restart(tmp_path):
    r = three(tmp_path, "eintr")
    for mode in MODES:
        assert r[mode].returncode == 0, (mode, r[mode].stderr)
        lines = [ln.split() for ln in r[mode].stdout.splitlines()]
        assert lines == [["read", "interrupted", "-1", "EINTR"], ["read", "restarted", "1", "-"],
                         ["w"]], mode  # fmt: skip
    assert counts(r["stracer"].stderr)["missed"] == 0


@pytest.mark.parametrize("what", ["cancel", "selfcancel"])
def test_cancellation_point(tmp_path, what):
    r = three(tmp_path, what)
    want = {"cancel": "cleanup: blocked read\njoined: canceled\n", "selfcancel": "self-cancel\n"}
    for mode in MODES:
        assert r[mode].returncode == 0, (mode, r[mode].stderr)
        assert r[mode].stdout == want[what], mode


@pytest.mark.parametrize(
    "what,message",
    [("chk", "*** buffer overflow detected ***: terminated"),
     ("open2", "*** invalid open call: O_CREAT or O_TMPFILE without mode ***: terminated")],
)  # fmt: skip
def test_fortify_checks_kept(tmp_path, what, message):
    r = three(tmp_path, what)
    assert r["plain"].returncode == -6  # SIGABRT
    for mode in ("stracer", "shim"):
        assert r[mode].returncode == -6, (mode, r[mode].stderr)
        assert message in r[mode].stderr
        assert r[mode].stdout == f"{what}\n"


def test_shim_own_syscalls_do_not_stop(tmp_path):
    """Log creation, header, module map, the log's trim at exit: all carry the cookie.  What
    stops is the log's mmap (six arguments: no slot for the cookie)."""
    r = run("stracer", build("ck_calls"), "none", cwd=tmp_path / "w", out=tmp_path / "t",
            stack=0)  # fmt: skip
    assert r.returncode == 0, r.stderr
    c = counts(r.stderr)
    assert c["shim"] == 1 and c["missed"] == 0 and c["covered"] == 0, c


def test_setlocale_covers_the_locale_files(tmp_path):
    """glibc reads the locale files inside setlocale: recorded as libc-internal (the event does
    not account for their bytes), `ls` shows no missed I/O, and they send no fd news (with
    them, libzmq started in the process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    env["LANG"] = "C.UTF-8"  # glibc 2.36 reads its files (locale-archive, C.utf8/LC_*)
    r = run("stracer", Path("/bin/ls"), "/", cwd=tmp_path / "w", out=tmp_path / "t", stack=0,
            env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "missed I/O" not in r.stderr
    c = counts(r.stderr)
    assert c["missed"] == 0, c
    assert c["libc"] >= 20, c  # the locale files, read inside setlocale
    assert c["shim"] <= 5, c  # no fd news to fetch
    evs = [e for e in events(tmp_path / "t") if e[0] in ("setlocale", "newlocale")]
    assert evs and evs[0][:3] == ("setlocale", 1, 0)
    (path,) = log_paths(tmp_path / "t")
    log = read_log(path)
    i = EVENT_FIELDS.index
    first = next(e for e in log.events if log.functions[e[i("fn")]] == "setlocale")
    assert log.strings[first[i("path")]] == ""  # setlocale(LC_ALL, ""): from the environment


def test_stdio_buffers_in_the_window(tmp_path):
    """Streams the shim opens get their buffers in the filter's window (preload/stdio_arena.c):
    the buffering glibc chose is unchanged, output and files are the same, and stdio's own
    flushes and refills (~300 of them here) no longer stop, nor do the 107 fopen and 108 fclose
    (the wrappers open and close with the cookie).  What stops is freopen's close and open,
    glibc's own.  The headers' inline putc/getc are seen at their buffer boundaries
    (__overflow, __uflow), whose events count every byte."""
    r, plain = same_everywhere(tmp_path, "ck_stdiobuf")
    assert "file-w   size 4096 line 0" in plain and "stdout   size 4096 line 0" in plain
    assert "read back 320016" in plain and "inline getc 20000" in plain
    c = counts(r["stracer"].stderr)
    assert c["missed"] == 0, c
    assert 2 <= c["covered"] <= 3, c
    for mode in ("stracer", "shim"):
        evs = events(tmp_path / f"trace-{mode}")
        for fn in ("__overflow", "__uflow"):
            assert sum(e[1] for e in evs if e[0] == fn) == 20000, (mode, fn)


def test_fopen_fclose_without_stops(tmp_path):
    """Under a stracer fopen opens with the cookie and hands the descriptor to fdopen, and
    fclose closes it itself (glibc's NOCLOSE flag): the app sees what glibc's own fopen/fclose
    give — positions of append streams, EEXIST/ENOENT/EINVAL/EISDIR, close-on-exec, errors
    of the final flush and of the close — and the files are the same."""
    r, plain = same_everywhere(tmp_path, "ck_fopen")
    for line in ("ftell a                10 -", "fopen wx again         -1 EEXIST",
                 "fopen dir w            -1 EISDIR", "cloexec re             1 -",
                 "fclose closed fd       -1 EBADF", "fclose full            -1 ENOSPC",
                 "content 01234XY789abc"):  # fmt: skip
        assert line in plain
    c = counts(r["stracer"].stderr)
    # what stops: the "re" fopen (glibc's), and ftell/fseek's lseek inside glibc
    assert c["missed"] == 0 and c["covered"] <= 6, c


@pytest.mark.parametrize("how", ["stdbuf", "pty"])
def test_stdout_buffering_decided_at_first_io(tmp_path, how):
    """The stdio window adopts stdout at its first I/O, as glibc decides its buffering then:
    `stdbuf -oL` (line buffering asked before the shim started) and a terminal put on fd 1
    before the first printf give what they give untraced; stderr stays unbuffered."""
    exe = build("ck_stdiomode")
    cmd = ["stdbuf", "-oL", str(exe)] if how == "stdbuf" else [str(exe), "pty"]
    results = {}
    for mode in MODES:
        work = tmp_path / mode
        work.mkdir()
        if mode == "plain":
            r = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=60)
        else:
            extra = ("--no-stracer",) if mode == "shim" else ()
            r = iotrace("run", "-o", str(tmp_path / f"t-{mode}"), "--stack", "0", *extra, "--",
                        *cmd, cwd=work, timeout=60)  # fmt: skip
        assert r.returncode == 0, (mode, r.stderr)
        results[mode] = (work / "result").read_text()
    size = 4096 if how == "stdbuf" else 1024
    assert results["plain"] == f"line 1 size {size} stderr 1\n"
    assert results["stracer"] == results["plain"] == results["shim"], results


def test_shim_preloaded_without_a_run_stays_silent(tmp_path):
    """LD_PRELOAD of the shim without `iotrace run`: a program's fflush/fclose write nothing of
    the shim's to its stderr (the inline-putc accounting must not start the shim)."""
    from iotrace.shim import shim_path

    exe = build("ck_stdiomode")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTRACE")}
    env["LD_PRELOAD"] = str(shim_path())
    r = subprocess.run([str(exe)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert r.returncode == 0 and r.stderr == "e\n" and r.stdout == "x\n", r
