"""`iotrace show` on crafted logs (values past INT64_MAX, a function id past the log's table),
its bound on the lines it holds, and bad input to every reading command: one line on stderr and
status 2, never a traceback, never a device replaced by a report."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HERE, iotrace

from iotrace.calls import FUNCTIONS

CASES = HERE / "data" / "readers"
FN = {f.name: i for i, f in enumerate(FUNCTIONS)}


def _make_cases():  # tests/data/readers/make_cases.py: the synthetic logs
    spec = importlib.util.spec_from_file_location("make_cases", CASES / "make_cases.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _trace(d: Path, recs: list) -> Path:
    """The valid case's trace with a shim log of `recs` (thread 100's, in one chunk)."""
    mc = _make_cases()
    shutil.copytree(CASES / "valid", d)
    (d / "node01.100.iot").write_bytes(mc.shim_log([[3, 100], *recs]))
    return d


def _event(fn: str, t: int, fd: int | None, path: int | None, req: int | None, ret: int,
           off: int | None = None, flags: int | None = None, mode: int | None = None,
           aux: int | None = None, end2: tuple[int, int, int] | None = None) -> list:  # fmt: skip
    mono = _make_cases().MONO
    rec = [0, FN[fn], mono + t, 1000, fd, path, req, ret, 0, off, flags, mode, None, aux]
    return rec + list(end2) if end2 else rec


def test_show_prints_values_past_int64_max_as_the_log_holds_them(tmp_path) -> None:
    """The shim records unsigned 64-bit values (a size_t count, an off_t past 2^63 as the
    kernel was asked, a mode, an mmap address): msgpack holds them as uint64, the C decoder
    wrapped into int64 columns with a bit each (_decode.c BIG_*).  `show` prints each as the
    log holds it: byte for byte its Python oracle (tests/oracle_show.py, the records unpacked
    by msgpack), every big value in decimal (or hex for an address), none negative."""
    import oracle_show

    top, half = 2**64 - 1, 2**63
    d = _trace(tmp_path / "t", [
        [1, 1, "/scratch/big.dat"], [1, 2, "/scratch/src.dat"],
        _event("write", 10, 3, 1, top, half),
        _event("pwrite", 20, 3, 1, half + 1, 7, off=top - 1),
        _event("open", 30, 3, 1, None, 3, flags=0o101, mode=top - 0o600),
        _event("lseek", 40, 3, 1, None, half + 2, off=half + 3, aux=top),
        _event("mmap", 50, 3, 1, 4096, top - 4095, off=half + 4096, flags=1, mode=top),
        _event("sendfile", 60, 3, 1, top - 1, half + 5, off=half + 6, aux=None,
               end2=(4, 2, top - 2)),
    ])  # fmt: skip
    r = iotrace("show", str(d))
    assert r.returncode == 0, r.stderr
    assert r.stdout == oracle_show.show_text(d)
    shim = [ln for ln in r.stdout.splitlines() if "[libc]" not in ln and "[bypass]" not in ln]
    assert len(shim) == 6 and not any(" -" in ln.split("<")[0] for ln in shim), shim
    for v in (top, half, half + 1, top - 1, half + 2, half + 3, half + 5, half + 6, top - 2):
        assert str(v) in r.stdout, v
    assert f"0{top - 0o600:o}" in r.stdout and hex(top - 4095) in r.stdout


def test_show_refuses_a_function_id_past_its_header(tmp_path) -> None:
    """An event whose function id the log's header does not name (damage a checksum cannot
    see: a writer's bug, a crafted log) is refused in one line, as the C decoder refuses an id
    past 2^15, not printed as `fn<N>` among the real calls."""
    past = len(FUNCTIONS) + 3
    d = _trace(tmp_path / "t", [[1, 1, "/scratch/a.dat"], _event("write", 10, 3, 1, 4, 4),
                                [0, past, *_event("write", 20, 3, 1, 4, 4)[2:]]])  # fmt: skip
    r = iotrace("show", str(d))
    assert r.returncode == 2 and r.stdout == "", r
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"node01.100.iot: corrupt log (function id {past}, its header names " in r.stderr
    ok = _trace(tmp_path / "ok", [[1, 1, "/scratch/a.dat"], _event("write", 10, 3, 1, 4, 4)])
    assert iotrace("show", str(ok)).returncode == 0


def test_show_holds_at_most_512_mib_of_lines_whatever_the_bound(tmp_path, monkeypatch) -> None:
    """Lines past what `show` holds are sorted in runs on disk and merged: under a bound of 1G
    it holds (1G - 192M) / 2; from 2G up, 512 MiB whatever the bound (show.HELD_MAX: memory
    first touched costs more than runs written and merged)."""
    import io

    import iotrace.spill as spill
    from iotrace.cli import main

    budgets = []
    init = spill.Sorter.__init__

    def sorter(self, budget: int, *a: object) -> None:
        budgets.append(budget)
        init(self, budget, *a)

    monkeypatch.setattr(spill.Sorter, "__init__", sorter)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    for bound in ("1G", "2G", "64G", "1024T"):
        assert main(["show", str(CASES / "valid"), "--memory", bound]) == 0
    assert budgets == [(1024 - 192) // 2 << 20, 512 << 20, 512 << 20, 512 << 20], budgets
    assert len(sys.stdout.getvalue().splitlines()) == 4 * 45  # the same 45 lines each time


READERS = ["show", "report", "report --json", "missed", "export --format csv -o {out}/csv",
           "diff {valid}"]  # fmt: skip

CHECK = """
import contextlib, io, json, sys, traceback
from iotrace.cli import main
out = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(args)
        tb = None
    except BaseException:
        status, tb = None, traceback.format_exc()
    out.append({"args": args, "status": status, "stderr": err.getvalue(), "tb": tb})
print(json.dumps(out))
"""


def test_bad_input_to_every_reader_is_one_line(tmp_path, public_dir) -> None:
    """show, report, missed, export and diff on a missing directory, a file, an empty
    directory, a log whose header was cut, logs of another format version (the shim's, the
    stracer's), and, run as `nobody`, a trace directory of root's they may not read (glob
    saw no log in it: "not an iotrace trace directory"; missed said "no stracer log"): status
    2 and one line saying what is wrong, never a traceback.  (Damaged and cut logs, a FIFO or
    a device as a log: tests/test_readers.py.)"""
    mc = _make_cases()
    valid = public_dir / "valid"
    shutil.copytree(CASES / "valid", valid)
    (public_dir / "afile").write_text("x\n")
    (public_dir / "empty").mkdir()
    cut = public_dir / "cut"
    shutil.copytree(valid, cut)
    os.truncate(cut / "node01.100.iot", 100)
    for name, log, attr in (("version", "node01.100.iot", "FORMAT_VERSION"),
                            ("sversion", "node01.99.stracer", "SVERSION")):  # fmt: skip
        shutil.copytree(valid, public_dir / name)
        setattr(mc, attr, getattr(mc, attr) + 1)
        (public_dir / name / log).write_bytes(mc.shim_log() if "iot" in log else mc.stracer_log())
    private = public_dir / "private"
    shutil.copytree(valid, private)
    private.chmod(0o700)
    out = public_dir / "out"  # nobody's: outputs where another user could move them are refused
    out.mkdir()
    shutil.chown(out, "nobody")
    want = {
        "missing": "missing: no such trace directory",
        "afile": "afile: not a directory (give the trace directory)",
        "empty": "empty: not an iotrace trace directory (no *.iot logs)",
        "cut": "cut/node01.100.iot: not an iotrace log (OutOfData)",
        "version": "version/node01.100.iot: log format version 3 is not supported",
        "sversion": "sversion/node01.99.stracer: stracer log version 9 unsupported",
        "private": "private: cannot read the trace directory (Permission denied)",
    }
    runs = []
    for case in want:
        for cmd in READERS:
            words = cmd.format(out=out, valid=valid).split()
            runs.append([words[0], str(public_dir / case), *words[1:]])
    env = dict(os.environ, HOME=str(public_dir))
    child = subprocess.run(["runuser", "-u", "nobody", "--", sys.executable, "-c", CHECK,
                            json.dumps(runs)], capture_output=True, text=True, env=env,
                           cwd=public_dir)  # fmt: skip
    assert child.returncode == 0, child.stderr[-3000:]
    wrong = []
    for r in json.loads(child.stdout):
        case = Path(r["args"][1]).name
        lines = r["stderr"].splitlines()
        if r["args"][0] == "missed" and case in ("cut", "version"):  # it reads stracer logs
            if r["tb"] or r["status"] != 0:
                wrong.append(r)
        elif (r["tb"] or r["status"] != 2 or len(lines) != 1
                or not lines[0].startswith(f"iotrace: {public_dir / want[case]}")):  # fmt: skip
            wrong.append(r)
    assert not wrong, json.dumps(wrong[:4], indent=1)


def test_a_device_is_not_replaced_by_an_output_file(tmp_path) -> None:
    """`-o /dev/null` (`--html`, a chrome or Darshan export): the file is written beside it and
    renamed over it (a reader never sees half a file; a symlink planted there is replaced, not
    written through), which replaced root's /dev/null with a regular file for every user.  A
    device, a FIFO or a link to one is refused in one line and left as it was."""
    dev = tmp_path / "dev"
    os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # /dev/null's numbers
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "stdout"  # as /dev/stdout: a link to a device
    link.symlink_to(dev)
    valid = str(CASES / "valid")
    for target, args in ((dev, ["report", valid, "--html"]),
                         (link, ["diff", valid, valid, "--html"]),
                         (fifo, ["export", valid, "--format", "chrome", "-o"]),
                         (dev, ["export", valid, "--format", "darshan", "-o"])):  # fmt: skip
        r = iotrace(*args, str(target))
        if "darshan" in args and "libdarshan" in r.stderr and "not a regular" not in r.stderr:
            continue  # no libdarshan-util here: said before any output
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (args, r.stderr)
        assert f"{target}: not a regular file" in r.stderr, (args, r.stderr)
    assert stat.S_ISCHR(os.lstat(dev).st_mode) and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert link.is_symlink() and len(list(tmp_path.iterdir())) == 3


@pytest.mark.parametrize("command", ["show", "report", "missed", "diff"])
def test_a_full_stdout_is_one_line(command) -> None:
    """stdout on a full disk (/dev/full: ENOSPC): one line naming it and status 2 (show and
    missed gave a traceback; report and diff named `None`)."""
    valid = str(CASES / "valid")
    args = [valid, valid] if command == "diff" else [valid]
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "iotrace", command, *args], stdout=full,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"iotrace: {command}: standard output: No space left on device\n"


SPILL = """
import sys
import iotrace.show as show
show.BASE_MEMORY, show.OUT_BYTES, show.WINDOW, show.BATCH = 0, 300, 1, 7  # a run per batch
from iotrace.cli import main
sys.exit(main(["show", sys.argv[1], "--memory", "1"]))
"""


@pytest.mark.parametrize("where", ["TMPDIR", "trace"])
def test_sorted_runs_not_written_is_one_line(tmp_path, where) -> None:
    """Lines past the bound are sorted in runs written to unnamed files (TMPDIR, else the
    trace's directory): a run that cannot be written (here RLIMIT_FSIZE 0: EFBIG, and no usable
    TMPDIR for tempfile) is one line naming that directory, status 2 (a traceback before; then
    said of stdout, which has no name either)."""
    import resource

    d = tmp_path / "t"
    shutil.copytree(CASES / "valid", d)
    env = dict(os.environ)
    env.pop("TMPDIR", None)
    if where == "TMPDIR":
        env["TMPDIR"] = str(tmp_path)
    r = subprocess.run([sys.executable, "-c", SPILL, str(d)], capture_output=True, text=True,
                       env=env, preexec_fn=lambda: resource.setrlimit(
                           resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY)))  # fmt: skip
    assert r.returncode == 2 and r.stdout == "", r
    runs = tmp_path if where == "TMPDIR" else d
    assert r.stderr.startswith(f"iotrace: show: {runs}: ") and r.stderr.count("\n") == 1, r
    assert r.stderr.endswith("(writing a sorted run of lines there)\n"), r.stderr


def test_show_stacks_of_a_module_rebuilt_since_the_run(trace) -> None:
    """`show --stacks` names frames as the report does (analyzer/modules.py): by addr2line on
    the module's file only while that file has the build-id the shim saw loaded.  The program
    rebuilt after the run (-O0: other code, other build-id): one warning line, its frames left
    as module+offset (they were named from the new file's code: other functions, other
    lines); libc's still named."""
    from conftest import build

    app = trace.work / "app"
    shutil.copy(build("ft_fill"), app)
    t = trace(str(app), "3", "0", "f", extra=("--no-stracer",))
    assert t.proc.returncode == 7, t.proc.stderr
    same = iotrace("show", str(t.dir), "--stacks")
    assert same.returncode == 0 and same.stderr == "", same.stderr
    assert "    at main (ft_fill.c:" in same.stdout
    shutil.copy(build("ft_fill", "-O0"), app)
    r = iotrace("show", str(t.dir), "--stacks")
    assert r.returncode == 0, r.stderr
    assert r.stderr == (f"iotrace: warning: {app} is not the file the job ran (its build-id "
                        "differs: rebuilt or replaced since): its frames are left as "
                        "module+offset\n")  # fmt: skip
    assert "ft_fill.c" not in r.stdout and "    at app+0x" in r.stdout
    assert len(r.stdout.splitlines()) == len(same.stdout.splitlines())


def test_a_wide_pid_or_rank_range_is_two_numbers() -> None:
    """`--pid 1-99999999999` was expanded into every number of the range (a set of 10^11
    ints: the command never came back); the ranges are kept as ranges, merged, and every
    reader selects by them (`show` here, `report` through the same mask)."""
    valid = str(CASES / "valid")
    r = subprocess.run([sys.executable, "-m", "iotrace", "show", valid, "--pid", "1-99999999999"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 45, r.stderr
    assert iotrace("show", valid, "--pid", "101-99999999999,1-99").stdout == ""
    assert iotrace("show", valid, "--pid", "99-99,100,1-2").stdout == r.stdout
    rep = iotrace("report", valid, "--json", "--pid", "3-5,1-4,100-4000000000,7")
    assert rep.returncode == 0, rep.stderr
    assert json.loads(rep.stdout)["overview"]["selection"] == "--pid 1-5,7,100-4000000000"
    bad = iotrace("show", valid, "--rank", "0-9223372036854775808")  # past int64: none such
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr


def test_an_empty_path_is_one_line(tmp_path) -> None:
    """An empty path given as DIR, A, B, --html or -o: one line, status 2, nothing written
    (DIR "" read the current directory, --html "" printed the console report instead, -o ""
    wrote the tables into the current directory)."""
    valid = str(CASES / "valid")
    for args, name in ((["show", ""], "DIR"), (["missed", ""], "DIR"), (["diff", valid, ""], "B"),
                       (["report", valid, "--html", ""], "--html"),
                       (["export", valid, "--format", "csv", "-o", ""], "-o")):  # fmt: skip
        r = iotrace(*args, cwd=tmp_path)
        assert (r.returncode, r.stdout) == (2, ""), (args, r)
        assert r.stderr == f"iotrace: {args[0]}: {name}: an empty path\n", args
    assert list(tmp_path.iterdir()) == []


def test_a_raw_syscalls_unsigned_arguments_are_read(trace, tmp_path) -> None:
    """A raw `write(fd, buf, (size_t)-1)` (and a pwrite64 at offset -5, an lseek to INT64_MAX)
    recorded by the stracer: its size, 2^64 - 1 as the register holds it, stopped report,
    missed and export with an OverflowError traceback (an int64 column); it is held wrapped as
    the shim's decoder holds its own, and `show` prints it as the log has it."""
    from conftest import build

    t = trace(build("raw_bigargs"))
    assert t.proc.returncode == 0, t.proc.stderr
    shown = iotrace("show", str(t.dir)).stdout
    assert ", 18446744073709551615) = -1 EFAULT (Bad address)" in shown, shown[-2000:]
    for args in (["report", "--json"], ["missed", "--json"],
                 ["export", "--format", "csv", "-o", str(tmp_path / "csv")]):  # fmt: skip
        r = iotrace(args[0], str(t.dir), *args[1:])
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr[-2000:])
    missed = json.loads(iotrace("missed", str(t.dir), "--json").stdout)
    assert sorted((g["syscall"], g["errors"]) for g in missed) == [
        ("lseek", 1), ("pwrite64", 1), ("write", 1)]  # fmt: skip


def _missed(**kw: object) -> list:
    """A MISSED record of the valid case's stracer log (a raw write), fields replaced."""
    mono = _make_cases().MONO
    rec = {"t": mono + 700, "pid": 100, "tid": 100, "syscall": "write", "args": [4, 0x1000, 4],
           "ret": 4, "errno": 0, "site": 0, "fd": 4, "path": "/scratch/job/raw.dat",
           "t_exit": mono + 800, "class": "bypass"} | kw  # fmt: skip
    return [0, *rec.values()]


def test_a_stracer_log_out_of_its_ranges_is_refused(tmp_path) -> None:
    """Values of a stracer log's records that no stracer writes (damage a checksum cannot see,
    a crafted log) stopped show, missed and report with a traceback: a syscall's argument
    kinds not a list (TypeError), an errno past the kernel's (OverflowError in strerror and
    the int columns), a class no reader knows (ValueError), a pid or descriptor past the
    int32 columns.  Each is refused in one line, as a bad record or header."""
    mc = _make_cases()
    site = [1, 0, [[0x401000, "/opt/app/solver", 0x1000, "raw_open", "solver.c", 12]], None]
    cases = {
        "kinds": ({"syscalls": {"write": 7}}, [_missed()], "(header)"),
        "errno": ({}, [_missed(ret=-1, errno=2**64 - 1)], "(bad record at byte"),
        "class": ({}, [_missed(**{"class": "weird"})], "(bad record at byte"),
        "pid": ({}, [_missed(pid=2**40)], "(bad record at byte"),
        "fd": ({}, [_missed(fd=-(2**40))], "(bad record at byte"),
    }
    runs = []
    for name, (header, recs, _) in cases.items():
        d = tmp_path / name
        shutil.copytree(CASES / "valid", d)
        (d / "node01.99.stracer").write_bytes(mc.stracer_log([site, *recs, [4, 0, 0]], **header))
        runs += [["show", str(d)], ["missed", str(d)], ["report", str(d), "--json"]]
    child = subprocess.run([sys.executable, "-c", CHECK, json.dumps(runs)], capture_output=True,
                           text=True)  # fmt: skip
    assert child.returncode == 0, child.stderr[-3000:]
    wrong = []
    for r in json.loads(child.stdout):
        what = cases[Path(r["args"][1]).name][2]
        lines = r["stderr"].splitlines()
        if r["tb"] or r["status"] != 2 or len(lines) != 1 or what not in lines[0]:
            wrong.append(r)
    assert not wrong, json.dumps(wrong[:3], indent=1)
    ok = tmp_path / "ok"
    shutil.copytree(CASES / "valid", ok)
    (ok / "node01.99.stracer").write_bytes(mc.stracer_log([site, _missed(), [4, 0, 0]]))
    assert iotrace("missed", str(ok)).returncode == 0
