"""The analyzer at scale: synthesise a trace in the real on-disk format, load it, report on it.

Writes N events (default 10 million) spread over R ranks (default 16), one log per rank, following
docs/format.md exactly (a header map, padding, 32 KiB chunks of msgpack records, a THREAD record
first in every chunk, STRING/STACK/MODULE records before their first use), in a temporary
directory; then, in a fresh process each (so peak memory is the step's own), times
`iotrace.analyzer.load` and the full report (load + summary + the JSON report), and prints events
per second, CPU time split into user and system (kernel) time, and peak RSS.

    python3 bench/analyzer_bench.py [--events 10000000] [--ranks 16] [--keep DIR] [--settle S]

The first load runs right after the trace was written (its data still dirty in the page cache,
as for a user loading the trace of a job that just ended).  Every later step waits --settle
seconds first: on a VM that returns free memory to its host (virtio free page reporting) memory
freed by the previous step is handed back about a second later, and a step started sooner reuses
it and is faster than any first load; after the pause every round is a first load again.

Targets (issue 4): >= 2 million events/s into the events table, peak memory < 3 GB for 10 million
events, the report of that trace in < 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import msgpack

from iotrace.calls import (
    CHUNK_SIZE,
    FORMAT_NAME,
    FORMAT_VERSION,
    FUNCTIONS,
    SEAL_EXT_TYPE,
    SEAL_SIZE,
)
from iotrace.tracefile import xxh3

FN = {f.name: i for i, f in enumerate(FUNCTIONS)}
HOST = "node01"
EXE = "/opt/app/bin/solver"
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
EXE_BASE, LIBC_BASE = 0x55550000_0000, 0x7F00_0000_0000
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT = 0, 1, 2, 0o100


class LogWriter:
    """One process log, written the shim's way: records packed into per-thread chunks."""

    def __init__(self, path: Path, header: dict[str, object]) -> None:
        self.f = open(path, "wb")
        self.packer = msgpack.Packer()
        hdr = self.packer.pack(header)
        area = -(-(len(hdr) + SEAL_SIZE) // CHUNK_SIZE) * CHUNK_SIZE
        self.f.write(hdr + self._seal(hdr, area - len(hdr)))
        self.tid = 0
        self.buf: list[bytes] = []
        self.used = 0

    @staticmethod
    def _seal(sealed: bytes, left: int) -> bytes:
        """The seal after `sealed`, filling `left` bytes (docs/format.md)."""
        head = b"\xc9" + (left - 6).to_bytes(4, "big") + bytes([SEAL_EXT_TYPE])
        return head + xxh3(sealed).to_bytes(8, "big") + b"\0" * (left - SEAL_SIZE)

    def thread(self, tid: int) -> None:
        if tid != self.tid:
            self.flush()
            self.tid = tid

    def add(self, rec: list[object]) -> None:
        b = self.packer.pack(rec)
        if not self.buf:
            first = self.packer.pack([3, self.tid])
            self.buf.append(first)
            self.used = len(first)
        if 5 + self.used + len(b) > CHUNK_SIZE - SEAL_SIZE:
            self.flush()
            self.add(rec)
            return
        self.buf.append(b)
        self.used += len(b)

    def flush(self) -> None:
        if not self.buf:
            return
        payload = b"".join(self.buf)
        body = b"\xc6" + len(payload).to_bytes(4, "big") + payload
        self.f.write(body + self._seal(body, CHUNK_SIZE - len(body)))
        self.buf, self.used = [], 0

    def close(self) -> None:
        self.flush()
        self.f.close()


def write_rank(out: Path, rank: int, ranks: int, n: int, t0: int, seed: int) -> int:
    """One rank's log: `n` events, a mix of sequential writes, random preads, seeks, stats."""
    rnd = random.Random(seed + rank)
    pid = 10000 + rank
    mono0 = 5_000_000_000 + rank * 1000  # each process its own monotonic origin...
    real0 = t0 + rank * 7  # ...aligned by the clock pair
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "host": HOST,
        "pid": pid,
        "ppid": 9999,
        "rank": rank,
        "size": ranks,
        "job": "bench",
        "argv": [EXE, "-n", str(ranks)],
        "exe": EXE,
        "cwd": "/scratch/run",
        "clock": {"mono": mono0, "real": real0},
        "forked": False,
        "stack_depth": 4,
        "chunk_size": CHUNK_SIZE,
        "functions": [f.name for f in FUNCTIONS],
    }
    w = LogWriter(out / f"{HOST}.{pid}.iot", header)
    w.thread(pid)
    w.add([4, EXE_BASE, EXE_BASE, EXE_BASE + 0x40000, EXE])
    w.add([4, LIBC_BASE, LIBC_BASE, LIBC_BASE + 0x1D0000, LIBC])
    paths = {"shared": 1, "own": 2, "input": 3, "stat": 4}
    w.add([1, 1, "/scratch/run/checkpoint.dat"])
    w.add([1, 2, f"/scratch/run/rank{rank:05d}.log"])
    w.add([1, 3, "/scratch/input/mesh.h5"])
    w.add([1, 4, "/scratch/run/control.txt"])
    for sid in range(1, 9):
        w.add([2, sid, [EXE_BASE + 0x1000 + 0x40 * sid, EXE_BASE + 0x2000, LIBC_BASE + 0x29D90]])
    t = mono0 + 1_000_000
    slow = 3 if rank == ranks - 1 else 1  # the last rank is the straggler
    fds = {"shared": 3, "own": 4, "input": 5}
    for name, fd in fds.items():
        flags = O_RDONLY if name == "input" else O_WRONLY | O_CREAT
        w.add(
            [
                0,
                FN["open"],
                t,
                2000,
                fd,
                paths[name],
                None,
                fd,
                0,
                None,
                flags,
                0o644,
                1,
                [2049, 1000 + fd],
            ]
        )
        t += 3000
    pos = {"own": 0, "input": 0}
    shared_off = rank * 4096
    threads = [pid, pid + 1]
    stored = len(fds)
    while stored < n:
        w.thread(threads[(stored // 5000) % 2])  # two threads, alternating in bursts
        x = rnd.random()
        dur = rnd.randrange(200, 3000) * slow
        if x < 0.45:  # small sequential writes to the rank's own file
            size = rnd.choice((64, 512, 1000, 4096))
            rec = [0, FN["write"], t, dur, 4, 2, size, size, 0, pos["own"], None, None, 2, None]
            pos["own"] += size
        elif x < 0.65:  # aligned strided pwrites to the shared checkpoint
            rec = [
                0,
                FN["pwrite"],
                t,
                dur * 4,
                3,
                1,
                65536,
                65536,
                0,
                shared_off,
                None,
                None,
                3,
                None,
            ]
            shared_off += ranks * 65536
        elif x < 0.85:  # random preads of the input
            off = rnd.randrange(0, 1 << 30)
            rec = [0, FN["pread"], t, dur, 5, 3, 8192, 8192, 0, off, None, None, 4, None]
        elif x < 0.90:
            rec = [
                0,
                FN["lseek"],
                t,
                150,
                5,
                3,
                None,
                pos["input"],
                0,
                pos["input"],
                None,
                None,
                5,
                0,
            ]
        elif x < 0.97:  # a metadata storm of stats on one control file
            rec = [
                0,
                FN["stat"],
                t,
                dur,
                None,
                4,
                None,
                -1 if x > 0.965 else 0,
                2 if x > 0.965 else 0,
                None,
                None,
                None,
                6,
                None,
            ]
        else:
            rec = [0, FN["fsync"], t, dur * 10, 4, 2, None, 0, 0, None, None, None, 7, None]
        w.add(rec)
        t += dur + rnd.randrange(500, 4000)
        stored += 1
    w.thread(pid)
    w.add([5, t + 1000, 0])
    w.close()
    return stored


def synthesise(out: Path, events: int, ranks: int, seed: int = 1) -> int:
    t0 = 1_790_000_000_000_000_000
    per = [events // ranks + (1 if r < events % ranks else 0) for r in range(ranks)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as ex:
        futs = [ex.submit(write_rank, out, r, ranks, per[r], t0, seed) for r in range(ranks)]
        total = sum(f.result() for f in futs)
    run = {
        "iotrace": "bench",
        "host": HOST,
        "pid": 9999,
        "argv": [EXE],
        "start_real_ns": t0,
        "start_mono_ns": 4_000_000_000,
        "end_mono_ns": None,  # the job ends with its last event
        "returncode": 0,
        "status": 0,
    }
    (out / f"iotrace-run.{HOST}.9999.json").write_text(json.dumps(run))
    return total


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def dirty_mb() -> float | None:
    """Data written but not yet on disk (Linux), MB."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("Dirty:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def child_load(trace: str) -> None:
    from iotrace.analyzer import load
    from iotrace.analyzer.event_columns import decoder_name

    decoder_name()  # compiles the C decoder on a machine's first use: not part of the load
    base = peak_rss_mb()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    tr = load(trace, progress=False)
    n = len(tr.events)
    dt = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "events": n,
                "seconds": dt,
                "cpu": r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime,
                "user": r1.ru_utime - r0.ru_utime,
                "sys": r1.ru_stime - r0.ru_stime,
                "faults": r1.ru_minflt - r0.ru_minflt,
                "rss_mb": peak_rss_mb(),
                "base_mb": base,
                "decoder": decoder_name(),
            }
        )
    )


def child_report(trace: str) -> None:
    from iotrace.analyzer import load
    from iotrace.analyzer.report import report_json
    from iotrace.analyzer.summary import summarise

    t, c = time.perf_counter(), cpu_seconds()
    tr = load(trace, progress=False)
    t_load = time.perf_counter() - t
    s = summarise(tr)
    t_sum = time.perf_counter() - t - t_load
    text = report_json(s)
    dt, dc = time.perf_counter() - t, cpu_seconds() - c
    print(
        json.dumps(
            {
                "seconds": dt,
                "cpu": dc,
                "load": t_load,
                "summary": t_sum,
                "json_bytes": len(text),
                "rss_mb": peak_rss_mb(),
                "insights": [i.title for i in s.insights],
            }
        )
    )


def in_child(kind: str, trace: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(trace)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"analyzer_bench: the {kind} step failed (status {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--ranks", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2, help="timed loads and reports (each fresh)")
    ap.add_argument("--keep", metavar="DIR", help="write the trace here and keep it")
    ap.add_argument("--synth-only", action="store_true", help="only write the trace (with --keep)")
    ap.add_argument(
        "--settle",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds to wait before every step after the first load, so that each is a first "
        "load too (memory freed by the previous step goes back to a VM's host about a second "
        "later; default 5)",
    )
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        {"load": child_load, "report": child_report}[args.child[0]](args.child[1])
        return 0

    tmp = None
    if args.keep:
        trace = Path(args.keep)
        trace.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="iotrace-anbench-")
        trace = Path(tmp)
    try:
        t = time.perf_counter()
        n = synthesise(trace, args.events, args.ranks)
        size = sum(p.stat().st_size for p in trace.glob("*.iot"))
        print(
            f"synthesised {n:,} events in {args.ranks} logs, {size / 2**20:,.0f} MiB "
            f"({size / n:.1f} B/event), in {time.perf_counter() - t:.1f} s"
        )
        if args.synth_only:
            return 0
        dirty = dirty_mb()
        print(
            f"load average before: {os.getloadavg()[0]:.2f} (other work on the machine slows "
            "the wall-clock figures; CPU time is this process's own)"
            + (f"; not yet written back: {dirty:,.0f} MB" if dirty is not None else "")
        )
        for i in range(args.rounds):
            if i:
                time.sleep(args.settle)
            ld = in_child("load", trace)
            n_ev = float(ld["events"])  # type: ignore[arg-type]
            rate, crate = n_ev / float(ld["seconds"]), n_ev / float(ld["cpu"])  # type: ignore[arg-type]
            print(
                f"load #{i + 1}{' (right after writing)' if i == 0 else ''}: "
                f"{ld['events']:,} events in {ld['seconds']:.2f} s wall = "
                f"{rate / 1e6:.2f} M events/s ({ld['cpu']:.2f} s CPU = {crate / 1e6:.2f} M/s: "
                f"user {ld['user']:.2f} s, system {ld['sys']:.2f} s, {ld['faults']:,} page "
                f"faults; decoder: {ld['decoder']}); peak RSS {ld['rss_mb']:,.0f} MB (interpreter "
                f"+ imports {ld['base_mb']:,.0f} MB)   [target >= 2 M events/s, < 3000 MB]"
            )
        for i in range(args.rounds):
            time.sleep(args.settle)
            rp = in_child("report", trace)
            print(
                f"report #{i + 1}: {rp['seconds']:.2f} s wall, {rp['cpu']:.2f} s CPU (load "
                f"{rp['load']:.2f} s, summary {rp['summary']:.2f} s, JSON "
                f"{rp['json_bytes']:,} B); peak RSS {rp['rss_mb']:,.0f} MB   [target < 30 s]"
            )
        print(f"insights: {', '.join(rp['insights'])}")  # type: ignore[arg-type]
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
