"""The stracer: missed I/O found exactly, covered I/O not reported, fd mappings to the shim, and
the command behaving under ptrace as it does without."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import BUILD, PROGS, build, iotrace
from iotrace.stracer import bpf
from oracle import strace_bytes

from iotrace.calls import STDIO_ARENA, SYSCALLS


def missed(trace_dir: Path) -> list[dict]:
    r = iotrace("missed", str(trace_dir), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def pairs(groups: list[dict]) -> Counter:
    """(syscall, path) -> count."""
    c: Counter = Counter()
    for g in groups:
        c[(g["syscall"], g["path"])] += g["count"]
    return c


def functions(g: dict) -> list[str]:
    return [f["function"] for f in g["frames"] if f["function"]]


# ---- the filter ---------------------------------------------------------------------------


def test_filter_stops_exactly_the_table():
    cookie = 0x1234_5678_9ABC_DEF1
    prog = bpf.build_filter(cookie)
    io = {s.nr for s in SYSCALLS}
    for s in SYSCALLS:
        args = [0] * 6
        assert bpf.run_filter(prog, s.nr, tuple(args)) == bpf.RET_TRACE, s.name
        if s.cookie_slot is not None:  # the shim's own real calls carry the cookie
            args[s.cookie_slot] = cookie
            assert bpf.run_filter(prog, s.nr, tuple(args)) == bpf.RET_ALLOW, s.name
    for nr in range(460):
        if nr not in io and nr not in (bpf.SYS_GETPID, bpf.SYS_PTRACE, bpf.SYS_SECCOMP):
            assert bpf.run_filter(prog, nr) == bpf.RET_ALLOW, nr
    # issue 19: the cookie of the hottest calls is checked before the search (17-21 -> 7-9
    # instructions run); a non-I/O syscall runs 4 more (18 -> 22)
    by_name = {s.name: s for s in SYSCALLS}
    for name in ("read", "write", "lseek", "pread64", "pwrite64", "openat"):
        s, args = by_name[name], [3, 0, 4096, 0, 0, 0]
        args[s.cookie_slot] = cookie
        want = (bpf.RET_ALLOW, 7 + 2 * (s.cookie_slot - 3))
        assert bpf.filter_run(prog, s.nr, tuple(args)) == want, name
    assert bpf.filter_run(prog, 110)[1] <= 22  # getppid
    anon = (0, 4096, 3, 0x22, (1 << 64) - 1, 0)
    assert bpf.run_filter(prog, 9, anon) == bpf.RET_ALLOW  # anonymous mmap: not I/O
    # the loader's mapping of a library (MAP_PRIVATE|MAP_DENYWRITE): not the app's I/O
    assert bpf.run_filter(prog, 9, (0, 4096, 5, 0x802, 3, 0)) == bpf.RET_ALLOW
    assert bpf.run_filter(prog, 9, (0, 4096, 5, 0x02, 3, 0)) == bpf.RET_TRACE  # MAP_PRIVATE
    # a file mapping of the shim's: the cookie as its address hint, bit 63 set, 62 clear
    hint = bpf.mmap_hint(cookie)
    assert hint >> 62 == 0b10 and hint & ((1 << 62) - 1) == cookie & ((1 << 62) - 1)
    assert bpf.run_filter(prog, 9, (hint, 4096, 3, 0x01, 3, 0)) == bpf.RET_ALLOW
    for addr in (cookie, hint ^ 1, hint | 1 << 62):
        assert bpf.run_filter(prog, 9, (addr, 4096, 3, 0x01, 3, 0)) == bpf.RET_TRACE, hex(addr)
    assert bpf.run_filter(prog, 72, (3, 4, 0)) == bpf.RET_ALLOW  # fcntl F_SETFL
    assert bpf.run_filter(prog, 72, (3, 1030, 0)) == bpf.RET_TRACE  # F_DUPFD_CLOEXEC
    assert bpf.run_filter(prog, 39, (bpf.HELLO_MAGIC,)) == bpf.RET_TRACE  # the shim's hello
    assert bpf.run_filter(prog, 39) == bpf.RET_ALLOW
    assert bpf.run_filter(prog, 101, (0,)) == bpf.RET_TRACE  # ptrace(TRACEME): said why
    assert bpf.run_filter(prog, 101, (2,)) == bpf.RET_ALLOW  # PEEKDATA: not ours to see
    # an install of a seccomp filter or strict mode the shim did not make (preload/sandbox.c):
    # seccomp(STRICT / FILTER) and prctl(PR_SET_SECCOMP) without the cookie; nothing else
    for nr, args, want in (
        (317, (0, 0, 0), bpf.RET_TRACE),
        (317, (1, 0, 1234), bpf.RET_TRACE),
        (317, (1, 0, 1234, cookie), bpf.RET_ALLOW),  # the shim's own
        (317, (2, 0, 1234), bpf.RET_ALLOW),  # SECCOMP_GET_ACTION_AVAIL
        (157, (22, 2, 1234), bpf.RET_TRACE),
        (157, (22, 2, 1234, 0, 0, cookie), bpf.RET_ALLOW),  # the shim's own
        (157, (38, 1), bpf.RET_ALLOW),  # PR_SET_NO_NEW_PRIVS
    ):
        assert bpf.run_filter(prog, nr, args) == want, (nr, args)
    # read/write on a buffer in the stdio window: stdio's own flush or refill
    for nr in (0, 1):
        for buf, want in (
            (STDIO_ARENA, bpf.RET_ALLOW),
            (STDIO_ARENA + (1 << 32) - 1, bpf.RET_ALLOW),
            (STDIO_ARENA - 1, bpf.RET_TRACE),
            (STDIO_ARENA + (1 << 32), bpf.RET_TRACE),
        ):
            assert bpf.run_filter(prog, nr, (1, buf, 16)) == want, (nr, hex(buf))
    assert bpf.run_filter(prog, 18, (1, STDIO_ARENA, 16, 0)) == bpf.RET_TRACE  # pwrite: no


# ---- missed sets --------------------------------------------------------------------------


def test_raw_syscalls(trace):
    t = trace(build("st_raw"), "out")
    assert t.proc.returncode == 0, t.proc.stderr
    out = str(trace.work / "out")
    groups = missed(t.dir)
    assert pairs(groups) == Counter({("openat", out): 1, ("write", out): 1, ("close", out): 1})
    for g in groups:
        assert "raw_open" in functions(g) and "main" in functions(g)
        assert g["fd"] == 3 and g["pid"] == g["tid"]
    opened = next(g for g in groups if g["syscall"] == "openat")
    assert "O_CREAT" in opened["args"][2] and opened["ret"] == 3
    err = t.proc.stderr
    assert (
        f"iotrace: missed I/O: 3 syscalls not seen by the shim — openat, write, close on {out} "
        "at raw_open (st_raw.c:12) <- main (st_raw.c:19)"
    ) in err
    assert any(ln.endswith("; 4 B moved") for ln in err.splitlines() if "not seen" in ln), err
    assert f"openat on {out} at raw_open (st_raw.c:12)" in err  # at once, while it runs


def test_inline_asm_write(trace):
    t = trace(build("st_asm"), "out")
    assert t.proc.returncode == 0, t.proc.stderr
    groups = missed(t.dir)
    assert pairs(groups) == Counter({("write", str(trace.work / "out")): 1})
    assert "asm_write" in functions(groups[0])


def test_static_binary(trace):
    t = trace(build("st_static", "-static"), "out")
    assert t.proc.returncode == 0, t.proc.stderr
    out = str(trace.work / "out")
    # static glibc's start-up looks its own path up: not the app's code, but not the shim's
    # either (there is none), so it is missed too
    assert pairs(missed(t.dir)) == Counter(
        {("readlink", "/proc/self/exe"): 1, ("openat", out): 1, ("write", out): 1,
         ("close", out): 1}
    )  # fmt: skip


def _go_binary() -> Path:
    go = shutil.which("go")
    if not go:
        pytest.skip("go is not installed (Debian package golang-go)")
    out = BUILD / "st_go"
    src = PROGS / "st_go.go"
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        BUILD.mkdir(exist_ok=True)
        env = dict(os.environ, GOCACHE=str(BUILD / "gocache"), GO111MODULE="off")
        subprocess.run([go, "build", "-o", str(out), str(src)], check=True, env=env, timeout=300)
    return out


def test_go_program(trace):
    t = trace(_go_binary(), "out")
    assert t.proc.returncode == 0, t.proc.stderr
    out = str(trace.work / "out")
    groups = missed(t.dir)
    app = Counter({k: v for k, v in pairs(groups).items() if k[1] == out})
    assert app == Counter({("openat", out): 1, ("write", out): 1, ("close", out): 1})
    for g in groups:  # everything else is the Go runtime's own start-up
        if g["path"] != out:
            assert any(f.startswith("runtime.") for f in functions(g)), g


def test_io_uring(trace):
    t = trace(build("st_uring", "-luring"), "out")
    assert t.proc.returncode == 0, t.proc.stderr
    c = Counter()
    groups = missed(t.dir)
    for g in groups:
        if g["via"] is None:  # the ring's own syscalls
            assert g["path"] == "anon_inode:[io_uring]"
            c[g["syscall"]] += g["count"]
    # io_uring_wait_cqe enters the kernel again only if the completion is not there yet
    assert c.pop("io_uring_enter") in (1, 2)
    assert c == Counter({"io_uring_setup": 1, "mmap": 2, "close": 1})
    # and the write it submitted, decoded from the ring (tests/test_engines.py: fio)
    ops = [g for g in groups if g["via"] == "io_uring"]
    assert [(g["syscall"], g["path"], g["fd"], g["args"][2:], g["ret"]) for g in ops] == [
        ("pwrite64", str(trace.work / "out"), 3, [6, 0], 6)
    ]


def test_mmap_io(trace):
    t = trace(build("st_mmap"), "out")
    assert t.proc.returncode == 0, t.proc.stderr
    assert pairs(missed(t.dir)) == Counter({("mmap", str(trace.work / "out")): 1})
    assert (trace.work / "out").read_bytes()[:5] == b"mmap\n"


def test_io_inside_a_wrapped_call_is_named_by_its_callers(trace):
    """setlocale is wrapped (the shim measures it): the locale files glibc reads inside are
    libc-internal, each site keyed by its chain up to the app's frame, past the shim's wrapper
    (its return address is every caller's: two's LC_NUMERIC was named after one)."""
    if not Path("/usr/lib/locale/C.utf8/LC_NUMERIC").exists():
        pytest.skip("no C.UTF-8 locale files")
    t = trace(build("st_locale"))
    assert t.proc.returncode == 0 and t.proc.stdout == "C.UTF-8\n", t.proc.stderr
    r = iotrace("missed", "--all", "--json", str(t.dir))
    assert r.returncode == 0, r.stderr
    callers = {}
    for g in json.loads(r.stdout):
        cat = next((c for c in ("LC_CTYPE", "LC_TIME", "LC_NUMERIC") if c in (g["path"] or "")), "")
        if cat and g["syscall"] == "openat":
            callers.setdefault(cat, set()).update({"one", "two"} & set(functions(g)))
    assert callers == {"LC_CTYPE": {"one"}, "LC_TIME": {"two"}, "LC_NUMERIC": {"two"}}, callers


def test_child_exec_with_empty_environment(trace):
    t = trace(build("st_exec"), "out")
    assert t.proc.returncode == 0, t.proc.stderr
    out = str(trace.work / "out")
    groups = missed(t.dir)
    assert pairs(groups) == Counter({("openat", out): 1, ("write", out): 1, ("close", out): 1})
    run = json.loads(next(t.dir.glob("iotrace-run.*.json")).read_text())
    assert {g["pid"] for g in groups} != {run["pid"]}  # the exec'd child, not the parent


@pytest.mark.parametrize("how", ["hidden", "broken"])
def test_a_child_that_cannot_load_the_shim_is_missed_io(trace, how):
    """LD_PRELOAD names the shim, but the loader cannot load it in that process: a container or
    chroot without its file (hidden: a tmpfs over its directory, in a mount namespace), or a
    file that is no object it can load (broken). The loader leaves it out with a line on stderr
    and the program's calls to wrapped functions reach libc straight: missed I/O, said on the
    console, not libc's own I/O (was: "inside libc functions the shim does not wrap", nothing
    missed)."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "-m", "true"]).returncode:
        pytest.skip("unshare -m is not permitted here")
    prog = build("st_exec")
    hide = ('mount -t tmpfs none "$(dirname "$shim")"' if how == "hidden" else
            'echo junk > ../junk.so && mount --bind ../junk.so "$shim"')  # fmt: skip
    script = (f'export shim=$(printf %s "$LD_PRELOAD" | tr " :" "\\n" | grep libiotrace); '
              f"unshare -m sh -c '{hide} && exec {prog} out child'")  # fmt: skip
    t = trace("sh", "-c", script, env={**os.environ, "LC_ALL": "C"})
    assert t.proc.returncode == 0, t.proc.stderr
    out = str(trace.work / "out")
    assert "cannot be preloaded" in t.proc.stderr
    got = pairs(missed(t.dir))
    assert got[("openat", out)] == got[("write", out)] == got[("close", out)] == 1, got
    assert "runs without the shim" in t.proc.stderr or how == "broken", t.proc.stderr
    end = [ln for ln in t.proc.stderr.splitlines() if "the trace explains" in ln]
    assert end and ("explains 100.0% of" in end[0] or how == "broken"), end


def test_four_threads(trace):
    t = trace(build("st_threads"), trace.work)
    assert t.proc.returncode == 0, t.proc.stderr
    groups = missed(t.dir)
    expect = Counter()
    for i in range(4):
        p = str(trace.work / f"t{i}.out")
        expect.update({("openat", p): 1, ("write", p): 1, ("close", p): 1})
    assert pairs(groups) == expect
    tids = {g["tid"] for g in groups}
    assert len(tids) == 4 and all(g["pid"] not in tids for g in groups)
    # one call site per syscall, whatever the thread; the console says it once
    assert t.proc.stderr.count("syscalls not seen by the shim") == 1


def test_fork_without_exec(trace):
    t = trace(build("st_fork"), "out")
    assert t.proc.returncode == 0, t.proc.stderr
    groups = missed(t.dir)
    out = str(trace.work / "out")
    assert pairs(groups) == Counter({("write", out): 2})
    assert len({g["pid"] for g in groups}) == 2
    child_writes = [e for e in t.events("write") if e["path"] == out]
    assert len(child_writes) == 1  # the child's libc write: covered, logged by the shim


def test_write_from_signal_handler(trace):
    t = trace(build("st_signal"), "out")
    assert t.proc.returncode == 0, t.proc.stderr
    groups = missed(t.dir)
    assert pairs(groups) == Counter({("write", str(trace.work / "out")): 1})
    assert "handler" in functions(groups[0])


def test_printf_without_newline_is_not_missed(trace):
    t = trace(build("st_printf"))
    assert t.proc.returncode == 0, t.proc.stderr
    assert t.proc.stdout == "no newline"
    assert missed(t.dir) == []
    assert "missed I/O" not in t.proc.stderr


def test_hot_loop_is_one_console_line(trace):
    """3,000 missed writes of one call site: its first occurrence, a count line at most every
    console.EVERY seconds (as many as the run's length allows: 3 lines in all was not certain
    under load), the summary."""
    from iotrace.stracer.console import EVERY

    prog = build("st_loop")
    began = time.monotonic()
    t = trace(prog, "3000")
    took = time.monotonic() - began
    assert t.proc.returncode == 0, t.proc.stderr
    assert pairs(missed(t.dir)) == Counter({("write", "/dev/null"): 3000})
    lines = [ln for ln in t.proc.stderr.splitlines() if "missed I/O" in ln]
    assert lines[0].endswith("; 1 B moved") and "3000 syscalls not seen by the shim" in lines[-1]
    counts = lines[1:-1]
    assert all(re.search(r" more \(\d+ in all\) at main <- ", ln) for ln in counts), lines
    assert len(counts) <= took / EVERY, (took, lines)


def test_libc_internal_io_is_recorded_not_missed(trace):
    """tzset reads the zone file inside libc, where no wrapper sees it: libc-internal, named by
    the function, recorded as events with their bytes, but no warning and no `missed` entry;
    the raw syscall(2) write beside it is the one bypass."""
    from iotrace.analyzer import load

    zone = trace.work / "zone"
    shutil.copy("/usr/share/zoneinfo/Europe/Berlin", zone)
    t = trace(build("st_libc"), "out", env=dict(os.environ, TZ=str(zone)))
    assert t.proc.returncode == 0, t.proc.stderr
    assert t.proc.stdout == "-3600\n"
    out = str(trace.work / "out")
    assert pairs(missed(t.dir)) == Counter({("write", out): 1})
    warned = [ln for ln in t.proc.stderr.splitlines() if "missed I/O" in ln]
    assert len(warned) == 2 and all(f"write on {out} at raw_write" in ln for ln in warned)
    assert ", 1 missed, 7 inside libc functions the shim does not wrap" in t.proc.stderr
    r = iotrace("missed", str(t.dir), "--all", "--json")
    libc = [g for g in json.loads(r.stdout) if g["class"] == "libc"]
    assert {g["libc_function"] for g in libc} == {"tzset"}
    assert {g["path"] for g in libc} == {str(zone)}
    assert "load_zone" in functions(libc[0])
    text = iotrace("missed", str(t.dir), "--all").stdout
    assert text.startswith("7 inside libc's tzset at load_zone (st_libc.c:13) <- main")
    ev = load(t.dir).events
    z = ev[ev["path"] == str(zone)]
    load_ev = z[z["function"] == "tzset"]  # the shim's event of the load (path: TZ)
    assert len(load_ev) == 1 and set(load_ev["class"]) == {"covered"}
    z = z[z["function"] != "tzset"]
    assert set(z["class"]) == {"libc"} and not z["missed"].any()
    want, _ = strace_bytes(
        [str(build("st_libc")), "out2"], trace.work, dict(os.environ, TZ=str(zone))
    )
    assert z.loc[z["function"] == "read", "bytes"].sum() == want[("read", str(zone))] > 0
    w = ev[(ev["path"] == out) & (ev["source"] == "stracer")]
    assert w["class"].tolist() == ["bypass"] and w["missed"].all()
    assert set(ev.loc[ev["source"] == "shim", "class"]) == {"covered"}


def test_libc_internal_sites_are_named_by_their_own_function(trace):
    """One inner libc helper (__open_nocancel, __read_nocancel, readdir's getdents64) reached
    from fts_open, fts_read, fts_close, sysconf (from two callers) and tzset: each syscall is
    named by the libc function the program called and by that call's caller, as the program's
    source and libc's symbol table say.  The old key (the ip and the word at sp) named them all
    after the first ("inside libc's fts64_open" for sysconf's and tzset's reads)."""
    import ctypes

    zone = trace.work / "zone"
    shutil.copy("/usr/share/zoneinfo/Europe/Berlin", zone)
    tree = trace.work / "d"
    for sub in ("a", "b"):
        (tree / sub).mkdir(parents=True)
        (tree / sub / "f").write_text("x")
    t = trace(build("st_sites"), str(tree), env=dict(os.environ, TZ=str(zone)))
    assert t.proc.returncode == 0, t.proc.stderr
    assert t.proc.stdout.split()[3] == "-3600"
    groups = json.loads(iotrace("missed", str(t.dir), "--all", "--json").stdout)
    libc = ctypes.CDLL("libc.so.6")

    def entry(name: str) -> int:  # the address the symbol table gives a libc function
        return ctypes.cast(getattr(libc, name), ctypes.c_void_p).value or 0

    def named(path: str, syscall: str) -> set[tuple[int, str]]:
        """(the named libc function's address, the program's function that called it)"""
        out = set()
        for g in groups:
            if g["path"] == path and g["syscall"] == syscall:
                assert g["class"] == "libc", g
                mods = [os.path.basename(f["module"]) for f in g["frames"]]
                # the program's function: past libc's frames and the shim's (libiotrace)
                caller = next(f["function"] for f, m in zip(g["frames"], mods, strict=True)
                              if not m.startswith(("libc", "libio")))  # fmt: skip
                out.add((entry(g["libc_function"]), caller))
        return out

    cpu = "/sys/devices/system/cpu"
    assert named(f"{cpu}/possible", "openat") == {(entry("sysconf"), "cpus")}
    assert named(f"{cpu}/possible", "read") == {(entry("sysconf"), "cpus")}
    assert named(f"{cpu}/online", "read") == {(entry("sysconf"), "online")}
    assert named(str(zone), "read") == {(entry("tzset"), "zone")}
    assert named(str(tree / "a"), "getdents64") == {(entry("fts_read"), "walk")}
    assert named(str(tree), "openat") == {(entry("fts_read"), "walk")}
    assert named(str(trace.work), "openat") == {(entry("fts_open"), "walk")}
    assert named(str(trace.work), "close") == {(entry("fts_close"), "walk")}
    # the text: one line per libc function and caller
    heads = [ln for ln in iotrace("missed", str(t.dir), "--all").stdout.splitlines()
             if not ln.startswith(" ")]  # fmt: skip
    said = Counter(ln.split(" at ")[0].split(" ", 1)[1] + " at " + ln.split(" at ")[1].split()[0]
                   for ln in heads)  # fmt: skip
    assert said["inside libc's sysconf at cpus"] == said["inside libc's sysconf at online"] == 1
    assert said["inside libc's tzset at zone"] == 1
    assert sum(n for k, n in said.items() if k.startswith("inside libc's fts")) == 3, heads


def test_missed_json_and_text(trace):
    t = trace(build("st_raw"), "out")
    groups = missed(t.dir)
    for g in groups:
        assert {"pid", "tid", "syscall", "count", "path", "fd", "frames"} <= g.keys()
    r = iotrace("missed", str(t.dir))
    assert r.returncode == 0
    assert r.stdout.splitlines()[0].startswith("3 missed at raw_open (st_raw.c:12) <- main")


# ---- fd mappings ----------------------------------------------------------------------------


def test_wrapped_calls_on_raw_descriptors_carry_paths(trace):
    t = trace(build("st_fdpath"), trace.work)
    assert t.proc.returncode == 0, t.proc.stderr
    a, b, c = (str(trace.work / f"{x}.out") for x in "abc")
    writes = [(e["fd"], e["path"]) for e in t.events("write") if e["fd"] not in (1, 2)]
    assert writes == [(3, a), (4, a), (5, a), (6, b), (6, c)]


def test_no_stracer(trace):
    t = trace(build("st_raw"), "out", extra=("--no-stracer",))
    assert t.proc.returncode == 0, t.proc.stderr
    assert "missed I/O" not in t.proc.stderr
    r = iotrace("missed", str(t.dir))
    assert r.returncode == 2 and "no stracer log" in r.stderr


# ---- the command under ptrace ---------------------------------------------------------------


def test_exit_status_and_signal_death(trace):
    prog = build("st_sleep")
    assert trace(prog, "exit", "3").proc.returncode == 3
    t = trace(prog, "kill", str(int(signal.SIGTERM)))
    assert t.proc.returncode == -signal.SIGTERM


def test_nonexistent_command(trace):
    t = trace("/nonexistent/prog")
    assert t.proc.returncode == 127
    assert t.proc.stderr.strip().count("\n") == 0 and "not found" in t.proc.stderr


def test_thread_exec_does_not_hang(trace):
    t = trace(build("st_execthr"))
    assert t.proc.returncode == 0, t.proc.stderr


def _start(tmp_path: Path, *cmd: str, session: bool = False) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "tr"
    p = subprocess.Popen(
        [sys.executable, "-m", "iotrace", "run", "-o", str(out), "--", *cmd],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        start_new_session=session,
    )  # fmt: skip
    return p, out


def _wait_for(pred, timeout: float = 15) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def _app_pid(out: Path) -> int:
    _wait_for(lambda: out.exists() and any(out.glob("*.iot")))
    return int(next(out.glob("*.iot")).name.split(".")[-2])


def test_job_control(tmp_path):
    p, out = _start(tmp_path, str(build("st_sleep")), "stop")
    pid = _app_pid(out)

    def state() -> str:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]

    # stopped by its own SIGSTOP, and stays stopped (a traced group-stop shows as "t")
    _wait_for(lambda: state() in "Tt")
    time.sleep(0.2)
    assert state() in "Tt"
    os.kill(pid, signal.SIGCONT)
    stdout, stderr = p.communicate(timeout=30)
    assert p.returncode == 0, stderr
    assert stdout == "done\n"


def test_sigterm_and_ctrl_c_reach_the_command(tmp_path):
    p, out = _start(tmp_path / "a" if (tmp_path / "a").mkdir() is None else tmp_path,
                    str(build("st_sleep")), "wait", "30")  # fmt: skip
    _app_pid(out)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=30)
    assert p.returncode == -signal.SIGTERM
    (tmp_path / "b").mkdir()
    p, out = _start(tmp_path / "b", str(build("st_sleep")), "wait", "30", session=True)
    _app_pid(out)
    os.killpg(p.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    p.communicate(timeout=30)
    assert p.returncode == -signal.SIGINT


def test_stracer_killed(tmp_path):
    p, out = _start(tmp_path, str(build("st_sleep")), "wait", "30")
    app = _app_pid(out)
    log = next(out.glob("*.stracer"))
    stracer = int(log.name.split(".")[-2])
    os.kill(stracer, signal.SIGKILL)
    _, stderr = p.communicate(timeout=30)
    assert "ERROR: the stracer" in stderr and "killed" in stderr
    assert p.returncode == -signal.SIGKILL
    # the end line is still the stracer's code's (iotrace-stracer --end-line, from the log it
    # left), not the launcher's shim-logs-only one
    from iotrace.kio import run_line

    assert f"iotrace: {run_line(out, os.uname().nodename, app)}\n" in stderr, stderr
    r = iotrace("missed", str(out))
    assert r.returncode == 0
    assert "did not finish" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace to hold the ptrace slot")
def test_no_ptrace_falls_back_to_the_shim(tmp_path):
    # under strace -f the command already has a tracer: the stracer cannot seize it
    out = tmp_path / "tr"
    r = subprocess.run(
        ["strace", "-f", "-o", os.devnull, "-e", "trace=none", sys.executable, "-m", "iotrace",
         "run", "-o", str(out), "--", str(build("st_raw")), str(tmp_path / "x")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    notes = [ln for ln in r.stderr.splitlines() if "no stracer" in ln]
    assert len(notes) == 1 and "shim alone" in notes[0]
    assert any(out.glob("*.iot")) and not any(out.glob("*.stracer"))


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")
def test_tracer_inside_the_job_is_told_why(trace):
    t = trace("strace", "-o", os.devnull, "true")
    assert t.proc.returncode != 0
    lines = [ln for ln in t.proc.stderr.splitlines() if "uses ptrace" in ln]
    assert len(lines) == 1 and "--no-stracer" in lines[0]
    assert trace("strace", "-o", os.devnull, "true", extra=("--no-stracer",)).proc.returncode == 0


def test_fd_path_cache_follows_every_change(trace):
    """The C loop caches fd -> path; every way a descriptor's file can change between two raw
    writes on the same number must show in the next write's path (st_fdcache.c)."""
    from iotrace.analyzer import load

    t = trace(build("st_fdcache"))
    assert t.proc.returncode == 0, t.proc.stderr
    ev = load(t.dir).events
    w = ev[(ev["source"] == "stracer") & (ev["function"] == "write")]
    got = [Path(p).name for p in w["path"]]
    want = ["one"] * 3 + ["two"] * 3 + ["three", "four", "five", "six", "seven", "eight"]
    assert got == want
    for name, data in zip(("one", "two", "three", "eight"), ("111", "222", "3", "8"), strict=True):
        assert (trace.work / name).read_text() == data


def _missed_records(trace_dir: Path) -> list[list]:
    """The stracer's MISSED records, times out, pids and tids by first appearance, socket
    inodes out."""
    from iotrace.stracer import slog

    ids: dict[int, int] = {}
    out = []
    for log in slog.log_files(trace_dir):
        for r in slog.read(log).missed:
            r = list(r)
            r[1] = r[11] = 0
            r[2], r[3] = (ids.setdefault(x, len(ids)) for x in r[2:4])
            if isinstance(r[10], str) and r[10].startswith("socket:["):
                r[10] = "socket"
            out.append(r)
    return out


def test_libc_internal_paths_in_the_c_loop(tmp_path):
    """Libc-internal syscalls with paths and descriptors at a known call site are recorded by
    the C loop, not Python (st_libcpath.c: NSS, the time zone, sysconf, scandir on relative
    paths, a dirfd, a name that is not UTF-8): the records are the very ones Python writes
    (IOTRACE_STRACER_PYREC=1), and the repeats take no stop through Python."""
    prog = build("st_libcpath")
    env = {k: v for k, v in os.environ.items() if k != "TZ"}  # localtime stats /etc/localtime
    work = tmp_path / "work"
    work.mkdir()
    for pyrec, n in (("0", 5), ("1", 5), ("0", 2)):  # setarch -R: the same addresses
        e = dict(env, IOTRACE_STRACER_PYREC=pyrec)
        out = f"../t{pyrec}{n}"
        cmd = ["setarch", "-R", sys.executable, "-m", "iotrace", "run", "-o", out, "--", prog]
        r = subprocess.run([*cmd, str(n)], cwd=work, env=e, capture_output=True, text=True,
                           timeout=120)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert r.stdout == f"{7 * n}\n"
    c, py = (_missed_records(tmp_path / f"t{k}5") for k in "01")
    assert c == py
    paths = {r[10] for r in c}
    assert {f"{work}/sub/inner", "/etc/passwd", "/etc/localtime"} <= paths
    # "missing/..": made absolute lexically, as the shim does, though the open fails
    assert [r[6:8] for r in c if r[4] == "openat" and r[10] == str(work)] == [[-1, 2]] * 5
    assert f"{work}/sub/\udcff\udcfe" in paths  # the bytes as they are (surrogateescape)
    assert {r[4] for r in c} >= {"openat", "close", "newfstatat", "lseek", "socket", "connect"}
    from iotrace.stracer import slog

    def by_python(trace_dir: Path) -> int:
        [log] = slog.log_files(trace_dir)
        return sum(c.get("python", 0) for c in slog.read(log).counts.values())

    # each site's first syscall is Python's (a new site), its repeats are not: as many for 2
    # rounds as for 5; Python alone takes 15 more a round
    c5, c2, py5 = (by_python(tmp_path / f"t{k}") for k in ("05", "02", "15"))
    assert c5 == c2 and py5 - c5 >= 4 * 15, (c5, c2, py5)


def _stracer_reads(tmp_path: Path, prog: Path, n: int) -> tuple[int, int]:
    """(the stracer's process_vm_readv calls, the libc-internal syscalls it recorded) for one
    run of prog n (setarch -R: the same addresses, so the same reads for the same work), the
    stracer watched by strace -c from before the program starts."""
    d = tmp_path / f"n{n}"
    (d / "work").mkdir(parents=True)
    gate = d / "gate"
    os.mkfifo(gate)
    script = f"echo $IOTRACE_STRACER > {d}/pid; read x < {gate}; cd {d}/work && exec {prog} {n}"
    cmd = ["setarch", "-R", sys.executable, "-m", "iotrace", "run", "-o", "tr", "--"]
    p = subprocess.Popen([*cmd, "bash", "-c", script], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=d)  # fmt: skip
    _wait_for(lambda: (d / "pid").exists() and (d / "pid").read_text().strip())
    pid = (d / "pid").read_text().strip()
    cmd = ["strace", "-c", "-e", "trace=process_vm_readv", "-o", str(d / "c"), "-p", pid]
    s = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        assert s.stderr is not None and "attached" in s.stderr.readline()
    finally:
        gate.write_text("go\n")  # the command goes on whatever happened
    _, err = p.communicate(timeout=120)
    s.wait(timeout=30)
    assert p.returncode == 0, err
    calls = next(ln.split()[3] for ln in (d / "c").read_text().splitlines()
                 if ln.endswith("process_vm_readv"))  # fmt: skip
    libc = int(err.split(" inside libc functions")[0].split()[-1])
    return int(calls), libc


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")
def test_a_libc_internal_stop_reads_the_tracee_once(tmp_path):
    """A libc-internal syscall at a known site reads the tracee's memory once (the marker, the
    stack, the path: _loop.c stack_read), its chain's stack included: the first window is as
    wide as the site's chains went (sysconf's and an NSS lookup's lie 1-3 KiB up the stack;
    with the first 1 KiB only, each of their stops read the stack again)."""
    prog = build("st_libcpath")
    (r2, l2), (r12, l12) = (_stracer_reads(tmp_path, prog, n) for n in (2, 12))
    per = (r12 - r2) / (l12 - l2)  # the repeats: no new site, nothing of Python's
    assert l12 - l2 >= 10 * 20 and per <= 1.02, (r2, l2, r12, l12)


def test_addr2line_server_answers_as_one_run():
    """The stracer's kept-running addr2line gives what a one-shot run gives, address by address,
    and an unusable module gives nothing instead of waiting."""
    from iotrace.addr2line import Server, resolve

    exe = build("st_fdcache")
    nm = subprocess.run(["nm", str(exe)], capture_output=True, text=True, check=True).stdout
    addrs = {ln.split()[2]: int(ln.split()[0], 16) for ln in nm.splitlines()
             if ln.split()[-1] in ("main", "raw", "other")}  # fmt: skip
    assert set(addrs) == {"main", "raw", "other"}
    once = resolve(str(exe), addrs.values())
    server = Server(str(exe))
    try:
        for name, addr in addrs.items():
            got = server.lookup([addr])
            assert got == {addr: once[addr]} and got[addr][0] == name
            assert got[addr][1].endswith("st_fdcache.c") and got[addr][2] > 0
    finally:
        server.close()
    assert Server("/nonexistent").lookup([0x1000]) == {}


def test_console_folds_libraries_system_io():
    """Call sites that only touch system files or make sockets/eventfds are counted in one
    summary line, not announced; the first data syscall of a site announces it."""
    import io

    from iotrace.stracer.console import Console, is_system
    from iotrace.stracer.unwind import Frame

    assert is_system("openat", "/sys/devices/system/cpu/online")
    assert is_system("newfstatat", "/etc/hosts") and is_system("openat", "/dev")
    assert is_system("openat", "/usr/share/zoneinfo/Etc/UTC")
    assert is_system("eventfd2", "anon_inode:[eventfd]") and is_system("socket", "socket:[12]")
    assert not is_system("write", "socket:[12]") and not is_system("read", "pipe:[7]")
    assert not is_system("write", "/dev/null") and not is_system("write", "/dev/pts/3")
    assert not is_system("pwrite64", "/scratch/out") and not is_system("write", None)
    assert not is_system("openat", "/devices/x")  # only whole directory names

    out = io.StringIO()
    con = Console(lambda line: out.write(line + "\n"))
    hw = [Frame(0x10, "/lib/libhwloc.so", 0x10, "hwloc_read")]
    app = [Frame(0x20, "/bin/app", 0x20, "dump")]
    con.missed(1, 1, hw, "openat", "/sys/devices/system/cpu/online")
    con.missed(1, 1, hw, "read", "/sys/devices/system/cpu/online", n=3)
    assert out.getvalue() == ""
    con.missed(1, 2, app, "openat", "/dev/shm/x")
    con.missed(1, 2, app, "write", "/scratch/out")
    assert out.getvalue() == "iotrace: missed I/O: write on /scratch/out at dump [pid 1]\n"
    con.summary({"missed": 6})
    lines = out.getvalue().splitlines()
    assert (
        "2 syscalls not seen by the shim — openat, write on /dev/shm/x and 1 more at dump"
        in lines[1]
    )
    assert lines[2].startswith("iotrace: missed I/O: 4 more syscalls on system files")
    assert "at 1 call site," in lines[2]


@pytest.mark.parametrize("extra", [(), ("--no-stracer",)])
def test_posix_aio(trace, extra):
    """aio_write/aio_read/lio_listio are recorded when posted and when aio_return collects them;
    glibc's helper threads, started inside the wrapped call, do covered I/O, not missed; a
    refused lio_listio leaves nothing pending, an aiocb posted again replaces its uncollected
    request, and a SIGEV_THREAD callback's raw syscall is the app's (missed)."""
    t = trace(build("st_aio"), extra=extra)
    assert t.proc.returncode == 0, t.proc.stderr
    assert t.proc.stdout == f"{10 * 4096 + 7 + 3} 1 1\n"
    out = str(trace.work / "aio.out")
    ev = t.events("aio_write", "aio_read", "lio_listio", "aio_write_done", "aio_read_done")
    posted = [(e["fn"], e["offset"], e["req"], e["ret"]) for e in ev
              if not e["fn"].endswith("done")]  # fmt: skip
    assert posted == (
        [("aio_write", i * 4096, 4096, 0) for i in range(4)]
        + [("aio_read", i * 4096, 4096, 0) for i in range(4)]
        + [("lio_listio", i * 4096, 4096, 0) for i in (4, 5)]
        + [("lio_listio", 7777, 111, -1), ("aio_write", 0, 5, 0), ("aio_write", 0, 7, 0),
           ("aio_write", 3 * 4096, 3, 0)]
    )  # fmt: skip
    done = [(e["fn"], e["offset"], e["req"], e["ret"]) for e in ev if e["fn"].endswith("done")]
    assert sorted(done) == sorted(
        [("aio_write_done", i * 4096, 4096, 4096) for i in (0, 1, 2, 3, 4, 5)]
        + [("aio_read_done", i * 4096, 4096, 4096) for i in range(4)]
        + [("aio_write_done", 0, 7, 7), ("aio_write_done", 3 * 4096, 3, 3)]
    )
    assert {e["path"] for e in ev} == {out}
    if not extra:
        # the workers' pwrite are covered; the notification callback's raw pwrite64 is the app's
        assert pairs(missed(t.dir)) == Counter({("pwrite64", out): 1})


def test_go_call_sites_are_the_go_functions_and_lines(trace):
    """Every Go syscall goes through one stub called from one function: the call site comes
    from the frame-pointer chain, named by the binary's DWARF, one site per caller."""
    t = trace(_go_binary(), "out")
    assert t.proc.returncode == 0, t.proc.stderr
    out = str(trace.work / "out")
    app = {g["syscall"]: g for g in missed(t.dir) if g["path"] == out}
    lines = {}
    for name, g in app.items():
        main = [f for f in g["frames"] if f["function"] == "main.main"]
        assert main and main[0]["file"].endswith("st_go.go"), (name, g["frames"])
        lines[name] = main[0]["line"]
    assert lines == {"openat": 11, "write": 15, "close": 16}
    assert len({g["site"] for g in app.values()}) == 3
    assert "os.(*File).Write" in functions(app["write"])
    # the console names the Go functions and lines, not the syscall stubs
    assert f"missed I/O: write on {out} at internal/poll.(*FD).Write (fd_unix.go:" in t.proc.stderr
    assert "os.(*File).Write (file.go:" in t.proc.stderr
    assert "main.main (st_go.go:15)" in t.proc.stderr
