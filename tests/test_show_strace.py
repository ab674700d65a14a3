"""`iotrace show` read as a strace user reads `strace -f`: each call's arguments, flags by name
(0 as 0) and result as strace prints them, strace the oracle (issue 16).  The shim's lines
(both modes) and the stracer's (raw syscalls, full tracing) alike; show adds a descriptor's
path (`3<pipe:[N]>`, strace -y's way), taken off here, and names the function the app called
(glibc's pipe() is the pipe2 syscall: strace's `pipe2(FDS, 0)` is show's `pipe(FDS)`)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import build, iotrace

CALLS = ("pipe", "pipe2", "dup3")
_LINE = re.compile(r"^(?:\d+ +)?(\w+)\((.*)\) += (-?\w+)", re.M)
_SHOW = re.compile(r"^\[pid \d+ tid \d+\] \+[\d.]+ (\w+)\((.*)\) = (-?\w+) <[\d.]+>( \[bypass\])?$",
                   re.M)  # fmt: skip


def _strace(prog: Path, tmp: Path) -> list[str]:
    out = tmp / "strace.out"
    subprocess.run(["strace", "-f", "-e", "trace=" + ",".join(CALLS), "-o", str(out), str(prog)],
                   check=True, cwd=tmp)  # fmt: skip
    return [f"{m[1]}({m[2]}) = {m[3]}" for m in _LINE.finditer(out.read_text())]


def _show(d: Path) -> list[tuple[str, bool]]:
    r = iotrace("show", str(d))
    assert r.returncode == 0, r.stderr
    out = []
    for m in _SHOW.finditer(r.stdout):
        if m[1] in CALLS:
            args = re.sub(r"(\d)<[^>]*>", r"\1", m[2])  # strace without -y: no paths
            name, args = ("pipe2", f"{args}, 0") if m[1] == "pipe" else (m[1], args)
            out.append((f"{name}({args}) = {m[3]}", bool(m[4])))
    return out


@pytest.mark.parametrize("mode", ["full", "no-stracer"])
def test_show_reads_as_strace(trace, tmp_path: Path, mode: str) -> None:
    prog = build("show_strace")
    want = _strace(prog, tmp_path)
    assert len(want) == 7, want
    t = trace(prog, extra=("--no-stracer",) if mode == "no-stracer" else ())
    assert t.proc.returncode == 0, t.proc.stderr
    got = _show(t.dir)
    # the raw syscalls (the 4th and 7th) are the stracer's, under full tracing only
    raw = {3, 6}
    if mode == "full":
        assert [b for _, b in got] == [i in raw for i in range(7)], got
        assert [s for s, _ in got] == want
    else:
        assert [s for s, _ in got] == [w for i, w in enumerate(want) if i not in raw]
