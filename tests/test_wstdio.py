"""Wide-character stdio (preload/wrap_wstdio.c): util-linux's rev, column, colrm and col and a C
program calling every wide reader and writer (tests/progs/wstdio.c, plain and fortified) on a
UTF-8 file and on stdin/stdout, under full tracing and the shim alone: the output is the
untraced run's, the trace's bytes per file are strace's, and the end line explains 100.0% of
the bytes and of the read/write syscalls.  Before the wrappers, stdio's refills and flushes of
wide streams went unseen (rev: 51.6% of the bytes; the four with the shim alone: 16.3%)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import build
from oracle import strace_bytes, trace_bytes

TOOLS = ("rev", "column", "colrm", "col", "strace")
WORDS = ("h\u00e9llo", "w\u00f6rld", "\u65e5\u672c\u8a9e", "na\u00efve", "\u00e7a", "plain",
         "x" * 40, "\u03a9mega", "\U0001f600")  # fmt: skip
OUTPUTS = ("rev.out", "column.out", "colrm.out", "col.out", "p.out", "pf.out", "w.txt", "wf.txt")


def _input(d: Path) -> None:
    """~24 KiB of UTF-8 lines of 1- to 4-byte characters: several buffers."""
    lines = [" ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(1 + i % 7))
             for i in range(500)]  # fmt: skip
    (d / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _norm(c: Counter, work: Path) -> Counter:
    return Counter(
        {(op, os.path.realpath(p).replace(str(work), "W")): n for (op, p), n in c.items()}
    )


@pytest.mark.parametrize("mode", [(), ("--no-stracer",)], ids=["full", "shim"])
def test_wide_stdio_programs_bytes_as_strace_and_explained(tmp_path, mode):
    if missing := [t for t in TOOLS if not shutil.which(t)]:
        pytest.skip(f"{', '.join(missing)} not installed")
    prog, fort = build("wstdio"), build("wstdio", "-D_FORTIFY_SOURCE=2")
    script = (
        "rev in.txt > rev.out && column -t in.txt > column.out && colrm 3 10 < in.txt > colrm.out"
        f" && col < in.txt > col.out && {prog} w.txt < in.txt > p.out"
        f" && {fort} wf.txt < in.txt > pf.out"
    )
    cmd = ["sh", "-c", script]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": str(tmp_path)}
    work = {k: tmp_path / k for k in ("plain", "strace", "traced")}
    for d in work.values():
        d.mkdir()
        _input(d)
    plain = subprocess.run(cmd, cwd=work["plain"], env=env, capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr
    want, _ = strace_bytes(cmd, work["strace"], env)
    r = subprocess.run(
        [sys.executable, "-m", "iotrace", "run", "-o", str(tmp_path / "t"), *mode, "--", *cmd],
        cwd=work["traced"], env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    for name in OUTPUTS:
        assert (work["traced"] / name).read_bytes() == (work["plain"] / name).read_bytes(), name
    assert re.search(r"explains 100\.0% of the [\d.]+ \w+ and 100\.0% of the", r.stderr), r.stderr
    if not mode:
        assert ", 0 missed," in r.stderr, r.stderr
    from iotrace.analyzer import load

    ev = load(tmp_path / "t").events
    got, want = _norm(trace_bytes(ev), work["traced"]), _norm(want, work["strace"])
    if mode:  # the shim alone sees no I/O inside libc (setlocale's): the work files' bytes
        got, want = ({k: n for k, n in c.items() if k[1].startswith("W/")} for c in (got, want))
    assert got == want
    # the calls' own bytes are the file's, in its multibyte form: rev's fgetws, and getwchar of
    # col and of the two programs
    size = (work["traced"] / "in.txt").stat().st_size
    on_input = ev[ev["path"].astype(str).str.endswith("/in.txt")]
    per_call = on_input.groupby("function", observed=True)["bytes"].sum()
    assert (per_call["fgetws"], per_call["getwchar"]) == (size, 3 * size)
