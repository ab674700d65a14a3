"""The asynchronous I/O case of `make bench`: fio with Linux AIO (libaio) and io_uring, iodepth
8, 4 KiB random writes with O_DIRECT, untraced vs the shim alone vs shim + stracer, side by side
in one run.

libaio's calls are wrapped by the shim (preload/wrap_libaio.c: one event per iocb posted and one
per completion, the syscalls made with the stracer's cookie: no stop); io_uring's operations are
decoded by the stracer from the ring at each io_uring_enter stop (stracer/engines.py).  Prints,
per engine and mode: fio's own IOPS and job runtime, the wall time of the whole command
(start-up included), each with its ratio to untraced, and the bytes the trace holds for fio's
data file against fio's io_bytes.  Every figure is a median of --rounds runs.

    python3 bench/aio_bench.py [--rounds 3] [--mib 32] [--dir DIR]

Needs fio (Debian package fio); the shim is the installed one, or IOTRACE_SHIM's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from jobs import prefix, run_timed

ENGINES = ("libaio", "io_uring")
MODES = ("untraced", "shim", "shim+stracer")


def run_once(
    fio: str, work: Path, engine: str, mib: int, mode: str
) -> tuple[float, float, float, int, int]:
    """(wall s, fio runtime s, IOPS, fio io_bytes, bytes in the trace on the data file)."""
    data = work / f"data.{engine}"
    trace = work / "trace"
    data.unlink(missing_ok=True)
    shutil.rmtree(trace, ignore_errors=True)
    cmd = prefix(mode, trace, "--stack", "0")
    cmd += [fio, "--name=bench", f"--filename={data}", f"--ioengine={engine}", "--direct=1",
            "--rw=randwrite", "--bs=4k", f"--size={mib}M", "--iodepth=8",
            "--output-format=json"]  # fmt: skip
    out, wall, _ = run_timed(cmd, work)
    job = json.loads(out)["jobs"][0]["write"]
    traced = 0
    if mode != "untraced":
        from iotrace.analyzer import load

        ev = load(trace).events
        d = ev[(ev["path"].astype(str) == str(data)) & (ev["op"].astype(str) == "write")]
        traced = int(d["bytes"].sum())
    return wall, job["runtime"] / 1000, job["iops"], job["io_bytes"], traced


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="runs per engine and mode (median)")
    ap.add_argument("--mib", type=int, default=32, help="MiB written per run")
    ap.add_argument("--dir", default=None, help="where to write (default: the temp dir)")
    args = ap.parse_args()
    fio = shutil.which("fio")
    if not fio:
        print("(skipped: needs fio)")
        return 0
    with tempfile.TemporaryDirectory(prefix="iotrace-aiobench-", dir=args.dir) as tmp:
        work = Path(tmp)
        print(f"AIO: fio randwrite, 4 KiB, iodepth 8, O_DIRECT, {args.mib} MiB in "
              f"{args.dir or tempfile.gettempdir()} ({os.cpu_count()} CPUs); median of "
              f"{args.rounds}")  # fmt: skip
        print(f"{'engine':<9} {'mode':<13} {'IOPS':>9} {'x':>6} {'fio s':>7} {'x':>6} "
              f"{'wall s':>7} {'x':>6} {'traced/io_bytes':>17}")  # fmt: skip
        for engine in ENGINES:
            base: tuple[float, float, float] | None = None
            for mode in MODES:
                runs = [run_once(fio, work, engine, args.mib, mode) for _ in range(args.rounds)]
                wall = statistics.median(r[0] for r in runs)
                rt = statistics.median(r[1] for r in runs)
                iops = statistics.median(r[2] for r in runs)
                if base is None:
                    base = (iops, rt, wall)
                got = "" if mode == "untraced" else f"{runs[-1][4]}/{runs[-1][3]}"
                print(f"{engine:<9} {mode:<13} {iops:>9.0f} {iops / base[0]:>6.2f} "
                      f"{rt:>7.3f} {rt / base[1]:>6.2f} {wall:>7.3f} {wall / base[2]:>6.2f} "
                      f"{got:>17}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
