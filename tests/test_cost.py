"""The stracer's cost where libc does I/O inside functions (issue 19): named semaphores and
shared memory (preload/wrap_shm.c) run inside a wrapper, so glibc's syscalls there are covered
stops the C loop resumes at once, not libc-internal ones recorded through Python."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess

import pytest
from conftest import build, iotrace


def test_sem_and_shm_by_name_are_wrapped_and_cost_no_libc_stop(trace):
    prog = build("shm_names")
    name = f"iotrace-cost-{os.getpid()}"
    plain = subprocess.run([str(prog), name + "-u"], capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr
    for extra in ((), ("--no-stracer",)):
        t = trace(prog, name, extra=extra)
        assert t.proc.returncode == 0, t.proc.stderr
        assert t.proc.stdout == plain.stdout  # results, errno, FD_CLOEXEC, contents
        if not extra:
            # glibc's open/lstat/write/link/unlink/close inside them: covered, none libc-internal
            assert ", 0 missed, 0 inside libc functions" in t.proc.stderr, t.proc.stderr
        sem, shm = f"/dev/shm/sem.{name}", f"/dev/shm/{name}"
        long = "/dev/shm/sem." + "x" * 252
        ev = t.events("sem_open", "sem_unlink", "shm_open", "shm_unlink", "write", "read")
        got = [(e["fn"], e["path"], e["ret"]) for e in ev]
        assert got == [
            ("sem_open", sem, 1), ("sem_open", sem, 1), ("sem_open", sem, 1),
            ("sem_open", sem, 0), ("sem_unlink", sem, 0), ("sem_unlink", sem, -1),
            ("sem_open", "a/b", 0), ("sem_open", sem, 0), *[("sem_open", long, 0)] * 3,
            ("shm_open", shm, 3), ("write", shm, 7), ("shm_open", shm, 3), ("read", shm, 7),
            ("shm_unlink", shm, 0), ("shm_unlink", shm, -1), ("shm_open", "/", -1),
        ]  # fmt: skip


def test_named_semaphores_are_glibcs_without_a_stop(trace):
    """Under the stracer the shim does sem_open, sem_close, sem_unlink, shm_open and shm_unlink
    itself with cookie'd syscalls (glibc's, inside the wrapper, were 9-13 covered stops per
    sem_open; OMPIO's MPI_File_open calls it).  Every case glibc decides prints the same as
    untraced (results, errno, the same address on re-open and per name spelling, counted
    closes, EINVAL for an address not open, a forked child's table, the file's mode, links and
    bytes; names glibc refuses, or too long for the shim's own, are left to glibc); a process
    under the stracer and one without it share a semaphore both ways (sem_post / sem_wait); and
    no stop falls in the valid-name calls."""
    import sys

    prog = build("sem_same")
    name = f"iotrace-same-{os.getpid()}"
    plain = subprocess.run([str(prog), name + "-u"], capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr
    assert "create: ok errno 2" in plain.stdout and "close unknown -1 22" in plain.stdout
    for extra in ((), ("--no-stracer",)):
        t = trace(prog, name, extra=extra)
        assert t.proc.returncode == 0, t.proc.stderr
        assert t.proc.stdout.replace(name, name + "-u") == plain.stdout
        # the 32-byte writes: counted as the shim makes them, or around glibc's sem_open
        assert re.search(r"explains 100\.0% of the \S+ \S+ and 100\.0% of the", t.proc.stderr), (
            t.proc.stderr
        )
    # the valid names alone: not one stop in them (12 before: glibc's syscalls, covered)
    t = trace(prog, name + "-v", "valid")
    assert t.proc.returncode == 0, t.proc.stderr
    assert ": 0 covered by the shim," in t.proc.stderr, t.proc.stderr
    assert ", 0 missed, 0 inside libc functions" in t.proc.stderr, t.proc.stderr
    for waiter_traced in (True, False):  # the two processes: one traced, one not
        sem = f"{name}-pair-{int(waiter_traced)}"
        wait_cmd = [str(prog), sem, "wait"]
        post_cmd = [str(prog), sem, "post"]
        pre = [sys.executable, "-m", "iotrace", "run", "-o", str(trace.work / sem), "--"]
        waiter = subprocess.Popen(
            [*pre, *wait_cmd] if waiter_traced else wait_cmd,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert waiter.stdout is not None
        assert waiter.stdout.readline() == "ready\n"
        post = subprocess.run(post_cmd if waiter_traced else [*pre, *post_cmd],
                              capture_output=True, text=True)  # fmt: skip
        assert post.returncode == 0 and post.stdout == "posted 0\n", post.stderr
        out, err = waiter.communicate(timeout=60)
        assert waiter.returncode == 0, err
        assert out == "waited 0 value 0\n"
        assert not os.path.exists(f"/dev/shm/sem.{sem}")


def test_mkstemp_is_glibcs_without_a_stop(trace):
    """Under the stracer the shim makes mkstemp's name and opens it itself, cookie'd (glibc's
    open inside was a covered stop per call): every case prints the same as untraced and with
    the shim alone (errno kept on success, EINVAL for each bad template, ENOENT/ENOTDIR with the
    last name tried left in it, flags, close-on-exec, mode), with no stop."""
    prog = build("tmp_same")
    d = trace.work / "d"
    d.mkdir()
    plain = subprocess.run([str(prog), str(d)], capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr
    assert (
        "mkostemp: 1 errno 77 unchanged 0 made 1 kept 1 mode 100600 acc 2 append 1 cloexec 1"
        in (plain.stdout)
    )
    assert "missing dir: -1 errno 2 unchanged 0 made 1" in plain.stdout, plain.stdout
    for extra in ((), ("--no-stracer",)):
        t = trace(prog, d, extra=extra)
        assert t.proc.returncode == 0, t.proc.stderr
        assert t.proc.stdout == plain.stdout
        assert len(t.events("mkstemp")) == 14
        if not extra:
            assert ": 0 covered by the shim," in t.proc.stderr, t.proc.stderr
    assert list(d.iterdir()) == []


def test_glob_and_the_mount_table_are_wrapped_and_cost_no_libc_stop(trace):
    """Open MPI's MPI_Init globs /dev (the PSM2 MTL) and reads the mount table (hwloc, the
    hugepage mpool): glibc's syscalls inside glob and setmntent/getmntent/endmntent were
    libc-internal stops through Python, the first of them with a new call site unwound while
    the rank waited.  Wrapped (preload/wrap_scan.c), they are covered.  A glob given an error
    callback runs the app's code, and a binary's pre-2.27 glob (glob@GLIBC_2.2.5) is libc's
    old one: both are left alone, their syscalls libc-internal as before."""
    prog = build("scan_calls")
    d = trace.work / "d"
    d.mkdir()
    for name in ("a.txt", "b.txt", "c.dat"):
        (d / name).write_text("x")
    plain = subprocess.run([str(prog), str(d)], capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr
    mounts = int(plain.stdout.split("entries ")[1].split()[0])
    for extra in ((), ("--no-stracer",)):
        t = trace(prog, d, extra=extra)
        assert t.proc.returncode == 0, t.proc.stderr
        assert t.proc.stdout == plain.stdout  # matches, return values, errno
        ev = t.events("glob", "setmntent", "getmntent", "endmntent")
        got = [(e["fn"], e["path"], e["ret"]) for e in ev if e["fn"] != "getmntent"]
        tab = "/proc/self/mounts"
        assert got == [
            ("glob", f"{d}/*.txt", 0), ("glob", f"{d}/*.none", 3),  # GLOB_NOMATCH
            ("setmntent", tab, 1), ("endmntent", tab, 1),
            ("setmntent", tab, 1), ("endmntent", tab, 1),
            ("setmntent", "/nonexistent/mounts", 0),
        ]  # fmt: skip
        entries = [e["ret"] for e in ev if e["fn"] == "getmntent"]
        assert entries == ([1] * mounts + [0]) * 2  # getmntent, then getmntent_r
        assert "100.0% of the" in t.proc.stderr  # their reads: the counters around the calls
        if not extra:
            assert ", 0 missed," in t.proc.stderr, t.proc.stderr
            r = iotrace("missed", str(t.dir), "--all", "--json")
            libc = json.loads(r.stdout)
            assert libc and {g["path"] for g in libc} == {str(d)}  # the two globs left alone


def test_getaddrinfo_is_wrapped_and_costs_no_libc_stop(trace):
    """`mpirun`'s hwloc probes X displays and resolves names: ~180 libc-internal stops through
    Python per 2-rank launch, NSS reading /etc/hosts, nsswitch.conf, resolv.conf, trying nscd.
    getaddrinfo wrapped (preload/wrap_nss.c): those are covered, the event stands for them."""
    prog = build("nss_lookup")
    plain = subprocess.run([str(prog)], capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr
    for extra in ((), ("--no-stracer",)):
        t = trace(prog, extra=extra)
        assert t.proc.returncode == 0, t.proc.stderr
        assert t.proc.stdout == plain.stdout
        got = [(e["path"], e["ret"]) for e in t.events("getaddrinfo")]
        assert got == [("localhost", 0), ("127.0.0.1", 0), (None, 0), ("localhost", -2)]
        assert "100.0% of the" in t.proc.stderr  # /etc/hosts' reads: the counters around it
        if not extra:
            assert ", 0 missed, 0 inside libc functions" in t.proc.stderr, t.proc.stderr


def test_stracer_cffi_declarations_are_parsed_once_per_machine(tmp_path):
    """pycparser costs ~50 ms of CPU per process: the first process parses the stracer's cdefs
    and keeps cffi's out-of-line modules in the private cache; the next imports them."""
    import sys

    env = dict(os.environ, IOTRACE_CACHE=str(tmp_path / "cache"))
    code = ("import sys; from iotrace.stracer import _ffi, loop; assert loop.load() is not None; "
            "_ffi.unwind_libs(); print('pycparser' in sys.modules)")  # fmt: skip

    def run() -> str:
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    assert run() == "True"
    kept = sorted(p.name.split("_")[3] for p in (tmp_path / "cache").glob("_iotrace_ffi_*.code"))
    assert kept == ["loop", "sys", "unwind"]
    assert run() == "False"
    for p in (tmp_path / "cache").glob("_iotrace_ffi_*.code"):  # another writer: not trusted
        p.chmod(0o620)
    assert run() == "True"


def test_cached_cffi_modules_are_run_without_compile(tmp_path):
    """The builtin compile()'s first call in a process sets up the ast module's types: ~7.8 M
    instructions (~2 ms) of every stracer's start, where compile() ran the cached cffi modules
    (native.ffi), and their source ~1.1 M more each: the cache keeps them compiled (marshal).
    No compile() in the stracer's start."""
    import sys

    env = dict(os.environ, IOTRACE_CACHE=str(tmp_path / "cache"))
    code = ("import builtins; names = []; real = builtins.compile\n"
            "def spy(*a, **k):\n    names.append(str(a[1])); return real(*a, **k)\n"
            "builtins.compile = spy\n"
            "import iotrace.stracer.boot, iotrace.stracer.launch\n"
            "from iotrace.stracer import _ffi, loop; assert loop.load() is not None\n"
            "_ffi.unwind_libs(); print(names)")  # fmt: skip
    for _ in range(2):  # the first run parses the cdefs and keeps them
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout


def test_libc_internal_sites_are_symbolised_when_read_not_while_the_app_waits(trace):
    """addr2line (a process per module, its debug info read) ran at each new call site while
    the tracee waited: ~0.1 s of CPU per rank in MPI_Init, for sites nobody is warned about.
    Now a libc-internal site is symbolised when the trace is read: with no addr2line on PATH
    during the run, `iotrace missed --all` and the analyzer still name file and line."""
    import shutil

    from conftest import iotrace
    from iotrace.analyzer import load

    zone = trace.work / "zone"
    shutil.copy("/usr/share/zoneinfo/Europe/Berlin", zone)
    t = trace(build("st_libc"), "out", env=dict(os.environ, TZ=str(zone), PATH="/nonexistent"))
    assert t.proc.returncode == 0, t.proc.stderr
    text = iotrace("missed", str(t.dir), "--all").stdout
    assert text.startswith("7 inside libc's tzset at load_zone (st_libc.c:13) <- main"), text
    frames = load(t.dir).stacks
    assert "st_libc.c" in set(frames["file"].dropna().map(os.path.basename))


def _table_heads(text: str, first: str) -> list[tuple[list[str], list[str]]]:
    """(header, first row) of each console table whose header starts with `first`, as cells."""
    rows = [[c.strip() for c in re.split("[│┃]", ln)[1:-1]] for ln in text.splitlines()]
    rows = [r for r in rows if r]
    return [(r, rows[i + 1]) for i, r in enumerate(rows[:-1]) if r[0] == first]


def test_time_the_stracer_held_a_thread_is_not_the_apps(trace):
    """Every stop is recorded (STOP: thread, when, how long the stracer held it); the report
    takes the stops out of the time of the calls they fell in.  A sem_open of a name too long
    for the shim's own (left to glibc, whose open fails) stops once inside the wrapper
    (covered): its raw duration is mostly the stracer's."""
    from iotrace.analyzer import load
    from iotrace.analyzer.fmt import fmt_time
    from iotrace.analyzer.summary import summarise

    prog = build("shm_names")
    name = f"iotrace-held-{os.getpid()}"
    t = trace(prog, name)
    assert t.proc.returncode == 0, t.proc.stderr
    tr = load(t.dir)
    st = tr.stops
    assert len(st) > 0 and (st["ns"] > 0).all()
    ev = tr.events
    sem = ev[ev["function"] == "sem_open"]
    raw = int((sem["t_end"] - sem["t_start"]).sum())
    inside = st[st["tid"].isin(set(sem["tid"]))]
    held = sum(  # at most the call's own time (a stop's end is taken after the stracer's work)
        min(int(inside[(inside["t"] >= a) & (inside["t"] <= b)]["ns"].sum()), b - a)
        for a, b in zip(sem["t_start"], sem["t_end"], strict=True)
    )
    assert held > 0
    s = summarise(tr)
    fn = s.functions.set_index("function")
    assert int(fn.loc["sem_open", "time"]) == raw - held
    assert s.overview["stracer_held"] == int(st["ns"].sum())
    assert s.overview["stracer_held_events"] >= 3  # the three sem_open of the long name
    assert int(fn.loc["sem_open", "held"]) == held  # beside the time: what was taken out
    wide = dict(os.environ, COLUMNS="250")  # no cell cut short
    r = iotrace("report", str(t.dir), env=wide)
    assert "the stracer held the app" in r.stdout, r.stdout
    heads = _table_heads(r.stdout, "function")  # the Functions and Metadata tables: a `held`
    assert len(heads) == 2, heads  # column beside the time where stops fell in the calls
    for head, row in heads:
        assert head[-1] == "held", head
        assert row[0] == "sem_open" and row[-1] == fmt_time(held), (row, held)
    plain = trace(prog, name + "-p", extra=("--no-stracer",))
    assert len(load(plain.dir).stops) == 0
    out = iotrace("report", str(plain.dir), env=wide).stdout
    assert "the stracer held" not in out
    heads = _table_heads(out, "function")
    assert len(heads) == 2 and all("held" not in h for h, _ in heads), heads  # no holds: none


def test_iotrace_run_imports_only_what_it_needs(tmp_path):
    """`iotrace run` is paid per run and per rank: numpy and pandas (the readers'), cffi's C
    parser (cached), importlib.resources and OpenSSL (secrets) cost it ~150 ms of CPU;
    dataclasses (inspect: ~13 ms, and ~1 ms per class: iotrace.record instead), shutil (bz2,
    lzma: argparse's help width) and the read filters (iotrace.select) ~20 ms more.  The only
    Python of a full run started by the launcher is its stracer, which imports no argparse,
    nor typing (~2 ms: annotations only, under TYPE_CHECKING), json (~1.4 ms: the readers') or
    mmap (~0.5 ms: iotrace.elf's, when a file's symbols are read, not for `true`), nor
    datetime.py's pure-Python body (~1.5 ms: msgpack's, stracer/boot.py), nor signal.py's enums
    (~0.7 ms: _signal is what it uses, stracer/boot.py), nor run.py and the shim's lookup (~0.4
    ms: the signals it was given are iotrace.signals')."""
    import shutil
    import sys

    iot = shutil.which("iotrace", path=os.path.dirname(sys.executable))
    env = dict(os.environ, IOTRACE_CACHE=str(tmp_path / "cache"), PYTHONPROFILEIMPORTTIME="1")
    for n in range(2):  # the first run parses the stracer's cdefs and caches them
        r = subprocess.run([iot, "run", "-o", str(tmp_path / f"t{n}"), "--", "true"], env=env,
                           capture_output=True, text=True)  # fmt: skip
        assert r.returncode == 0, r.stderr
    mods = {ln.split("|")[-1].strip() for ln in r.stderr.splitlines() if "import time:" in ln}
    assert "iotrace.stracer.launch" in mods  # the stracer ran
    heavy = {"numpy", "pandas", "pycparser", "importlib.resources", "_hashlib", "secrets",
             "dataclasses", "inspect", "shutil", "iotrace.select", "argparse", "iotrace.cli",
             "typing", "json", "mmap", "datetime", "signal", "iotrace.run",
             "iotrace.shim"}  # fmt: skip
    assert not heavy & mods, heavy & mods


def test_libc_frames_are_named_as_libunwind_names_them():
    """The stracer names libc's frames from libc's symbol tables (elf.function_at) instead of
    libunwind-ptrace's unw_get_proc_name, which maps libc again for each frame: every address
    sampled across this process's libc gets the name libunwind gives it (the oracle: a local
    libunwind cursor moved to that address)."""
    import ctypes

    from iotrace.elf import function_at

    maps = [ln.split() for ln in open("/proc/self/maps") if ln.rstrip().endswith("libc.so.6")]
    path = maps[0][5]
    base = int(maps[0][0].split("-")[0], 16)  # libc's first mapping: file offset 0
    lo, hi = (int(x, 16) for x in next(m for m in maps if "x" in m[1])[0].split("-"))
    unw = ctypes.CDLL("libunwind.so.8")
    ctx, cur = ctypes.create_string_buffer(4096), ctypes.create_string_buffer(8 * 256)
    assert unw._Ux86_64_getcontext(ctx) == 0 and unw._ULx86_64_init_local(cur, ctx) == 0
    buf, off = ctypes.create_string_buffer(256), ctypes.c_uint64()
    compared = 0
    for ip in range(lo, hi, 613):  # ~2,500 addresses, a step that is not a power of two
        assert unw._ULx86_64_set_reg(cur, 16, ctypes.c_uint64(ip)) == 0  # UNW_REG_IP
        if unw._ULx86_64_get_proc_name(cur, buf, 256, ctypes.byref(off)) != 0:
            continue
        # this cursor's address is a return address: libunwind names the call's (ip - 1), as
        # the stracer asks for every frame but the first (unwind.AddressSpace.unwind)
        assert function_at(path, ip - 1 - base) == buf.value.decode(), hex(ip - base)
        compared += 1
    assert compared > 1000


def test_call_sites_unwind_as_libunwind_ptrace_unwinds_them():
    """stracer/_unwind.c (a libunwind-ptrace context kept per module, the tracee's memory read
    by pages) finds the frames libunwind-ptrace's own accessors find: a program stopped inside
    a comparator called by libc's qsort (libc and the program alternate up the stack), unwound
    both ways, twice each (the second time from the contexts and rules kept)."""
    from iotrace.stracer import _ffi
    from iotrace.stracer.unwind import AddressSpace

    assert _ffi.unwind_helper() is not None
    proc = subprocess.Popen([build("unw_deep")])
    try:
        _, st = os.waitpid(proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(st)
        assert _ffi.ptrace(_ffi.PTRACE_SEIZE, proc.pid) == 0
        assert _ffi.ptrace(_ffi.PTRACE_INTERRUPT, proc.pid) == 0
        os.waitpid(proc.pid, 0x40000000)  # __WALL: the ptrace stop
        got = {}
        for helper in (True, False):
            aspace = AddressSpace(proc.pid, helper)
            assert (aspace.helper is not None) == helper
            got[helper] = [aspace.unwind(proc.pid) for _ in range(2)]
            aspace.close()
        assert got[True][0] == got[True][1] == got[False][0] == got[False][1]
        mods = [os.path.basename(f.module or "") for f in got[True][0]]
        switches = sum(a != b for a, b in itertools.pairwise(mods))
        assert mods[0] == "libc.so.6" and switches >= 4, mods
    finally:
        proc.kill()
        proc.wait()


def test_the_loaders_mappings_of_a_library_do_not_stop(tmp_path):
    """A library's load inside the shim's dlopen: the loader's own syscalls are covered stops
    but its mappings of the library (MAP_PRIVATE|MAP_DENYWRITE) are let through by the filter
    (stracer/bpf.py).  strace is the oracle: the stops dlopen(libm) adds over a dlopen of the
    already loaded libc are the table's syscalls strace sees it add, less those mappings (8 of
    12 on glibc 2.36: ld.so.cache and libm opened, read or mapped, and closed)."""
    from test_cookie import counts

    from iotrace.calls import SYSCALLS

    exe = build("dl_lib", "-ldl")
    table = ",".join(s.name for s in SYSCALLS)
    stops, seen, denywrite = {}, {}, {}
    for lib in ("libm.so.6", "libc.so.6"):
        r = iotrace("run", "-o", str(tmp_path / lib), "--", str(exe), lib, cwd=tmp_path)
        assert r.returncode == 0 and r.stdout == "loaded\n", r.stderr
        stops[lib] = counts(r.stderr)["covered"]
        out = tmp_path / f"{lib}.strace"
        subprocess.run(["strace", "-qq", "-o", str(out), "-e", f"trace={table}", str(exe), lib],
                       check=True, capture_output=True)  # fmt: skip
        lines = [ln for ln in out.read_text().splitlines() if "MAP_ANONYMOUS" not in ln]
        seen[lib] = len(lines)
        denywrite[lib] = sum("MAP_DENYWRITE" in ln for ln in lines)
    added = seen["libm.so.6"] - seen["libc.so.6"]
    mappings = denywrite["libm.so.6"] - denywrite["libc.so.6"]
    assert mappings >= 3, (seen, denywrite)
    assert stops["libm.so.6"] - stops["libc.so.6"] == added - mappings, (stops, seen, denywrite)


def _execs(cmd: list[str], tmp_path, env: dict[str, str] | None = None) -> tuple[list[str], str]:
    """The programs a command execs (strace, the oracle), and its stderr."""
    log = tmp_path / "execs.strace"
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-e", "signal=none",
                        "-o", str(log), *cmd], capture_output=True, text=True, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return [ln.split('"')[1] for ln in log.read_text().splitlines() if "execve(" in ln], r.stderr


def test_a_run_with_the_shim_alone_starts_no_python(tmp_path):
    """`iotrace run --no-stracer` is the C launcher's alone (launcher/): a Python interpreter
    and the modules `run` needs cost ~55 ms of CPU against a budget of +20 ms per run.  What
    the launcher cannot decide itself (-e, --path) goes through Python, which hands the run back
    to the launcher: one way to run with the shim alone."""
    import shutil
    import sys

    iot = shutil.which("iotrace", path=os.path.dirname(sys.executable))
    out = tmp_path / "t"
    execs, err = _execs([iot, "run", "--no-stracer", "-o", str(out), "--", "true"], tmp_path)
    assert execs == [iot, shutil.which("true")], execs
    assert "iotrace: the trace explains 100.0% of the" in err, err
    assert f"iotrace: trace written to {out}" in err
    # from Python (an option it decides): back to the launcher; `python -m iotrace` is the
    # `iotrace` command (its install check first: __main__.py)
    cmd = [sys.executable, "-m", "iotrace", "run", "--no-stracer", "-e", "trace=read", "-o",
           str(tmp_path / "e"), "--", "cat", "/etc/hostname"]  # fmt: skip
    execs, err = _execs(cmd, tmp_path)
    py = os.path.join(os.path.dirname(iot), "iotrace-py")
    assert execs == [sys.executable, iot, py, iot, shutil.which("cat")], execs
    from iotrace.tracefile import read_log

    (log,) = (tmp_path / "e").glob("*.iot")
    fns = {read_log(log).functions[e[1]] for e in read_log(log).events}
    assert fns == {"read"}, fns


def test_a_known_mpi_launcher_s_libraries_are_not_read(tmp_path):
    """`iotrace run -- mpirun ...` picks the shim of the first command word linking an MPI
    (launcher/mpi.c); Open MPI's mpirun (orterun) links none, by name it is Open MPI's: its
    eleven libraries are not read for it (before: ~40% of the launcher's system calls before the
    run, 1,387 -> 1,011), and the shim is the same."""
    import shutil
    import sys

    mpirun = shutil.which("mpirun")
    if mpirun is None or not os.path.realpath(mpirun).endswith("/orterun"):
        pytest.skip("needs Open MPI's mpirun")
    iot = shutil.which("iotrace", path=os.path.dirname(sys.executable))
    log = tmp_path / "launcher.strace"
    # the launcher alone (no -f): what it reads to choose the shim; the command prints it
    r = subprocess.run(["strace", "-qq", "-e", "trace=openat", "-o", str(log), iot, "run",
                        "--no-stracer", "-o", str(tmp_path / "t"), "--", "sh", "-c",
                        'echo "$LD_PRELOAD"', mpirun], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert os.path.basename(r.stdout.split(":")[0].strip()) == "libiotrace.so", r.stdout
    opened = [ln.split('"')[1] for ln in log.read_text().splitlines() if '"' in ln]
    assert not [p for p in opened if "libopen-" in p or "libhwloc" in p], opened


def test_a_full_run_starts_python_only_for_its_stracer(tmp_path):
    """A full run is the launcher's too (the trace directory, the environment, the signals, the
    run record, the closing lines: one way, in C): the one Python it starts is the stracer
    (iotrace-stracer), which traces and says the end line."""
    import shutil
    import sys

    iot = shutil.which("iotrace", path=os.path.dirname(sys.executable))
    out = tmp_path / "t"
    # strace lets go of a process at its execve (-b): the stracer, once started, can trace
    log = tmp_path / "execs.strace"
    r = subprocess.run(["strace", "-f", "-b", "execve", "-qq", "-e", "trace=execve", "-e",
                        "signal=none", "-o", str(log), iot, "run", "-o", str(out), "--",
                        "true"], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    execs = [ln.split('"')[1] for ln in log.read_text().splitlines() if "execve(" in ln]
    assert execs == [iot, iot + "-stracer"], execs
    err = r.stderr
    assert "iotrace: the trace explains 100.0% of the" in err, err
    assert f"iotrace: trace written to {out}" in err
    names = sorted(p.suffix for p in out.iterdir())
    assert names == ["", ".iot", ".json", ".stracer"], names


def test_a_run_whose_stracer_cannot_start_goes_on_in_the_launcher(tmp_path):
    """Under another ptracer (here strace) the stracer cannot attach: the launcher, which
    started it, runs the command with the shim alone in the directory it made for the run (no
    Python but the stracer's)."""
    import shutil
    import sys

    iot = shutil.which("iotrace", path=os.path.dirname(sys.executable))
    out = tmp_path / "t"
    execs, err = _execs([iot, "run", "-o", str(out), "--", "sh", "-c", "exit 0"], tmp_path)
    assert execs == [iot, iot + "-stracer", shutil.which("sh")], execs
    assert "iotrace: no stracer: ptrace not permitted" in err, err
    assert "iotrace: the trace explains 100.0% of the" in err, err
    names = sorted(p.suffix for p in out.iterdir())
    assert names == ["", ".iot", ".json"], names  # the marker, one log, one run record
