"""Memory-mapping wrappers: file mmaps logged with their file, and the munmap/msync/mremap of
those ranges with the mapping's path and file offset; anonymous memory not logged; a mapping
inherited by a forked child still named in the child's log; threads; the app unchanged."""

from __future__ import annotations

import errno
import mmap
import re
import subprocess
from pathlib import Path

import pytest
from conftest import build, iotrace

MM = ("mmap", "munmap", "msync", "mremap")
PG = mmap.PAGESIZE


def untraced(exe: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(exist_ok=True)
    return subprocess.run([str(exe)], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_mmap_basic_events_exact(trace, tmp_path):
    assert PG == 4096  # the program's page arithmetic
    exe = build("mmap_basic")
    t = trace(exe)
    assert t.proc.returncode == 0, t.proc.stderr
    plain = untraced(exe, tmp_path / "plain")
    assert t.proc.stdout == plain.stdout
    assert "file=mapped! second\n" in t.proc.stdout and "bad=1 errno=9\n" in t.proc.stdout
    if "iotrace: stracer:" in t.proc.stderr:  # the file mappings carry the cookie as their
        # hint: no stop; the one on no file (EBADF) is libc's, its stop covered
        assert ": 1 covered by the shim," in t.proc.stderr, t.proc.stderr

    m = str(trace.work / "m.bin")
    evs = t.events(*MM)
    got = [(e["fn"], e["path"], e["req"], e["offset"], e["errno"]) for e in evs]
    assert got == [
        ("mmap", m, 2 * PG, 0, 0),
        ("msync", m, 2 * PG, 0, 0),
        ("munmap", m, 2 * PG, 0, 0),
        ("mmap", m, PG, PG, 0),
        ("msync", m, PG, PG, 0),  # file offset of the range, not of the address
        ("munmap", m, PG, PG, 0),
        ("mmap", m, 3 * PG, 0, 0),
        ("munmap", m, PG, PG, 0),  # the middle page: a hole
        ("munmap", m, PG, 0, 0),  # what is left on either side
        ("munmap", m, PG, 2 * PG, 0),
        ("mmap", m, PG, 0, 0),
        ("mremap", m, 2 * PG, 0, 0),
        ("munmap", m, 2 * PG, 0, 0),  # the moved range is still the file's
        ("mmap", None, PG, 0, errno.EBADF),  # anonymous mmap/msync/munmap: none logged
    ]
    fd = t.events("open")[0]["ret"]
    assert [e["fd"] for e in evs if e["fn"] == "mmap"] == [fd, fd, fd, fd, -1]
    # mmap: ret = address, flags, mode = prot; munmap/msync: aux = the address they touched
    maps = [e for e in evs if e["fn"] == "mmap"]
    assert all(e["ret"] > 0 and e["ret"] % PG == 0 for e in maps[:4])
    assert maps[4]["ret"] == -1
    assert [e["flags"] for e in maps] == [mmap.MAP_SHARED] * 2 + [mmap.MAP_PRIVATE] + [
        mmap.MAP_SHARED
    ] * 2
    rw = mmap.PROT_READ | mmap.PROT_WRITE
    assert [e["mode"] for e in maps] == [rw, rw, mmap.PROT_READ, mmap.PROT_READ, mmap.PROT_READ]
    assert evs[1]["aux"] == evs[2]["aux"] == maps[0]["ret"]
    assert evs[1]["flags"] == 4 and evs[4]["flags"] == 1  # MS_SYNC, MS_ASYNC
    base3 = maps[2]["ret"]
    assert [evs[i]["aux"] for i in (7, 8, 9)] == [base3 + PG, base3, base3 + 2 * PG]
    remap = evs[11]
    assert remap["aux"] == maps[3]["ret"] and remap["flags"] == 1  # MREMAP_MAYMOVE
    assert evs[12]["aux"] == remap["ret"]
    # the bytes stored through the shared mappings are no write call's: the report tells the
    # shared mappings apart (they were silently missing from its totals), in memory and from
    # the bounded path `iotrace report` takes
    from iotrace.analyzer import load, summarise

    # the read-only shared mapping (4) stores nothing: not counted (its mode is PROT_READ)
    want = {"mappings": 2, "bytes": 3 * PG, "files": 1, "msyncs": 2, "msync_bytes": 3 * PG}
    assert summarise(load(t.dir)).overview["mapped_shared"] == want
    out = iotrace("report", str(t.dir)).stdout
    assert "memory-mapped: 1 file(s) mapped shared (2 mappings, 12.0 KiB; 2 msync calls" in out


def test_a_raw_writable_shared_mapping_is_counted(trace):
    """A file mapped by a raw mmap syscall is the stracer's event: whether it is writable is
    in its `prot` argument, as it is in the shim's `mode`."""
    t = trace(build("st_mmap"), "out")
    assert t.proc.returncode == 0, t.proc.stderr
    if "iotrace: stracer:" not in t.proc.stderr:
        pytest.skip("no stracer here")
    from iotrace.analyzer import load, summarise

    want = {"mappings": 1, "bytes": PG, "files": 1, "msyncs": 0, "msync_bytes": 0}
    assert summarise(load(t.dir)).overview["mapped_shared"] == want


def test_mmap_inherited_by_forked_child(trace, tmp_path):
    exe = build("mmap_fork")
    t = trace(exe)
    assert t.proc.returncode == 0, t.proc.stderr
    assert t.proc.stdout == untraced(exe, tmp_path / "plain").stdout == "parent sees child\n"
    f = str(trace.work / "shared.bin")
    logs = {log.header["pid"]: log for log in t.logs}
    assert len(logs) == 2
    evs = t.events(*MM)
    parent = next(e["pid"] for e in evs if e["fn"] == "mmap")
    (child,) = set(logs) - {parent}
    got = [(e["pid"] == child, e["fn"], e["path"], e["req"], e["offset"]) for e in evs]
    assert sorted(got) == sorted(
        [
            (False, "mmap", f, 8192, 0),
            (True, "msync", f, 4096, 4096),  # named in the child's own log
            (True, "munmap", f, 8192, 0),
            (False, "munmap", f, 8192, 0),
        ]
    )


def test_mmap_threads_each_file_its_own(trace, tmp_path):
    exe = build("mmap_threads")
    t = trace(exe)
    assert t.proc.returncode == 0, t.proc.stderr
    assert t.proc.stdout == untraced(exe, tmp_path / "plain").stdout
    evs = t.events(*MM)
    assert sorted({e["fn"] for e in evs}) == ["mmap", "munmap"]
    per_tid: dict[int, list] = {}
    for e in evs:
        per_tid.setdefault(e["tid"], []).append(e)
    assert len(per_tid) == 4
    paths = set()
    for tid_evs in per_tid.values():
        (path,) = {e["path"] for e in tid_evs}
        paths.add(path)
        assert [e["fn"] for e in tid_evs] == ["mmap", "munmap"] * 200
        assert all(e["req"] == 4096 and e["errno"] == 0 for e in tid_evs)
        for mm, un in zip(tid_evs[::2], tid_evs[1::2], strict=True):
            assert un["aux"] == mm["ret"]
    assert paths == {str(trace.work / f"t{i}.bin") for i in range(4)}


def test_show_prints_mapping_path(trace):
    t = trace(build("mmap_basic"))
    r = iotrace("show", str(t.dir))
    assert r.returncode == 0, r.stderr
    m = trace.work / "m.bin"
    lines, m = r.stdout.splitlines(), re.escape(str(m))
    # strace's munmap(ADDR, LEN) and msync(ADDR, LEN, FLAGS), the address naming its file
    assert sum(bool(re.search(rf"munmap\(0x[0-9a-f]+<{m}>, ", ln)) for ln in lines) == 6
    assert any(re.search(rf"msync\(0x[0-9a-f]+<{m}>, 4096, MS_ASYNC\) = 0", ln) for ln in lines)
