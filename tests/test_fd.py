"""Descriptor wrappers: every call of a deterministic program, checked exactly, and against
strace as an oracle."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from conftest import build

FD_CALLS = (
    "open", "write", "pwrite", "lseek", "read", "writev", "pread", "dup", "dup2", "fcntl",
    "ftruncate", "fsync", "close",
)  # fmt: skip


def test_fd_basic_events_exact(trace):
    t = trace(build("fd_basic"))
    assert t.proc.returncode == 7, t.proc.stderr
    assert "bad=-1 errno=2 w=-1" in t.proc.stdout
    data = str(trace.work / "data.bin")
    evs = t.events(*FD_CALLS)
    got = [(e["fn"], e["fd"], e["req"], e["ret"], e["offset"], e["errno"]) for e in evs]
    fd = evs[0]["ret"]
    assert fd == 3  # the shim takes no descriptor of the app's
    assert got == [
        ("open", 3, None, 3, None, 0),
        ("write", 3, 1000, 1000, 0, 0),
        ("write", 3, 1000, 1000, 1000, 0),
        ("write", 3, 1000, 1000, 2000, 0),
        ("write", 3, 1000, 1000, 3000, 0),
        ("pwrite", 3, 512, 512, 10000, 0),
        ("lseek", 3, None, 100, 100, 0),
        ("read", 3, 50, 50, 100, 0),
        ("writev", 3, 30, 30, 150, 0),
        ("pread", 3, 4096, 4096, 0, 0),
        ("dup", 3, None, 4, None, 0),
        ("write", 4, 7, 7, 180, 0),
        ("dup2", 3, None, 20, None, 0),
        ("fcntl", 3, None, 0, None, 0),
        ("write", 20, 3, 3, 10512, 0),  # O_APPEND: written at the end
        ("ftruncate", 3, None, 0, 4096, 0),
        ("fsync", 3, None, 0, None, 0),
        ("close", 20, None, 0, None, 0),
        ("close", 4, None, 0, None, 0),
        ("close", 3, None, 0, None, 0),
        ("open", None, None, -1, None, 2),  # ENOENT
        ("write", -1, 1, -1, None, 9),  # EBADF
    ]
    # every fd event names the file its descriptor was opened with, through dups too
    assert {e["path"] for e in evs[:20]} == {data}
    assert evs[20]["path"] == str(trace.work / "missing/nothing")
    op = evs[0]
    assert op["flags"] == os.O_RDWR | os.O_CREAT | os.O_TRUNC and op["mode"] == 0o640
    st = os.stat(data)
    assert list(op["aux"]) == [st.st_dev, st.st_ino]
    assert evs[6]["aux"] == os.SEEK_SET
    assert evs[13]["flags"] == 4 and evs[13]["mode"] == os.O_APPEND  # F_SETFL
    assert all(e["t_start"] > 0 and e["dur"] >= 0 for e in evs)
    assert len({e["tid"] for e in evs}) == 1 and evs[0]["tid"] == evs[0]["pid"]


def test_untraced_and_traced_runs_agree(trace, tmp_path: Path):
    prog = build("fd_basic")
    plain = tmp_path / "plain"
    plain.mkdir()
    native = subprocess.run([str(prog)], cwd=plain, capture_output=True, text=True)
    t = trace(prog)
    assert (t.proc.returncode, t.proc.stdout) == (native.returncode, native.stdout)
    assert (trace.work / "data.bin").read_bytes() == (plain / "data.bin").read_bytes()
    assert oct((trace.work / "data.bin").stat().st_mode) == oct((plain / "data.bin").stat().st_mode)


STRACE_LINE = re.compile(r"^(\d+) +(\w+)\((.*)\) += (-?\d+)")


def test_shim_agrees_with_strace(trace):
    """strace sees the syscalls under the wrappers: for the program's own calls on its file the
    shim's events must match them one for one (call, fd, size, offset, result)."""
    prog = build("fd_basic")
    calls = "openat,write,pwrite64,lseek,read,writev,pread64,dup,dup2,fcntl,ftruncate,fsync,close"
    # strace is a ptrace tracer itself: it runs with the shim alone (one tracer per process)
    t = trace(
        "strace", "-f", "-qq", "-o", "strace.txt", "-e", f"trace={calls}", prog,
        extra=("--no-stracer",),
    )  # fmt: skip
    assert t.proc.returncode == 7, t.proc.stderr
    lines = (trace.work / "strace.txt").read_text().splitlines()
    (log,) = [lg for lg in t.logs if lg.header["exe"] == str(prog)]
    pid = log.header["pid"]
    sys_name = {"open": "openat", "pwrite": "pwrite64", "pread": "pread64"}
    seen: list[tuple[str, int]] = []
    shim_fds: set[int] = set()  # descriptors the shim opens for its own log
    for line in lines:
        m = STRACE_LINE.match(line)
        if not m or int(m.group(1)) != pid:
            continue
        name, args, ret = m.group(2), m.group(3), int(m.group(4))
        if not seen and not (name == "openat" and "data.bin" in args):
            continue  # the loader's work, before the program's first call
        if name == "openat" and "data.bin" not in args and "missing" not in args:
            shim_fds.add(ret)
            continue  # the shim's own files
        if name == "lseek" and args.endswith(", 0, SEEK_CUR"):
            continue  # the shim learning an O_APPEND position; the program never does this
        fd = int(args.split(",")[0].rstrip(")")) if name != "openat" else None
        if fd in shim_fds:
            if name == "close":
                shim_fds.discard(fd)
            continue
        if fd is not None and fd not in (3, 4, 20, -1):
            continue  # stdout
        seen.append((name, ret))
    names = log.functions
    shim = [
        (sys_name.get(names[e[1]], names[e[1]]), e[7])
        for e in sorted(log.events, key=lambda e: e[2])
        if names[e[1]] in FD_CALLS
    ]
    assert len(seen) == 22, seen
    assert seen == shim


def test_descriptor_offsets_after_stdio_and_fork(trace):
    """stdio moves the kernel offset through calls the shim never sees; a forked child inherits
    stream buffers: both must leave the recorded offsets right."""
    t = trace(build("fd_mixed"))
    assert t.proc.returncode == 0 and "read 0" in t.proc.stdout
    evs = t.events("write", "read")
    assert [(e["fn"], e["offset"]) for e in evs] == [("write", 12), ("read", 16)]
    forked = [e for e in t.events("fwrite") if e["path"].endswith("fork.txt")]
    pids = {e["pid"] for e in forked}
    assert len(pids) == 2
    child_pid = next(lg.header["pid"] for lg in t.logs if lg.header["forked"])
    child = [e for e in forked if e["pid"] == child_pid]
    assert [(e["req"], e["offset"]) for e in child] == [(5, 10)]
