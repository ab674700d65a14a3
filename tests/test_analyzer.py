"""The analyzer (issue 4): real programs traced under `iotrace run`, and every number of the
report checked against what the program did."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import struct
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import PROGS, build, iotrace
from iotrace.analyzer import TruncatedLogWarning, load, summarise
from iotrace.analyzer.access import BUCKETS
from iotrace.analyzer.load import read_header
from oracle_columns import PyDecoder

from iotrace.tracefile import read_log

BLOCKS = [((i * 37) % 64) * 4096 for i in range(64)]  # an_pattern.c's pwrite offsets


def stream_classes(accesses: list[tuple[int, int]]) -> tuple[int, int]:
    """(consecutive, sequential) of one stream by the documented rule."""
    prev_end, consec, seq = 0, 0, 0
    for off, size in accesses:
        consec += off == prev_end
        seq += off >= prev_end
        prev_end = off + size
    return consec, seq


@pytest.fixture(scope="module")
def pattern(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """an_pattern traced once for the module: (trace dir, work dir)."""
    base = tmp_path_factory.mktemp("pattern")
    work = base / "work"
    work.mkdir()
    proc = iotrace("run", "-o", str(base / "trace"), "--", str(build("an_pattern")), cwd=work)
    assert proc.returncode == 0, proc.stderr
    return base / "trace", work


def test_files_table_matches_the_program(pattern):
    tdir, work = pattern
    tr = load(tdir)
    f = tr.files.set_index("path")
    seq, rnd, small = (str(work / n) for n in ("seq.dat", "rand.dat", "small.dat"))
    assert f.loc[seq, "bytes_written"] == 100 * 1000
    assert f.loc[seq, "bytes_read"] == 40 * 2500
    assert (f.loc[seq, "writes"], f.loc[seq, "reads"], f.loc[seq, "opens"]) == (100, 40, 2)
    assert f.loc[rnd, "bytes_written"] == 64 * 4096 + 10
    assert f.loc[rnd, "bytes_read"] == 8 * 8192
    assert (f.loc[rnd, "writes"], f.loc[rnd, "reads"], f.loc[rnd, "seeks"]) == (65, 8, 1)
    assert f.loc[small, "bytes_written"] == 300 * 16
    assert f.loc[small, "writes"] == 300
    # access-size buckets (Darshan's, upper bound included)
    assert f.loc[seq, "write_100-1K"] == 100 and f.loc[seq, "read_1K-10K"] == 40
    assert f.loc[rnd, "write_1K-10K"] == 64 and f.loc[rnd, "write_0-100"] == 1
    assert f.loc[rnd, "read_1K-10K"] == 8
    assert f.loc[small, "write_0-100"] == 300
    for name in (seq, rnd, small):
        hist = sum(int(f.loc[name, f"{d}_{b}"]) for d in ("read", "write") for b in BUCKETS)
        assert hist == f.loc[name, "reads"] + f.loc[name, "writes"]
    # sequential share: seq.dat and small.dat are purely consecutive
    assert (f.loc[seq, "classified"], f.loc[seq, "consecutive"], f.loc[seq, "random"]) == (
        140,
        140,
        0,
    )
    assert f.loc[small, "seq_share"] == 1.0
    consec_w, seq_w = stream_classes([(o, 4096) for o in BLOCKS] + [(100, 10)])
    assert f.loc[rnd, "classified"] == 65 + 8
    assert f.loc[rnd, "consecutive"] == consec_w + 8  # the 8 reads follow each other from 0
    assert f.loc[rnd, "sequential"] == seq_w + 8
    assert f.loc[rnd, "random_share"] == pytest.approx(1 - (seq_w + 8) / 73)
    # unaligned: offsets not a multiple of 4096
    assert f.loc[seq, "unaligned"] == 99 + 39
    assert f.loc[rnd, "unaligned"] == 1
    assert f.loc[small, "unaligned"] == 298


def test_events_table(pattern):
    tdir, work = pattern
    tr = load(tdir)
    ev = tr.events
    for col in (
        "source",
        "host",
        "rank",
        "pid",
        "tid",
        "function",
        "fd",
        "path",
        "offset",
        "bytes",
        "ret",
        "errno",
        "t_start",
        "t_end",
        "missed",
        "stack_id",
    ):
        assert col in ev.columns
    assert (ev["source"] == "shim").all() and not ev["missed"].any()
    assert ev["t_start"].is_monotonic_increasing
    assert (ev["t_start"] >= 0).all() and (ev["t_end"] >= ev["t_start"]).all()
    assert (ev["t_end"] <= tr.duration).all()
    calls = ev["function"].value_counts()
    assert (
        calls["open"],
        calls["close"],
        calls["write"],
        calls["read"],
        calls["pwrite"],
        calls["lseek"],
    ) == (4, 4, 400, 48, 65, 1)
    seqw = ev[(ev["path"] == str(work / "seq.dat")) & (ev["function"] == "write")]
    assert seqw["bytes"].tolist() == [1000] * 100
    assert seqw["offset"].tolist() == list(range(0, 100_000, 1000))
    opens = ev[ev["function"] == "open"]
    assert opens["bytes"].isna().all() and (opens["fd"] >= 3).all()
    assert len(tr.processes) == 1 and tr.processes["exit_status"].iloc[0] == 0
    assert tr.missed.empty and list(tr.missed.columns)[:3] == ["host", "pid", "function"]


def test_report_numbers_and_insights(pattern):
    tdir, work = pattern
    proc = iotrace("report", str(tdir), "--json")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    ov = rep["overview"]
    assert ov["bytes_written"] == 100 * 1000 + 64 * 4096 + 10 + 300 * 16
    assert ov["bytes_read"] == 40 * 2500 + 8 * 8192
    assert (ov["writes"], ov["reads"]) == (465, 48)
    assert ov["classified"] == 140 + 73 + 300
    sizes = dict(zip(rep["access_sizes"]["buckets"], rep["access_sizes"]["writes"], strict=True))
    assert sizes == {**dict.fromkeys(BUCKETS, 0), "0-100": 301, "100-1K": 100, "1K-10K": 64}
    fn = {r["function"]: r for r in rep["functions"]}
    assert fn["write"]["calls"] == 400 and fn["write"]["bytes"] == 100_000 + 4800
    keys = {i["key"]: i for i in rep["insights"]}
    # one diagnosis per file and direction, judged on the data files: small.dat's 300 writes of
    # 16 B and seq.dat's 100 of 1000 B are small (their unaligned offsets are the same requests)
    small = keys["small-writes"]
    assert small["subject"] == str(work / "small.dat")
    assert (small["numbers"]["ops"], small["numbers"]["small_ops"]) == (400, 400)
    assert [f["path"] for f in small["numbers"]["files"]] == [
        str(work / "small.dat"),
        str(work / "seq.dat"),
    ]
    assert (small["evidence"]["calls"], small["evidence"]["bytes"]) == (400, 300 * 16 + 100_000)
    assert "unaligned-access" not in keys
    rnd = keys["random-access"]["numbers"]["files"][0]
    # rand.dat's writes: 64 pwrites in a shuffled order and one back at offset 100
    assert rnd["path"].endswith("rand.dat") and (rnd["accesses"], rnd["random"]) == (65, 37)
    assert keys["random-access"]["subject"] == rnd["path"]
    assert "io-time-share" in keys
    assert 0 < ov["io_share"] < 1
    # the console report prints the same
    text = iotrace("report", str(tdir))
    assert text.returncode == 0, text.stderr
    assert "Many small writes to" in text.stdout and "400 of 400 writes" in text.stdout


def test_call_sites_are_symbolised(pattern):
    tdir, _work = pattern
    tr = load(tdir)
    src = (PROGS / "an_pattern.c").read_text().splitlines()
    line = next(i + 1 for i, s in enumerate(src) if "pwrite(fd, buf, 4096" in s)
    st = tr.stacks
    inner = st[(st["level"] == 0) & (st["function"] == "random_blocks")]
    assert not inner.empty, st.head(20)
    assert inner["file"].str.endswith("an_pattern.c").all()
    assert line in set(inner["line"].dropna().astype(int))
    s = summarise(tr)
    cs = s.call_sites
    assert cs["time"].is_monotonic_decreasing  # ranked by time, bytes beside
    top = cs[cs["site"].str.contains(f"random_blocks (an_pattern.c:{line})", regex=False)]
    assert top["bytes"].tolist() == [64 * 4096]


def test_decoders_agree(pattern, monkeypatch):
    """The C decoder and its Python oracle (tests/oracle_columns.py) give the same tables."""
    tdir, _work = pattern
    fast = load(tdir)
    monkeypatch.setattr(importlib.import_module("iotrace.analyzer.load"), "decoder", PyDecoder)
    slow = load(tdir)
    pd.testing.assert_frame_equal(fast.events, slow.events)
    pd.testing.assert_frame_equal(fast.processes, slow.processes)


def test_ranks_slow_rank_and_shared_file(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "job"
    prog = str(build("an_rank"))
    for rank in range(4):
        env = {**os.environ, "PMI_RANK": str(rank), "PMI_SIZE": "4"}
        args = [prog, "shared.dat"] + (["slow"] if rank == 3 else [])
        proc = iotrace("run", "-o", str(out), "--", *args, cwd=work, env=env)
        assert proc.returncode == 0, proc.stderr
    tr = load(out)
    assert sorted(tr.processes["rank"].tolist()) == [0, 1, 2, 3]
    f = tr.files.set_index("path").loc[str(work / "shared.dat")]
    assert (f["write_ranks"], f["ranks"], f["writes"]) == (4, 4, 64)
    assert f["bytes_written"] == 64 * 64 * 1024
    s = summarise(tr)
    r = s.ranks.set_index("rank")
    assert r.loc[3, "bytes_read"] == 24 * (4 << 20)
    assert all(r.loc[k, "bytes_written"] == 16 * 64 * 1024 for k in range(4))
    keys = {i.key: i for i in s.insights}
    assert keys["shared-file"].numbers["files"][0]["ranks"] == 4
    # the straggler's reads are of /dev/urandom: a system file, judged with --system only (on
    # a loaded machine another rank's 16 writes may really stall: a finding, not rank 3's)
    assert "rank-imbalance" not in keys or keys["rank-imbalance"].subject != "rank 3", keys
    every = {i.key: i for i in summarise(tr, system=True).insights}
    assert every["rank-imbalance"].subject == "rank 3"
    assert [o["rank"] for o in every["rank-imbalance"].numbers["outliers"]] == [3]
    # each rank's stream strides forward, never back; only rank 0's first block starts at 0
    assert (f["random"], f["sequential"], f["consecutive"]) == (0, 64, 1)


def test_the_slowest_rank_is_the_one_slow_on_its_files(tmp_path):
    """Rank 3 writes and reads 16 MiB of its own file (the straggler: its fsync made 1 s long by
    a preloaded slow_fsync, as on a disk); rank 0 first waits for its input on a pipe (not file
    I/O) through all of rank 3's life: the pipe ends once rank 3 has ended, and rank 3
    starts once rank 0 waits in its read (its /proc/PID/syscall), whatever the machine's speed
    or load.  The job's slowest rank, the rank-imbalance finding and the console's Job line all
    name rank 3 (the Job line named rank 0, whose I/O time was the pipe's wait)."""
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "job"
    prog = build("an_rank")
    slow = build("slow_fsync", "-shared", "-fPIC", "-ldl")
    script = (
        f"mkfifo go; cat go | PMI_RANK=0 PMI_SIZE=4 {prog} shared.dat stdin & r0=$!; "
        "exec 3> go; until read -r nr fd _ < /proc/$r0/syscall && [ \"$nr $fd\" = '0 0x0' ]; "
        "do sleep 0.01; done; "  # rank 0 waits in read(0, ...)
        f"PMI_RANK=1 PMI_SIZE=4 {prog} shared.dat & PMI_RANK=2 PMI_SIZE=4 {prog} shared.dat & "
        f'LD_PRELOAD="$LD_PRELOAD {slow}" SLOW_FSYNC_MS=1000 PMI_RANK=3 PMI_SIZE=4 {prog} '
        "shared.dat big; exec 3>&-; wait"  # rank 0's pipe ends after rank 3
    )
    proc = iotrace("run", "--no-stracer", "-o", str(out), "--", "sh", "-c", script, cwd=work)
    assert proc.returncode == 0, proc.stderr
    s = summarise(load(out))
    r = s.ranks.set_index("rank")
    assert r.loc[0, "io_time"] > max(1_000_000_000, r.loc[3, "io_time"])  # the pipe's wait
    assert r["file_io_time"].idxmax() == 3
    keys = {i.key: i for i in s.insights}
    assert keys["rank-imbalance"].subject == "rank 3"
    assert s.job["slowest"]["rank"] == 3
    assert s.job["by"] == "file_io_time"
    rep = iotrace("report", str(out))
    assert rep.returncode == 0, rep.stderr
    assert re.search(r"Job: 4 ranks; slowest rank 3: [\d.]+ m?s in file I/O", rep.stdout)
    # the files table by bytes moved: the straggler's own file (32 MiB read and written) first,
    # then the shared file (4 MiB written)
    assert [Path(p).name for p in s.files["path"][:2]] == ["rank.3", "shared.dat"]


def test_files_are_ordered_by_the_bytes_they_moved(trace):
    """A file written 1 MB comes before a file read 6 bytes (reads were sorted first)."""
    t = trace("sh", "-c", "echo hello > in.txt; cat in.txt > /dev/null; "
              "head -c 1000000 /dev/zero > out.dat")  # fmt: skip
    assert t.proc.returncode == 0, t.proc.stderr
    s = summarise(load(t.dir))
    names = [Path(p).name for p in s.files["path"]]
    assert names[:2] == ["out.dat", "in.txt"], names
    # setlocale's "" (a locale name, not a path) is no file
    assert all(p.startswith(("/", "pipe:", "socket:")) for p in s.files["path"]), names


def test_metadata_storm_and_failures(trace):
    t = trace(build("an_meta"))
    assert t.proc.returncode == 0, t.proc.stderr
    s = summarise(load(t.dir))
    keys = {i.key: i for i in s.insights}
    storm = keys["metadata-storm"].numbers
    assert storm["ops"] == 1 + 700 + 50 + 1 + 700  # opens + closes
    assert storm["by_function"] == {"open": 751, "close": 701}
    # a non-blocking pipe's EAGAIN and socket()'s EAFNOSUPPORT are no failed file calls
    assert keys["failed-calls"].numbers["by_call"] == {"open ENOENT": 50}
    assert keys["failed-calls"].subject == str(t.dir.parent / "work" / "missing.dat")


def _chunks(path: Path) -> list[tuple[int, int]]:
    """(offset, committed length) of every written chunk of a log."""
    data = path.read_bytes()
    _h, first, chunk = read_header(data, path)
    out = []
    for off in range(first, len(data), chunk):
        if data[off] == 0xC6:
            out.append((off, struct.unpack_from(">I", data, off + 1)[0]))
    return out


@pytest.mark.parametrize("made", ["empty", "zeros"])
def test_a_log_never_written_loads_with_one_warning(pattern, tmp_path, made):
    """A process killed as its shim made its log (a pool's forked worker terminated at once:
    python3's multiprocessing under CI) leaves the file empty, or sized and all zeros before the
    header went in: no record, one warning, the rest of the trace read and shown (the zeros
    failed the whole load and report, either failed `show`: "not an iotrace log")."""
    tdir, _work = pattern
    cut = tmp_path / "cut"
    shutil.copytree(tdir, cut)
    (cut / "vm.99999.iot").write_bytes(b"" if made == "empty" else bytes(1 << 16))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tr = load(cut)
    assert [w.category for w in caught] == [TruncatedLogWarning]
    assert "vm.99999.iot" in str(caught[0].message)
    assert len(tr.events) == len(load(tdir).events)
    proc = iotrace("report", str(cut))
    assert proc.returncode == 0, proc.stderr
    shown, ref = iotrace("show", str(cut)), iotrace("show", str(tdir))
    assert shown.returncode == 0 and shown.stdout == ref.stdout, shown.stderr
    assert "vm.99999.iot was never written" in shown.stderr, shown.stderr
    other = cut / "vm.99998.iot"  # zeros and then bytes: no such log, refused
    other.write_bytes(bytes(1 << 16) + b"x")
    bad = iotrace("report", str(cut))
    assert bad.returncode != 0 and "not an iotrace log" in bad.stderr, bad.stderr


def test_truncated_log_loads_with_one_warning(pattern, tmp_path):
    tdir, _work = pattern
    cut = tmp_path / "cut"
    shutil.copytree(tdir, cut)
    (log,) = sorted(cut.glob("*.iot"))
    off, length = _chunks(log)[-1]
    assert length > 100
    with open(log, "r+b") as f:
        f.truncate(off + 5 + length // 2)
    expected = len(read_log(log).events)  # the plain reader stops at the same record
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tr = load(cut)
    assert [w.category for w in caught] == [TruncatedLogWarning]
    assert "cut short" in str(caught[0].message)
    assert len(tr.events) == expected < len(load(tdir).events)
    assert bool(tr.processes["truncated"].iloc[0])
    proc = iotrace("report", str(cut))
    assert proc.returncode == 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("iotrace: warning:"), proc.stderr


@pytest.mark.parametrize("damage", ["marker", "record", "garbage"])
def test_corrupt_log_is_one_line_and_status_2(pattern, tmp_path, damage):
    tdir, _work = pattern
    bad = tmp_path / "bad"
    shutil.copytree(tdir, bad)
    (log,) = sorted(bad.glob("*.iot"))
    data = bytearray(log.read_bytes())
    off, _length = _chunks(log)[0]
    if damage == "marker":
        data[off] = 0x55
    elif damage == "record":
        data[off + 5] = 0xC1  # the never-used msgpack byte, at the chunk's first record
    else:
        data[:] = os.urandom(5000)
    log.write_bytes(bytes(data))
    for cmd in (
        ["report", str(bad)],
        ["report", str(bad), "--json"],
        ["export", str(bad), "--format", "csv", "-o", str(tmp_path / "o")],
    ):
        proc = iotrace(*cmd)
        assert proc.returncode == 2, (cmd, proc.stdout, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert ("corrupt log" if damage != "garbage" else "not an iotrace log") in proc.stderr


def test_bad_input_messages(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, text in (
        (["report", str(empty)], "not an iotrace trace directory"),
        (["report", str(tmp_path / "nope")], "no such trace directory"),
        (
            ["export", str(empty), "--format", "parquet", "-o", str(tmp_path / "x")],
            "not an iotrace trace directory",
        ),
        (
            ["export", str(empty), "--format", "xml", "-o", str(tmp_path / "x")],
            "invalid choice: 'xml'",
        ),
    ):
        proc = iotrace(*args)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and text in proc.stderr, proc.stderr


def test_trace_without_events(trace):
    t = trace("true")
    assert t.proc.returncode == 0, t.proc.stderr
    tr = load(t.dir)
    assert len(tr.events) == 0 and tr.files.empty
    proc = iotrace("report", str(t.dir))
    assert proc.returncode == 0, proc.stderr
    assert "holds no events" in proc.stdout
    assert iotrace("report", str(t.dir), "--json").returncode == 0
    html = t.dir / "r.html"
    assert iotrace("report", str(t.dir), "--html", str(html)).returncode == 0
    assert (
        iotrace("export", str(t.dir), "--format", "chrome", "-o", str(t.dir / "c.json")).returncode
        == 0
    )


def test_parquet_reads_back(pattern, tmp_path):
    tdir, work = pattern
    out = tmp_path / "pq"
    proc = iotrace("export", str(tdir), "--format", "parquet", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    tr = load(tdir)
    parts = list((out / "events").glob("source=shim/host=*/*.parquet"))
    assert parts, list(out.rglob("*"))
    back = pq.read_table(out / "events").to_pandas()
    assert len(back) == len(tr.events)
    assert int(back["bytes"].sum()) == int(tr.events["bytes"].sum())
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(
        f"SELECT path, sum(bytes) FROM read_parquet('{out}/events/**/*.parquet', "
        "hive_partitioning=true) WHERE function = 'write' GROUP BY path ORDER BY path"
    ).fetchall()
    assert dict(rows) == {str(work / "seq.dat"): 100_000, str(work / "small.dat"): 4800}
    (src,) = duckdb.sql(
        f"SELECT DISTINCT source FROM read_parquet('{out}/events/**/*.parquet', "
        "hive_partitioning=true)"
    ).fetchall()
    assert src == ("shim",)
    for name in ("processes", "files", "stacks", "missed"):
        assert (out / f"{name}.parquet").exists()
    files = duckdb.sql(f"SELECT path, bytes_read FROM '{out}/files.parquet'").fetchall()
    assert dict(files)[str(work / "seq.dat")] == 100_000


def test_csv_export(pattern, tmp_path):
    tdir, _work = pattern
    out = tmp_path / "csv"
    assert iotrace("export", str(tdir), "--format", "csv", "-o", str(out)).returncode == 0
    ev = pd.read_csv(out / "events.csv")
    assert len(ev) == len(load(tdir).events)
    assert ev.loc[ev["function"] == "pwrite", "bytes"].sum() == 64 * 4096 + 10


def test_chrome_trace_event_format(pattern, tmp_path):
    tdir, _work = pattern
    out = tmp_path / "trace.json"
    proc = iotrace("export", str(tdir), "--format", "chrome", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    evs = doc["traceEvents"]
    assert isinstance(evs, list)
    tr = load(tdir)
    slices = [e for e in evs if e["ph"] == "X"]
    meta = [e for e in evs if e["ph"] == "M"]
    assert len(slices) == len(tr.events)
    for e in slices:
        assert isinstance(e["name"], str) and isinstance(e["cat"], str)
        assert isinstance(e["ts"], int | float) and e["ts"] >= 0
        assert isinstance(e["dur"], int | float) and e["dur"] >= 0
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
    pids = {e["pid"] for e in slices}
    named = {e["pid"] for e in meta if e["name"] == "process_name"}
    threads = {(e["pid"], e["tid"]) for e in meta if e["name"] == "thread_name"}
    assert pids <= named and {(e["pid"], e["tid"]) for e in slices} <= threads
    assert all(isinstance(e["args"]["name"], str) for e in meta)
    # µs: the first write's slice matches the table's ns
    w = tr.events[tr.events["function"] == "write"].iloc[0]
    first = next(e for e in slices if e["name"] == "write")
    assert first["ts"] == pytest.approx(w["t_start"] / 1000, abs=1e-3)
    assert first["args"]["bytes"] == 1000


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "chromium"], env=env, capture_output=True, timeout=900
    )
    return shutil.which("chromium")


def _chromium_flags(tmp_path: Path) -> list[str]:
    """Headless, offline, its profile in the test's directory, the page's console on stderr."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]


def test_html_report_in_headless_chromium(pattern, tmp_path):
    tdir, _work = pattern
    html = tmp_path / "report.html"
    proc = iotrace("report", str(tdir), "--html", str(html))
    assert proc.returncode == 0, proc.stderr
    text = html.read_text()
    # self-contained: no script, nothing loaded from anywhere (SVG namespace URIs are names)
    assert "<script" not in text and "<link" not in text and "<img" not in text
    assert not any(f'{attr}="http' in text for attr in ("src", "href", "xlink:href"))
    assert "url(http" not in text and "@import" not in text
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed and cannot be installed here")
    flags = _chromium_flags(tmp_path)
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") >= 4  # timeline, bandwidth, sizes, files
    for title in (
        "I/O timeline per process",
        "Bandwidth over time",
        "Access sizes",
        "Bytes per file",
        "Many small writes",
    ):
        assert title in dom.stdout, title
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == []
    shot = tmp_path / "shot.png"
    subprocess.run(
        [chromium, *flags, "--window-size=1200,1600", f"--screenshot={shot}", html.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 20_000  # a page with plots, not a blank one
    assert np.frombuffer(shot.read_bytes()[:8], dtype=np.uint8).tolist()[1:4] == [80, 78, 71]


def test_rebuilt_binary_is_not_symbolised(tmp_path):
    """A module rebuilt after the run (another build-id than the MODULE record's) gives no
    symbols, and a warning says why; the binary the job ran gives them."""
    src = tmp_path / "prog.c"
    src.write_text(
        "#include <fcntl.h>\n#include <unistd.h>\n"
        'int main(void) { int fd = open("out", O_WRONLY | O_CREAT, 0644);\n'
        '  return write(fd, "x", 1) != 1 || close(fd) != 0; }\n'
    )
    exe = tmp_path / "prog"
    subprocess.run(["gcc", "-O1", "-g", "-o", str(exe), str(src)], check=True)
    work = tmp_path / "work"
    work.mkdir()
    r = iotrace("run", "-o", str(tmp_path / "t"), "--no-stracer", "--", str(exe), cwd=work)
    assert r.returncode == 0, r.stderr

    def own_functions() -> set[str]:
        st = load(tmp_path / "t").stacks
        return set(st[st["module"] == str(exe)]["function"].dropna())

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "main" in own_functions()
    src.write_text(src.read_text() + '\n__attribute__((used)) static const char again[] = "v2";\n')
    subprocess.run(["gcc", "-O1", "-g", "-o", str(exe), str(src)], check=True)
    with pytest.warns(UserWarning, match="not the file the job ran"):
        assert own_functions() == set()
