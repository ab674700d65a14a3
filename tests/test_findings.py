"""Findings that must name exactly the planted problem: real programs (tests/progs/findings.c,
findings_mpi.c), each with one known I/O problem whose calls, bytes, files and ranks the program
fixes; the report's first finding must be that problem, about that file, directory or rank,
with the program's own counts as its evidence, and nothing false beside it.  Each report is the
bounded path's, equal to the in-memory one (test_corpus._report)."""

from __future__ import annotations

import json

from conftest import build, iotrace
from test_corpus import NO_STRACER, _above_info, _findings, _report


def _fn_time(s, fn: str) -> int:
    return int(s.functions.set_index("function").loc[fn, "time"])


def test_an_fsync_per_write_is_the_first_finding(trace) -> None:
    """200 writes of 8 KiB, each followed by an fsync: nearly all the I/O time is in fsync, and
    the report said nothing of it (its only line was the I/O time share)."""
    t = trace(build("findings"), "fsync", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    first = s.insights[0]
    path = str(trace.work / "journal.dat")
    assert (first.key, first.subject, first.level) == ("frequent-sync", path, "high"), s.insights
    assert (first.evidence["calls"], first.evidence["bytes"]) == (200, 200 * 8192)
    assert first.evidence["time"] == _fn_time(s, "fsync")
    assert first.numbers["files"] == [
        {"path": path, "functions": "fsync", "syncs": 200, "writes": 200,
         "bytes_written": 200 * 8192, "time": first.evidence["time"]}
    ]  # fmt: skip
    assert "fsync after every write to " + path in first.title
    assert [i.key for i in s.insights if i.level != "info"] == ["frequent-sync"]
    # the console and the JSON say it as well
    out = iotrace("report", str(t.dir))
    assert out.returncode == 0 and "fsync after every write" in out.stdout, out.stderr
    js = json.loads(iotrace("report", "--json", str(t.dir)).stdout)
    assert js["insights"][0]["key"] == "frequent-sync"


def test_one_fsync_at_the_end_is_fine(trace) -> None:
    t = trace(build("findings"), "onesync", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    assert _above_info(s) == []
    assert not [i for i in s.insights if i.key == "frequent-sync"]


def test_reopen_per_record_blames_its_directory_not_the_big_one(trace) -> None:
    """Dir A: a file opened, appended 200 bytes and closed per record (2,000 times); dir B: one
    64 MiB file in 1 MiB writes.  A's metadata storm and small writes; nothing about B."""
    t = trace(build("findings"), "reopen", extra=NO_STRACER)
    assert t.proc.returncode == 0, t.proc.stderr
    s = _report(t.dir)
    keys = {i.key: i for i in _findings(s)}
    a, log = str(trace.work / "A"), str(trace.work / "A" / "log.dat")
    storm = keys["metadata-storm"]
    assert storm.subject == a and storm.evidence["calls"] == 4000, storm
    assert storm.numbers["by_function"] == {"open": 2000, "close": 2000}
    small = keys["small-writes"]
    assert small.subject == log
    assert (small.evidence["calls"], small.evidence["bytes"]) == (2000, 2000 * 200)
    assert s.insights[0].key in ("metadata-storm", "small-writes")
    assert not [i for i in s.insights if "/B" in i.subject or "big.dat" in i.title]
