"""mdtest itself (hpc/ior's), untraced, shim alone and full, side by side (issue 19: "+19 to +30 us
per file"; bench/README.md "mdtest").  mdtest is not packaged by Debian and its code is not ours:
give a built binary (--mdtest, or $MDTEST) or a checkout of github.com/hpc/ior (--ior-src, or
$IOR_SRC: built in a temporary directory); without either this says so and stops.

For each mode, `mdtest -F -n N` per rank, two ways, interleaved round by round:
  cpu   each rank's main-thread CPU time (/proc/PID/schedstat), read by mdtest's own
        --run-cmd-before-phase/--run-cmd-after-phase hooks around each phase, at two sizes
        (--files A,B): (cpu(B) - cpu(A)) / (B - A) per phase is the CPU per file, whatever the
        machine runs meanwhile; fixed costs per phase (the hook's fork) cancel.  One rank only:
        with more, a rank's phase begins with a barrier whose wait spins for as long as the other
        rank's hook takes (mdtest refuses -B, no barriers, in this version).
  wall  mdtest's own rates (no hooks), at size B: us per file per rank; with the min-max of the
        rounds, which is what one run of each mode can tell apart.
and, under full tracing, the stracer's stops that fell inside the file phases (its STOP records).

    python3 bench/mdtest_bench.py [--mdtest BIN | --ior-src DIR] [--ranks 1,2] [--rounds 5]
                                  [--files 500,2500] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from iotrace.stracer import slog
from jobs import prefix

from iotrace.calls import EVENT_FIELDS
from iotrace.tracefile import log_paths, read_log

MODES = ("untraced", "shim", "full")
PHASES = ("creation", "stat", "read", "removal")
HOOK = 'echo IOTBENCH {} $PPID $(cut -d" " -f1 /proc/$PPID/schedstat)'
MPI_ENV = {"OMPI_MCA_rmaps_base_oversubscribe": "1"}
if os.geteuid() == 0:
    MPI_ENV |= {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def build(src: Path, work: Path) -> Path | None:
    """mdtest built from an ior checkout, in work (the checkout is not touched)."""
    tree = work / "ior"
    shutil.copytree(src, tree, ignore=shutil.ignore_patterns(".git"))
    for step in (["./bootstrap"], ["./configure", "--quiet"], ["make", "-j2", "-s"]):
        if subprocess.run(step, cwd=tree, capture_output=True).returncode != 0:
            print(f"mdtest: `{' '.join(step)}` failed in a copy of {src}: skipped")
            return None
    return tree / "src" / "mdtest"


def run(mdtest: Path, mode: str, ranks: int, n: int, where: Path, trace: Path, hooks: bool) -> str:
    shutil.rmtree(where, ignore_errors=True)
    shutil.rmtree(trace, ignore_errors=True)
    where.mkdir(parents=True)
    cmd = [str(mdtest), "-n", str(n), "-F", "-d", str(where)]
    if hooks:
        cmd += [f"--run-cmd-before-phase={HOOK.format('B')}",
                f"--run-cmd-after-phase={HOOK.format('A')}"]  # fmt: skip
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks), *cmd]
    p = subprocess.run([*prefix(mode, trace), *cmd], env=os.environ | MPI_ENV,
                       capture_output=True, text=True)  # fmt: skip
    if p.returncode != 0:
        sys.exit(f"mdtest failed ({mode}): {p.stderr.strip()[-300:]}")
    return p.stdout


def phase_cpu(out: str, ranks: int) -> list[int]:
    """ns of CPU per phase, the slowest rank's."""
    per: dict[str, list[tuple[str, int]]] = {}
    for kind, pid, ns in re.findall(r"^IOTBENCH ([AB]) (\d+) (\d+)$", out, re.M):
        per.setdefault(pid, []).append((kind, int(ns)))
    for v in per.values():  # mpirun may forward the hooks' lines out of order: CPU time only grows
        v.sort(key=lambda kv: kv[1])
    if len(per) != ranks or any([k for k, _ in v] != list("BA" * 4) for v in per.values()):
        sys.exit("mdtest: the phase hooks did not run as expected")
    return [max(v[2 * i + 1][1] - v[2 * i][1] for v in per.values()) for i in range(4)]


def phase_wall(out: str, ranks: int) -> list[float]:
    """us per file per rank of each phase, from mdtest's mean rate (ops/s, all ranks)."""
    got = []
    for name in PHASES:
        m = re.search(rf"File {name}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out)
        if not m:
            sys.exit(f"mdtest printed no 'File {name}' rate")
        got.append(ranks * 1e6 / float(m.group(3)))
    return got


def stops_in_phases(trace: Path) -> tuple[int, float]:
    """The stracer's stops of a rank's thread between its first and last file call, and ns."""
    spans: dict[int, list[int]] = {}
    for p in log_paths(trace):
        log = read_log(p)
        for e in log.events:
            r = dict(zip(("tid", *EVENT_FIELDS[1:]), e, strict=True))
            path = log.strings.get(r["path"]) if r["path"] is not None else None
            if path and "/file.mdtest." in path:
                s = spans.setdefault(r["tid"], [r["t_start"], 0])
                s[0] = min(s[0], r["t_start"])
                s[1] = max(s[1], r["t_start"] + r["dur"])
    stops = [s for p in trace.glob("*.stracer") for s in slog.read(p).stops]
    inside = [s for s in stops if s[1] in spans and spans[s[1]][0] <= s[2] <= spans[s[1]][1]]
    return len(inside), sum(s[3] for s in inside)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mdtest", type=Path, default=os.environ.get("MDTEST"))
    ap.add_argument("--ior-src", type=Path, default=os.environ.get("IOR_SRC"))
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--files", default="500,2500")
    ap.add_argument("--dir", type=Path, default=None,
                    help="where mdtest works (default: /dev/shm when it is a tmpfs)")  # fmt: skip
    a = ap.parse_args()
    small, big = (int(x) for x in a.files.split(","))
    with tempfile.TemporaryDirectory(prefix="mdtest-bench-") as tmp:
        work = Path(tmp)
        mdtest = a.mdtest
        if not mdtest and a.ior_src:
            mdtest = build(a.ior_src, work)
        if not mdtest or not Path(mdtest).is_file():
            print("mdtest: no binary (--mdtest, $MDTEST) nor ior checkout (--ior-src, $IOR_SRC): "
                  "skipped")  # fmt: skip
            return
        base = a.dir or (Path("/dev/shm") if Path("/dev/shm").is_dir() else work)
        where = Path(tempfile.mkdtemp(prefix="mdtest-bench-", dir=base))
        try:
            for ranks in (int(r) for r in a.ranks.split(",")):
                report(Path(mdtest), ranks, a.rounds, small, big, where, work)
        finally:
            shutil.rmtree(where, ignore_errors=True)


def report(mdtest: Path, ranks: int, rounds: int, small: int, big: int, where: Path,
           work: Path) -> None:  # fmt: skip
    cpu: dict[tuple[str, int], list[list[int]]] = {}
    wall: dict[str, list[list[float]]] = {}
    stops: list[tuple[int, float]] = []
    for r in range(rounds):
        for mode in MODES[r % 3 :] + MODES[: r % 3]:
            trace = work / f"trace-{mode}"
            for n in (small, big) if ranks == 1 else ():
                out = run(mdtest, mode, ranks, n, where / mode, trace, hooks=True)
                cpu.setdefault((mode, n), []).append(phase_cpu(out, ranks))
            out = run(mdtest, mode, ranks, big, where / mode, trace, hooks=False)
            wall.setdefault(mode, []).append(phase_wall(out, ranks))
            if mode == "full":
                stops.append(stops_in_phases(trace))
    print(f"\nmdtest -F, {ranks} rank(s) on {where.parent}, {rounds} rounds, modes interleaved; "
          f"us per file per rank, medians (added to untraced)")  # fmt: skip
    if ranks == 1:
        cpu_table(cpu, small, big)
    wall_table(wall, big)
    n_stops = statistics.median(s for s, _ in stops)
    ns = statistics.median(t for _, t in stops)
    print(f"full: {n_stops:.0f} stracer stops inside the file phases ({ns / 1e3:.1f} us held), "
          f"median of the rounds")  # fmt: skip


def cpu_table(cpu: dict[tuple[str, int], list[list[int]]], small: int, big: int) -> None:
    print(f"cpu: slowest rank's main thread, (cpu({big}) - cpu({small})) / {big - small}; "
          f"[min-max of the rounds' sums]")  # fmt: skip
    head = " | ".join(f"{p:>15s}" for p in PHASES)
    print(f"mode     | {head} |             sum")
    base_c: list[float] = []
    for mode in MODES:
        per = [[(b[i] - a[i]) / (big - small) / 1e3 for i in range(4)]
               for a, b in zip(cpu[(mode, small)], cpu[(mode, big)], strict=True)]  # fmt: skip
        med = [statistics.median(x[i] for x in per) for i in range(4)] + [
            statistics.median(sum(x) for x in per)
        ]
        base_c = base_c or med
        sums = [sum(x) for x in per]
        print(f"{mode:8s} | " + " | ".join(f"{v:6.2f} ({v - base_c[i]:+6.2f})"
                                           for i, v in enumerate(med))
              + f"  [{min(sums):.1f}-{max(sums):.1f}]")  # fmt: skip


def wall_table(wall: dict[str, list[list[float]]], big: int) -> None:
    print(f"wall: mdtest's rates at n={big} (no hooks); [min-max of the rounds' sums]")
    print(f"mode     | {' | '.join(f'{p:>15s}' for p in PHASES)} |             sum")
    base_w: list[float] = []
    for mode in MODES:
        rows = wall[mode]
        med = [statistics.median(x[i] for x in rows) for i in range(4)]
        sums = [sum(x) for x in rows]
        med.append(statistics.median(sums))
        base_w = base_w or med
        print(f"{mode:8s} | " + " | ".join(f"{v:6.2f} ({v - base_w[i]:+6.2f})"
                                           for i, v in enumerate(med))
              + f"  [{min(sums):.1f}-{max(sums):.1f}]")  # fmt: skip


if __name__ == "__main__":
    main()
