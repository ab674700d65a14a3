"""`iotrace show` read as a strace user reads `strace -f`: each call's arguments, flags by name
(0 as 0) and result as strace prints them, strace the oracle (issue 16).  The shim's lines
(both modes) and the stracer's (raw syscalls, full tracing) alike.  Compared: the arguments
show prints (not a path: show gives it absolute, without the dirfd; a descriptor's path,
`3<pipe:[N]>`, strace -y's way, is taken off), in strace's places, and the result.  show names
the function the app called: glibc's pipe() and eventfd() are the pipe2 and eventfd2
syscalls."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
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
    "socket": ("socket", None),
    "eventfd": ("eventfd2", None),
    "statx": ("statx", [2, 3]),
    "memfd_create": ("memfd_create", None),
    "mkdir": ("mkdir", [1]),  # its mode: 0755
    "renameat2": ("renameat2", [4]),
    "unlinkat": ("unlinkat", [2]),
}
STRACED = ",".join(sorted({name for name, _ in PLACES.values()}))
_STRACE = re.compile(r"^(?:\d+ +)?(\w+)\((.*)\) += (-?\w+)", re.M)
_SHOW = re.compile(
    r"^\[pid \d+ tid \d+\] \+[\d.]+ (\w+)\((.*)\) = (-?\w+)(?:<.*>)?(?: \w+ \([^)]*\))? <[\d.]+>"
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


def _streams_strace_and_show(
    trace, tmp_path: Path, mode: str, *strace: str
) -> tuple[list[str], str]:
    """tests/progs/show_streams under `strace STRACE` (its lines), then traced in `mode` (what
    `iotrace show` prints), each run from the same empty work directory."""
    prog = build("show_streams")
    out = tmp_path / "strace.out"
    subprocess.run(["strace", *strace, "-o", str(out), str(prog)], check=True, cwd=trace.work)
    (trace.work / "out.txt").unlink()  # what the program made: the traced run makes it anew
    (trace.work / "d").rmdir()
    t = trace(prog, extra=("--no-stracer",) if mode == "no-stracer" else ())
    assert t.proc.returncode == 0, t.proc.stderr
    r = iotrace("show", str(t.dir))
    assert r.returncode == 0, r.stderr
    return out.read_text().splitlines(), r.stdout


@pytest.mark.parametrize("mode", ["full", "no-stracer"])
def test_stream_results_read_as_strace_y(trace, tmp_path: Path, mode: str) -> None:
    """fopen, fdopen, freopen, opendir, fdopendir, tmpfile and popen return a FILE * or DIR *
    (the record's ret is 1): show prints the stream's descriptor as strace -y prints the open
    inside, `= 3</path>`, and NULL with the errno for a failure; tmpfile() and popen(mode) with
    the arguments they take.  Before: `fopen(...) = 1`, read as "descriptor 1, stdout"."""
    lines, shown = _streams_strace_and_show(trace, tmp_path, mode, "-y", "-e",
                                            "trace=openat,dup3,pipe2")  # fmt: skip
    seq = [ln for ln in lines[next(i for i, ln in enumerate(lines) if "out.txt" in ln) :]
           if ") = " in ln]  # fmt: skip
    w = [_result(ln) for ln in seq]
    names = ("fopen", "fdopen", "freopen", "opendir", "fdopendir", "tmpfile", "popen")
    got = [(m[1], m[2], m[3]) for m in re.finditer(
        r"^\[pid \d+ tid \d+\] \+[\d.]+ (\w+)\((.*)\) = (.*) <[\d.]+>$", shown, re.M)
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
    """mmap's arguments in strace's places (the address hint, NULL or in hex, length,
    protections, flags, descriptor, offset) and its result, the address in hex or -1 and the
    errno.  Was: mmap(3<f>, 8192, 0, MAP_SHARED, PROT_READ, 0x..), then without the hint."""
    prog = build("mmap_basic")
    out = tmp_path / "strace.out"
    subprocess.run(["strace", "-y", "-e", "trace=mmap", "-o", str(out), str(prog)], check=True,
                   cwd=tmp_path, stdout=subprocess.DEVNULL)  # fmt: skip

    def line(args: list[str], ret: str) -> str:
        args = [re.sub(r"^(\d+)<.*>$", r"\1", a) for a in args]  # the descriptor's path off
        return f"mmap({', '.join(args)}) = {re.sub(r'^0x[0-9a-f]+$', '0xADDR', ret)}"

    want = [line(_args(m[2]), m[3]) for m in _STRACE.finditer(out.read_text())
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
    lines, shown = _streams_strace_and_show(trace, tmp_path, mode, "-e", "trace=fcntl")
    want = [re.sub(r"\(\d+, ", "(", re.sub(r" +=", " =", ln)) for ln in lines
            if ln.startswith("fcntl(")]  # fmt: skip
    want = want[-5:]  # the program's own (glibc's fdopen, tmpfile... call fcntl inside)
    got = [re.sub(r"\(-?\d+(<[^>]*>)?, ", "(", m[1]) for m in re.finditer(
        r"^\[pid \d+ tid \d+\] \+[\d.]+ (fcntl\(.*) <[\d.]+>$", shown, re.M)]  # fmt: skip
    assert got == [re.sub(r"\(-?\d+, ", "(", w) for w in want]
    assert "(flags O_RDWR|O_APPEND|O_LARGEFILE)" in got[0] and got[3].endswith("(flags FD_CLOEXEC)")


def _numbered(lines: list[str]) -> list[str]:
    """Addresses as A0, A1... in the order they first appear (each run has its own)."""
    seen: dict[str, str] = {}
    sub = lambda m: seen.setdefault(m[0], f"A{len(seen)}")  # noqa: E731
    return [re.sub(r"0x[0-9a-f]{6,}", sub, ln) for ln in lines]


@pytest.mark.parametrize("mode", ["full", "no-stracer"])
def test_results_and_addresses_read_as_strace_y(trace, mode: str) -> None:
    """A new descriptor's result with its file, `= 3</path>`, as strace -y prints it (open,
    openat, creat, dup, dup2, dup3, fcntl F_DUPFD; a failed open's errno); mmap's hint, and
    munmap/msync/mremap on the mapping's address (with its file, `0x7f..</path>`, where strace -y
    has none); readdir's entries `{...}`, as many as getdents64 gave, then NULL.  Was:
    `open(...) = 3`, `munmap("/path", 8192, 0)`, `readdir(3</d>) = 1`."""
    prog = build("show_results")
    out = trace.work / "strace.out"
    calls = "openat,creat,dup,dup2,dup3,fcntl,mmap,munmap,msync,mremap,getdents64"
    subprocess.run(["strace", "-y", "-e", "trace=" + calls, "-o", str(out), str(prog)],
                   check=True, cwd=trace.work)  # fmt: skip
    lines = out.read_text().splitlines()
    lines = [re.sub(r"\) += ", ") = ", ln) for ln in lines]  # strace's padding off
    lines = lines[next(i for i, ln in enumerate(lines) if "f.bin" in ln) :]
    for f in ("f.bin", "c.txt", "strace.out"):
        (trace.work / f).unlink()
    (trace.work / "dd").rmdir()
    t = trace(prog, extra=("--no-stracer",) if mode == "no-stracer" else ())
    assert t.proc.returncode == 0, t.proc.stderr
    r = iotrace("show", str(t.dir))
    assert r.returncode == 0, r.stderr
    line = re.compile(r"^\[pid \d+ tid \d+\] \+[\d.]+ (\w+)\((.*)\) = (.*) <[\d.]+>$", re.M)
    shown = [(m[1], m[2], m[3]) for m in line.finditer(r.stdout)]
    opens = ("open", "openat", "creat", "dup", "dup2", "dup3", "fcntl", "opendir")
    got = [res for n, _a, res in shown if n in opens]
    want = [ln.rsplit(") = ", 1)[1].strip() for ln in lines
            if ln.startswith(("openat(", "creat(", "dup", "fcntl("))]  # fmt: skip
    assert got == want and "3<" in got[0] and "50<" in got[-2], (got, want)
    # the mappings: strace's lines, show's with the mapping's file after its address taken off
    maps = [ln for ln in lines if ln.startswith(("mmap(", "munmap(", "msync(", "mremap("))]
    maps = [ln for ln in maps if "f.bin>" in ln or "mmap(" not in ln]
    mine = [
        f"{n}({a}) = {res}" for n, a, res in shown if n in ("mmap", "munmap", "msync", "mremap")
    ]
    assert all(f"<{trace.work / 'f.bin'}>" in ln for ln in mine[2:]), mine
    assert _numbered([re.sub(r"(0x[0-9a-f]+)<[^>]*>", r"\1", ln) for ln in mine]) == _numbered(
        maps
    ), (mine, maps)
    # readdir: one entry a call, as many as the kernel gave, then NULL at the end
    entries = sum(int(m[1]) for m in re.finditer(r"/\* (\d+) entries \*/", "\n".join(lines)))
    dirs = [res for n, _a, res in shown if n == "readdir"]
    assert dirs == ["{...}"] * entries + ["NULL"] and entries >= 3, dirs


def test_attached_fcntl_reads_as_strace(tmp_path: Path) -> None:
    """`iotrace attach` records every syscall, fcntl's reading commands too (a run's filter
    stops only F_DUPFD): the stracer's lines name the command's argument and result as strace
    does, `fcntl(3, F_GETFL) = 0x8402 (flags O_RDWR|O_APPEND|O_LARGEFILE)`, no argument for a
    command that takes none, F_DUPFD's new descriptor with its file.  Was: `fcntl(3</f>,
    F_GETFL, 0) = 33794`, `fcntl(3</f>, F_SETFL, 3072)`."""
    prog = build("att_fcntl")
    out = tmp_path / "strace.out"
    subprocess.run(["strace", "-e", "trace=fcntl", "-o", str(out), str(prog), str(tmp_path / "s")],
                   input=b"x", check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    want = [re.sub(r"\) += ", ") = ", ln) for ln in out.read_text().splitlines()
            if ln.startswith("fcntl(")]  # fmt: skip
    app = subprocess.Popen([str(prog), str(tmp_path / "f")], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE)  # fmt: skip
    assert app.stdin and app.stdout
    try:
        assert app.stdout.readline() == b"ready\n"
        at = subprocess.Popen([sys.executable, "-m", "iotrace", "attach", str(app.pid), "-o",
                               str(tmp_path / "t")], stderr=subprocess.PIPE, text=True)  # fmt: skip
        assert at.stderr and "attached to" in at.stderr.readline()
        app.stdin.write(b"x")
        app.stdin.flush()
        assert app.stdout.readline() == b"done\n"  # its fcntl calls made, attached
        at.send_signal(signal.SIGINT)
        _, err = at.communicate(timeout=60)
        assert at.returncode == 0, err
    finally:
        app.kill()
        app.wait()
    r = iotrace("show", str(tmp_path / "t"))
    assert r.returncode == 0, r.stderr
    got = [re.sub(r"(\d+)<[^>]*>", r"\1", m[1]) for m in re.finditer(
        r"^\[pid \d+ tid \d+\] \+[\d.]+ (fcntl\(.*\) = .*) <[\d.]+> \[attached\]$", r.stdout,
        re.M)]  # fmt: skip
    assert got == want, (got, want)
    assert "F_GETFL) = 0x8402 (flags O_RDWR|O_APPEND|O_LARGEFILE)" in got[0]
    assert f"F_DUPFD, 30) = 30<{tmp_path / 'f'}>" in r.stdout
