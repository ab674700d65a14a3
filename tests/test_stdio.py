"""stdio wrappers: real programs compiled at -O1 (plain and fortified), every stream call checked
exactly: bytes, stream positions, descriptors, paths, flags, errno, return values; and the
programs behave the same with and without tracing."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from conftest import Traced, build, iotrace

from iotrace.calls import FUNCTIONS, STDIO_UNDER

# the app's stdio calls; what moved underneath them (stdio_refill, stdio_flush) apart
STDIO = tuple(f.name for f in FUNCTIONS if f.family == "stdio" and f.name not in STDIO_UNDER)
FORTIFY = ("-D_FORTIFY_SOURCE=2",)
W_TRUNC = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
W_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND
LINES = "alpha\nbeta beta\n12 34 gamma\ntail end"  # 36 bytes, for stdio_read

Row = tuple[Any, ...]


def short(path: str | None, work: Path) -> str | None:
    """A path relative to the work directory; "pipe" for any pipe."""
    if path is None:
        return None
    if path.startswith("pipe:["):
        return "pipe"
    return os.path.relpath(path, work) if path.startswith(str(work)) else path


def rows(t: Traced, work: Path) -> list[Row]:
    """(fn, fd, path, req, ret, offset, errno, aux) of every stdio event, in order."""
    out = []
    for e in t.events(*STDIO):
        aux = tuple(e["aux"]) if isinstance(e["aux"], list) else e["aux"]
        path = short(e["path"], work)
        out.append((e["fn"], e["fd"], path, e["req"], e["ret"], e["offset"], e["errno"], aux))
    return out


def devino(path: Path) -> tuple[int, int]:
    st = path.stat()
    return (st.st_dev, st.st_ino)


def symbols(prog: Path) -> set[str]:
    """The functions a binary imports."""
    out = subprocess.run(
        ["nm", "-D", "--undefined-only", str(prog)], capture_output=True, text=True, check=True
    ).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("flags", [(), FORTIFY], ids=["plain", "fortify"])
def test_writes_seeks_opens_exact(trace, flags):
    t = trace(build("stdio_write", *flags))
    w = trace.work
    summary = "items=5 k=5 t1=5 t2=63 bad=1 errno=2 c=a mem=12345,0\n"
    assert (t.proc.returncode, t.proc.stdout) == (3, summary), t.proc.stderr
    out, log = devino(w / "out.txt"), devino(w / "log.txt")
    S, E = os.SEEK_SET, os.SEEK_END
    assert rows(t, w) == [
        ("fopen", 3, "out.txt", None, 1, None, 0, out),
        ("fwrite", 3, "out.txt", 50, 50, 0, 0, 10),  # ret = bytes; 5 items = 50 // 10
        ("fputs", 3, "out.txt", 6, 6, 50, 0, None),
        ("fputc", 3, "out.txt", 1, 1, 56, 0, None),
        ("fputc", 3, "out.txt", 1, 1, 57, 0, None),  # putc
        ("fprintf", 3, "out.txt", None, 5, 58, 0, None),
        ("fflush", 3, "out.txt", None, 0, None, 0, None),
        ("fseek", 3, "out.txt", None, 0, 3, 0, S),
        ("fwrite", 3, "out.txt", 2, 2, 3, 0, 1),  # the stream position after the seek
        ("ftell", 3, "out.txt", None, 5, 5, 0, None),
        ("fseek", 3, "out.txt", None, 0, -4, 0, E),  # fseeko
        ("fwrite", 3, "out.txt", 4, 4, 59, 0, 2),
        ("ftell", 3, "out.txt", None, 63, 63, 0, None),  # ftello
        ("fclose", 3, "out.txt", None, 0, None, 0, None),
        ("fopen", 3, "log.txt", None, 1, None, 0, log),
        ("fputs", 3, "log.txt", 4, 4, None, 0, None),  # appending: no offset
        ("fclose", 3, "log.txt", None, 0, None, 0, None),
        ("fopen", 3, "log.txt", None, 1, None, 0, log),
        ("fputs", 3, "log.txt", 4, 4, None, 0, None),
        ("fclose", 3, "log.txt", None, 0, None, 0, None),
        ("fopen", None, "missing/none.txt", None, 0, None, errno.ENOENT, None),
        ("fdopen", 3, "out.txt", None, 1, None, 0, None),
        ("fgetc", 3, "out.txt", 1, 1, 10, 0, None),  # starts where the descriptor was
        ("fclose", 3, "out.txt", None, 0, None, 0, None),
        ("fprintf", None, None, None, 5, None, 0, None),  # fmemopen: no descriptor
        ("fclose", None, None, None, 0, None, 0, None),
        ("printf", 1, "pipe", None, len(summary), None, 0, None),
    ]
    opens = t.events("fopen", "fdopen")
    modes = [(e["flags"], e["mode"]) for e in opens]
    assert modes == [
        (W_TRUNC, 0o666), (W_APPEND, 0o666), (os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666),
        (os.O_RDONLY, None), (os.O_RDONLY, None),
    ]  # fmt: skip
    # the bytes written end where the file ends
    writes = [e for e in t.events("fwrite", "fputs", "fputc", "fprintf") if e["fd"] == 3]
    assert max(e["offset"] + e["ret"] for e in writes if e["offset"] is not None) == 63
    assert (w / "out.txt").stat().st_size == 63
    assert (w / "log.txt").read_text() == "one\ntwo\n"
    # stdio's own read/write/lseek are internal: no second count of the same bytes
    files = {str(w / "out.txt"), str(w / "log.txt")}
    fd_level = [e["fn"] for e in t.events() if e["path"] in files and e["fn"] not in STDIO]
    fd_level = [fn for fn in fd_level if fn not in STDIO_UNDER]
    assert fd_level == ["open", "lseek"]  # the program's own, before fdopen
    shown = iotrace("show", str(t.dir)).stdout
    assert f'fopen("{w}/missing/none.txt", O_RDONLY) = NULL ENOENT' in shown
    assert f"fseek(3<{w}/out.txt>, -4, SEEK_END) = 0" in shown
    assert f"fwrite(3<{w}/out.txt>, 50) = 50" in shown


@pytest.mark.parametrize("flags", [(), FORTIFY], ids=["plain", "fortify"])
def test_reads_lines_scanf_positions_exact(trace, flags):
    prog = build("stdio_read", *flags)
    (trace.work / "lines.txt").write_text(LINES)
    t = trace(prog)
    summary = "l1=alpha c=be$bbe g=8,6,-1 s=3 a=12 b=34 w=gamma r=0,5,0,4 t=5 n1=1\n"
    assert (t.proc.returncode, t.proc.stdout) == (0, summary), t.proc.stderr
    w = trace.work
    L = "lines.txt"
    assert rows(t, w) == [
        ("fopen", 3, L, None, 1, None, 0, devino(w / L)),
        ("fgets", 3, L, 64, 6, 0, 0, None),  # "alpha\n"
        ("fgetc", 3, L, 1, 1, 6, 0, None),
        ("fgetc", 3, L, 1, 1, 7, 0, None),  # getc
        ("getline", 3, L, None, 8, 8, 0, None),  # "ta beta\n"
        ("fscanf", 3, L, None, 3, 16, 0, 11),  # 3 items; "12 34 gamma" consumed, 11 bytes
        ("getdelim", 3, L, None, 6, 27, 0, None),  # "\ntail "
        ("fread", 3, L, 40, 3, 33, 0, 4),  # 0 items of 4, but 3 bytes: "end"
        ("fgetc", 3, L, 1, 0, 36, 0, None),  # end of file: 0 bytes, no error
        ("getline", 3, L, None, 0, 36, 0, None),
        ("fgets", 3, L, 64, 0, 36, 0, None),
        ("rewind", 3, L, None, 0, 0, 0, None),
        ("fread", 3, L, 5, 5, 0, 0, 1),
        ("ftell", 3, L, None, 5, 5, 0, None),
        ("fseek", 3, L, None, 0, 6, 0, os.SEEK_SET),
        ("fgetpos", 3, L, None, 0, 6, 0, None),
        ("fread", 3, L, 4, 4, 6, 0, 1),
        ("fsetpos", 3, L, None, 0, 6, 0, None),
        ("fgetc", 3, L, 1, 1, 6, 0, None),  # back at 6
        ("fgetc", 3, L, 1, 1, 6, 0, None),  # after an ungetc (no event): 6 again
        ("fgetc", 3, L, 1, 1, 7, 0, None),
        ("fclose", 3, L, None, 0, None, 0, None),
        ("fopen", 3, "wo.txt", None, 1, None, 0, devino(w / "wo.txt")),
        ("fread", 3, "wo.txt", 1, 0, 0, errno.EBADF, 1),  # write-only stream
        ("fclose", 3, "wo.txt", None, 0, None, 0, None),
        ("printf", 1, "pipe", None, len(summary), None, 0, None),
    ]
    # every byte of the file was read once before the rewind, in order, without a gap
    before = [e for e in t.events(*STDIO) if e["path"] == str(w / L)][1:11]
    data = [e for e in before if e["fn"] != "fscanf"] + [
        {**e, "ret": e["aux"]} for e in before if e["fn"] == "fscanf"
    ]
    spans = sorted((e["offset"], e["offset"] + e["ret"]) for e in data)
    assert spans[0][0] == 0 and spans[-1][1] == len(LINES)
    assert all(a[1] == b[0] for a, b in pairwise(spans))


@pytest.mark.parametrize("flags", [(), FORTIFY], ids=["plain", "fortify"])
def test_standard_streams_exact(trace, flags):
    t = trace(build("stdio_console", *flags), stdin="7 8\nrest of line\nX")
    assert t.proc.returncode == 0, t.proc.stderr
    assert t.proc.stdout == "7+8=15\nplain\nliteral\n!\n"
    assert t.proc.stderr.startswith("err 2 10 88 13 -1 1\n")
    assert rows(t, trace.work) == [
        ("fscanf", 0, "pipe", None, 2, None, 0, None),  # scanf: stdin is a pipe, no offsets
        ("fgetc", 0, "pipe", 1, 1, None, 0, None),  # getchar, inlined as getc(stdin)
        ("getline", 0, "pipe", None, 13, None, 0, None),
        ("fgetc", 0, "pipe", 1, 1, None, 0, None),
        ("fgetc", 0, "pipe", 1, 0, None, 0, None),  # end of file
        ("printf", 1, "pipe", None, 7, None, 0, None),
        ("puts", 1, "pipe", 6, 6, None, 0, None),  # "plain" and its newline
        ("puts", 1, "pipe", 8, 8, None, 0, None),  # printf("literal\n"), rewritten by gcc
        ("fputc", 1, "pipe", 1, 1, None, 0, None),  # putchar, inlined as putc(c, stdout)
        ("fputc", 1, "pipe", 1, 1, None, 0, None),
        ("fprintf", 2, "pipe", None, 20, None, 0, None),
        ("fflush", None, None, None, 0, None, 0, None),  # fflush(NULL)
    ]


@pytest.mark.parametrize("flags", [(), FORTIFY], ids=["plain", "fortify"])
def test_variants_freopen_modes_exact(trace, flags):
    t = trace(build("stdio_variants", *flags), stdin="5\nQR")
    w = trace.work
    assert t.proc.returncode == 0, t.proc.stderr
    assert t.proc.stderr.startswith(
        "c=abc r=3 s=1,1,1 n=12,345,5 l=1 x=1,17 ms=memory c4=10 c5=Q\n"
    )
    assert t.proc.stdout == ""
    assert (w / "stdout.txt").read_text() == "vp|PUend\nmore\n"
    V, OUT = "v.txt", "stdout.txt"
    v, o = devino(w / V), devino(w / OUT)
    assert rows(t, w) == [
        ("fopen", 3, V, None, 1, None, 0, v),
        ("fputc", 3, V, 1, 1, 0, 0, None),  # fputc_unlocked
        ("fputc", 3, V, 1, 1, 1, 0, None),  # putc_unlocked
        ("fputc", 3, V, 1, 1, 2, 0, None),  # _IO_putc
        ("fwrite", 3, V, 3, 3, 3, 0, 1),  # fwrite_unlocked
        ("fputs", 3, V, 4, 4, 6, 0, None),  # fputs_unlocked
        ("fprintf", 3, V, None, 4, 10, 0, None),  # vfprintf
        ("fflush", 3, V, None, 0, None, 0, None),  # fflush_unlocked
        ("rewind", 3, V, None, 0, 0, 0, None),
        ("fgetc", 3, V, 1, 1, 0, 0, None),  # fgetc_unlocked
        ("fgetc", 3, V, 1, 1, 1, 0, None),  # getc_unlocked
        ("fgetc", 3, V, 1, 1, 2, 0, None),  # _IO_getc
        ("fread", 3, V, 3, 3, 3, 0, 1),  # fread_unlocked
        ("fscanf", 3, V, None, 1, 6, 0, 3),  # GNU fscanf: " 12"
        ("fscanf", 3, V, None, 1, 9, 0, 4),  # GNU vfscanf: " 345"
        ("fgets", 3, V, 16, 1, 13, 0, None),  # fgets_unlocked: "\n"
        ("fclose", 3, V, None, 0, None, 0, None),
        ("fopen", None, V, None, 0, None, errno.EEXIST, None),  # "wx"
        ("fopen", 3, V, None, 1, None, 0, v),  # "r+"
        ("fclose", 3, V, None, 0, None, 0, None),
        ("fwrite", None, None, 6, 6, None, 0, 1),  # open_memstream; gcc made fputs an fwrite
        ("fclose", None, None, None, 0, None, 0, None),
        ("fscanf", 0, "pipe", None, 1, None, 0, None),  # GNU scanf, on stdin
        ("getchar", 0, "pipe", 1, 1, None, 0, None),
        ("getchar", 0, "pipe", 1, 1, None, 0, None),  # getchar_unlocked
        ("fprintf", 2, "pipe", None, 61, None, 0, None),
        ("freopen", 1, OUT, None, 1, None, 0, o),  # the same descriptor, now a file
        ("printf", 1, OUT, None, 3, 0, 0, None),  # vprintf
        ("putchar", 1, OUT, 1, 1, 3, 0, None),
        ("putchar", 1, OUT, 1, 1, 4, 0, None),  # putchar_unlocked
        ("puts", 1, OUT, 4, 4, 5, 0, None),
        ("freopen", 1, OUT, None, 1, None, 0, o),  # freopen(NULL, "a"): the same file
        ("puts", 1, OUT, 5, 5, None, 0, None),  # appending: no offset
    ]
    flags_of = [e["flags"] for e in t.events("fopen", "freopen")]
    assert flags_of == [
        os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,  # "w+e"
        W_TRUNC | os.O_EXCL,  # "wx"
        os.O_RDWR,  # "r+"
        W_TRUNC,
        W_APPEND,
    ]


def test_fortified_builds_call_the_chk_entries():
    """The fortify runs above go through __*_chk (the plain ones do not)."""
    chk = {"__fprintf_chk", "__printf_chk", "__fgets_chk", "__fread_chk"}
    assert {"__fprintf_chk", "__printf_chk"} <= symbols(build("stdio_write", *FORTIFY))
    assert {"__fgets_chk", "__fread_chk", "__printf_chk"} <= symbols(build("stdio_read", *FORTIFY))
    assert {"__fprintf_chk", "__printf_chk"} <= symbols(build("stdio_console", *FORTIFY))
    for name in ("stdio_write", "stdio_read", "stdio_console"):
        assert not chk & symbols(build(name))
    assert "__isoc99_fscanf" in symbols(build("stdio_read"))  # C99's fscanf symbol
    assert {"fscanf", "vfscanf", "scanf"} <= symbols(build("stdio_variants"))


PROGRAMS = [
    ("stdio_write", None, ["out.txt", "log.txt"]),
    ("stdio_read", None, ["wo.txt"]),
    ("stdio_console", "7 8\nrest of line\nX", []),
    ("stdio_variants", "5\nQR", ["v.txt", "stdout.txt"]),
]


@pytest.mark.parametrize(("name", "stdin", "files"), PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_untraced_and_traced_runs_agree(trace, tmp_path, name, stdin, files):
    prog = build(name)
    plain = tmp_path / "plain"
    plain.mkdir()
    for d in (plain, trace.work):
        (d / "lines.txt").write_text(LINES)
    native = subprocess.run([str(prog)], cwd=plain, capture_output=True, text=True, input=stdin)
    t = trace(prog, stdin=stdin)
    # iotrace's own lines (where the trace went, what the stracer saw) are not the program's
    traced_err = "".join(
        line for line in t.proc.stderr.splitlines(keepends=True) if not line.startswith("iotrace:")
    )
    assert (t.proc.returncode, t.proc.stdout, traced_err) == (
        native.returncode, native.stdout, native.stderr,
    )  # fmt: skip
    for f in files:
        assert (trace.work / f).read_bytes() == (plain / f).read_bytes(), f
        assert (trace.work / f).stat().st_mode == (plain / f).stat().st_mode, f


def test_python_file_write_is_descriptor_io(trace):
    """CPython's open() is open(2) plus buffered write(2), not stdio: the 100 bytes are one
    write at offset 0, and no stdio call touches the file."""
    t = trace(sys.executable, "-c", "open('f','w').write('x'*100)")
    assert t.proc.returncode == 0, t.proc.stderr
    f = str(trace.work / "f")
    evs = [e for e in t.events() if e["path"] == f]
    assert not [e for e in evs if e["fn"] in STDIO]
    got = [
        (e["fn"], e["fd"], e["req"], e["ret"], e["offset"], e["errno"])
        for e in evs
        if e["fn"] in ("open", "openat", "write", "close")
    ]
    fd = got[0][3]
    assert got == [
        ("open", fd, None, fd, None, 0),
        ("write", fd, 100, 100, 0, 0),
        ("close", fd, None, 0, None, 0),
    ]
    assert evs[0]["flags"] == os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    assert evs[0]["mode"] == 0o666
    assert (trace.work / "f").read_text() == "x" * 100


def test_threads_sharing_one_stream_get_exact_positions(trace):
    """2000 fprintf calls from four threads on one FILE: each is recorded once, in its thread,
    and the positions tile the file exactly (the wrapper holds the stream across the call)."""
    t = trace(build("stdio_threads"))
    assert (t.proc.returncode, t.proc.stdout) == (0, "2000\n"), t.proc.stderr
    line = len("thread 0 line 000\n")
    size = (trace.work / "threads.txt").stat().st_size
    assert size == 2000 * line
    writes = t.events("fprintf")
    assert len(writes) == 2000 and {(e["fd"], e["ret"], e["errno"]) for e in writes} == {(3, 18, 0)}
    per_thread: dict[int, int] = {}
    for e in writes:
        per_thread[e["tid"]] = per_thread.get(e["tid"], 0) + 1
    assert sorted(per_thread.values()) == [500] * 4 and writes[0]["pid"] not in per_thread
    assert sorted(e["offset"] for e in writes) == list(range(0, size, line))
    reads = [(e["ret"], e["offset"]) for e in t.events("fgets")]
    assert reads == [(line, off) for off in range(0, size, line)] + [(0, size)]
