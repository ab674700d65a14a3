"""The report at scale (issue 17): a trace written by the real shim, reported in bounded memory.

Compiles bench/gen_events.c and runs it under `iotrace run` (PROCS processes, each making
EVENTS/PROCS wrapped calls: pwrites and preads of varied sizes and offsets, writes, seeks,
fstats, reopens), then reports it (`iotrace report --json`), each in a fresh process:

- in memory: `summarise(load(DIR))`, the reference (only up to --in-memory-max events),
- bounded, 1 local worker and 2 local workers (`--workers N`, the default --memory 2G),
- bounded on a 2-worker Dask LocalCluster (`--scheduler`),

and prints wall time, the peak RSS of all the processes doing the work (the report's process
tree, and the cluster's workers; sampled every 0.1 s), events/s and events/s per core, the CPU time
(user + system) and events per CPU-second, and whether each JSON report equals the reference.

    python3 bench/scale_bench.py [--events 10000000] [--procs 16] [--keep DIR] [--also 200000000]

--also N adds a second, larger trace (e.g. 200 M events: ~6 GB of logs; check `df -h`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "gen_events.c"
IN_MEMORY = (
    "import sys, json; from iotrace.analyzer import load, summarise; "
    "from iotrace.analyzer.report import report_json; "
    "sys.stdout.write(report_json(summarise(load(sys.argv[1]))))"
)
CLUSTER = (
    "import sys, time; from distributed import LocalCluster\n"
    "if __name__ == '__main__':\n"
    "    c = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)\n"
    "    print(c.scheduler_address, flush=True)\n"
    "    sys.stdin.read()\n"
    "    c.close()\n"
)


def _tree(root: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def _rss(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
    return total


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measure(cmd: list[str], extra_roots: list[int] = ()) -> tuple[float, int, str, float]:
    """Wall time, peak RSS (bytes) of the command's process tree plus extra_roots' trees, its
    stdout, and the CPU time (user + system) of the command and the children it waited for (not
    extra_roots': a Dask cluster's workers are not counted)."""
    peak = [0]
    c0 = _cpu()
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                pids = [x for r in (p.pid, *extra_roots) for x in _tree(r)]
                peak[0] = max(peak[0], _rss(pids))
                done.wait(0.1)

        th = threading.Thread(target=sample)
        th.start()
        _, err = p.communicate()
        done.set()
        th.join()
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:4])}...: status {p.returncode}: {err[-500:]}")
        out.seek(0)
        return wall, peak[0], out.read(), _cpu() - c0


def _same(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def make_trace(out: Path, events: int, procs: int, work: Path) -> float:
    gen = work / "gen_events"
    subprocess.run(["gcc", "-O2", "-o", str(gen), str(SOURCE)], check=True)
    data = work / "data"
    data.mkdir(exist_ok=True)
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "iotrace", "run", "-o", str(out), "--", str(gen), str(data),
         str(procs), str(events // procs)],
        check=True, capture_output=True,
    )  # fmt: skip
    shutil.rmtree(data)
    return time.perf_counter() - t


def bench(trace: Path, in_memory_max: int) -> None:
    iot = [sys.executable, "-m", "iotrace", "report", str(trace), "--json"]
    size = sum(p.stat().st_size for p in trace.iterdir())
    print(f"trace: {len(list(trace.glob('*.iot')))} logs, {size / 1e9:.2f} GB")
    rows = []
    ref = None
    n = 0
    cluster = None
    try:
        for name, extra, cores in (
            ("in memory", None, 1),
            ("bounded, 1 worker", ["--workers", "1"], 1),
            ("bounded, 2 workers", ["--workers", "2"], 2),
            ("Dask LocalCluster, 2 workers", "dask", 2),
        ):
            roots: list[int] = []
            if extra is None:
                if _events_estimate(trace) > in_memory_max:
                    continue
                cmd = [sys.executable, "-c", IN_MEMORY, str(trace)]
            elif extra == "dask":
                cluster = subprocess.Popen(
                    [sys.executable, "-c", CLUSTER],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
                addr = cluster.stdout.readline().strip()
                roots = [cluster.pid]
                cmd = [*iot, "--scheduler", addr, "--workers", "2"]
            else:
                cmd = [*iot, *extra]
            wall, peak, out, cpu = measure(cmd, roots)
            rep = json.loads(out)
            n = rep["overview"]["events"]
            same = "reference" if ref is None else ("equal" if _same(ref, rep) else "DIFFERENT")
            ref = ref if ref is not None else rep
            rows.append((name, wall, peak, n / wall, n / wall / cores, cpu if not roots else None,
                         same))  # fmt: skip
    finally:
        if cluster is not None:
            cluster.communicate("")
    print(f"{n:,} events")
    # on a shared machine wall time waits for other jobs: events per CPU-second is the rate a
    # core gives (the Dask rows' workers are not this process's children: not counted)
    print(f"{'report':32} {'wall s':>8} {'peak RSS GB':>12} {'events/s':>12} {'/core':>12} "
          f"{'CPU s':>8} {'ev/CPU-s':>12}  JSON")  # fmt: skip
    for name, wall, peak, eps, epc, cpu, same in rows:
        c = f"{cpu:8.1f} {n / cpu:12,.0f}" if cpu else f"{'-':>8} {'-':>12}"
        print(f"{name:32} {wall:8.1f} {peak / 1e9:12.2f} {eps:12,.0f} {epc:12,.0f} {c}  {same}")


def _events_estimate(trace: Path) -> int:
    return sum(p.stat().st_size for p in trace.glob("*.iot")) // 24


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--procs", type=int, default=16)
    ap.add_argument("--also", type=int, metavar="N", help="a second trace of N events")
    ap.add_argument("--in-memory-max", type=int, default=20_000_000, metavar="N",
                    help="report in memory (the reference) only up to N events")  # fmt: skip
    ap.add_argument("--keep", metavar="DIR", help="write the traces under DIR and keep them")
    args = ap.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="iotrace-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        for events in [args.events, *([args.also] if args.also else [])]:
            trace = base / f"t{events}"
            if not trace.exists():
                took = make_trace(trace, events, args.procs, base)
                print(f"\n== {events:,} events by {args.procs} processes (written in {took:.0f} s)")
            else:
                print(f"\n== {events:,} events (kept trace)")
            bench(trace, args.in_memory_max)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
