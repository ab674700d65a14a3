"""Named semaphores and shared memory at their edges (preload/wrap_shm.c, wrap_tmp.c: under a
stracer the shim makes glibc's calls itself, cookie'd): a full /dev/shm, processes racing to
create one name, names with odd bytes, a semaphore opened before the shim's start, and one
opened again under the app's own seccomp filter.  Each prints the same traced (full and shim
alone) as untraced: results, errno, addresses compared, values, what is left in /dev/shm.

Each run has a /dev/shm of its own (a 64 KiB tmpfs in a mount namespace: `unshare -m`), so
that no other test's semaphores are seen and filling it harms nobody."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import build, iotrace

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare(1)"
)

PRIVATE_SHM = 'mount -t tmpfs -o size=64k iotrace-shm /dev/shm && exec "$@"'


def in_own_shm(*cmd: str | os.PathLike[str]) -> list[str]:
    return ["unshare", "-m", "sh", "-c", PRIVATE_SHM, "sh", *map(str, cmd)]


def untraced(*args: str) -> str:
    p = subprocess.run(in_own_shm(build("sem_edge"), *args), capture_output=True, text=True,
                       errors="surrogateescape", timeout=60)  # fmt: skip
    assert p.returncode == 0, p.stderr
    return p.stdout


def traced(tmp_path, *args: str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    out = tmp_path / f"trace-{args[0]}{'-'.join(extra)}"
    cmd = in_own_shm("iotrace", "run", "-o", out, *extra, "--", build("sem_edge"), *args)
    p = subprocess.run(cmd, capture_output=True, text=True, errors="surrogateescape",
                       timeout=120, env=dict(os.environ, PATH=_path()))  # fmt: skip
    assert p.returncode == 0, p.stderr
    p.trace = out  # type: ignore[attr-defined]
    return p


def _path() -> str:
    import sys

    return os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")


def same_traced(tmp_path, *args: str) -> list[subprocess.CompletedProcess]:
    """The program's output untraced, then traced (full, shim alone), each equal to it."""
    plain = untraced(*args)
    runs = []
    for extra in ((), ("--no-stracer",)):
        t = traced(tmp_path, *args, extra=extra)
        assert t.stdout == plain, (extra, t.stderr)
        runs.append(t)
    return runs


def test_a_full_dev_shm_fails_as_untraced(tmp_path):
    """/dev/shm full: sem_open's 32-byte write of its temporary file fails with ENOSPC (with
    O_EXCL too), and its temporary file is removed, as glibc does; shm_open and mkstemp work,
    their writes fail; once there is room the same calls succeed."""
    full, _ = same_traced(tmp_path, "full", "sem-full")
    out = full.stdout
    assert out.count("sem_open 0 errno 28\n") == 3 and out.count("sem_open excl 0 errno 28") == 3
    assert "  left sem-full-filler\n  left 1\n" in out  # no temporary file left
    assert "sem_open after 1 errno 0\nvalue 1\n" in out and out.endswith("  left 0\n")
    assert ", 0 missed, 0 inside libc functions" in full.stderr, full.stderr


def test_processes_creating_one_name_at_once(tmp_path):
    """Six processes create one name at once, six times over: with O_EXCL exactly one wins and
    the others get EEXIST (the link of the shim's temporary file decides, as glibc's does);
    without it all six share one semaphore (six posts on it)."""
    full, _ = same_traced(tmp_path, "race", "sem-race", "6")
    assert "excl: one winner, the others EEXIST, in 6 of 6 rounds\n" in full.stdout
    assert "shared: all 6 opened one semaphore in 6 of 6 rounds\n" in full.stdout
    assert ", 0 missed, 0 inside libc functions" in full.stderr, full.stderr


def test_names_with_odd_bytes(tmp_path):
    """Names with spaces, control bytes, bytes that are not UTF-8, dots: the same results and
    errno, the events name the file with the name's bytes, and the run's closing line reads a
    log holding such a path (it read none of the log's KIO records: "explains 0.0%")."""
    full, alone = same_traced(tmp_path, "odd", "sem-odd")
    for t in (full, alone):
        assert "the trace explains 100.0% of the" in t.stderr, t.stderr
    assert "[2f2e] sem_open 1 2 value 2 file 1" in full.stdout  # "/.": the file "sem.."
    shown = iotrace("show", str(full.trace)).stdout  # escaped as strace does
    for name in (r"odd\xff\xfe", r"oddnl\nx", r"odd\x01\x7f", "odd%s%n"):
        assert f'sem_open("/dev/shm/sem.sem-{name}", 64, 384) = 1' in shown, shown[-2000:]


def test_a_semaphore_from_the_preinit_array_keeps_its_address(tmp_path):
    """The program's preinit array runs before libc's start (no environment yet): a wrapped
    call there passes through (the shim started there found no trace directory and stayed off
    for the whole process), and the semaphore glibc opened is entered in the shim's table, so
    that opening it again under the stracer returns the same address, with counted closes."""
    full, _ = same_traced(tmp_path, "early", "sem-early")
    assert "again 1 same 1\nvalue 6\nclose 0 0\nvalue 6\nclose 0 0\n" in full.stdout
    assert "close again -1 22\n" in full.stdout
    assert ", 0 missed," in full.stderr and "by the shim itself" in full.stderr, full.stderr
    # glibc's I/O inside the preinit's sem_open is the stracer's events and in the counters at
    # the shim's start: counted once (it said 100.5%)
    assert "explains 100.0% of the " in full.stderr, full.stderr
    assert "printf" in iotrace("show", str(full.trace)).stdout  # the shim on: its events


def test_a_semaphore_opened_again_under_the_apps_seccomp_filter(tmp_path):
    """Opened, then opened again after the app installed its own seccomp filter: the same
    address, and its closes succeed (the shim's munmap was its syscall(), refused once a filter
    is in: sem_close failed)."""
    full, _ = same_traced(tmp_path, "sandbox", "sem-sandbox")
    assert "again 1 same 1\n" in full.stdout and "close 0 0\nvalue 6\nclose 0 0\n" in full.stdout
