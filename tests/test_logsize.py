"""Small logs cost what they hold: the padding of a log's header area and of a chunk its thread
left early is given back to the file system (holes), so a short-lived process's log takes a few
pages on disk, not 64 KiB; every byte read stays the same."""

from __future__ import annotations

import ctypes
import importlib
import mmap
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import iotrace
from iotrace.analyzer import load, parts

from iotrace.tracefile import kio_records, log_header


def test_short_lived_processes_logs_take_a_few_pages(trace):
    t = trace("sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do /bin/echo $i > f$i; done")
    assert t.proc.returncode == 0, t.proc.stderr
    logs = sorted(t.dir.glob("*.iot"))
    assert len(logs) >= 11  # sh and its 10 echo
    for lg in logs:
        st = lg.stat()
        assert st.st_size >= 64 << 10  # header area + a chunk, as before
        assert st.st_blocks * 512 <= 20 << 10, (lg.name, st.st_blocks * 512)
    r = iotrace("report", str(t.dir), "--json")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    files = load(t.dir).files
    mine = files[files["path"].str.fullmatch(r".*/f\d+")]
    assert len(mine) == 10 and int(mine["bytes_written"].sum()) == 9 * 2 + 3  # "1\n".."10\n"


def _resident_pages(path: Path) -> int:
    """Pages of the file in the page cache (mincore over a mapping of it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long)  # fmt: skip
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
        vec = ctypes.create_string_buffer((size + 4095) // 4096)
        try:
            assert libc.mincore(addr, size, vec) == 0, ctypes.get_errno()
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)
    return sum(b & 1 for b in vec.raw)


def test_a_log_reads_no_page_ahead(tmp_path: Path) -> None:
    """The shim's faults on its own log read nothing around them: a process that wrote its
    header and one chunk has those pages in the page cache, not the log's room grown ahead
    (4 MiB, zeroed into the page cache by read-ahead: ~2 ms of CPU per process, bench/README)."""
    out = tmp_path / "t"
    cmd = [sys.executable, "-m", "iotrace", "run", "--no-stracer", "-o", str(out), "--",
           "sh", "-c", "echo x > f; read line"]  # fmt: skip
    p = subprocess.Popen(cmd, cwd=tmp_path, stdin=subprocess.PIPE, text=True)
    try:
        for _ in range(500):  # sh has written f: its log holds its header and a chunk
            if (tmp_path / "f").exists():
                break
            time.sleep(0.01)
        logs = list(out.glob("*.iot"))
        assert len(logs) == 1 and logs[0].stat().st_size >= 1 << 20, logs
        pages = _resident_pages(logs[0])
    finally:
        p.communicate("go\n", timeout=60)
    assert p.returncode == 0
    assert pages <= 16, pages  # the header's area and a chunk: 64 KiB


def test_a_killed_process_log_costs_what_it_holds(trace):
    """A log is sized 32 MiB at its creation (sparse: preload/writer.c RESERVE) and trimmed at
    exit; a process killed before kept 32 MiB of holes, which `ls -l` showed and `tar` without
    `--sparse` stored whole (300 killed `sh`: 9.5 GB).  The run's end cuts each after its last
    written chunk (launcher/trim.c).  Readers read up to its last written chunk anyway
    (tracefile.data_end): the plan costed each such log as 32 MiB of events (300 killed `sh`:
    901 parts, not 2).  Eight killed processes here: one part, their events all read."""
    listed = importlib.import_module("iotrace.analyzer.load").shim_logs  # (load: the function)

    kill = "sh -c 'echo $0 > f$0; kill -9 $$'"
    for mode in ((), ("--no-stracer",)):
        t = trace("sh", "-c", f"for i in 1 2 3 4 5 6 7 8; do {kill} $i; done; true", extra=mode)
        assert t.proc.returncode == 0, t.proc.stderr
        logs = list(t.dir.glob("*.iot"))
        assert max(lg.stat().st_size for lg in logs) <= 1 << 20, mode
        killed = [lg for lg in logs if len(log_header(lg)[0].header["argv"]) == 4]  # sh -c C i
        assert len(killed) == 8, [log_header(lg)[0].header["argv"] for lg in logs]
        for lg in killed:
            assert kio_records(lg)[1], lg.name
        assert all(lg.size <= 1 << 20 for lg in listed(t.dir))
        assert len(parts.plan(t.dir, parts.MEMORY_DEFAULT, 2)) == 1
        files = load(t.dir).files
        mine = files[files["path"].str.fullmatch(r".*/f\d")]
        assert len(mine) == 8 and int(mine["bytes_written"].sum()) == 16, mine


@pytest.mark.parametrize("pidns", [False, True], ids=["child", "child-in-a-pid-namespace"])
def test_a_log_still_written_after_the_run_is_not_cut(trace, tmp_path, pidns):
    """The run ends (--no-stracer: it does not wait for them) while a process it started still
    runs: its log keeps its room, and the records it writes after land (its next chunks, past
    where a cut would be: 4,200 of its 13,890 bytes were in the log); a killed process's log in
    the same run is cut.  In a PID
    namespace of its own (its pid there set with ns_last_pid to one no process has here), the
    child's log is named by a pid that names no process here: the inode it maps keeps it."""
    if pidns and (os.geteuid() != 0 or shutil.which("unshare") is None):
        pytest.skip("needs root and unshare")
    go, ready, done, late = _late_child(tmp_path)
    # the child has its log when the run ends: it says so (ready) before the command goes on
    bg = f"(echo r > {ready}; read x < {go}; {late}) </dev/null >/dev/null 2>&1 &"
    if pidns:
        free = next(p for p in range(20000, 32000) if not os.path.exists(f"/proc/{p}"))
        inner = f"echo {free - 1} > /proc/sys/kernel/ns_last_pid; {bg} wait"
        unshare = "unshare --pid --fork --mount-proc sh -c"
        bg = f"{unshare} {shlex.quote(inner)} </dev/null >/dev/null 2>&1 &"
    fifo = os.open(go, os.O_RDWR)  # held: the line written waits in it for the child's read
    try:
        cmd = f"{bg} read r < {ready}; sh -c 'kill -9 $$'; true"
        t = trace("sh", "-c", cmd, extra=("--no-stracer",))
        assert t.proc.returncode == 0, t.proc.stderr
        killed = [
            lg for lg in t.dir.glob("*.iot") if log_header(lg)[0].header["argv"][-1] == "kill -9 $$"
        ]
        assert len(killed) == 1 and killed[0].stat().st_size <= 1 << 20, killed
    finally:
        _release(fifo, done)
    assert done.exists() and done.read_text() == "ok\n"
    assert (tmp_path / "work" / "late").read_text() == "".join(f"{i}\n" for i in range(3000))
    files = load(t.dir).files
    late_file = files[files["path"].str.endswith("/late")]
    assert int(late_file["bytes_written"].sum()) == len((tmp_path / "work" / "late").read_bytes())


def test_a_log_another_run_writes_unseen_is_not_cut(trace, tmp_path):
    """`mpirun -np 2 iotrace run -o job` with each rank in a PID namespace of its own (a
    container per rank, one host name): one rank's run ends while the other's process still
    writes a log of the shared directory.  The ending run sees neither that process (its pid
    names none of its namespace's) nor its mappings (not in its /proc): its log must keep its
    room (the shim holds an OFD lock on it while it maps it), and its later records land."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare")
    go, ready, done, late = _late_child(tmp_path)
    bg = f"(echo r > {ready}; read x < {go}; {late}) </dev/null >/dev/null 2>&1 &"
    fifo = os.open(go, os.O_RDWR)  # held: the line written waits in it for the child's read
    try:
        t = trace("sh", "-c", f"{bg} read r < {ready}; true", extra=("--no-stracer",))
        assert t.proc.returncode == 0, t.proc.stderr
        other = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "iotrace",
             "run", "-o", str(t.dir), "--append", "--no-stracer", "--", "true"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert other.returncode == 0, other.stderr
    finally:
        _release(fifo, done)
    assert done.exists() and done.read_text() == "ok\n"
    written = (tmp_path / "work" / "late").read_bytes()
    assert written == "".join(f"{i}\n" for i in range(3000)).encode()
    files = load(t.dir).files
    late_file = files[files["path"].str.endswith("/late")]
    assert int(late_file["bytes_written"].sum()) == len(written)


def _late_child(tmp_path: Path) -> tuple[Path, Path, Path, str]:
    """FIFOs go and ready, the file done, and the shell of a child that writes 3,000 lines to
    `late` once it reads a line from go, then `ok` to done."""
    go, ready, done = tmp_path / "go", tmp_path / "ready", tmp_path / "done"
    os.mkfifo(go)
    os.mkfifo(ready)
    late = ("i=0; while [ $i -lt 3000 ]; do echo $i; i=$((i+1)); done > late; echo ok > "
            f"{done}")  # fmt: skip
    return go, ready, done, late


def _release(fifo: int, done: Path) -> None:
    """Let the child go on (a line into go, held open as `fifo`) and wait for its end."""
    os.write(fifo, b"go\n")  # the child goes on whatever was found, and ends
    for _ in range(6000):  # its 3,000 writes (no time assumed: its end)
        if done.exists() and done.read_text() == "ok\n":
            break
        time.sleep(0.01)
    os.close(fifo)
