"""Filters when recording: `iotrace run -e trace=SET` and `--path GLOB` record exactly the
events an unfiltered run of the same program has that the filter selects, and the stracer still
counts every other call as covered and still reports the bypass."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Traced, build, iotrace

from iotrace.calls import FUNCTIONS, trace_set

PROG = "filt_mix"


def _key(e: dict) -> tuple[str, str, int]:
    return (e["fn"], Path(e["path"]).name if e["path"] else "", e["ret"])


def _events(t: Traced) -> list[tuple[str, str, int]]:
    assert t.proc.returncode == 0, t.proc.stderr
    return sorted(_key(e) for e in t.events())


@pytest.fixture
def unfiltered(trace) -> list[tuple[str, str, int]]:
    return _events(trace(build(PROG), extra=("--no-stracer",)))


@pytest.mark.parametrize(
    "spec",
    ["trace=%write", "trace=!%stdio", "trace=open,close,pread64", "%file", "trace=%desc,!read",
     "trace=%meta,%read"],
)  # fmt: skip
def test_trace_set_records_exactly_the_selected_calls(trace, unfiltered, spec: str) -> None:
    got = _events(trace(build(PROG), extra=("--no-stracer", "-e", spec)))
    names = trace_set([spec])
    assert got == [k for k in unfiltered if k[0] in names]
    assert got  # each spec selects some of this program's calls ...
    assert len(got) < len(unfiltered)  # ... and leaves some out


def test_two_options_add_and_remove(trace, unfiltered) -> None:
    got = _events(trace(build(PROG), extra=("--no-stracer", "-e", "%write", "-e", "!fprintf")))
    assert {k[0] for k in got} == {"write", "pwrite", "stdio_flush"}
    assert got == [k for k in unfiltered if k[0] in ("write", "pwrite", "stdio_flush")]


def test_path_globs(trace, unfiltered) -> None:
    got = _events(trace(build(PROG), extra=("--no-stracer", "--path", "*/a.txt")))
    assert got == [k for k in unfiltered if k[1] == "a.txt"]
    assert {k[0] for k in got} == {"open", "write", "pwrite", "close", "stat", "read"}
    # relative, two globs, and rename's second path; combined with -e
    got = _events(trace(build(PROG), extra=("--no-stracer", "--path", "b2.txt", "--path",
                                            "c.*", "-e", "!%stdio")))  # fmt: skip
    assert got == [("rename", "b.txt", 0)]


def test_relative_globs_are_cleaned_as_paths_are(trace) -> None:
    """`./a.txt` and `sub/../a.txt` name the recorded (absolute, clean) path, when recording
    and when reading (one rule: iotrace.select.absolute_glob)."""
    t = trace(build(PROG), extra=("--no-stracer", "--path", "./a.txt", "--path", "x/../c.txt"))
    got = _events(t)
    assert {k[1] for k in got} == {"a.txt", "c.txt"}, got
    work = t.dir.parent / "work"
    show = iotrace("show", str(t.dir), "--path", "./x/.././/c.txt", cwd=work)
    assert show.returncode == 0, show.stderr
    lines = show.stdout.splitlines()
    assert lines and all("c.txt" in ln for ln in lines) and any("fopen" in ln for ln in lines)


def _frames(log, stack: int | None) -> tuple[tuple[str, int], ...]:
    """A stack as (module file name, offset in it): comparable across runs."""
    out = []
    for pc in log.stacks[stack] if stack is not None else ():
        mod = next((m for m in log.modules if m[1] <= pc < m[2]), None)
        out.append((Path(mod[3]).name, pc - mod[0]) if mod else ("?", pc))
    return tuple(out)


def test_path_filter_takes_stacks_of_recorded_events_only(trace) -> None:
    """--path decides before the stack is taken: the log holds the stacks of the events kept
    and no other, and those stacks are the ones an unfiltered run records."""

    def stacks(t: Traced) -> list[tuple[str, int, tuple[tuple[str, int], ...]]]:
        assert t.proc.returncode == 0, t.proc.stderr
        (log,) = t.logs
        names = log.functions
        out = []
        for e in sorted(log.events, key=lambda e: e[2]):
            path = log.strings.get(e[5]) if e[5] is not None else None
            if path and path.endswith("/a.txt"):
                out.append((names[e[1]], e[7], _frames(log, e[12])))
        return out

    full = trace(build(PROG), extra=("--no-stracer",))
    kept = trace(build(PROG), extra=("--no-stracer", "--path", "*/a.txt"))
    assert stacks(kept) == stacks(full)
    assert all(len(f) >= 2 and f[0][0] == PROG for _, _, f in stacks(kept))
    (log,) = kept.logs
    used = {e[12] for e in log.events}
    assert set(log.stacks) == used  # no stack taken for an event left out


@pytest.mark.parametrize("spec", [("-e", "none"), ("--path", "*/elsewhere")])
def test_an_open_left_out_makes_no_syscall_of_its_own(trace, spec: tuple[str, str]) -> None:
    """strace the oracle: with the opens left out, the program's syscalls on its file are the
    untraced program's (open, close); recorded, an open also fstats its descriptor for the
    event's (device, inode)."""
    prog = build("filt_open")

    def on_file(extra: tuple[str, ...]) -> list[str]:
        calls = "openat,close,fstat,newfstatat,statx"
        t = trace("strace", "-f", "-qq", "-o", "strace.txt", "-e", f"trace={calls}", prog,
                  "x.txt", extra=("--no-stracer", *extra))  # fmt: skip
        assert t.proc.returncode == 0, t.proc.stderr
        out, fd = [], None
        for ln in (t.dir.parent / "work" / "strace.txt").read_text().splitlines():
            m = re.match(r"\d+\s+(\w+)\((.*)\)\s+= (-?\d+)", ln)
            if not m:
                continue
            name, args, ret = m.groups()
            if name == "openat" and '"x.txt"' in args:
                fd = ret
            elif fd is None or args.split(",")[0] != fd:
                continue  # not on the file's descriptor
            elif name == "close":
                fd = None
            out.append(name)
        return out

    (trace.work / "x.txt").write_text("x")
    assert on_file(spec) == ["openat", "close"] * 3
    assert on_file(()) == ["openat", "fstat", "close"] * 3


def test_stracer_still_sees_every_bypass(trace) -> None:
    """The calls filtered out are still the shim's: covered, never missed; the raw write is."""
    full = trace(build(PROG))
    quiet = trace(build(PROG), extra=("-e", "none"))
    assert quiet.proc.returncode == 0 and _events(quiet) == []
    line = re.compile(r"stracer: (\d+) I/O syscalls checked: (\d+) covered by the shim, .* "
                      r"(\d+) missed")  # fmt: skip
    counts = [line.search(t.proc.stderr) for t in (full, quiet)]
    assert all(counts), full.proc.stderr
    assert counts[0].group(3) == counts[1].group(3) == "1"  # the raw write, in both
    assert "missed I/O" in quiet.proc.stderr and "write" in quiet.proc.stderr


def test_bad_filter_is_one_line(tmp_path: Path) -> None:
    for args in (["-e", "trace=%bogus"], ["-e", "trace=nosuchcall"], ["--path", ""]):
        r = iotrace("run", "-o", str(tmp_path / "t"), *args, "--", "true")
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
        assert not (tmp_path / "t").exists()


def test_every_class_is_used() -> None:
    """Each class selects some function, and every function but the locale ones, the time-zone
    load, sysconf, the name lookups (whose I/O is libc's own: no file, descriptor or data of the
    app's) and glibc's error messages (libc's own writes to stderr) is in some class."""
    from iotrace.calls import CLASSES

    for c in CLASSES:
        assert trace_set([f"%{c}"]), c
    unclassed = {f.name for f in FUNCTIONS} - set().union(*(trace_set([f"%{c}"]) for c in CLASSES))
    messages = {"error", "error_at_line", "warn", "warnx", "vwarn", "vwarnx", "err", "errx",
                "verr", "verrx", "perror", "psignal"}  # fmt: skip
    lookups = {"getaddrinfo", "getpwnam", "getpwuid", "getgrnam", "getgrgid", "getgrouplist",
               "gethostbyname", "getservbyname", "getprotobyname", "getnameinfo", "getpwent",
               "getgrent", "gethostent", "getservent", "getprotoent"}  # fmt: skip
    libc_own = {"setlocale", "newlocale", "tzset", "sysconf", "pthread_getattr_np"}  # libc's
    assert unclassed <= {*libc_own, *lookups, *messages}, unclassed


def test_env_carries_filters_to_the_bare_shim(tmp_path: Path) -> None:
    """`iotrace env -e ... -s N`: the bare shim under a central IOTRACE_DIR records the same."""
    import os
    import subprocess

    central = tmp_path / "central"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IOTRACE_", "SLURM_"))}
    r = iotrace("env", "--dir", str(central), "-e", "read,openat,open", "-s", "3", env=env)
    assert r.returncode == 0, r.stderr
    (tmp_path / "in.txt").write_text("hello")
    p = subprocess.run(["sh", "-c", r.stdout + "cat in.txt"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)  # fmt: skip
    assert p.stdout == "hello"
    (job,) = central.iterdir()
    t = Traced(p, job)  # type: ignore[arg-type]
    evs = [e for e in t.events() if e["path"] and e["path"].endswith("in.txt")]
    assert {e["fn"] for e in evs} == {"openat", "read"} or {e["fn"] for e in evs} == {
        "open", "read"
    }  # fmt: skip
    (log,) = t.logs
    reads = [ev for ev in log.events if log.functions[ev[1]] == "read" and ev[7] == 5]
    assert [log.data.get((ev[0], ev[2])) for ev in reads] == [b"hel"]
