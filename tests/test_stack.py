"""The stack walk's fast path (preload/cfi.c) against a full unwind by libunwind.

IOTRACE_STACK_CHECK=1 makes the shim compare every stack the fast path takes with libunwind's
unw_step walk from a fresh cursor with its caches off and with unw_backtrace's (how stacks were
taken before), and print per process "stack check: N fast, M differ, K by libunwind, B differ
from unw_backtrace" (and each difference from the full unwind) to stderr at exit."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from conftest import BUILD, PROGS, build

CHECK = re.compile(
    r"iotrace: stack check: (\d+) fast, (\d+) differ, (\d+) by libunwind, (\d+) differ from"
)


def checked(stderr: str) -> list[tuple[int, int, int, int]]:
    assert "stack check: fast" not in stderr, stderr  # a difference, printed when found
    return [(int(a), int(b), int(c), int(d)) for a, b, c, d in CHECK.findall(stderr)]


def placed(t, pid: int, stack: tuple[int, ...]) -> tuple[tuple[str, int], ...]:
    """A stack as (module's file name, offset from its base): the check loads libunwind at
    start, which moves the libraries loaded after it."""
    mods = [m for log in t.logs if log.header["pid"] == pid for m in log.modules]
    return tuple(
        next(((os.path.basename(p), a - b) for b, lo, hi, p, _ in mods if lo <= a < hi), ("", a))
        for a in stack
    )


def lib(pad: int) -> str:
    out = BUILD / f"stack_lib{pad}.so"
    src = PROGS / "stack_lib.c"
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        BUILD.mkdir(exist_ok=True)
        subprocess.run(["gcc", "-O1", "-g", "-shared", "-fPIC", f"-DPAD={pad}", "-o", str(out),
                        str(src)], check=True)  # fmt: skip
    return str(out)


def test_fast_stack_walk_equals_a_full_unwind(trace):
    """Recursion through frames with and without a frame pointer, a signal handler (its stack
    goes through the signal frame: walked as libunwind's trace walks it, the interrupted
    registers read from the ucontext; libunwind took these 3 stacks before), threads, a
    forked child, and a library
    unloaded and another loaded at its address whose frames at the same code offsets are of
    another size (the walk's rules per address are forgotten at dlclose: kept, its stacks came
    out wrong; libunwind's own trace cache is never emptied, so unw_backtrace's stacks of the
    second library's 6 calls are wrong, as they were before the fast path)."""
    env = {**os.environ, "IOTRACE_STACK_CHECK": "1"}
    prog = build("stack_paths", "-ldl")
    t = trace(prog, lib(256), lib(4096), env=env, extra=("--no-stracer",))
    assert t.proc.returncode == 0, t.proc.stderr
    assert "same-address=1" in t.proc.stdout  # else the dlclose case tested nothing
    got = checked(t.proc.stderr)
    assert len(got) == 2  # the program and its forked child
    assert all(differ == 0 for _, differ, _, _ in got)
    assert all(fast > 40 for fast, _, _, _ in got)  # 42 paths in the child, many more in main
    assert sum(slow for _, _, slow, _ in got) == 0  # the handler's too (3 before)
    assert sorted(bt for *_, bt in got)[0] == 0 and sum(bt for *_, bt in got) <= 6


def test_fast_stack_walk_equals_a_full_unwind_in_real_programs(trace):
    """Programs nobody here wrote: their own unwind tables, libc's, libpython's, sqlite's."""
    env = {**os.environ, "IOTRACE_STACK_CHECK": "1"}
    script = (
        "tar cf a.tar /etc/hostname /etc/passwd 2>/dev/null; tar tf a.tar >/dev/null; "
        "sqlite3 db 'create table t(x); insert into t values (1); select * from t;'; "
        'python3 -c \'import json; json.dump([1], open("j", "w"))\''
    )
    t = trace("bash", "-c", script, env=env, extra=("--no-stracer",))
    assert t.proc.returncode == 0, t.proc.stderr
    got = checked(t.proc.stderr)
    assert len(got) >= 5 and all(differ == 0 and bt == 0 for _, differ, _, bt in got)
    assert sum(fast for fast, *_ in got) > 500


def test_stacks_replayed_from_memos_are_the_checked_ones(trace):
    """Without the check, a repeated walk is replayed from its memo and the stack's interned id
    reused: the trace must hold the same stacks, event for event, as a run whose every stack
    was compared with a full unwind (address randomization off; each address by its module:
    the check's libunwind, loaded at start, moves the libraries loaded later)."""
    prog = build("stack_paths", "-ldl")
    runs = []
    for check in ("", "1"):
        env = {**os.environ, "IOTRACE_STACK_CHECK": check}
        t = trace("setarch", "-R", prog, lib(256), lib(4096), env=env, extra=("--no-stracer",))
        assert t.proc.returncode == 0, t.proc.stderr
        evs = t.events()
        main = evs[0]["pid"]
        stacks = sorted(
            (e["pid"] != main, e["fn"], placed(t, e["pid"], e["stack"] or ()))
            for e in evs
            if e["fn"] in ("write", "fclose", "fdopen", "dup")
        )
        runs.append(stacks)
    assert len(runs[0]) > 300 and all(s for _, _, s in runs[0])
    assert [s for _, _, s in runs[0]] == [s for _, _, s in runs[1]]


def test_a_repeated_walk_reads_the_tables_once(trace):
    """Two threads writing 9,000 times each from one call site: the rules of the walk's frames
    are read from the unwind tables once, then the walk is replayed from its memo.  (The walk
    was tried, then on a missing rule tried again with the tables, from two call sites in the
    shim: the first try's own return address was never given a rule, so every event walked
    twice and read the tables.)"""
    env = {**os.environ, "IOTRACE_STACK_CHECK": "1"}
    t = trace(build("clock_bracket"), env=env, extra=("--no-stracer",))
    assert t.proc.returncode == 0, t.proc.stderr
    got = checked(t.proc.stderr)
    assert len(got) == 1 and got[0][0] > 18000 and got[0][1] == 0
    reads = re.findall(r"differ from unw_backtrace, (\d+) read the tables", t.proc.stderr)
    assert reads and int(reads[0]) < 20, t.proc.stderr


def test_libunwind_is_loaded_only_for_a_stack_the_fast_walk_cannot_take(trace):
    """The shim loads libunwind (and liblzma: 13 stops of ld.so under the stracer, ~0.16 ms of
    CPU) at the first stack cfi.c cannot walk, not at start (tests/progs/stack_lazy.c).  A
    write through a function with no unwind table loads it: its stack is the one a run with
    libunwind from the start (the check) records, and ld.so's reads of its files are the
    shim's own I/O (the trace explains them all).  From a signal handler it is not loaded
    (dlopen is not async-signal-safe): that event has the frames the fast walk took before the
    function it could not walk (it had no stack at all before), the next one loads it."""
    prog = build("stack_lazy")
    for extra in (("--no-stracer",), ()):
        t = trace(prog, "plain", extra=extra)
        assert t.proc.returncode == 0 and "unwind=0" in t.proc.stdout, t.proc.stderr
    stacks = []
    for check in ("1", ""):
        env = {**os.environ, "IOTRACE_STACK_CHECK": check}
        t = trace("setarch", "-R", prog, "nocfi", env=env, extra=("--no-stracer",))
        assert t.proc.returncode == 0 and "unwind=1" in t.proc.stdout, t.proc.stderr
        stacks.append([e["stack"] for e in t.events() if e["fn"] == "write" and e["fd"] == 1])
    assert stacks[0] == stacks[1] and len(stacks[0]) == 1 and len(stacks[0][0]) >= 3, stacks
    assert "not in the trace" not in t.proc.stderr, t.proc.stderr
    t = trace(prog, "nocfi")  # full: ld.so's stops inside the shim's dlopen are its own
    assert t.proc.returncode == 0 and "unwind=1" in t.proc.stdout, t.proc.stderr
    assert " 0 missed" in t.proc.stderr and "not in the trace" not in t.proc.stderr
    # a handler reset on entry (SA_RESETHAND; strict-ISO signal()'s, not blocked either): its
    # signal is no longer caught, so only the signal frame on the stack says a handler runs
    for mode in ("handler", "resethand", "sysv"):
        t = trace(prog, mode, extra=("--no-stracer",))
        assert t.proc.returncode == 0, t.proc.stderr
        assert "after handler: unwind=0" in t.proc.stdout, (mode, t.proc.stdout)
        assert "\nunwind=1" in t.proc.stdout, (mode, t.proc.stdout)
        got = [e["stack"] for e in t.events() if e["fn"] == "write" and e["fd"] == 1]
        assert len(got) == 2, (mode, got)  # the handler's, main's
        assert len(got[0]) == 2 and got[1][:2] == got[0] and len(got[1]) > 2, (mode, got)


def test_a_makecontext_stack_keeps_the_frames_the_fast_walk_took(trace):
    """A write on a coroutine's stack (makecontext, on the heap: its bounds unknown, so libunwind
    is not loaded there): its event has the frames up to the context's start (do_write, the
    body, __start_context), where it had no stack at all; main's write after it has its own."""
    t = trace(build("stack_lazy"), "context", extra=("--no-stracer",))
    assert t.proc.returncode == 0, t.proc.stderr
    got = [e["stack"] for e in t.events() if e["fn"] == "write" and e["fd"] == 1]
    assert len(got) == 2 and len(got[0]) == 3 and got[0][0] == got[1][0], got


def test_a_thread_blocking_a_caught_signal_is_asked_once_and_takes_no_descriptor(trace, tmp_path):
    """A caught SIGUSR2 blocked (a handler might be running: libunwind is not loaded) while 200
    writes need it: the thread's signal state is read from the kernel without a descriptor (an
    open of /proc/thread-self/status took the number another thread's open gets untraced) and
    asked once for that mask, not at each event (200 opens and reads before): their stacks are
    the frames the fast walk took; once unblocked, the next write loads it and has its stack.
    strace is the oracle of the app's syscalls."""
    st = tmp_path / "st"
    t = trace("strace", "-f", "-qq", "-o", str(st), "-e", "trace=execve,openat,rt_sigaction",
              build("stack_lazy"), "blocked", extra=("--no-stracer",))  # fmt: skip
    assert t.proc.returncode == 0, t.proc.stderr
    assert "blocked: unwind=0" in t.proc.stdout and "\nunwind=1" in t.proc.stdout
    lines = st.read_text().splitlines()
    assert not [x for x in lines if "/proc/thread-self/status" in x]
    (pid,) = {x.split()[0] for x in lines if "stack_lazy" in x and "execve(" in x}
    asked = [x for x in lines if x.split()[0] == pid and "rt_sigaction(SIGUSR2, NULL" in x]
    assert len(asked) == 2, asked[:5]  # blocked, then unblocked
    got = [e["stack"] for e in t.events() if e["fn"] == "write" and e["fd"] == 1]
    assert len(got) == 201 and len(got[200]) > 2, [len(s) for s in got]
    assert all(s == got[200][:2] for s in got[:200]), got[:2]  # the frames of the fast walk


def test_the_apps_own_unwinding_works_as_untraced(trace):
    """C++ exceptions thrown around recorded I/O (libgcc_s's unwinder), glibc's backtrace() and
    the program's own unw_backtrace (it links libunwind, which the shim's is then the same
    object as): the same output untraced, with the shim alone and under full tracing."""
    src = PROGS / "stack_own_unwind.cc"
    exe = BUILD / "stack_own_unwind"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        BUILD.mkdir(exist_ok=True)
        subprocess.run(["g++", "-O2", "-o", str(exe), str(src), "-lunwind"], check=True)
    want = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    assert want.startswith("caught=5 "), want
    for extra in (("--no-stracer",), ()):
        t = trace(exe, extra=extra)
        assert (t.proc.returncode, t.proc.stdout) == (0, want), t.proc.stderr
        assert len(t.events("write")) >= 10


@pytest.mark.parametrize("mode", ["intern", "unwind"])
@pytest.mark.parametrize("extra", [("--no-stracer",), ()], ids=["shim", "full"])
def test_a_handler_that_interrupted_malloc_is_recorded_without_malloc(trace, mode, extra):
    """A SIGALRM handler's write while the handler interrupted glibc's malloc_stats() with
    main_arena locked (tests/progs/handler_in_malloc.c): the shim interned its descriptor's new
    path with malloc (intern), or dlopen'ed libunwind for a stack the fast walk could not take
    in a handler installed SA_RESETHAND (its signal no longer caught: unwind).  Either waited
    forever for the arena's lock (status 124 below; untraced the program ends at once)."""
    prog = build("handler_in_malloc")
    t = trace("timeout", "20", prog, mode, extra=extra)
    assert t.proc.returncode == 0, (t.proc.returncode, t.proc.stderr[-500:])
    assert t.proc.stdout.endswith("handler\ndone\n"), t.proc.stdout
    writes = [e for e in t.events() if e["fn"] == "write" and e["fd"] == 1]
    assert len(writes) == (3 if mode == "unwind" else 2), writes
