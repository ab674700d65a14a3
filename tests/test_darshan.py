"""`iotrace export --format darshan`: a real Darshan log, written by libdarshan-util, read back
by PyDarshan with counters equal to iotrace's own totals (per file and rank), rendered by
`python -m darshan summary`, and read by Drishti."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import darshan
import numpy as np
import pandas as pd
import pytest
from conftest import build, iotrace
from iotrace.analyzer import load, parts
from iotrace.analyzer.export import export as export_trace
from iotrace.analyzer.export import export_parts
from test_mpi import MPICC, MPIRUN, _shim_has_mpi, build_mpi, run_job

N, B = 8, 3000  # dar_mix's calls per file and bytes per call


def read_back(log: Path) -> dict[str, pd.DataFrame]:
    """Module -> one row per record: path, rank and every counter and fcounter, by name."""
    rep = darshan.DarshanReport(str(log), read_all=True)
    out = {}
    for mod in ("POSIX", "STDIO", "MPI-IO"):
        if mod not in rep.records:
            continue
        df = rep.records[mod].to_df()
        both = df["counters"].merge(df["fcounters"], on=["id", "rank"])
        both.insert(0, "path", both["id"].map(rep.name_records))
        out[mod] = both
    for mod in ("DXT_POSIX", "DXT_MPIIO"):
        if mod in rep.records:
            out[mod] = pd.DataFrame(
                [dict(r, path=rep.name_records[r["id"]]) for r in rep.records[mod].to_df()]
            )
    return out


def one(df: pd.DataFrame, path: Path | str, rank: int = 0) -> pd.Series:
    rows = df[(df["path"] == str(path)) & (df["rank"] == rank)]
    assert len(rows) == 1, (path, rank, df["path"].tolist())
    return rows.iloc[0]


def export(trace_dir: Path, out: Path) -> None:
    p = iotrace("export", str(trace_dir), "--format", "darshan", "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "wrote a Darshan log" in p.stderr


def test_posix_and_stdio_counters_equal_the_trace(trace, tmp_path: Path) -> None:
    t = trace(build("dar_mix"), ".", str(N), str(B))
    assert t.proc.returncode == 0, t.proc.stderr
    log = tmp_path / "run.darshan"
    export(t.dir, log)
    got = read_back(log)
    pdat, stxt = trace.work / "posix.dat", trace.work / "stdio.txt"

    # what the program did, by its source
    px = one(got["POSIX"], pdat)
    want = {"POSIX_OPENS": 1, "POSIX_READS": N, "POSIX_WRITES": N, "POSIX_SEEKS": 1,
            "POSIX_STATS": 1, "POSIX_FSYNCS": 1, "POSIX_BYTES_READ": N * B,
            "POSIX_BYTES_WRITTEN": N * B, "POSIX_MAX_BYTE_READ": N * B - 1,
            "POSIX_MAX_BYTE_WRITTEN": N * B - 1, "POSIX_CONSEC_WRITES": N,
            "POSIX_RW_SWITCHES": 1, "POSIX_SIZE_WRITE_1K_10K": N, "POSIX_SIZE_READ_1K_10K": N,
            "POSIX_ACCESS1_ACCESS": B, "POSIX_ACCESS1_COUNT": 2 * N,
            "POSIX_FILE_NOT_ALIGNED": 2 * (N - 1)}  # fmt: skip
    assert {k: int(px[k]) for k in want} == want
    st = one(got["STDIO"], stxt)
    want = {"STDIO_OPENS": 2, "STDIO_READS": N, "STDIO_WRITES": N, "STDIO_SEEKS": 1,
            "STDIO_FLUSHES": 1, "STDIO_BYTES_READ": N * B, "STDIO_BYTES_WRITTEN": N * B,
            "STDIO_MAX_BYTE_WRITTEN": N * B - 1}  # fmt: skip
    assert {k: int(st[k]) for k in want} == want
    assert str(stxt) not in set(got["STDIO"]["path"]) - {str(stxt)}
    assert str(pdat) not in set(got["STDIO"]["path"])  # no stdio call touched it

    # iotrace's own totals, per file: the POSIX layer of its files table (stdio's refills and
    # flushes included) and its events
    tr = load(t.dir)
    files = tr.files.set_index("path")
    for path in (pdat, stxt):
        f = files.loc[str(path)]
        px = one(got["POSIX"], path)
        assert (int(px["POSIX_READS"]), int(px["POSIX_WRITES"])) == (f["reads"], f["writes"])
        assert int(px["POSIX_BYTES_READ"]) == f["bytes_read"]
        assert int(px["POSIX_BYTES_WRITTEN"]) == f["bytes_written"]
        assert int(px["POSIX_CONSEC_READS"] + px["POSIX_CONSEC_WRITES"]) == f["consecutive"]
        assert int(px["POSIX_SEQ_READS"] + px["POSIX_SEQ_WRITES"]) == f["sequential"]
        assert int(px["POSIX_FILE_NOT_ALIGNED"]) == f["unaligned"]
        for d in ("read", "write"):
            assert int(px[f"POSIX_SIZE_{d.upper()}_1K_10K"]) == f[f"{d}_1K-10K"]
        ev = tr.events[tr.events["path"] == str(path)]
        data = ev[ev["function"].isin(["pwrite", "read", "stdio_flush", "stdio_refill"])]
        w = data[data["op"] == "write"]
        assert px["POSIX_F_WRITE_TIME"] == pytest.approx((w["t_end"] - w["t_start"]).sum() / 1e9)
        assert px["POSIX_F_WRITE_START_TIMESTAMP"] == pytest.approx(w["t_start"].min() / 1e9)
        assert px["POSIX_F_WRITE_END_TIMESTAMP"] == pytest.approx(w["t_end"].max() / 1e9)
    # stdio.txt reached the kernel as the stream's refills and flushes, 4 KiB at a time
    assert int(one(got["POSIX"], stxt)["POSIX_OPENS"]) == 0
    assert int(one(got["POSIX"], stxt)["POSIX_WRITES"]) == -(-N * B // 4096)
    ev = tr.events[tr.events["path"] == str(stxt)]
    for d, fns in (("WRITE", ["fwrite"]), ("READ", ["fread"])):
        calls = ev[ev["function"].isin(fns)]
        assert int(st[f"STDIO_{d}S"]) == len(calls)
        assert (
            int(st[f"STDIO_BYTES_{'WRITTEN' if d == 'WRITE' else 'READ'}"]) == calls["bytes"].sum()
        )

    # DXT: one segment per access, in order, offsets and lengths exact
    dx = got["DXT_POSIX"].set_index("path").loc[str(pdat)]
    assert (dx["write_count"], dx["read_count"]) == (N, N)
    assert dx["write_segments"]["offset"].tolist() == [k * B for k in range(N)]
    assert dx["read_segments"]["length"].tolist() == [B] * N
    assert (dx["write_segments"]["end_time"] >= dx["write_segments"]["start_time"]).all()


def same_logs(a: Path, b: Path) -> None:
    """The two logs read back by PyDarshan: the same job and records, counter for counter
    (times to a nanosecond), the same DXT segments in the same order."""
    ra, rb = (
        darshan.DarshanReport(str(a), read_all=True),
        darshan.DarshanReport(str(b), read_all=True),
    )
    assert ra.metadata["job"] == rb.metadata["job"] and ra.name_records == rb.name_records
    x, y = read_back(a), read_back(b)
    assert sorted(x) == sorted(y)
    for mod in x:
        if mod.startswith("DXT"):
            key = lambda r: (r["rank"], r["path"])  # noqa: E731
            assert len(x[mod]) == len(y[mod]), mod
            for p, q in zip(sorted(x[mod].to_dict("records"), key=key),
                            sorted(y[mod].to_dict("records"), key=key), strict=True):  # fmt: skip
                assert (p["hostname"], p["write_count"], p["read_count"]) == (
                    q["hostname"], q["write_count"], q["read_count"]), (mod, p["path"])  # fmt: skip
                for k in ("write_segments", "read_segments"):
                    pd.testing.assert_frame_equal(p[k], q[k], obj=f"{mod} {p['path']} {k}")
            continue
        u = x[mod].sort_values(["path", "rank"]).reset_index(drop=True)
        v = y[mod].sort_values(["path", "rank"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(u, v, check_exact=False, rtol=0, atol=1e-9, obj=mod)


def bounded_equals_in_memory(d: Path, tmp: Path, at_least_ranges: int) -> None:
    """export --format darshan in parts (a part per process on 1 worker; every log cut into
    ranges of ~64 events on 2): the log the in-memory export writes."""
    whole = tmp / "whole.darshan"
    export_trace(load(d), "darshan", whole)
    pl = parts.plan(d, parts.MEMORY_DEFAULT, 1, part_bytes=1, range_bytes=1)
    assert sum(1 for p in pl if p.window) >= at_least_ranges
    for k, (w, kw) in enumerate([(1, {}), (2, {"range_bytes": 1})]):
        got = tmp / f"parts{k}.darshan"
        export_parts("darshan", parts.Bounded(d, workers=w, part_bytes=1, **kw), got)
        same_logs(whole, got)


def test_bounded_export_is_the_in_memory_one(trace, tmp_path: Path) -> None:
    # dar_mix (POSIX, stdio, DXT), a fork tree, threads: several processes, ranks by process,
    # records of one file from several processes, each cut into ranges; reads and writes of
    # sizes that vary, switching between them across the cuts
    rw = ("import os; fd = os.open('rw.dat', os.O_CREAT | os.O_RDWR, 0o600); "
          "[os.pwrite(fd, b'x' * (1 + i % 7), i) if i % 3 else os.pread(fd, 5, i) "
          "for i in range(600)]")  # fmt: skip
    t = trace("sh", "-c", f"{build('proc_fork')} && {build('dar_mix')} . 200 3000 && "
              f"{build('proc_threads')} && python3 -c \"{rw}\"")  # fmt: skip
    assert t.proc.returncode == 0, t.proc.stderr
    bounded_equals_in_memory(t.dir, tmp_path, 5)
    # the command line: in parts, within --memory
    cli = tmp_path / "cli.darshan"
    p = iotrace("export", str(t.dir), "--format", "darshan", "-o", str(cli), "--memory", "1M")
    assert p.returncode == 0 and "wrote a Darshan log" in p.stderr, p.stderr
    same_logs(tmp_path / "whole.darshan", cli)


def test_summary_and_drishti_read_it(trace, tmp_path: Path) -> None:
    t = trace(build("dar_mix"), ".", str(N), str(B))
    log = tmp_path / "run.darshan"
    export(t.dir, log)
    p = subprocess.run([sys.executable, "-m", "darshan", "summary", str(log)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr
    html = (tmp_path / "run_report.html").read_text()
    assert "dar_mix" in html and "POSIX" in html and "STDIO" in html
    drishti = shutil.which("drishti") or str(Path(sys.executable).with_name("drishti"))
    if not Path(drishti).exists():
        pytest.fail("drishti (drishti-io) is not installed: make install-test installs it")
    p = subprocess.run([drishti, str(log)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "2 files (1 use STDIO, 2 use POSIX, 0 use MPI-IO)" in p.stdout
    assert "PROCESSES       1" in p.stdout


def test_bad_output_is_one_line(trace, tmp_path: Path) -> None:
    t = trace(build("dar_mix"), ".", "1", "10")
    p = iotrace("export", str(t.dir), "--format", "darshan", "-o", str(tmp_path / "no/x.darshan"))
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


@pytest.mark.skipif(not (MPIRUN and MPICC and _shim_has_mpi()), reason="needs Open MPI")
def test_mpiio_counters_per_rank(tmp_path: Path) -> None:
    # mpi_io FILE 4096 512: per rank 2 collective, 2 independent, 2 nonblocking writes of 4 KiB
    # and 1 collective, 1 independent, 2 nonblocking reads (tests/progs/mpi_io.c)
    job = run_job(tmp_path, "ranks", 2, build_mpi("mpi_io"), "data.bin", "4096", "512")
    log = tmp_path / "job.darshan"
    export(job.dir, log)
    got = read_back(log)
    data = job.work / "data.bin"
    tr = load(job.dir)
    for r in range(2):
        m = one(got["MPI-IO"], data, r)
        want = {"MPIIO_COLL_WRITES": 2, "MPIIO_INDEP_WRITES": 2, "MPIIO_NB_WRITES": 2,
                "MPIIO_COLL_READS": 1, "MPIIO_INDEP_READS": 1, "MPIIO_NB_READS": 2,
                "MPIIO_COLL_OPENS": 1, "MPIIO_SYNCS": 1, "MPIIO_VIEWS": 2,
                "MPIIO_BYTES_WRITTEN": 6 * 4096, "MPIIO_BYTES_READ": 4 * 4096,
                "MPIIO_SIZE_WRITE_AGG_1K_10K": 6, "MPIIO_SIZE_READ_AGG_1K_10K": 4}  # fmt: skip
        assert {k: int(m[k]) for k in want} == want
        # iotrace's totals for this rank: the MPI layer, and the POSIX calls inside it
        ev = tr.events[(tr.events["path"] == str(data)) & (tr.events["rank"] == r)]
        mpi = ev[ev["function"].str.startswith("MPI_File") & ev["bytes"].notna()]
        assert int(m["MPIIO_BYTES_WRITTEN"]) == mpi.loc[mpi["op"] == "write", "bytes"].sum()
        px = one(got["POSIX"], data, r)
        posix = ev[~ev["function"].str.startswith("MPI_File") & ev["bytes"].notna()]
        assert int(px["POSIX_BYTES_WRITTEN"]) == posix.loc[posix["op"] == "write", "bytes"].sum()
        assert int(px["POSIX_WRITES"]) == int((posix["op"] == "write").sum())
        assert int(px["POSIX_READS"]) == int((posix["op"] == "read").sum())
        dx = got["DXT_MPIIO"]
        dx = dx[(dx["path"] == str(data)) & (dx["rank"] == r)].iloc[0]
        assert (dx["write_count"], dx["read_count"]) == (6, 4)
        assert sorted(dx["write_segments"]["length"]) == [4096] * 6
    bounded_equals_in_memory(job.dir, tmp_path, 3)
    # the per-file files table sums the ranks
    f = tr.files.set_index("path").loc[str(data)]
    m = got["MPI-IO"][got["MPI-IO"]["path"] == str(data)]
    assert int(m["MPIIO_BYTES_WRITTEN"].sum()) == f["mpi_bytes_written"]
    assert int(m["MPIIO_BYTES_READ"].sum()) == f["mpi_bytes_read"]
    assert np.all(m["rank"].sort_values().to_numpy() == [0, 1])


def test_merged_pieces_are_a_stable_sort_of_their_concatenation(
    tmp_path: Path, monkeypatch
) -> None:
    # pieces in time order with many ties inside and across them, merged a few accesses at a
    # time: the order a stable sort of their concatenation by start time gives
    from iotrace.analyzer import darshan as dn

    rng = np.random.default_rng(7)
    f, pieces, alls = tmp_path / "pieces", [], []
    with open(f, "wb") as out:
        for k in range(5):
            acc = np.zeros(int(rng.integers(0, 40)), dtype=dn.ACCESS)
            acc["t0"] = np.sort(rng.integers(0, 12, len(acc))) / 4
            acc["w"] = rng.integers(0, 2, len(acc))
            acc["off"] = k * 1000 + np.arange(len(acc))  # which piece, which position
            nw = int(acc["w"].sum())
            pieces.append((str(f), out.tell(), nw, len(acc) - nw, 0, "h"))
            out.write(acc.tobytes())
            alls.append(acc)
    cat = np.concatenate(alls)
    for batch in (1, 3, 1 << 20):
        monkeypatch.setattr(dn, "DXT_BATCH", batch * dn.ACCESS.itemsize)
        for want in (None, 1, 0):
            sel = cat if want is None else cat[cat["w"] == want]
            expect = sel[np.argsort(sel["t0"], kind="stable")]["off"].tolist()
            got = [b for b in dn._merged(pieces, want)]
            assert np.concatenate(got)["off"].tolist() == expect, (batch, want)
            assert max(len(b) for b in got) <= max(batch, 1) * len(pieces)


def test_rw_switches_of_a_rank_whose_processes_interleave(
    trace, tmp_path: Path, monkeypatch
) -> None:
    # one rank (PMI_RANK), two processes taking turns on one file through a pipe: the parent
    # writes (every third access a read), the child reads; each a part of its own (and on 2
    # workers cut into ranges), their accesses interleaved in time
    from iotrace.analyzer import darshan as dn

    pingpong = (
        "import os; fd = os.open('rw.dat', os.O_CREAT | os.O_RDWR, 0o600); "
        "a, b = os.pipe(); c, d = os.pipe(); child = os.fork() == 0\n"
        "for i in range(200):\n"
        "    if child: os.read(a, 1); os.pread(fd, 5, i); os.write(d, b'x')\n"
        "    else:\n"
        "        os.pwrite(fd, b'x' * (1 + i % 7), i) if i % 3 else os.pread(fd, 3, i)\n"
        "        os.write(b, b'x'); os.read(c, 1)\n"
        "os._exit(0) if child else os.wait()"
    )
    t = trace("sh", "-c", f'PMI_RANK=0 exec python3 -c "{pingpong}"')
    assert t.proc.returncode == 0, t.proc.stderr
    bounded_equals_in_memory(t.dir, tmp_path, 2)
    px = one(read_back(tmp_path / "whole.darshan")["POSIX"], tmp_path / "work" / "rw.dat")
    assert px["POSIX_RW_SWITCHES"] >= 2 * 133, px["POSIX_RW_SWITCHES"]
    # the DXT records and the switches merged a few accesses at a time: the same bytes
    monkeypatch.setattr(dn, "DXT_BATCH", 3 * dn.ACCESS.itemsize)
    small = tmp_path / "small.darshan"
    export_parts("darshan", parts.Bounded(t.dir, workers=1, part_bytes=1), small)
    assert small.read_bytes() == (tmp_path / "parts0.darshan").read_bytes()
    export_trace(load(t.dir), "darshan", small)
    assert small.read_bytes() == (tmp_path / "whole.darshan").read_bytes()
