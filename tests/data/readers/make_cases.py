"""Writes the readers' regression cases (tests/test_readers.py) into this directory: a small
synthetic trace in the real format (a shim log, a stracer log, a run record; neutral names),
then one damaged copy per case.  Deterministic: run it again after a format change.

    python tests/data/readers/make_cases.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgpack
from iotrace.stracer.slog import FORMAT as SFORMAT
from iotrace.stracer.slog import VERSION as SVERSION
from iotrace.stracer.slog import SRec

from iotrace.calls import (
    FORMAT_NAME,
    FORMAT_VERSION,
    FUNCTIONS,
    SEAL_EXT_TYPE,
    SEAL_SIZE,
)
from iotrace.tracefile import xxh3

HERE = Path(__file__).resolve().parent
FN = {f.name: i for i, f in enumerate(FUNCTIONS)}
CHUNK_SIZE = 4096  # the header says so; small files (the shim's are 32 KiB)
MONO, REAL = 1_000_000_000, 1_700_000_000_000_000_000


def seal(sealed: bytes, room: int) -> bytes:
    head = b"\xc9" + (room - 6).to_bytes(4, "big") + bytes([SEAL_EXT_TYPE])
    return head + xxh3(sealed).to_bytes(8, "big") + bytes(room - SEAL_SIZE)


def ev(fn: str, t: int, fd: int | None, path: int | None, req: int | None, ret: int) -> list:
    return [0, FN[fn], MONO + t, 1000, fd, path, req, ret, 0, 0 if req else None, None, None,
            None, None]  # fmt: skip


def shim_log(recs: list | None = None) -> bytes:
    """The shim log of the valid case, or one of `recs` (tests/test_show_input.py's)."""
    header = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "host": "node01", "pid": 100,
        "ppid": 99, "rank": None, "size": None, "job": None, "argv": ["/opt/app/solver"],
        "exe": "/opt/app/solver", "cwd": "/scratch/job", "clock": {"mono": MONO, "real": REAL},
        "forked": False, "stack_depth": 0, "chunk_size": CHUNK_SIZE,
        "functions": [f.name for f in FUNCTIONS],
    }  # fmt: skip
    hdr = msgpack.packb(header)
    area = -(-(len(hdr) + SEAL_SIZE) // CHUNK_SIZE) * CHUNK_SIZE
    if recs is None:
        recs = [[3, 100], [1, 1, "/scratch/job/out.dat"], ev("open", 10, 3, 1, None, 3)]
        recs += [ev("write", 100 + 10 * i, 3, 1, 4096, 4096) for i in range(40)]
        recs += [ev("close", 900, 3, 1, None, 0), [5, MONO + 1000, 0]]
    body = b"".join(msgpack.packb(r) for r in recs)
    chunk = b"\xc6" + len(body).to_bytes(4, "big") + body
    return hdr + seal(hdr, area - len(hdr)) + chunk + seal(chunk, CHUNK_SIZE - len(chunk))


def stracer_log(recs: list | None = None, **fields: object) -> bytes:
    """The stracer log of the valid case, or one of `recs` (its header's `fields` replaced)."""
    header = {
        "format": SFORMAT, "version": SVERSION, "host": "node01", "pid": 99,
        "argv": ["/opt/app/solver"], "clock": {"mono": MONO, "real": REAL},
        "syscalls": {"openat": ["dirfd", "path", "oflags", "mode"], "write": ["fd", "buf", "size"],
                     "close": ["fd"]},
        "site_frame": ["pc", "module", "offset", "function", "file", "line"],
    } | fields  # fmt: skip
    site = [[0x401000, "/opt/app/solver", 0x1000, "raw_open", "solver.c", 12]]
    recs = recs if recs is not None else [
        [2, MONO + 1, 100, 99, "exec", {"exe": "/opt/app/solver", "shim": True}],
        [2, MONO + 2, 100, 0, "shim", "ready"],
        [1, 0, site, None],
        [0, MONO + 500, 100, 100, "openat", ["AT_FDCWD", "/scratch/job/raw.dat", ["O_WRONLY"], 0],
         4, 0, 0, 4, "/scratch/job/raw.dat", MONO + 600, "bypass"],
        [0, MONO + 700, 100, 100, "write", [4, 0x1000, 4], 4, 0, 0, 4, "/scratch/job/raw.dat",
         MONO + 800, "bypass"],
        [0, MONO + 850, 100, 100, "close", [4], 0, 0, 0, 4, "/scratch/job/raw.dat", MONO + 860,
         "bypass"],
        [2, MONO + 2000, 100, 0, "exit", 0],
        [3, 100, {"covered": 50, "loader": 20, "shim": 10, "libc": 0, "bypass": 3}],
        [4, MONO + 2100, 0],
    ]  # fmt: skip
    data = msgpack.packb(header) + b"".join(msgpack.packb(r) for r in recs)
    return data + msgpack.packb([SRec.SEAL, xxh3(data)])


def base(d: Path) -> None:
    d.mkdir(parents=True)
    (d / "node01.100.iot").write_bytes(shim_log())
    (d / "node01.99.stracer").write_bytes(stracer_log())
    run = {"iotrace": "0.1.0", "host": "node01", "pid": 100, "argv": ["/opt/app/solver"],
           "start_real_ns": REAL, "start_mono_ns": MONO, "end_mono_ns": MONO + 3000,
           "returncode": 0, "status": 0}  # fmt: skip
    (d / "iotrace-run.node01.100.json").write_text(json.dumps(run))


def damaged(name: str, edit) -> None:
    d = HERE / name
    base(d)
    log = d / ("node01.99.stracer" if name.startswith("stracer") else "node01.100.iot")
    data = bytearray(log.read_bytes())
    edit(data)
    log.write_bytes(bytes(data))


def reseal(data: bytearray, off: int) -> None:
    n = int.from_bytes(data[off + 1 : off + 5], "big")
    end = off + 5 + n
    data[end : off + CHUNK_SIZE] = seal(bytes(data[off:end]), off + CHUNK_SIZE - end)


def append(rec: bytes):
    """A record added to the first chunk, the chunk sealed again: damage a checksum cannot see."""

    def edit(data: bytearray) -> None:
        n = int.from_bytes(data[CHUNK_SIZE + 1 : CHUNK_SIZE + 5], "big")
        at = CHUNK_SIZE + 5 + n
        data[at : at + len(rec)] = rec
        data[CHUNK_SIZE + 1 : CHUNK_SIZE + 5] = (n + len(rec)).to_bytes(4, "big")
        reseal(data, CHUNK_SIZE)

    return edit


def flip(at: int, bit: int):
    def edit(data: bytearray) -> None:
        data[at] ^= 1 << bit

    return edit


def unsealed_short(data: bytearray) -> None:
    """The seal gone (a writer killed) and the length lowered by one record: records after it."""
    n = int.from_bytes(data[CHUNK_SIZE + 1 : CHUNK_SIZE + 5], "big")
    data[CHUNK_SIZE + 5 + n : 2 * CHUNK_SIZE] = bytes(CHUNK_SIZE - 5 - n)
    data[CHUNK_SIZE + 1 : CHUNK_SIZE + 5] = (n - 400).to_bytes(4, "big")


def main() -> None:
    for d in HERE.iterdir():
        if d.is_dir():
            shutil.rmtree(d)
    base(HERE / "valid")
    damaged("huge_string_id", append(msgpack.packb([1, 2**31, "x"])))
    damaged("huge_stack_id", append(msgpack.packb([2, 2**32 - 1, [1, 2, 3]])))
    damaged("huge_length", append(b"\x93\x01\x05\xdb\x7f\xff\xff\xff"))
    damaged("huge_array", append(b"\xdd\x7f\xff\xff\xff\x00"))
    damaged("huge_chunk_length", flip(CHUNK_SIZE + 1, 7))
    damaged("bit_flip", flip(CHUNK_SIZE + 200, 2))
    damaged("header_bit_flip", flip(100, 0))
    damaged("unsealed_records_after_length", unsealed_short)
    damaged("truncated_chunk", lambda data: data.__delitem__(slice(CHUNK_SIZE + 700, None)))
    damaged("stracer_bit_flip", lambda data: data.__setitem__(-40, data[-40] ^ 0x10))
    damaged(
        "stracer_huge_length",
        lambda data: data.__setitem__(slice(-60, -55), b"\xdb\x7f\xff\xff\xff"),
    )


if __name__ == "__main__":
    main()
