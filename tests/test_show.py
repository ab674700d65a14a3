"""`iotrace show`: every event, the stracer's too (marked by class), in time order, with
`--stacks` and decoded flags."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import build, iotrace
from iotrace.analyzer import load

from iotrace.flags import mmap_flags, mmap_prot, mpi_amode

LINE = re.compile(r"^\[(?:rank \d+ )?pid \d+ tid \d+\] \+(\d+\.\d+) ")


def test_show_prints_every_event_stracer_ones_marked(trace) -> None:
    t = trace(build("st_raw"), "raw.out")
    assert t.proc.returncode == 0, t.proc.stderr
    r = iotrace("show", str(t.dir))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # one line per event of the trace, the shim's and the stracer's alike
    assert len(lines) == len(load(t.dir).events)
    times = [float(LINE.match(ln).group(1)) for ln in lines]  # type: ignore[union-attr]
    assert times == sorted(times)
    out = str(trace.work / "raw.out")
    bypass = [ln for ln in lines if ln.endswith("[bypass]")]
    assert len(bypass) == 3
    assert 'openat(AT_FDCWD, "raw.out", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 3' in bypass[0]
    assert f"write(3<{out}>, " in bypass[1] and ", 4) = 4 <" in bypass[1]
    assert f"close(3<{out}>) = 0" in bypass[2]
    # --stacks: each event's frames under it, the stracer's sites and the shim's stacks
    st = iotrace("show", str(t.dir), "--stacks").stdout.splitlines()
    at = st.index(bypass[0])
    assert st[at + 1].startswith("    at ") and "raw_open (st_raw.c:12)" in "".join(
        st[at + 1 : at + 4]
    )
    shim_write = next(i for i, ln in enumerate(st) if "] +" in ln and " write(1<" in ln)
    assert "main (st_raw.c:" in "".join(st[shim_write + 1 : shim_write + 4])


def test_show_marks_libc_internal_events(trace) -> None:
    """tzset reads the zone file inside libc (tests/progs/st_libc.c): the stracer's events,
    marked [libc]."""
    zone = trace.work / "zone"
    shutil.copy("/usr/share/zoneinfo/Europe/Berlin", zone)
    t = trace(build("st_libc"), "out", env=dict(os.environ, TZ=str(zone)))
    assert t.proc.returncode == 0, t.proc.stderr
    lines = iotrace("show", str(t.dir)).stdout.splitlines()
    libc = [ln for ln in lines if ln.endswith("[libc]") and str(zone) in ln]
    assert libc and any(" read(" in ln for ln in libc), lines[-20:]


def test_show_decodes_mmap_flags(trace) -> None:
    t = trace(build("mmap_basic"), extra=("--no-stracer",))
    r = iotrace("show", str(t.dir))
    assert r.returncode == 0, r.stderr
    m = trace.work / "m.bin"
    maps = [ln for ln in r.stdout.splitlines() if " mmap(" in ln and str(m) in ln]
    assert any("PROT_READ|PROT_WRITE, MAP_SHARED, " in ln for ln in maps), maps
    assert any("PROT_READ, MAP_PRIVATE, " in ln and "WRITE" not in ln for ln in maps), maps


def test_flag_names() -> None:
    assert mmap_prot(0) == ["PROT_NONE"] and mmap_prot(5) == ["PROT_READ", "PROT_EXEC"]
    assert mmap_flags(0x22) == ["MAP_PRIVATE", "MAP_ANONYMOUS"]
    assert mmap_flags(0x4001) == ["MAP_SHARED", "MAP_NORESERVE"]
    # MPI_MODE_CREATE | MPI_MODE_WRONLY, as Open MPI's and MPICH's mpi.h define them
    assert mpi_amode(5) == ["MPI_MODE_CREATE", "MPI_MODE_WRONLY"]


def _in_process(d, *opts: str, memory: int) -> str:
    """`iotrace show D OPTS` run here (show.show, the parser's selection) with `memory`."""
    import argparse
    import io

    from iotrace.cli import add_select_arguments
    from iotrace.select import from_args
    from iotrace.show import show

    ap = argparse.ArgumentParser()
    ap.add_argument("--stacks", action="store_true")
    add_select_arguments(ap)
    a = ap.parse_args(list(opts))
    out = io.StringIO()
    show(d, out, from_args(a), stacks=a.stacks, memory=memory)
    return out.getvalue()


def test_show_in_runs_prints_what_it_prints_in_memory(trace, monkeypatch) -> None:
    """Lines beyond the memory bound are sorted in runs written to temporary files and merged:
    with runs of a few lines (a window of one chunk, lines formatted 300 bytes at a time, each
    such batch one run; 3 runs merged into one as the 4th comes; blocks of 5 lines, merged
    blocks of 200 bytes), the same bytes as the lines held whole (the command line's default
    bound), with --stacks and each selection option.  The trace: a process's libc writes (the
    shim's log) interleaved with its raw ones (the stracer's), a shell, its children, 4
    threads."""
    import iotrace.show as show_mod
    import iotrace.spill as spill

    t = trace("sh", "-c", f"{build('ft_fill')} 300 200 f; {build('proc_threads')}; "
              f"{build('sel_mix')}")  # fmt: skip
    assert t.proc.returncode == 0, t.proc.stderr
    runs = []
    write = spill.Sorter._write
    monkeypatch.setattr(spill.Sorter, "_write", lambda s, b: runs.append(1) or write(s, b))
    monkeypatch.setattr(show_mod, "BATCH", 7)
    monkeypatch.setattr(show_mod, "WINDOW", 1)
    monkeypatch.setattr(show_mod, "OUT_BYTES", 300)
    monkeypatch.setattr(show_mod, "BASE_MEMORY", 0)
    monkeypatch.setattr(spill, "FAN_IN", 3)
    monkeypatch.setattr(spill, "BLOCK", 5)
    monkeypatch.setattr(spill, "BLOCK_BYTES", 200)
    for opts in ([], ["--stacks"], ["--path", "*/f"], ["-e", "write"], ["--failed"],
                 ["-e", "!write"],
                 ["--path", "*dat", "--stacks", "-e", "openat,write"]):  # fmt: skip
        r = iotrace("show", str(t.dir), *opts)
        assert r.returncode == 0, r.stderr
        del runs[:]
        assert _in_process(t.dir, *opts, memory=1) == r.stdout, opts
        assert len(runs) > 3 or len(r.stdout.splitlines()) < 50, (opts, len(runs))
    assert len(r.stdout.splitlines()) > 3


def test_show_beyond_its_bound_in_a_pipe_leaves_nothing(trace, tmp_path) -> None:
    """`iotrace show --memory 1M` (the lines held: an eighth of it) spills sorted runs: the same
    bytes as in memory; `| head` ends it with SIGPIPE's EPIPE: status 0, nothing left in the
    trace's directory or TMPDIR (the runs are unnamed files)."""
    t = trace(build("ft_fill"), "12000", "3000", "f", extra=("--stack", "0"))
    assert t.proc.returncode == 7, t.proc.stderr
    ref = iotrace("show", str(t.dir))
    assert ref.returncode == 0 and len(ref.stdout.splitlines()) > 15000, ref.stderr
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    before = sorted(os.listdir(t.dir))
    env = dict(os.environ, TMPDIR=str(tmp))
    log = tmp_path / "strace.log"
    got = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat,open", "-o", str(log),
                          sys.executable, "-m", "iotrace", "show", str(t.dir), "--memory", "1M"],
                         env=env, capture_output=True, text=True)  # fmt: skip
    assert got.returncode == 0 and got.stdout == ref.stdout, got.stderr
    assert f'"{tmp}' in log.read_text()  # its runs: O_TMPFILE in TMPDIR
    head = subprocess.run(f"{sys.executable} -m iotrace show {t.dir} --memory 1M | head -3",
                          shell=True, env=env, capture_output=True, text=True)  # fmt: skip
    assert head.stdout.splitlines() == ref.stdout.splitlines()[:3], head.stderr
    assert os.listdir(tmp) == [] and sorted(os.listdir(t.dir)) == before
    bad = iotrace("show", str(t.dir), "--memory", "lots")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "lots" in bad.stderr


@pytest.mark.parametrize("command", ["show", "report", "diff"])
def test_a_reader_gone_ends_the_command_quietly(trace, command) -> None:
    """`iotrace report DIR | true`: the reader gone before the first line, the command ends with
    status 0 and says nothing, as `show` does (rich's own answer to a broken pipe exited with
    status 1)."""
    t = trace(build("ft_fill"), "200", "100", "f", extra=("--stack", "0"))
    args = f"{t.dir} {t.dir}" if command == "diff" else str(t.dir)
    got = subprocess.run(["bash", "-c", f"{sys.executable} -m iotrace {command} {args} | true; "
                          "exit ${PIPESTATUS[0]}"], capture_output=True, text=True)  # fmt: skip
    assert got.returncode == 0 and got.stderr == "", (got.returncode, got.stderr)


def test_sorter_spills_merges_and_keeps_ties_in_order(monkeypatch) -> None:
    """spill.Sorter on entries whose keys tie often: the texts in key order, ties in the order
    they were added, whether held whole, spilled in runs (3 runs merged into one as the 4th
    comes) and merged with the last batches held, or all spilled; a reader that stops early
    closes every run."""
    import random

    import iotrace.spill as spill

    monkeypatch.setattr(spill, "FAN_IN", 3)
    monkeypatch.setattr(spill, "BLOCK", 4)
    monkeypatch.setattr(spill, "BLOCK_BYTES", 9)  # a text of 4 bytes at most: 2 or 3 a block
    rnd = random.Random(7)
    entries = [(rnd.randrange(20), f"{i}\n".encode()) for i in range(2000)]
    want = [t for _k, t in sorted(entries, key=lambda e: e[0])]
    for budget in (1 << 30, 2000, 1):  # all held; runs and the last batch held; runs only
        with spill.Sorter(budget) as s:
            for i in range(0, len(entries), 37):
                batch = entries[i : i + 37]
                s.add([k for k, _ in batch], [t for _, t in batch])
            assert (len(s.runs) > 0, len(s.batches) > 0) == {
                1 << 30: (False, True),
                2000: (True, True),
                1: (True, False),
            }[budget]
            assert b"".join(blob for _keys, _ends, blob in s) == b"".join(want)
    fds = len(os.listdir("/proc/self/fd"))
    with spill.Sorter(1) as s:
        s.add([3, 1], [b"a", b"b"])
        s.add([2, 0], [b"c", b"d"])
        _keys, _ends, first = next(iter(s))
    assert first.startswith(b"d") and len(os.listdir("/proc/self/fd")) == fds


def test_show_is_its_python_oracle_byte_for_byte(trace) -> None:
    """`iotrace show` formats the shim's lines in C from the decoder's columns (analyzer/
    _decode.c iot_show_lines): byte for byte what its Python formatter printed record by record
    (tests/oracle_show.py), with --stacks and with selections, on a trace that calls most of
    what `show` names: opens (flags, modes, `= 3</path>`), streams (`= 3</path>`, NULL), mmap
    (hints, flags, protections, addresses), munmap/msync (`0x7f..</path>`), readdir, sockets'
    protocols, eventfd's initial value, dup2, lseek (whence), renames and links (second
    paths), the calls with two ends (both ends, each way), failed calls (errno names), kept data
    (-s), exec and spawn variants, threads, the stracer's events."""
    import oracle_show

    src = trace.work / "src"
    src.write_bytes(bytes(range(256)) * 64)
    progs = {p: build(p) for p in ("meta_more", "meta_basic", "fn_rest", "data_rw",
                                   "mmap_basic", "fd_basic", "two_ends", "sel_mix", "st_raw",
                                   "proc_threads", "show_streams", "show_results",
                                   "show_strace")}  # fmt: skip
    t = trace("sh", "-c", f"mkdir m b e s r q && cd m && {progs['meta_more']} && cd ../b && "
              f"{progs['meta_basic']}; cd .. && "
              f"{progs['fn_rest']}; {progs['data_rw']}; {progs['mmap_basic']}; "
              f"{progs['fd_basic']}; {progs['two_ends']} src e; {progs['two_ends']} src e raw; "
              f"{progs['sel_mix']}; {progs['st_raw']} raw.out; {progs['proc_threads']}; "
              f"cd s && {progs['show_streams']} && cd ../r && {progs['show_results']} && "
              f"cd ../q && {progs['show_strace']}",
              extra=("-s", "12"))  # fmt: skip
    assert t.proc.returncode == 0, t.proc.stderr
    shown = {}
    for opts in ([], ["--stacks"], ["--path", "*e/*"], ["-e", "!write"], ["--failed"]):
        r = iotrace("show", str(t.dir), *opts)
        assert r.returncode == 0, r.stderr
        want = oracle_show.show_text(t.dir, _selection(*opts), stacks="--stacks" in opts)
        assert r.stdout == want, opts
        shown[" ".join(opts)] = r.stdout
    for name in ("sendfile(", "copy_file_range(", "rename(", "link(", "dup2(", "SEEK_SET",
                 "MAP_SHARED", "PROT_READ", "0644", "O_CREAT", "ENOENT", "\\n",
                 "[bypass]", "tmpfile() = ", ") = NULL ENOENT", "popen(O_RDONLY) = ",
                 "IPPROTO_IP", "eventfd(3, ", "mmap(0x700000000000, ", "munmap(0x", ") = {...}",
                 "/f.bin>, 4096, MS_SYNC)", "F_DUPFD, 50) = 50</"):  # fmt: skip
        assert name in shown[""], name
    assert "    at " in shown["--stacks"] and len(shown["--failed"]) < len(shown[""])


def _selection(*opts: str):
    """The Select `iotrace show OPTS` makes."""
    import argparse

    from iotrace.cli import add_select_arguments
    from iotrace.select import from_args

    ap = argparse.ArgumentParser()
    ap.add_argument("--stacks", action="store_true")
    add_select_arguments(ap)
    return from_args(ap.parse_args(list(opts)))


def test_show_imports_no_pandas(tmp_path) -> None:
    """`iotrace show` formats with numpy and the C decoder alone: the analyzer package's
    `load`, `scan`, `summarise` (pandas, pyarrow: ~0.4 s of CPU and ~115 MB per show) are
    imported at their first use (analyzer/__init__.py), not by its decoder's submodule."""
    from conftest import HERE

    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    r = iotrace("show", str(HERE / "data" / "readers" / "valid"), env=env)
    assert r.returncode == 0 and " write(3</scratch/job/out.dat>, " in r.stdout, r.stderr[-2000:]
    mods = {ln.split("|")[-1].strip() for ln in r.stderr.splitlines() if "import time:" in ln}
    assert "iotrace.analyzer.event_columns" in mods and "numpy" in mods  # it formatted
    assert not {"pandas", "pyarrow", "iotrace.analyzer.load"} & mods


def test_analyzer_names_are_its_functions_whatever_was_imported_first() -> None:
    """The package's `load` and `scan` are functions named as their submodules: imported
    lazily, a submodule imported first (as `show` and the bounded report do) leaves them the
    functions, not the modules (the import system binds a package's submodule by its name)."""
    code = ("import iotrace.analyzer.scan, iotrace.analyzer.load, iotrace.analyzer.summary; "
            "from iotrace.analyzer import load, scan, summarise, Trace, TruncatedLogWarning; "
            "import iotrace.analyzer as an, inspect; "
            "assert all(inspect.isfunction(f) for f in (load, scan, summarise)), (load, scan); "
            "assert an.load is load and an.scan is scan and isinstance(Trace, type); "
            "print(sorted(an.__all__))")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["['Summary',", "'Trace',", "'TruncatedLogWarning',", "'load',",
                                "'scan',", "'summarise']"]  # fmt: skip


def test_stracer_fcntl_lines_of_odd_records_are_lines() -> None:
    """The stracer's fcntl line names its command's argument and result only where the record
    holds a named command and integers: a damaged log's list, dict or string there, or a call
    that never returned (ret nil), is printed as it is, never a traceback."""
    from types import SimpleNamespace

    from iotrace.show import _stracer_text

    log = SimpleNamespace(header={"syscalls": {"fcntl": ["fd", "fcntlcmd", "int"]}}, sites={})
    cases = [([3, ["x"], 1], 5), ([3, {"a": 1}, 0], 0), ([3, "F_SETFL", "zz"], 0),
             ([3, "F_GETFL", 0], None), ([3, "F_WHAT", 7], 4),
             ([3, "F_GETFL", 0], 32770)]  # fmt: skip
    lines = [_stracer_text(log, [0, 1, 2, 2, "fcntl", args, ret, 0, 0, 3, "/f", 2, "attached"],
                           0, False, {}) for args, ret in cases]  # fmt: skip
    got = [re.search(r" (fcntl\(.*\) = .*) <", ln)[1] for ln in lines]  # type: ignore[index]
    assert got == ["fcntl(3</f>, x, 1) = 5", "fcntl(3</f>, {'a': 1}, 0) = 0",
                   "fcntl(3</f>, F_SETFL, zz) = 0", "fcntl(3</f>, F_GETFL) = None",
                   "fcntl(3</f>, F_WHAT, 7) = 4",
                   "fcntl(3</f>, F_GETFL) = 0x8002 (flags O_RDWR|O_LARGEFILE)"], got  # fmt: skip
