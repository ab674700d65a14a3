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


@pytest.mark.parametrize("mode", [(), ("--no-stracer",)], ids=["full", "shim"])
def test_handler_on_an_8k_sigaltstack_traced(tmp_path, mode):
    """A handler on an 8 KiB alternate stack (the classic SIGSTKSZ) with a guard page below
    opens, writes and closes a file, 20 times: a stack walk there would run past the guard page
    (SIGSEGV: 15,208 B used traced, 6,120 untraced); its events are recorded without a stack.
    On a 64 KiB one they get their stack."""
    prog = build("small_stack")
    line = "written from a handler on the alternate stack\n"
    for size, stacked in ((8192, False), (65536, True)):
        plain = subprocess.run([str(prog), "alt", "20", str(size)], cwd=tmp_path,
                               capture_output=True, text=True)  # fmt: skip
        assert plain.returncode == 0 and plain.stdout == "ok 20\n", plain
        (tmp_path / "alt.out").unlink()
        trace = tmp_path / f"t{size}"
        r = subprocess.run(
            [sys.executable, "-m", "iotrace", "run", "-o", str(trace), *mode, "--",
             str(prog), "alt", "20", str(size)],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert r.returncode == 0 and r.stdout == plain.stdout, r.stderr
        assert (tmp_path / "alt.out").read_text() == line * 20
        (tmp_path / "alt.out").unlink()
        ev = load(trace).events
        mine = ev[ev["path"] == str(tmp_path / "alt.out")]
        writes = mine[mine["function"] == "write"]
        assert len(writes) == 20 and writes["bytes"].sum() == 20 * len(line)
        calls = mine["function"].value_counts()
        assert calls["open"] == 20 and calls["close"] == 20
        assert (writes["stack_id"].fillna(0) > 0).all() == stacked
