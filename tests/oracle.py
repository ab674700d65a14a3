"""strace as the oracle of bytes per file: what a program read and wrote, file by file.

Regular files only (not /dev, /proc), and not shared objects: the dynamic loader's reads of
libraries are loader I/O, counted but not recorded (docs/stracer.md, "Classification")."""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from pathlib import Path

DATA = "read,write,pread64,pwrite64,readv,writev,preadv,pwritev,preadv2,pwritev2"
# calls with two ends: argument positions of the descriptor read and the descriptor written
ENDS = {"sendfile": (1, 0), "copy_file_range": (0, 2), "splice": (0, 2), "tee": (0, 1)}
ENDS_LINE = re.compile(rf"^(\d+)\s+({'|'.join(ENDS)})\((.*)\) = (\d+)")
# the same cut in two by another thread or process: its arguments at the start, its result after
ENDS_START = re.compile(rf"^(\d+)\s+({'|'.join(ENDS)})\((.*) <unfinished \.\.\.>$")
# `3</path>`, `3</path>(deleted)` (a file unlinked while open): the file by its name
FD_ARG = re.compile(r"-?\d+<([^>]*)>(?:\(deleted\))?")
# `PID  read(3</path>, ...) = N` (strace -f -y); a call another thread's cut in two ends in
# `PID  <... read resumed>...) = N`
LINE = re.compile(r"^(\d+)\s+(\w+)\(\d+<([^>]*)>.*\)\s+= (\d+)")
START = re.compile(r"^(\d+)\s+(\w+)\(\d+<([^>]*)>.*<unfinished \.\.\.>$")
RESUMED = re.compile(r"^(\d+)\s+<\.\.\. (\w+) resumed>.*\)\s+= (\d+)")


SHARED_OBJECT = re.compile(r"\.so(\.\d+)*$")


def _regular(path: str) -> bool:
    return (
        path.startswith("/")
        and not path.startswith(("/dev/", "/proc/"))
        and not SHARED_OBJECT.search(path)
    )


def strace_bytes(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> tuple[Counter[tuple[str, str]], subprocess.CompletedProcess[str]]:
    """(op, path) -> bytes moved, op "read" or "write", for every data syscall of cmd and its
    children on a regular file (strace -f -y), and the run itself."""
    log = cwd.parent / f"strace.{os.getpid()}.log"
    proc = subprocess.run(
        ["strace", "-f", "-qq", "-y", "-e", f"trace={DATA},{','.join(ENDS)}", "-e",
         "signal=none", "-o", str(log), *cmd],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    out: Counter[tuple[str, str]] = Counter()
    pending: dict[str, tuple[str, str]] = {}
    ends: dict[str, tuple[str, str]] = {}  # pid -> (call, arguments) of a two-end call cut
    for ln in log.read_text(errors="replace").splitlines():
        if m := ENDS_LINE.match(ln):  # both ends
            _count_ends(out, m.group(2), m.group(3), int(m.group(4)))
            continue
        if m := ENDS_START.match(ln):
            ends[m.group(1)] = (m.group(2), m.group(3))
            continue
        if (m := RESUMED.match(ln)) and m.group(1) in ends:
            name, args = ends.pop(m.group(1))
            _count_ends(out, name, args, int(m.group(3)))
            continue
        if m := START.match(ln):
            pending[m.group(1)] = (m.group(2), m.group(3))
            continue
        if m := RESUMED.match(ln):
            if m.group(1) not in pending:
                continue
            (name, path), n = pending.pop(m.group(1)), m.group(3)
        elif m := LINE.match(ln):
            name, path, n = m.group(2), m.group(3), m.group(4)
        else:
            continue
        if _regular(path) and int(n):
            out[("read" if "read" in name else "write", path)] += int(n)
    log.unlink()
    return out, proc


def _count_ends(out: Counter[tuple[str, str]], name: str, args: str, n: int) -> None:
    fds = [f.group(1) if f else None for f in map(FD_ARG.fullmatch, _args(args))]
    for op, i in zip(("read", "write"), ENDS[name], strict=True):
        p = fds[i] if i < len(fds) else None
        if p and _regular(p):
            out[(op, p)] += n


def _args(text: str) -> list[str]:
    """The top-level arguments of a strace call (commas inside [], {}, <> and quotes kept)."""
    out, cur, depth, quote = [], [], 0, False
    for i, ch in enumerate(text):
        if quote:
            quote = not (ch == '"' and text[i - 1] != "\\")
        elif ch == '"':
            quote = True
        elif ch in "[{(<":
            depth += 1
        elif ch in "]})>":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def trace_bytes(events) -> Counter[tuple[str, str]]:
    """The same from a trace's events (shim and stracer alike), regular files only: the data
    accesses of the analyzer's totals (stdio streams by their refills and flushes; HDF5's,
    PnetCDF's and MPI-IO's calls by the POSIX calls beneath them)."""
    from iotrace.analyzer.schema import is_datalib, is_mpi, is_stdio_call

    def above(name: str) -> bool:
        return is_stdio_call(name) or is_datalib(name) or is_mpi(name)

    out: Counter[tuple[str, str]] = Counter()
    calls = events["function"].astype(str).map(above).to_numpy(dtype=bool)
    ev = events[events["op"].isin(["read", "write"]) & events["bytes"].notna() & ~calls]
    for (op, path), b in ev.groupby(["op", "path"], observed=True)["bytes"].sum().items():
        if _regular(str(path)) and b:
            out[(str(op), str(path))] += int(b)
    return out
