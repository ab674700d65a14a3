"""The report at scale (issue 17): a trace written by the real shim, reported in bounded memory.

Compiles bench/gen_events.c and runs it under `iotrace run` (PROCS processes, each making
EVENTS/PROCS wrapped calls: pwrites and preads of varied sizes and offsets, writes, seeks,
fstats, reopens), then reports it (`iotrace report --json`), each in a fresh process:

- in memory: `summarise(load(DIR))`, the reference (only up to --in-memory-max events),
- bounded, 1 local worker and 2 local workers (`--workers N`, the default --memory 2G),
- bounded on a 2-worker Dask LocalCluster (`--scheduler`) started before the row by
  `python -m iotrace.cluster` (iotrace.cluster.CONFIG: workers that import the analyzer when
  they start, the servers' bookkeeping slowed): the first report on that new cluster ("dask"),
  and the same report again on it, its workers warm ("dask2"),

then exports it as a Darshan log (`iotrace export --format darshan`, only up to --darshan-max
events): in memory (`export(load(DIR), "darshan", OUT)`, the reference), bounded with 1 and 2
local workers; whether each log has the reference's bytes; with --commands, every bounded
command (report console/JSON/HTML, every export, missed, show) with 1 and 2 local workers and on
a 2-worker Dask cluster, each output compared with the command's first row's bytes; and
`iotrace show` with each bound of --show-memory (default 2G: its lines held whole at 10 M events,
and 512M: sorted runs spilled and merged), its output's bytes compared,

and prints wall time, the peak RSS of all the processes doing the work (the report's process
tree, and the cluster's; sampled every 0.1 s), events per second per core, the CPU time (user +
system) and events per CPU-second, and whether each JSON report equals the reference.  The
cluster's start (its CPU printed apart) is not in its rows: it is paid once per cluster.
`--repeat N` runs each row N times (in turns) and prints the medians.

    python3 bench/scale_bench.py [--events 10000000] [--procs 16] [--keep DIR] [--also 200000000]

--also N adds a second, larger trace (e.g. 200 M events: ~6 GB of logs; check `df -h`).
--short N adds a trace of N short-lived processes (a bash loop running bench/gen_short.c: two
logs a process, a few events each; issue 17's "100,000 short-lived processes"): its rows add
the CPU per process. `--events 0` leaves the trace of many events out.
--timeline 2,dask: one 2-worker report (local; on a warm Dask cluster) with its phases marked:
when the command imported the analyzer, planned, sent the parts, each worker's first and last
part and its CPU per part, the merge, the output, the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "gen_events.c"
IN_MEMORY = (
    "import sys, json; from iotrace.analyzer import load, summarise; "
    "from iotrace.analyzer.report import report_json; "
    "sys.stdout.write(report_json(summarise(load(sys.argv[1]))))"
)
HOW = """\
ev/s/core = events / (wall s x cores used: 1 for 1 worker, 2 for 2 workers and Dask's 2)
ev/CPU-s  = events / CPU s: the user + system time of every process of the row (the report, its
            workers; for Dask also the cluster's scheduler, nannies and workers) while it ran"""
CLUSTER = ["-m", "iotrace.cluster", "--workers", "2"]  # ends when its stdin does
DARSHAN_IN_MEMORY = (
    "import sys; from pathlib import Path; from iotrace.analyzer import load; "
    "from iotrace.analyzer.export import export; "
    "export(load(sys.argv[1]), 'darshan', Path(sys.argv[2]))"
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


def _sampling(p: subprocess.Popen, sample: Callable[[], None]) -> str:
    """p's stderr once it ended, sample() called every 0.1 s meanwhile (the peak RSS)."""
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            sample()
            done.wait(0.1)

    th = threading.Thread(target=loop)
    th.start()
    _, err = p.communicate()
    done.set()
    th.join()
    return err


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


def _subreaper() -> None:
    """Orphans of the commands run here (the report's forkserver, which reaps its workers, is
    left when the report exits) become this process's children: reaped by _reap, their CPU time
    counts in RUSAGE_CHILDREN (without this the 2-worker rows counted the report's own process
    only)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap(keep: list[int]) -> None:
    """Wait for every child of this process but `keep` (the cluster): the orphans left."""
    me = str(os.getpid())
    while True:
        kids = []
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) not in keep:
                try:
                    with open(f"/proc/{d}/stat") as f:
                        if f.read().rsplit(")", 1)[1].split()[1] == me:
                            kids.append(int(d))
                except (OSError, IndexError):
                    continue
        if not kids:
            return
        for k in kids:
            try:
                os.waitpid(k, 0)
            except ChildProcessError:
                pass


def _tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of a live process tree and of the children it reaped: the
    Dask cluster's scheduler, nannies and workers."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _tree(root):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def measure(
    cmd: list[str], extra_roots: list[int] = (), keep: list[int] = (), stdout: Path | None = None
) -> tuple[float, int, str, float]:
    """Wall time, peak RSS (bytes) of the command's process tree plus extra_roots' trees, its
    stdout (or "" when written to the file `stdout`), and the CPU time (user + system) of the
    command, its descendants and extra_roots' trees (a Dask cluster's processes) while it ran."""
    peak = [0]
    c0 = _cpu() + sum(_tree_cpu(r) for r in extra_roots)
    t0 = time.perf_counter()
    with open(stdout, "w+") if stdout else tempfile.TemporaryFile("w+") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True)

        def sample() -> None:
            pids = [x for r in (p.pid, *extra_roots) for x in _tree(r)]
            peak[0] = max(peak[0], _rss(pids))

        err = _sampling(p, sample)
        wall = time.perf_counter() - t0
        _reap([*extra_roots, *keep])  # a cluster kept for later rows is not waited for
        cpu = _cpu() + sum(_tree_cpu(r) for r in extra_roots) - c0
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:4])}...: status {p.returncode}: {err[-500:]}")
        out.seek(0)
        return wall, peak[0], "" if stdout else out.read(), cpu


def _same(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def make_trace(out: Path, events: int, procs: int, jobs: int, work: Path) -> float:
    gen = work / "gen_events"
    subprocess.run(["gcc", "-O2", "-o", str(gen), str(SOURCE)], check=True)
    data = work / "data"
    data.mkdir(exist_ok=True)
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "iotrace", "run", "-o", str(out), "--", str(gen), str(data),
         str(procs), str(events // procs), str(jobs)],
        check=True, capture_output=True,
    )  # fmt: skip
    shutil.rmtree(data)
    return time.perf_counter() - t


def make_short_trace(out: Path, n: int, work: Path) -> float:
    """A trace of n short processes: a job script's loop over a small program, fully traced."""
    gen = work / "gen_short"
    subprocess.run(["gcc", "-O2", "-o", str(gen), str(HERE / "gen_short.c")], check=True)
    data = work / "short-data"
    data.mkdir(exist_ok=True)
    t = time.perf_counter()
    loop = f'for ((i = 0; i < {n}; i++)); do "$0" "$1" || exit; done'
    subprocess.run(
        [sys.executable, "-m", "iotrace", "run", "-o", str(out), "--", "bash", "-c", loop,
         str(gen), str(data)],
        check=True, capture_output=True,
    )  # fmt: skip
    shutil.rmtree(data)
    return time.perf_counter() - t


ROWS = {
    "memory": ("in memory", None, 1),
    "1": ("bounded, 1 worker", ["--workers", "1"], 1),
    "2": ("bounded, 2 workers", ["--workers", "2"], 2),
    "dask": ("Dask LocalCluster, 2 workers", "dask", 2),
    "dask2": ("  the same again (warm workers)", "dask2", 2),
}


class Cluster:
    """A 2-worker Dask cluster (`python -m iotrace.cluster`), started when asked for."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.address = ""
        self.start_cpu: list[float] = []

    def start(self) -> None:
        self.stop()
        self.proc = subprocess.Popen(
            [sys.executable, *CLUSTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.address = self.proc.stdout.readline().strip()
        time.sleep(1)  # settled: the workers started (their preload run) before the address
        self.start_cpu.append(_tree_cpu(self.proc.pid))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.communicate("")
            self.proc = None


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def bench(trace: Path, in_memory_max: int, rows_asked: list[str], repeat: int) -> int:
    """The report's rows; returns the trace's events."""
    iot = [sys.executable, "-m", "iotrace", "report", str(trace), "--json"]
    size = sum(p.stat().st_size for p in trace.iterdir())
    print(f"trace: {len(list(trace.glob('*.iot')))} logs, {size / 1e9:.2f} GB", flush=True)
    asked = [r for r in rows_asked if r != "memory" or _events_estimate(trace) <= in_memory_max]
    runs: dict[str, list[tuple[float, float, int, float, str]]] = {r: [] for r in asked}
    ref = None
    n = procs = 0
    cluster = Cluster()
    try:
        for _ in range(repeat):
            for r in asked:
                extra = ROWS[r][1]
                roots: list[int] = []
                if extra is None:
                    cmd = [sys.executable, "-c", IN_MEMORY, str(trace)]
                elif extra in ("dask", "dask2"):
                    if extra == "dask" or cluster.proc is None:
                        cluster.start()
                    roots = [cluster.proc.pid]
                    cmd = [*iot, "--scheduler", cluster.address, "--workers", "2"]
                else:
                    cmd = [*iot, *extra]
                load0 = os.getloadavg()[0]
                kept = [cluster.proc.pid] if cluster.proc is not None else []
                wall, peak, out, cpu = measure(cmd, roots, kept)
                load = (load0 + os.getloadavg()[0]) / 2
                rep = json.loads(out)
                n = rep["overview"]["events"]
                procs = rep["overview"]["processes"]
                same = "reference" if ref is None else ("equal" if _same(ref, rep) else "DIFFERENT")
                ref = ref if ref is not None else rep
                runs[r].append((wall, load, peak, cpu, same))
                print(f"  {ROWS[r][0].strip()}: wall {wall:.1f} s, load {load:.1f}, CPU {cpu:.1f}",
                      file=sys.stderr, flush=True)  # fmt: skip
    finally:
        cluster.stop()
    print(f"{n:,} events, {procs:,} processes"
          + (f"; each row the median of {repeat} runs" if repeat > 1 else ""))  # fmt: skip
    # on a shared machine wall time waits for other jobs (the load average, at the row's start
    # and end, says how many): CPU time and events per CPU-second are the figures to trust
    print(f"{'report':30} {'wall s':>7} {'load':>5} {'peak RSS GB':>11} {'ev/s/core':>10} "
          f"{'CPU s':>7} {'ev/CPU-s':>10} {'CPU ms/proc':>11}  JSON")  # fmt: skip
    for r in asked:
        name, _, cores = ROWS[r]
        wall, load, peak, cpu = (_median([x[i] for x in runs[r]]) for i in range(4))
        sames = {x[4] for x in runs[r]}  # the reference row's later runs are "equal" to it
        same = "DIFFERENT" if "DIFFERENT" in sames else max(sames)  # "reference" > "equal"
        print(f"{name:30} {wall:7.1f} {load:5.1f} {peak / 1e9:11.2f} {n / wall / cores:10,.0f} "
              f"{cpu:7.1f} {n / cpu:10,.0f} {cpu * 1e3 / max(procs, 1):11.2f}  {same}",
              flush=True)  # fmt: skip
        if repeat > 1:
            print(f"{'':30} CPU s of the runs: {', '.join(f'{x[3]:.1f}' for x in runs[r])}")
    print(HOW)
    if cluster.start_cpu:
        print(f"Dask cluster's start (not in the rows): {_median(cluster.start_cpu):.1f} CPU s "
              "(scheduler, 2 nannies, 2 workers importing the analyzer)")  # fmt: skip
    return n


DARSHAN_ROWS = {
    "memory": ("in memory", None),
    "1": ("bounded, 1 worker", ["--workers", "1"]),
    "2": ("bounded, 2 workers", ["--workers", "2"]),
}


def bench_darshan(
    trace: Path, n: int, estimated: bool, in_memory_max: int, rows_asked: list[str]
) -> None:
    """The Darshan export's rows: wall, peak RSS, CPU; the logs' bytes against the first's."""
    rows = []
    ref: bytes | None = None
    with tempfile.TemporaryDirectory(prefix="iotrace-darshan-") as tmp:
        for k, (name, extra) in enumerate(DARSHAN_ROWS[r] for r in rows_asked):
            out = Path(tmp) / f"{k}.darshan"
            if extra is None:
                if _events_estimate(trace) > in_memory_max:
                    continue
                cmd = [sys.executable, "-c", DARSHAN_IN_MEMORY, str(trace), str(out)]
            else:
                cmd = [sys.executable, "-m", "iotrace", "export", str(trace), "--format",
                       "darshan", "-o", str(out), *extra]  # fmt: skip
            load0 = os.getloadavg()[0]
            wall, peak, _, cpu = measure(cmd)
            load = (load0 + os.getloadavg()[0]) / 2
            log = out.read_bytes()
            same = "reference" if ref is None else ("equal" if log == ref else "DIFFERENT")
            ref = ref if ref is not None else log
            out.unlink()
            rows.append((name, wall, load, peak, cpu, len(log), same))
    print(f"export --format darshan, {n:,} events{' (by the logs size)' if estimated else ''}")
    print(f"{'export':30} {'wall s':>7} {'load':>5} {'peak RSS GB':>11} {'CPU s':>7} "
          f"{'log MB':>7}  bytes")  # fmt: skip
    for name, wall, load, peak, cpu, size, same in rows:
        print(f"{name:30} {wall:7.1f} {load:5.1f} {peak / 1e9:11.2f} {cpu:7.1f} "
              f"{size / 1e6:7.1f}  {same}", flush=True)  # fmt: skip


# every bounded command (issue 17): the argument list after `iotrace`, with DIR the trace and
# OUT its output (a file or directory under a temporary directory, compared between the rows)
COMMANDS = {
    "report": ("report (console)", ["report", "DIR"]),
    "json": ("report --json", ["report", "DIR", "--json"]),
    "html": ("report --html", ["report", "DIR", "--html", "OUT"]),
    "parquet": ("export parquet", ["export", "DIR", "--format", "parquet", "-o", "OUT"]),
    "csv": ("export csv", ["export", "DIR", "--format", "csv", "-o", "OUT"]),
    "chrome": ("export chrome (Perfetto)", ["export", "DIR", "--format", "chrome", "-o", "OUT"]),
    "darshan": ("export darshan", ["export", "DIR", "--format", "darshan", "-o", "OUT"]),
    "missed": ("missed --json", ["missed", "DIR", "--json"]),
    "show": ("show", ["show", "DIR"]),
}
UNBOUNDED_BY_WORKERS = ("missed", "show")  # one process, streaming: no --workers, no Dask
MODES = {"1": ("1 worker", ["--workers", "1"]), "2": ("2 workers", ["--workers", "2"]),
         "dask": ("Dask, 2 workers", ["--workers", "2", "--scheduler", "ADDR"])}  # fmt: skip


def _digest(path: Path) -> str:
    """A file's or a directory's bytes (its files' relative paths and contents) as one hash."""
    import hashlib

    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            while b := fh.read(1 << 20):
                h.update(b)
    return h.hexdigest()


def bench_commands(trace: Path, n: int, commands: list[str], modes: list[str]) -> None:
    """Every bounded command with 1 and 2 local workers and on a 2-worker Dask LocalCluster
    (one cluster for all, its start not counted): wall, peak RSS of the command's tree and the
    cluster's, CPU; whether its output (stdout, or the file or directory it writes) has the
    bytes of the command's first row."""
    bound = 2 << 30
    rows = []
    cluster = Cluster()
    try:
        with tempfile.TemporaryDirectory(prefix="iotrace-cmds-", dir=trace.parent) as tmp:
            for c in commands:
                name, argv = COMMANDS[c]
                ref = None
                for m in ["-"] if c in UNBOUNDED_BY_WORKERS else modes:
                    out = Path(tmp) / f"{c}-{m}"
                    stdout = Path(tmp) / f"{c}-{m}.stdout"
                    extra: list[str] = [] if m == "-" else MODES[m][1]
                    roots: list[int] = []
                    if m == "dask":
                        if cluster.proc is None:
                            cluster.start()
                        roots = [cluster.proc.pid]
                        extra = [x.replace("ADDR", cluster.address) for x in extra]
                    args = [str(trace) if x == "DIR" else str(out) if x == "OUT" else x
                            for x in argv]  # fmt: skip
                    cmd = [sys.executable, "-m", "iotrace", *args, *extra]
                    load0 = os.getloadavg()[0]
                    kept = [cluster.proc.pid] if cluster.proc is not None else []
                    wall, peak, _, cpu = measure(cmd, roots, kept, stdout)
                    load = (load0 + os.getloadavg()[0]) / 2
                    got = _digest(out if "OUT" in argv else stdout)
                    same = "reference" if ref is None else ("equal" if got == ref else "DIFFERENT")
                    ref = ref or got
                    for p in (out, stdout):
                        if p.is_dir():
                            shutil.rmtree(p)
                        elif p.exists():
                            p.unlink()
                    mode = "one process" if m == "-" else MODES[m][0]
                    print(f"  {name}, {mode}: wall {wall:.1f} s, load {load:.1f}, peak "
                          f"{peak / 1e9:.2f} GB, CPU {cpu:.1f} s, {same}",
                          file=sys.stderr, flush=True)  # fmt: skip
                    rows.append((name, mode, wall, load, peak, cpu, same))
    finally:
        cluster.stop()
    print(f"every bounded command, {n:,} events (the bound: --memory's default, "
          f"{bound / 1e9:.2f} GB)")  # fmt: skip
    print(f"{'command':26} {'mode':16} {'wall s':>7} {'load':>5} {'peak RSS GB':>11} "
          f"{'CPU s':>7}  output")  # fmt: skip
    for name, mode, wall, load, peak, cpu, same in rows:
        over = "  OVER THE BOUND" if peak > bound else ""
        print(f"{name:26} {mode:16} {wall:7.1f} {load:5.1f} {peak / 1e9:11.2f} {cpu:7.1f}  "
              f"{same}{over}", flush=True)  # fmt: skip


def _split_peaks(cmd: list[str], cluster: int) -> tuple[float, int, int, int, float]:
    """Wall, the peak of the sum of the RSS of the command's tree and the cluster's, each tree's
    own peak (sampled every 0.1 s), CPU of the command's tree and the cluster's."""
    peaks = [0, 0, 0]
    c0 = _cpu() + _tree_cpu(cluster)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def sample() -> None:
        own, theirs = _rss(_tree(p.pid)), _rss(_tree(cluster))
        peaks[:] = max(peaks[0], own + theirs), max(peaks[1], own), max(peaks[2], theirs)

    err = _sampling(p, sample)
    wall = time.perf_counter() - t0
    _reap([cluster])
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}...: status {p.returncode}: {err[-500:]}")
    return wall, *peaks, _cpu() + _tree_cpu(cluster) - c0


def bench_export_roles(trace: Path, n: int, formats: list[str]) -> None:
    """The exports that merge their parts' files in the command (CSV, Chrome) on a 2-worker Dask
    cluster: the peak of the whole, and of the command's process tree and the cluster's each
    alone, so that the bound's holder shows (the cluster's workers idle beside the merge)."""
    rows = []
    cluster = Cluster()
    cluster.start()
    try:
        with tempfile.TemporaryDirectory(prefix="iotrace-roles-", dir=trace.parent) as tmp:
            for fmt in formats:
                out = Path(tmp) / fmt
                cmd = [sys.executable, "-m", "iotrace", "export", str(trace), "--format", fmt,
                       "-o", str(out), "--scheduler", cluster.address]  # fmt: skip
                load0 = os.getloadavg()[0]
                wall, peak, own, theirs, cpu = _split_peaks(cmd, cluster.proc.pid)
                rows.append((fmt, wall, (load0 + os.getloadavg()[0]) / 2, peak, own, theirs, cpu))
                if out.is_dir():
                    shutil.rmtree(out)
                else:
                    out.unlink()
    finally:
        cluster.stop()
    print(f"exports on a 2-worker Dask cluster, {n:,} events: the peak of the sum, and each "
          "tree's own peak (not at the same time)")  # fmt: skip
    print(f"{'export':10} {'wall s':>7} {'load':>5} {'peak RSS GB':>11} {'command GB':>10} "
          f"{'cluster GB':>10} {'CPU s':>7}")  # fmt: skip
    for fmt, wall, load, peak, own, theirs, cpu in rows:
        print(f"{fmt:10} {wall:7.1f} {load:5.1f} {peak / 1e9:11.2f} {own / 1e9:10.2f} "
              f"{theirs / 1e9:10.2f} {cpu:7.1f}", flush=True)  # fmt: skip


def bench_show(trace: Path, n: int, bounds: list[str]) -> None:
    """`iotrace show` (one process, streaming) with each --memory bound: wall, peak RSS, events
    per second, CPU; whether its output has the first row's bytes.  The default bound holds the
    lines of 10 M events (~1.4 GB); a smaller one spills sorted runs to temporary files (in the
    trace's directory) and merges them."""
    rows = []
    ref = None
    with tempfile.TemporaryDirectory(prefix="iotrace-show-", dir=trace.parent) as tmp:
        for bound in bounds:
            out = Path(tmp) / "show.out"
            cmd = [sys.executable, "-m", "iotrace", "show", str(trace), "--memory", bound]
            load0 = os.getloadavg()[0]
            wall, peak, _, cpu = measure(cmd, stdout=out)
            load = (load0 + os.getloadavg()[0]) / 2
            size = out.stat().st_size
            got = _digest(out)
            if ref is None:  # one line per event: the events shown (the trace's own count)
                with open(out, "rb") as f:
                    n = sum(1 for _ in f)
            out.unlink()
            same = "reference" if ref is None else ("equal" if got == ref else "DIFFERENT")
            ref = ref or got
            print(f"  show --memory {bound}: wall {wall:.1f} s, load {load:.1f}, peak "
                  f"{peak / 1e9:.2f} GB, CPU {cpu:.1f} s, {same}",
                  file=sys.stderr, flush=True)  # fmt: skip
            rows.append((bound, wall, load, peak, cpu, size, same))
    print(f"iotrace show, {n:,} events (output to a file)")
    print(f"{'--memory':10} {'wall s':>7} {'load':>5} {'peak RSS GB':>11} {'ev/s':>9} "
          f"{'CPU s':>7} {'ev/CPU-s':>9} {'out GB':>7}  output")  # fmt: skip
    from iotrace.units import parse_memory

    for bound, wall, load, peak, cpu, size, same in rows:
        over = "  OVER THE BOUND" if peak > parse_memory(bound) else ""
        print(f"{bound:10} {wall:7.1f} {load:5.1f} {peak / 1e9:11.2f} {n / wall:9,.0f} "
              f"{cpu:7.1f} {n / cpu:9,.0f} {size / 1e9:7.2f}  {same}{over}",
              flush=True)  # fmt: skip


# one report with its phases marked (bench_timeline): run as `python -c TIMELINE DIR ARGS...`;
# each mark is a line "wall-since-launch pid what cpu-of-that-process" appended to $TL_LOG
TIMELINE = """
import os, sys, time
T0, LOG = float(os.environ["TL_T0"]), os.environ["TL_LOG"]

def mark(what, t0=T0, log=LOG):
    import os, time
    with open(log, "a") as f:
        f.write(f"{time.time() - t0:.3f} {os.getpid()} {what} {time.process_time():.3f}\\n")

mark("up")
from iotrace import cli, cluster
cli._lean_allocators()

def marked(mod, name, t0=T0, log=LOG):
    fn = getattr(mod, name)
    label = mod.__name__.rsplit(".", 1)[-1] + "." + name  # a module's, or a class's method
    def w(*a, **k):
        mark(label + " start", t0, log)
        try:
            return fn(*a, **k)
        finally:
            mark(label + " end", t0, log)
    setattr(mod, name, w)

def in_worker(t0=T0, log=LOG):  # a Dask worker's parts marked (run by cluster.start)
    from iotrace.analyzer import parts
    if not getattr(parts, "_timeline", False):
        parts._timeline = True
        marked(parts, "partial", t0, log)
        marked(parts, "merged_json", t0, log)  # report --json's merge, on a worker
    parts.tune_malloc()

cluster._tune_malloc = in_worker
marked(cluster, "start")
marked(cluster.Started, "report_json")  # the parts gathered and merged on a worker
marked(cluster, "join_pools")  # at exit: the workers' memory given back, the client closed
# the analyzer's functions marked once the command imports them (not before: on Dask it sends the
# parts first)
MARKED = {"iotrace.analyzer.parts": ("plan", "partial", "merge"),
          "iotrace.analyzer.report": ("report_json",)}
import importlib.abc, importlib.util

class Marking(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in MARKED:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            mark(name + " imported")
            for fn in MARKED[name]:
                marked(module, fn)
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Marking())
sys.argv = ["iotrace", "report", *sys.argv[1:], "--json"]
cli.entry()
"""


def bench_timeline(trace: Path, n: int, estimated: bool, modes: list[str]) -> None:
    """One report per mode (2 local workers; a warm 2-worker Dask cluster) with its phases
    marked: the command's start until its first part starts, each worker's parts, the merge,
    the output, the exit; wall time since the launch and the CPU of the process at each mark."""
    cluster = Cluster()
    try:
        with tempfile.TemporaryDirectory(prefix="iotrace-timeline-", dir=trace.parent) as tmp:
            for m in modes:
                extra = ["--workers", "2"]
                if m == "dask":
                    cluster.start()
                    extra += ["--scheduler", cluster.address]
                    warm = [sys.executable, "-m", "iotrace", "report", str(trace), *extra]
                    measure(warm, keep=[cluster.proc.pid])  # its workers warm, as dask2's
                log = Path(tmp) / f"{m}.log"
                env = dict(os.environ, TL_LOG=str(log), TL_T0=repr(time.time()))
                cmd = [sys.executable, "-c", TIMELINE, str(trace), *extra]
                p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)  # fmt: skip
                end = time.time() - float(env["TL_T0"])
                _reap([cluster.proc.pid] if cluster.proc is not None else [])
                if p.returncode != 0:
                    raise SystemExit(f"timeline {m}: status {p.returncode}: {p.stderr[-500:]}")
                _print_timeline(m, log.read_text().split("\n"), end, n, estimated)
    finally:
        cluster.stop()


def _print_timeline(mode: str, lines: list[str], end: float, n: int, estimated: bool) -> None:
    marks = [(float(t), int(pid), what, float(cpu)) for t, pid, *w, cpu in
             (ln.split() for ln in lines if ln) for what in [" ".join(w)]]  # fmt: skip
    marks.sort()
    me = marks[0][1]
    workers: dict[int, list[tuple[float, str, float]]] = {}
    for t, pid, what, cpu in marks:
        if what.startswith("parts.partial"):  # the command's own when it is one part
            workers.setdefault(pid, []).append((t, what, cpu))
    first = min(w[0][0] for w in workers.values())
    last = max(w[-1][0] for w in workers.values())
    about = " (by the logs' size)" if estimated else ""
    print(f"timeline of one report, {mode}, {n:,} events{about} (load {os.getloadavg()[0]:.1f}): "
          "wall s since the launch, and the CPU s of the process at the mark")  # fmt: skip
    for t, pid, what, cpu in marks:
        if not what.startswith("parts.partial"):
            print(f"  {t:7.3f}  {'command' if pid == me else pid:7}  {what:34} CPU {cpu:6.3f}")
    for pid, ms in sorted(workers.items()):
        starts = [(t, c) for t, w, c in ms if w.endswith("start")]
        ends = [(t, c) for t, w, c in ms if w.endswith("end")]
        cpu = [e[1] - s[1] for s, e in zip(starts, ends, strict=False)]
        rest = statistics.median(cpu[1:] or cpu)
        who = "command" if pid == me else "worker"
        print(f"  {who} {pid}: {len(ends)} parts, first starts {starts[0][0]:.3f}, last ends "
              f"{ends[-1][0]:.3f}; CPU per part: first {cpu[0]:.3f}, the others' median "
              f"{rest:.3f}, all {sum(cpu):.3f}")  # fmt: skip
    print(f"  {end:7.3f}  command ended; first part started {first:.3f}, last part ended "
          f"{last:.3f} (after it {end - last:.3f})")  # fmt: skip


def _events_estimate(trace: Path) -> int:
    return sum(p.stat().st_size for p in trace.glob("*.iot")) // 24


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--procs", type=int, default=16)
    ap.add_argument("--short", type=int, default=0, metavar="N",
                    help="also a trace of N short-lived processes (a script's loop)")  # fmt: skip
    ap.add_argument("--also", type=int, metavar="N", help="a second trace of N events")
    ap.add_argument("--also-procs", type=int, default=128, metavar="P",
                    help="processes of the --also trace (default 128)")  # fmt: skip
    ap.add_argument("--jobs", type=int, default=0, metavar="J",
                    help="generator processes running at once (default: the cores)")  # fmt: skip
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run each row N times, print the medians")  # fmt: skip
    ap.add_argument("--rows", default="memory,1,2,dask,dask2",
                    help=f"which reports, of {','.join(ROWS)} (default all)")  # fmt: skip
    ap.add_argument("--in-memory-max", type=int, default=20_000_000, metavar="N",
                    help="report in memory (the reference) only up to N events")  # fmt: skip
    ap.add_argument("--keep", metavar="DIR", help="write the traces under DIR and keep them")
    ap.add_argument("--darshan-rows", default="memory,1,2",
                    help=f"which Darshan exports, of {','.join(DARSHAN_ROWS)} (default all; "
                    "'' for none)")  # fmt: skip
    ap.add_argument("--darshan-max", type=int, default=20_000_000, metavar="N",
                    help="export Darshan logs only of traces up to N events")  # fmt: skip
    ap.add_argument("--commands", default="",
                    help=f"also every bounded command of {','.join(COMMANDS)} ('all': each) with "
                    f"the modes of --modes")  # fmt: skip
    ap.add_argument("--modes", default="1,2,dask", help=f"of {','.join(MODES)} (default all)")
    ap.add_argument("--export-roles", default="", metavar="FORMATS",
                    help="csv,chrome: those exports on a Dask cluster, the command's peak and the "
                    "cluster's apart")  # fmt: skip
    ap.add_argument("--timeline", default="", metavar="MODES",
                    help="2,dask: one report in each mode with its phases marked (the "
                    "command's start, each worker's parts, the merge, the output)")  # fmt: skip
    ap.add_argument("--show-memory", default="2G,512M", metavar="SIZES",
                    help="`iotrace show` with each of these --memory bounds ('' for none; "
                    "default 2G,512M: held whole, and sorted runs spilled)")  # fmt: skip
    args = ap.parse_args()
    cmds = list(COMMANDS) if args.commands == "all" else [c for c in args.commands.split(",") if c]
    modes = [m for m in args.modes.split(",") if m]
    if any(c not in COMMANDS for c in cmds) or any(m not in MODES for m in modes):
        ap.error(f"--commands: of {','.join(COMMANDS)}; --modes: of {','.join(MODES)}")
    rows = [r for r in args.rows.split(",") if r]
    if any(r not in ROWS for r in rows):
        ap.error(f"--rows: one of {','.join(ROWS)}")
    drows = [r for r in args.darshan_rows.split(",") if r]
    if any(r not in DARSHAN_ROWS for r in drows):
        ap.error(f"--darshan-rows: one of {','.join(DARSHAN_ROWS)}")
    jobs = args.jobs or len(os.sched_getaffinity(0))
    _subreaper()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="iotrace-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        traces = [*([(args.events, args.procs)] if args.events else []),
                  *([(args.also, args.also_procs)] if args.also else []),
                  *([(0, args.short)] if args.short else [])]  # fmt: skip
        for events, procs in traces:
            trace = base / (f"t{events}" if events else f"short{procs}")
            if not trace.exists() and not events:
                took = make_short_trace(trace, procs, base)
                print(f"\n== {procs:,} short-lived processes (written in {took:.0f} s)")
            elif not trace.exists():
                took = make_trace(trace, events, procs, jobs, base)
                print(f"\n== {events:,} events by {procs} processes, {jobs} at a time "
                      f"(written in {took:.0f} s)")  # fmt: skip
            else:
                print(f"\n== {f'{events:,} events' if events else f'{procs:,} processes'} "
                      "(kept trace)")  # fmt: skip
            n = bench(trace, args.in_memory_max, rows, args.repeat) if rows else 0
            n = n or _events_estimate(trace)
            if drows and n <= args.darshan_max:
                bench_darshan(trace, n, not rows, args.in_memory_max, drows)
            if cmds:
                bench_commands(trace, n, cmds, modes)
            if args.export_roles:
                bench_export_roles(trace, n, args.export_roles.split(","))
            if args.timeline:
                bench_timeline(trace, n, not rows, args.timeline.split(","))
            if args.show_memory:
                bench_show(trace, n, [b for b in args.show_memory.split(",") if b])
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
