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
        ["strace", "-f", "-qq", "-y", "-e", f"trace={DATA}", "-e", "signal=none", "-o",
         str(log), *cmd],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    out: Counter[tuple[str, str]] = Counter()
    pending: dict[str, tuple[str, str]] = {}
    for ln in log.read_text(errors="replace").splitlines():
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


def trace_bytes(events) -> Counter[tuple[str, str]]:
    """The same from a trace's events (shim and stracer alike), regular files only."""
    out: Counter[tuple[str, str]] = Counter()
    ev = events[events["op"].isin(["read", "write"]) & events["bytes"].notna()]
    for (op, path), b in ev.groupby(["op", "path"], observed=True)["bytes"].sum().items():
        if _regular(str(path)) and b:
            out[(str(op), str(path))] += int(b)
    return out
