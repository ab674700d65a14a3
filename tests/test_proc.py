"""Processes and threads: fork without exec, exec with a stripped environment, threads, shell
pipelines, Python, and the stacks the shim records."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import build

from iotrace.elf import build_id


def test_fork_without_exec_gives_child_its_own_log(trace):
    t = trace(build("proc_fork"))
    assert t.proc.returncode == 0 and "child status 3" in t.proc.stdout
    logs = {lg.header["pid"]: lg for lg in t.logs}
    assert len(logs) == 2
    parent = next(lg for lg in logs.values() if not lg.header["forked"])
    child = next(lg for lg in logs.values() if lg.header["forked"])
    assert child.header["ppid"] == parent.header["pid"]
    assert child.exit_status == 3 and parent.exit_status == 0
    evs = t.events("write", "open")
    by_pid: dict[int, list[tuple[str, str, int]]] = {}
    for e in evs:
        by_pid.setdefault(e["pid"], []).append((e["fn"], os.path.basename(e["path"]), e["ret"]))
    assert by_pid[parent.header["pid"]] == [
        ("open", "parent.txt", 3), ("write", "parent.txt", 7), ("write", "parent.txt", 6),
    ]  # fmt: skip
    # the child inherited fd 3 and knows its path without having opened it
    assert by_pid[child.header["pid"]] == [
        ("open", "child.txt", 4), ("write", "child.txt", 7), ("write", "parent.txt", 11),
    ]  # fmt: skip
    forks = t.events("fork")
    assert sorted(e["ret"] for e in forks) == [0, child.header["pid"]]
    assert (t.dir.parent / "work" / "parent.txt").read_text() == "before\nfrom child\nafter\n"


def test_threads_each_get_their_tid(trace):
    t = trace(build("proc_threads"))
    assert t.proc.returncode == 0
    printed = {}
    for line in t.proc.stdout.splitlines():
        _, i, _, tid = line.split()
        printed[int(i)] = int(tid)
    writes = t.events("write")
    assert len(writes) == 40
    for i, tid in printed.items():
        mine = [e for e in writes if e["tid"] == tid]
        assert len(mine) == 10
        assert {e["req"] for e in mine} == {(i + 1) * 100}
        assert [e["offset"] for e in mine] == [k * (i + 1) * 100 for k in range(10)]
        assert {os.path.basename(e["path"]) for e in mine} == {f"t{i}.dat"}
    assert len(t.events("pthread_create")) == 4


def test_exec_with_empty_environment_stays_traced(trace):
    prog = build("proc_exec")
    t = trace(prog)
    assert "child env LD_PRELOAD=set" in t.proc.stdout
    child = [e for e in t.events("open") if e["path"].endswith("from_child.txt")]
    assert len(child) == 1
    execs = t.events("execve", "execl")
    assert [(e["fn"], e["ret"], e["errno"]) for e in execs] == [
        ("execve", 0, 0),  # attempted (an exec that succeeds does not return)
        ("execl", 0, 0),
        ("execl", -1, 2),  # ENOENT
    ]
    assert execs[0]["path"] == str(prog)


def test_shell_pipeline(trace):
    t = trace("sh", "-c", "echo a > f; cat f | wc -c")
    assert t.proc.returncode == 0 and t.proc.stdout.strip() == "2"
    f = str(trace.work / "f")
    exes = {os.path.basename(lg.header["exe"]) for lg in t.logs}
    assert {"dash", "cat", "wc"} <= exes or {"sh", "cat", "wc"} <= exes
    writes_f = [e for e in t.events("write") if e["path"] == f]
    assert [(e["req"], e["ret"], e["offset"]) for e in writes_f] == [(2, 2, 0)]  # "a\n" by echo
    reads_f = [e for e in t.events("read") if e["path"] == f]
    assert sum(max(e["ret"], 0) for e in reads_f) == 2
    pipe_writes = [e for e in t.events("write") if (e["path"] or "").startswith("pipe:")]
    assert sum(e["ret"] for e in pipe_writes) == 2  # cat -> wc


def test_python_program(trace):
    code = "open('p.txt', 'w').write('x' * 100); print(len(open('p.txt').read()))"
    t = trace(sys.executable, "-c", code)
    assert t.proc.returncode == 0 and t.proc.stdout.strip() == "100"
    p = str(trace.work / "p.txt")
    writes = [e for e in t.events("write") if e["path"] == p]
    assert sum(e["ret"] for e in writes) == 100
    reads = [e for e in t.events("read") if e["path"] == p]
    assert sum(e["ret"] for e in reads) == 100


def test_stacks_point_into_the_program(trace):
    prog = build("fd_basic")
    t = trace(prog, stack=8)
    (log,) = t.logs
    main_mod = [m for m in log.modules if m[3] == str(prog)]
    assert len(main_mod) == 1
    _base, lo, hi, _path, bid = main_mod[0]
    assert bid is not None and bid == build_id(str(prog))  # read from memory, as on disk
    writes = t.events("write")
    assert all(e["stack"] for e in writes)
    # the innermost frame is the call site in the program, not inside the shim
    assert all(lo <= e["stack"][0] < hi for e in writes)
    assert len({e["stack"] for e in writes[:4]}) == 1  # one loop, one call site: interned once
    t0 = trace(prog, stack=0)
    assert all(e["stack"] is None for e in t0.events("write"))


@pytest.mark.parametrize("mode", [(), ("--no-stracer",)])
def test_a_program_run_by_the_loader_is_named(trace, mode):
    """`ld.so PROG` (the loader run as the program): /proc/self/exe is ld.so, not PROG; PROG's
    module record has its own path and build-id, its frames are placed in it, and `report`
    says no 'build-id differs' (ld.so's name on PROG's build-id did)."""
    prog = build("fd_basic")
    loader = os.path.realpath("/lib64/ld-linux-x86-64.so.2")
    t = trace(loader, prog, extra=mode)
    want = subprocess.run([str(prog)], capture_output=True, text=True, cwd=t.dir.parent / "work")
    assert (t.proc.returncode, t.proc.stdout) == (want.returncode, want.stdout), t.proc.stderr
    (log,) = t.logs
    ((_base, lo, hi, _path, bid),) = [m for m in log.modules if m[3] == str(prog)]
    assert bid == build_id(str(prog))
    assert next(m for m in log.modules if m[3] == loader)[4] == build_id(loader)
    writes = t.events("write")
    assert writes and all(lo <= e["stack"][0] < hi for e in writes)
    rep = subprocess.run([sys.executable, "-m", "iotrace", "report", str(t.dir)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert rep.returncode == 0 and "build-id differs" not in rep.stderr, rep.stderr


def test_stack_depth_is_exact_on_every_path(trace):
    """The shim unwinds only as deep as it keeps (preload/stack.c): a call reached along a
    path with more of the shim's own frames (a thread's first call, a signal handler, stdio)
    still gets all 8 frames, the same as every other call from that call site."""
    prog = build("stack_depth")
    t = trace(prog, stack=8)
    assert t.proc.returncode == 0 and t.proc.stdout == "xxxyx"
    (log,) = t.logs
    ((_base, lo, hi, _path, _bid),) = [m for m in log.modules if m[3] == str(prog)]
    evs = t.events("write", "fflush")
    assert len(evs) == 5
    assert all(len(e["stack"]) == 8 and all(lo <= pc < hi for pc in e["stack"]) for e in evs)
    # f11's call (of write or of fflush), then f10 .. f4, each time
    assert len({e["stack"][1:] for e in evs}) == 1
    assert len({e["stack"] for e in evs if e["fn"] == "write"}) == 1


def test_plain_msgpack_reads_a_log(trace):
    """docs/format.md promises a plain msgpack reader is enough."""
    import msgpack

    t = trace(build("fd_basic"))
    (path,) = t.dir.glob("*.iot")
    n = 0
    with open(path, "rb") as f:
        outer = msgpack.Unpacker(f, raw=False, strict_map_key=False)
        header = next(outer)
        for obj in outer:
            if not isinstance(obj, bytes):
                continue
            inner = msgpack.Unpacker(raw=False)
            inner.feed(obj)
            recs = list(inner)
            assert recs[0][0] == 3  # THREAD first
            n += sum(1 for r in recs if r[0] == 0 and header["functions"][r[1]] == "write")
    assert n == 7


def test_preloaded_without_iotrace_run_stays_out_of_the_way(tmp_path):
    from iotrace.shim import shim_path

    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTRACE_")}
    env["LD_PRELOAD"] = str(shim_path())
    r = subprocess.run([str(build("fd_basic"))], cwd=tmp_path, env=env, capture_output=True,
                       text=True)  # fmt: skip
    assert r.returncode == 7 and not list(tmp_path.glob("*.iot"))


@pytest.mark.parametrize("mode", ["shim", "stracer"])
def test_signal_handler_io_while_shim_is_busy(trace, mode):
    """Signals land at any instant, also inside the shim or libunwind: the handler's own I/O must
    behave exactly as untraced, and its writes are events, also when the signal interrupted the
    shim's own work (inside an unwind: written then, without a stack; anywhere else: kept and
    written after it) -- so the trace explains every byte and syscall the kernel counted
    (mpirun's SIGCHLD handler writing one byte to its pipe was missing).  Each timer signal
    starts a run of 6 handlers back to back (as a 100 us timer makes under the stracer's signal
    stops, the interrupted code not going on meanwhile): a run that interrupted the shim's work
    lost all but 4 of its writes."""
    t = trace(build("sig_handler"), "5", "1500", "500", stack=8,
              extra=("--no-stracer",) if mode == "shim" else ())  # fmt: skip
    assert t.proc.returncode == 0, t.proc.stdout
    handled = int(t.proc.stdout.split()[0].split("=")[1])
    assert handled > 0
    assert (trace.work / "handler.dat").stat().st_size == handled
    main_size = (trace.work / "main.dat").stat().st_size
    writes = t.events("write")
    main_w = [e for e in writes if e["path"].endswith("main.dat")]
    handler_w = [e for e in writes if e["path"].endswith("handler.dat")]
    assert len(main_w) == main_size  # every main-loop write recorded
    assert all(e["ret"] == 1 for e in writes if e["fd"] is not None and e["fd"] >= 3)
    assert len(handler_w) == handled, (len(handler_w), handled)
    assert "explains 100.0% of the" in t.proc.stderr, t.proc.stderr
    assert "and 100.0% of the" in t.proc.stderr, t.proc.stderr
    assert all(e["req"] == 1 and e["offset"] is not None for e in handler_w)
