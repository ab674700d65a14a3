"""The stracer as a source of the analyzer (issue 4): its missed syscalls in `events` and
`missed`, the processes it alone saw in `processes`, and every output showing them."""

from __future__ import annotations

import json
import os
import warnings

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import build, iotrace
from iotrace.analyzer import load, parts, schema, summarise

from iotrace.calls import SYSCALLS


def test_syscall_kinds_come_from_the_table():
    ops = {s.name: schema.op_of(s.name) for s in SYSCALLS}
    reads = {"read", "pread64", "readv", "preadv", "preadv2"}
    writes = {"write", "pwrite64", "writev", "pwritev", "pwritev2"}
    writes |= {"sendfile", "copy_file_range", "splice", "tee"}  # and their end read: name:in
    assert {n for n, o in ops.items() if o == "read"} == reads
    assert {n for n, o in ops.items() if o == "write"} == writes
    assert ops["openat"] == ops["openat2"] == ops["socket"] == ops["eventfd2"] == "open"
    assert ops["newfstatat"] == ops["faccessat2"] == ops["readlink"] == "meta"
    assert ops["close_range"] == "close" and ops["dup3"] == "dup" and ops["lseek"] == "seek"


def test_raw_syscalls_in_every_output(trace, tmp_path):
    t = trace(build("st_raw"), "out")
    assert t.proc.returncode == 0, t.proc.stderr
    out = str(trace.work / "out")
    tr = load(t.dir)
    ev = tr.events
    m = ev[ev["missed"]]
    assert (m["source"] == "stracer").all() and (ev[~ev["missed"]]["source"] == "shim").all()
    assert m["function"].astype(str).tolist() == ["openat", "write", "close"]
    assert m["path"].astype(str).tolist() == [out] * 3
    assert m["fd"].tolist() == [3, 3, 3] and m["ret"].tolist() == [3, 4, 0]
    assert m["op"].astype(str).tolist() == ["open", "write", "close"]
    assert pd.isna(m["bytes"].iloc[0]) and m["bytes"].iloc[1] == 4 and pd.isna(m["bytes"].iloc[2])
    assert m["req"].iloc[1] == 4
    assert m["flags"].iloc[0] == os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    assert (m["t_end"] > m["t_start"]).all()  # entry stop to exit stop
    assert (m["pid"] == m["tid"]).all() and m["rank"].isna().all()
    # aligned with the shim's events: the raw calls come before the libc write of "ok"
    shim_write = ev[(ev["function"] == "write") & ~ev["missed"] & (ev["fd"] == 1)]
    assert 0 <= m["t_start"].max() < shim_write["t_start"].iloc[0] <= tr.duration
    assert len(tr.processes) == 1 and (m["proc"] == 0).all()
    # missed: one row per syscall and call site, symbolised by the stracer
    mt = tr.missed
    assert mt["function"].tolist() == ["openat", "write", "close"]  # by count, then time
    assert mt["count"].tolist() == [1, 1, 1] and mt["bytes"].tolist() == [0, 4, 0]
    assert (mt["site"] == "raw_open (st_raw.c) ← main (st_raw.c)").all()
    frames = tr.stacks[tr.stacks["stack_id"] == int(mt["stack_id"].iloc[0])]
    assert frames["function"].tolist()[:3] == ["syscall", "raw_open", "main"]
    assert frames["line"].tolist()[1:3] == [12, 19]
    # the report
    s = summarise(tr)
    assert s.overview["missed"] == 3 and s.overview["bytes_written"] == 4 + 3  # raw + "ok\n"
    assert s.missed_sites["functions"].tolist() == ["close 1, openat 1, write 1"]
    rep = json.loads(iotrace("report", str(t.dir), "--json").stdout)
    site = rep["missed_sites"][0]
    assert site["site"] == "raw_open (st_raw.c) ← main (st_raw.c)" and site["count"] == 3
    assert {i["key"] for i in rep["insights"]} >= {"missed-io"}
    con = iotrace("report", str(t.dir), env=dict(os.environ, COLUMNS="200"))
    assert "Missed I/O by call site" in con.stdout and "raw_open (st_raw.c)" in con.stdout
    html = tmp_path / "r.html"
    assert iotrace("report", str(t.dir), "--html", str(html)).returncode == 0
    assert "raw_open (st_raw.c) ← main (st_raw.c)" in html.read_text()
    # exports: Parquet partition source=stracer, Chrome slices marked
    pqdir = tmp_path / "pq"
    assert iotrace("export", str(t.dir), "--format", "parquet", "-o", str(pqdir)).returncode == 0
    part = pq.read_table(pqdir / "events" / "source=stracer").to_pandas()
    assert part["function"].astype(str).tolist() == ["openat", "write", "close"]
    assert pq.read_table(pqdir / "missed.parquet").num_rows == 3
    cj = tmp_path / "c.json"
    assert iotrace("export", str(t.dir), "--format", "chrome", "-o", str(cj)).returncode == 0
    slices = [e for e in json.loads(cj.read_text())["traceEvents"] if e["ph"] == "X"]
    missed = [e for e in slices if e["cat"] == "missed"]
    assert [e["name"] for e in missed] == ["openat", "write", "close"]
    for e in missed:
        assert e["args"]["missed"] is True and e["args"]["path"] == out
        assert e["args"]["site"].startswith("raw_open") and e["cname"] == "terrible"


def test_static_binary_is_a_process_of_its_own(trace):
    t = trace(build("st_static", "-static"), "out")
    assert t.proc.returncode == 0, t.proc.stderr
    tr = load(t.dir)
    assert list(tr.dir.glob("*.iot")) == []  # no shim in a static binary
    p = tr.processes
    assert len(p) == 1 and p["source"].iloc[0] == "stracer"
    assert "st_static" in p["exe"].iloc[0] and p["ended"].iloc[0] == "exit"
    assert p["exit_status"].iloc[0] == 0 and p["events"].iloc[0] == len(tr.events) == 4
    ev = tr.events
    assert ev["missed"].all() and (ev["proc"] == 0).all()
    w = ev[ev["function"] == "write"]
    assert w["bytes"].tolist() == [7] and w["path"].astype(str).tolist() == [
        str(trace.work / "out")]  # fmt: skip
    s = summarise(tr)
    assert s.overview["bytes_written"] == 7 and s.processes["missed"].tolist() == [4]


def test_stracer_log_cut_short_warns_once(trace):
    t = trace(build("st_raw"), "out")
    log = next(t.dir.glob("*.stracer"))
    data = log.read_bytes()
    log.write_bytes(data[: len(data) - 7])  # no END record, a torn last record
    with pytest.warns(UserWarning, match="cut short"):
        tr = load(t.dir)
    assert tr.events["missed"].sum() >= 2
    # the bounded report says it once too: its parts' index of the log knows it is cut short
    # (parts._warn takes it from there, not from a whole second read)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts.summarise(parts.Bounded(t.dir, workers=1))
    said = [str(w.message) for w in caught if "cut short" in str(w.message)]
    assert len(said) == 1 and log.name in said[0], [str(w.message) for w in caught]
    # with 2 workers the command did not index it: read through, its END and seals checked
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts.summarise(parts.Bounded(t.dir, workers=2))
    said = [str(w.message) for w in caught if "cut short" in str(w.message)]
    assert len(said) == 1 and log.name in said[0], [str(w.message) for w in caught]
