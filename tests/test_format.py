"""The one format table (src/iotrace/format.py) round-trips: what the C writers write by it, the
Python and C readers read back field by field, by the table's names."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgpack
import oracle_columns
import pytest
from conftest import build, iotrace
from iotrace.analyzer import event_columns
from iotrace.stracer import slog

from iotrace import format as fmt
from iotrace.calls import FUNC_IDS, c_header, kio_c_header
from iotrace.tracefile import check_event, other_record

ROOT = Path(__file__).resolve().parent.parent

# What tests/progs/fmt_records.c packs, record by record, by field name.
_EV = dict.fromkeys(fmt.EVENT_FIELDS[: fmt.EVENT_BASE_FIELDS])
EXPECTED: list[dict[str, Any]] = [
    {**_EV, "rec": 0, "fn": 7, "t_start": 1000, "dur": 500, "fd": 3, "path": 11, "req": 4096,
     "ret": 4095, "errno": 5, "offset": 123456789012, "flags": 0x241, "mode": 0o644, "stack": 13,
     "aux": [2049, 987654321]},
    {**_EV, "rec": 0, "fn": 5, "t_start": 2000, "dur": 1, "ret": -1, "errno": 2},
    {**_EV, "rec": 0, "fn": FUNC_IDS["sendfile"], "t_start": 3000, "dur": 100, "fd": 4,
     "path": 12, "req": 100, "ret": 99, "errno": 0, "offset": 10, "aux": 7,
     "fd2": 6, "path2": 14, "offset2": 20},
    {**_EV, "rec": 0, "fn": FUNC_IDS["splice"], "t_start": 4000, "dur": 4, "fd": 8, "ret": 0,
     "errno": 0, "fd2": 9, "path2": None, "offset2": None},
    {"rec": 1, "id": 11, "text": "dir/name"},
    {"rec": 2, "id": 13, "pcs": [0x401000, 0x402000]},
    {"rec": 3, "tid": 4242},
    {"rec": 4, "base": 0x1000, "lo": 0x2000, "hi": 0x3000, "path": "lib/x.so",
     "build_id": b"\x01\x02\x03"},
    {"rec": 4, "base": 0x5000, "lo": 0x6000, "hi": 0x7000, "path": "lib/y.so", "build_id": None},
    {"rec": 5, "t": 9999, "status": 3},
    {"rec": 6, "when": fmt.KIO_WHEN.index("exit"), "t": 8888, "counters": [1, 2, 3, 4, 5, 6, 7],
     "own": [11, 12, 13, 14], "pending": [21, 22], "sums": [31, 32, 33, 34, 35, 36],
     "uring": [41, 42, 43], "lost": [0, 65534], "next": [fmt.KIO_NEXT.index("unwritable") + 1]},
    {"rec": 7, "tid": 77, "t_start": 5000, "data": b"ab\x00\xff\n"},
    {"rec": 8, "tid": 78, "t_start": 5000, "size": 8, "dims": [1 << 40, 16], "chunk": [4, 16]},
    {"rec": 8, "tid": 78, "t_start": 5000, "size": 4, "dims": [1 << 40], "chunk": []},
    {"rec": 9, "tid": 79, "t_start": 5000, "bytes": 512, "chunks": 8, "partial": 6},
    {"rec": 9, "tid": 79, "t_start": 5000, "bytes": 64, "chunks": None, "partial": None},
    {"rec": 10, "t": 7777, "dropped": 123456, "untraced": 654321, "nnp": 1},
]  # fmt: skip


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The records fmt_records.c packs with preload/pack.c, each its bytes."""
    gen = tmp_path_factory.mktemp("gen")
    (gen / "calls.h").write_text(c_header())
    (gen / "iot_format.h").write_text(fmt.c_header())
    (gen / "iot_kio.h").write_text(kio_c_header())
    cflags = subprocess.run(["pkg-config", "--cflags", "msgpack"], capture_output=True,
                            text=True).stdout  # fmt: skip
    exe = gen / "fmt_records"
    subprocess.run(
        ["gcc", "-O1", "-Wall", "-Werror", "-D_GNU_SOURCE", f"-I{gen}", f"-I{ROOT / 'preload'}",
         *shlex.split(cflags), "-o", str(exe), str(ROOT / "tests/progs/fmt_records.c"),
         str(ROOT / "preload/pack.c")],
        check=True,
    )  # fmt: skip
    data = subprocess.run([str(exe)], check=True, capture_output=True).stdout
    up = msgpack.Unpacker()
    up.feed(data)
    out, pos = [], 0
    for _ in up:
        out.append(data[pos : up.tell()])
        pos = up.tell()
    assert pos == len(data)
    return out


def _unpack(b: bytes) -> list[Any]:
    return msgpack.unpackb(b, raw=False)


def test_every_record_kind_reads_back_field_by_field(packed):
    assert len(packed) == len(EXPECTED)
    for b, want in zip(packed, EXPECTED, strict=True):
        rec = _unpack(b)
        names = [f.name for f in fmt.RECORDS[fmt.Rec(rec[0])]]
        assert len(rec) == len(want) <= len(names)
        assert dict(zip(names, rec, strict=False)) == want
        for f, v in zip(fmt.RECORDS[fmt.Rec(rec[0])], rec, strict=False):
            assert fmt.fits(f, v), (f, v)
    assert {fmt.Rec(_unpack(b)[0]) for b in packed} == set(fmt.Rec)  # every kind is written


def test_the_readers_take_each_record_as_the_table_says(packed):
    for b in packed:
        rec = _unpack(b)
        if rec[0] == fmt.Rec.EVENT:
            check_event(rec, len(FUNC_IDS))
        else:
            other_record(tuple(rec), 1 << 20)  # BadRecord if not as the table has it


def _rows(ev: dict[str, Any]) -> list[dict[str, int]]:
    """An EVENT as the analyzer's raw columns: one row, two for a call with two ends."""
    nb = fmt.NULL_BITS
    row = {"tid": 4242, "nulls": 0}
    for name, _ in fmt.RAW_COLUMNS[1:-1]:
        row[name] = ev[name] or 0
    nulls = sum(nb[k] for k in nb if k in ev and ev[k] is None)
    if isinstance(ev["aux"], list):  # [dev, inode]: not kept, marked
        nulls |= nb["aux"] | nb["auxpair"]
    row["nulls"] = nulls
    if "fd2" not in ev:
        return [row]
    end = {**row, "fd": ev["fd2"], "path": ev["path2"] or 0, "offset": ev["offset2"] or 0}
    end["nulls"] = nulls & ~(nb["fd"] | nb["path"] | nb["offset"]) | nb["end2"]
    end["nulls"] |= sum(nb[c] for e, c in fmt.END2_COLUMNS.items() if ev[e] is None)
    return [row, end]


@pytest.mark.parametrize("which", ["C", "python"])
def test_the_decoders_columns_are_the_table_s_fields(packed, which):
    """A chunk of the C-packed records through the analyzer's decoder and its Python oracle
    (tests/oracle_columns.py): each event's columns are its fields, by name."""
    if which == "C":
        nat = event_columns.native()
        assert nat is not None
        dec: Any = event_columns.CDecoder(nat)
    else:
        dec = oracle_columns.PyDecoder()
    thread = next(b for b in packed if _unpack(b)[0] == fmt.Rec.THREAD)
    body = thread + b"".join(b for b in packed if b != thread)
    chunk = b"\xc6" + len(body).to_bytes(4, "big") + body
    buf = chunk + bytes(fmt.CHUNK_SIZE - len(chunk))
    count = dec.scan(buf, 0, len(buf), fmt.CHUNK_SIZE, None, 0)
    assert count.error == 0
    out = event_columns.RawColumns.empty(count.n_events)
    res = dec.scan(buf, 0, len(buf), fmt.CHUNK_SIZE, out, count.n_other)
    assert res.error == 0 and res.n_other == len(EXPECTED) - 5  # all but THREAD and EVENTs
    want = [r for ev in EXPECTED if ev["rec"] == fmt.Rec.EVENT for r in _rows(ev)]
    assert res.n_events == len(want) and res.n_ends == 2
    got = [{k: int(out[k][i]) for k, _ in fmt.RAW_COLUMNS} for i in range(len(want))]
    assert got == want


def test_missed_records_of_the_c_loop_and_of_python_are_the_table_s(trace):
    """st_loop's raw writes: the first is recorded by Python (a new call site), the rest by the
    stracer's C loop (stracer/_loop.c, IOT_MISSED_BASE); both are format.py's MISSED.  Its PROC
    and KIO records are format.py's SPROC and SKIO, field by field."""
    t = trace(build("st_loop"), "3")
    assert t.proc.returncode == 0, t.proc.stderr
    (path,) = slog.log_files(t.dir)
    log = slog.read(path)
    for table, kept in ((fmt.SPROC, log.procs), (fmt.SKIO, log.kio)):
        assert kept
        for r in kept:
            assert len(r) <= len(table) and all(map(fmt.fits, table, r)), (table, r)
    assert {r[fmt.SP.what] for r in log.procs} >= {"exec", "shim", "exit"}
    (end,) = [r for r in log.kio if r[fmt.SK.when] == "end"]
    assert len(end) == len(fmt.SKIO) and len(end[fmt.SK.shim]) == fmt.SKIO_LENS["shim"]
    recs = [dict(zip(fmt.MISSED_FIELDS, r, strict=False)) for r in log.missed]
    assert len(recs) == 3
    for r in recs:
        assert len(r) == fmt.MISSED_BASE_FIELDS
        assert r["syscall"] == "write" and r["path"] == "/dev/null" and r["ret"] == 1
        assert r["errno"] == 0 and r["class"] == "bypass" and r["args"][0] == r["fd"]
        assert r["args"][2] == 1 and r["t"] <= r["t_exit"]
    same = [{k: v for k, v in r.items() if k not in ("t", "t_exit")} for r in recs]
    assert same[0] == same[1] == same[2]


def test_show_holds_what_its_memory_bound_allows(tmp_path):
    """`iotrace show --memory 64M` holds its lines up to an eighth of the bound (8 MiB), then
    sorts them into runs in temporary files and merges them, reading each log a window at a
    time: 300,000 events print in no more memory than 100,000 (their lines: ~26 MB more).
    Holding every log's bytes and 32 bytes per event, or every line, it grew by 12-26 MB."""
    prog, grew = build("ft_fill"), []
    for n in (100_000, 300_000):
        out = tmp_path / f"t{n}"
        r = iotrace("run", "--no-stracer", "--stack", "0", "-o", str(out), "--",
                    str(prog), str(n), "0", str(tmp_path / "f"))  # fmt: skip
        assert r.returncode == 7, r.stderr
        show = subprocess.Popen([sys.executable, "-m", "iotrace", "show", str(out), "--memory",
                                 "64M"], stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert show.stdout is not None
        lines = sum(1 for ln in show.stdout if ln.startswith("[pid ") and " write(" in ln)
        _, status, usage = os.wait4(show.pid, 0)
        assert status == 0 and lines == n
        grew.append(usage.ru_maxrss * 1024)
    assert grew[1] - grew[0] < 10 << 20, grew
