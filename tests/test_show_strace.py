"""`iotrace show` read as a strace user reads `strace -f`: each call's arguments, flags by name
(0 as 0) and result as strace prints them, strace the oracle (issue 16).  The shim's lines
(both modes) and the stracer's (raw syscalls, full tracing) alike.  Compared: the arguments
show prints (not a path: show gives it absolute, without the dirfd; a descriptor's path,
`3<pipe:[N]>`, strace -y's way, is taken off), in strace's places, and the result.  show names
the function the app called: glibc's pipe() and eventfd() are the pipe2 and eventfd2
syscalls."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import build, iotrace

# show's name -> (strace's name, strace's argument places show prints; None: all)
PLACES: dict[str, tuple[str, list[int] | None]] = {
    "pipe": ("pipe2", [0]),  # show's pipe([r, w]): strace's pipe2([r, w], 0)
    "pipe2": ("pipe2", None),
    "dup3": ("dup3", None),
    "fcntl": ("fcntl", None),
    "fallocate": ("fallocate", None),
    "socket": ("socket", [0, 1]),  # the protocol is not recorded
    "eventfd": ("eventfd2", [1]),  # the initial value is not recorded
    "statx": ("statx", [2, 3]),
    "memfd_create": ("memfd_create", None),
    "mkdir": ("mkdir", [1]),  # its mode: 0755
    "renameat2": ("renameat2", [4]),
    "unlinkat": ("unlinkat", [2]),
}
STRACED = ",".join(sorted({name for name, _ in PLACES.values()}))
_STRACE = re.compile(r"^(?:\d+ +)?(\w+)\((.*)\) += (-?\w+)", re.M)
_SHOW = re.compile(
    r"^\[pid \d+ tid \d+\] \+[\d.]+ (\w+)\((.*)\) = (-?\w+)(?: \w+ \([^)]*\))? <[\d.]+>"
    r"( \[bypass\])?$",
    re.M,
)


def _args(text: str) -> list[str]:
    """Arguments split at the top level (an int[2] or a struct is one)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += 1 if ch in "[{" else -1 if ch in "]}" else 0
        if ch == "," and not depth:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*out, cur.strip()] if cur.strip() else out


def _strace(prog: Path, tmp: Path) -> list[str]:
    out = tmp / "strace.out"
    subprocess.run(["strace", "-f", "-e", "trace=" + STRACED, "-o", str(out), str(prog)],
                   check=True, cwd=tmp)  # fmt: skip
    return [f"{m[1]}({', '.join(_args(m[2]))}) = {m[3]}" for m in _STRACE.finditer(out.read_text())]


def _show(d: Path) -> list[tuple[str, bool]]:
    """show's lines of those calls, as strace's would read with what show prints."""
    r = iotrace("show", str(d))
    assert r.returncode == 0, r.stderr
    out = []
    for m in _SHOW.finditer(r.stdout):
        if m[1] not in PLACES:
            continue
        args = [re.sub(r"^(\d+)<.*>$", r"\1", a) for a in _args(m[2])]
        if m[1] in ("statx", "mkdir", "renameat2", "unlinkat"):
            args = [a for a in args if not a.startswith('"')]  # the paths
        out.append((f"{m[1]}({', '.join(args)}) = {m[3]}", bool(m[4])))
    return out


def _as_shown(line: str) -> str:
    """strace's line cut to the arguments show prints, under show's name."""
    m = _STRACE.match(line)
    assert m, line
    for show_name, (name, places) in PLACES.items():
        if name == m[1] and show_name != "pipe":
            args = _args(m[2])
            kept = args if places is None else [args[i] for i in places]
            return f"{show_name}({', '.join(kept)}) = {m[3]}"
    raise AssertionError(line)


@pytest.mark.parametrize("mode", ["full", "no-stracer"])
def test_show_reads_as_strace(trace, tmp_path: Path, mode: str) -> None:
    prog = build("show_strace")
    want = _strace(prog, tmp_path)
    assert len(want) == 29, want
    t = trace(prog, extra=("--no-stracer",) if mode == "no-stracer" else ())
    assert t.proc.returncode == 0, t.proc.stderr
    got = _show(t.dir)
    raw = {3, 6, 23, 24}  # the raw syscalls: the stracer's, under full tracing only
    # glibc's pipe() is strace's 3rd pipe2: show's pipe(), the same descriptors
    exp = [_as_shown(w) if i != 2 else w.replace("pipe2(", "pipe(").replace(", 0)", ")")
           for i, w in enumerate(want) if mode == "full" or i not in raw]  # fmt: skip
    assert [s for s, _ in got] == exp
    if mode == "full":
        assert [b for _, b in got] == [i in raw for i in range(len(want))], got


def _result(line: str) -> str:
    """strace -y's result: `3</path>`, or the errno part of a failure."""
    got = line.rsplit(") = ", 1)[1]
    return got.split(" ", 1)[1] if got.startswith("-1 ") else got


@pytest.mark.parametrize("mode", ["full", "no-stracer"])
def test_stream_results_read_as_strace_y(trace, tmp_path: Path, mode: str) -> None:
    """fopen, fdopen, freopen, opendir, fdopendir, tmpfile and popen return a FILE * or DIR *
    (the record's ret is 1): show prints the stream's descriptor as strace -y prints the open
    inside, `= 3</path>`, and NULL with the errno for a failure; tmpfile() and popen(mode) with
    the arguments they take.  Before: `fopen(...) = 1`, read as "descriptor 1, stdout"."""
    prog = build("show_streams")
    out = tmp_path / "strace.out"
    subprocess.run(["strace", "-y", "-e", "trace=openat,dup3,pipe2", "-o", str(out), str(prog)],
                   check=True, cwd=trace.work)  # fmt: skip
    lines = out.read_text().splitlines()
    seq = [ln for ln in lines[next(i for i, ln in enumerate(lines) if "out.txt" in ln) :]
           if ") = " in ln]  # fmt: skip
    w = [_result(ln) for ln in seq]
    (trace.work / "out.txt").unlink()
    (trace.work / "d").rmdir()
    t = trace(prog, extra=("--no-stracer",) if mode == "no-stracer" else ())
    assert t.proc.returncode == 0, t.proc.stderr
    r = iotrace("show", str(t.dir))
    assert r.returncode == 0, r.stderr
    names = ("fopen", "fdopen", "freopen", "opendir", "fdopendir", "tmpfile", "popen")
    got = [(m[1], m[2], m[3]) for m in re.finditer(
        r"^\[pid \d+ tid \d+\] \+[\d.]+ (\w+)\((.*)\) = (.*) <[\d.]+>$", r.stdout, re.M)
        if m[1] in names]  # fmt: skip
    fd = lambda s: s.split("<", 1)[0]  # noqa: E731
    deleted = re.sub(r"#\d+", "#N", w[8]).replace(">(deleted)", " (deleted)>")
    pipe = re.match(r"pipe2\(\[(\d+)<", seq[9])
    assert pipe, seq
    assert [(n, res if n != "tmpfile" else re.sub(r"#\d+", "#N", res)) for n, _a, res in got] == [
        ("fopen", w[0]),  # strace's openat
        ("fopen", f"NULL {w[1]}"),
        ("fdopen", w[2]),  # the open's descriptor
        ("freopen", w[4]),  # its open's descriptor dup3'd onto the stream's
        ("opendir", w[5]),
        ("fdopendir", w[6]),
        ("opendir", f"NULL {w[7]}"),
        ("tmpfile", deleted),
        ("popen", pipe[1]),  # the read end of its pipe, kept by the caller
    ], (got, w)
    assert [a for n, a, _r in got if n in ("tmpfile", "popen")] == ["", "O_RDONLY"]
    assert fd(w[0]) == "3" and fd(w[4]) == "3"


@pytest.mark.parametrize("mode", ["full", "no-stracer"])
def test_mmap_reads_as_strace(trace, tmp_path: Path, mode: str) -> None:
    """mmap's arguments in strace's places (length, protections, flags, descriptor, offset; the
    hint address is not recorded: strace's first argument is left out) and its result, the
    address in hex or -1 and the errno.  Was: mmap(3<f>, 8192, 0, MAP_SHARED, PROT_READ, 0x..)."""
    prog = build("mmap_basic")
    out = tmp_path / "strace.out"
    subprocess.run(["strace", "-y", "-e", "trace=mmap", "-o", str(out), str(prog)], check=True,
                   cwd=tmp_path, stdout=subprocess.DEVNULL)  # fmt: skip

    def line(args: list[str], ret: str) -> str:
        args = [re.sub(r"^(\d+)<.*>$", r"\1", a) for a in args]  # the descriptor's path off
        return f"mmap({', '.join(args)}) = {re.sub(r'^0x[0-9a-f]+$', '0xADDR', ret)}"

    want = [line(_args(m[2])[1:], m[3]) for m in _STRACE.finditer(out.read_text())
            if "m.bin>" in m[2] or (", -1, " in m[2] and "MAP_ANONYMOUS" not in m[2])]  # fmt: skip
    assert len(want) == 5, want
    t = trace(prog, extra=("--no-stracer",) if mode == "no-stracer" else ())
    assert t.proc.returncode == 0, t.proc.stderr
    r = iotrace("show", str(t.dir))
    assert r.returncode == 0, r.stderr
    got = [line(_args(m[2]), m[3]) for m in _SHOW.finditer(r.stdout) if m[1] == "mmap"]
    assert got == want


@pytest.mark.parametrize("mode", ["full", "no-stracer"])
def test_fcntl_results_read_as_strace(trace, tmp_path: Path, mode: str) -> None:
    """fcntl's F_GETFL result as its open flags and F_GETFD's as FD_CLOEXEC, strace's way:
    `= 0x8402 (flags O_RDWR|O_APPEND|O_LARGEFILE)`.  Was: `= 33794`."""
    prog = build("show_streams")
    out = tmp_path / "strace.out"
    subprocess.run(["strace", "-e", "trace=fcntl", "-o", str(out), str(prog)], check=True,
                   cwd=trace.work)  # fmt: skip
    want = [re.sub(r"\(\d+, ", "(", re.sub(r" +=", " =", ln)) for ln in out.read_text().splitlines()
            if ln.startswith("fcntl(")]  # fmt: skip
    want = want[-5:]  # the program's own (glibc's fdopen, tmpfile... call fcntl inside)
    (trace.work / "out.txt").unlink()
    (trace.work / "d").rmdir()
    t = trace(prog, extra=("--no-stracer",) if mode == "no-stracer" else ())
    assert t.proc.returncode == 0, t.proc.stderr
    r = iotrace("show", str(t.dir))
    assert r.returncode == 0, r.stderr
    got = [re.sub(r"\(-?\d+(<[^>]*>)?, ", "(", m[1]) for m in re.finditer(
        r"^\[pid \d+ tid \d+\] \+[\d.]+ (fcntl\(.*) <[\d.]+>$", r.stdout, re.M)]  # fmt: skip
    assert got == [re.sub(r"\(-?\d+, ", "(", w) for w in want]
    assert "(flags O_RDWR|O_APPEND|O_LARGEFILE)" in got[0] and got[3].endswith("(flags FD_CLOEXEC)")
