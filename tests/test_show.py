"""`iotrace show`: every event, the stracer's too (marked by class), in time order, with
`--stacks` and decoded flags."""

from __future__ import annotations

import os
import re
import shutil

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
    assert 'openat(AT_FDCWD, "raw.out", O_WRONLY|O_CREAT|O_TRUNC, 0o644) = 3' in bypass[0]
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
    assert any("MAP_SHARED, PROT_READ|PROT_WRITE" in ln for ln in maps), maps
    assert any("MAP_PRIVATE, PROT_READ" in ln and "WRITE" not in ln for ln in maps), maps


def test_flag_names() -> None:
    assert mmap_prot(0) == ["PROT_NONE"] and mmap_prot(5) == ["PROT_READ", "PROT_EXEC"]
    assert mmap_flags(0x22) == ["MAP_PRIVATE", "MAP_ANONYMOUS"]
    assert mmap_flags(0x4001) == ["MAP_SHARED", "MAP_NORESERVE"]
    # MPI_MODE_CREATE | MPI_MODE_WRONLY, as Open MPI's and MPICH's mpi.h define them
    assert mpi_amode(5) == ["MPI_MODE_CREATE", "MPI_MODE_WRONLY"]
