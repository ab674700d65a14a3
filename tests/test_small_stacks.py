"""Programs that give their threads little stack: the shim's wrappers run on the app's stack,
so tracing must fit in what the app left itself (a thread of PTHREAD_STACK_MIN opened a file by
a relative name and died of SIGSEGV: the shim made the absolute name in an 8 KiB buffer)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import build
from iotrace.analyzer import load


@pytest.mark.parametrize("mode", [(), ("--no-stracer",)], ids=["full", "shim"])
def test_thread_of_pthread_stack_min_traced(tmp_path, mode):
    prog = build("small_stack")
    plain = subprocess.run([str(prog)], cwd=tmp_path, capture_output=True, text=True)
    assert plain.returncode == 0 and plain.stdout.startswith("ok "), plain
    (tmp_path / "small.done").unlink()
    r = subprocess.run(
        [sys.executable, "-m", "iotrace", "run", "-o", str(tmp_path / "t"), *mode, "--",
         str(prog)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0 and r.stdout == plain.stdout, r.stderr
    ev = load(tmp_path / "t").events
    out = str(tmp_path / "small.out")
    writes = ev[(ev["function"] == "write") & (ev["path"] == out)]
    assert len(writes) == 10 and writes["bytes"].sum() == 40960
    assert (ev["path"] == out).sum() >= 12  # the open and the close too: the name made whole
