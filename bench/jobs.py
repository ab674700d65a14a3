"""What the job-level benches (cost, MPI, HDF5, AIO) share: the command in front of the program
for each mode, one timed run, and what a trace holds."""

from __future__ import annotations

import functools
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from iotrace.tracefile import log_paths, read_log


@functools.cache
def has_stracer() -> bool:
    """Whether this build has the stracer (`--no-stracer` exists only then)."""
    out = subprocess.run([sys.executable, "-m", "iotrace", "run", "--help"],
                         capture_output=True, text=True)  # fmt: skip
    return "--no-stracer" in out.stdout


def command() -> list[str]:
    """The `iotrace` command users run (the C launcher installed beside this Python), else
    `python -m iotrace` (a tree without the launcher): its start is part of every cost."""
    launcher = Path(sys.executable).with_name("iotrace")
    return [str(launcher)] if launcher.is_file() else [sys.executable, "-m", "iotrace"]


def prefix(mode: str, trace: Path, *opts: str) -> list[str]:
    """`iotrace run` in front of the program: nothing untraced, the shim alone for "shim",
    shim and stracer for any other mode."""
    if mode == "untraced":
        return []
    shim_only = ["--no-stracer"] if mode == "shim" and has_stracer() else []
    return [*command(), "run", "-o", str(trace), *opts, *shim_only, "--"]


def run_timed(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None, err: list[str] | None = None
) -> tuple[str, float, float]:
    """(stdout, wall s, CPU s of the whole process tree) of one run; a failed run ends the bench.
    Its stderr is appended to `err` when given."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        name = Path(sys.argv[0]).stem
        raise SystemExit(f"{name}: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    if err is not None:
        err.append(proc.stderr)
    return proc.stdout, wall, cpu


def trace_size(trace: Path) -> tuple[int, int]:
    """(events, bytes on disk) of the shim's logs in a trace directory."""
    events = size = 0
    for p in log_paths(trace):
        events += len(read_log(p).events)
        size += p.stat().st_size
    return events, size


def print_write_rows(
    label: str, modes: list[str], rounds: int, once: Callable[[str], tuple[float, float, int, int]]
) -> None:
    """One table row a mode, the first mode the base of the ratios: the medians over `rounds`
    of `once(mode)`'s (wall s, write s), and its last run's events and trace MiB."""
    base: tuple[float, float] | None = None
    for mode in modes:
        runs = [once(mode) for _ in range(rounds)]
        wall = statistics.median(r[0] for r in runs)
        wr = statistics.median(r[1] for r in runs)
        events, size = runs[-1][2], runs[-1][3]
        if base is None:
            base = (wall, wr)
        ev = f"{events:>8}" if mode != "untraced" else f"{'':>8}"
        mib = f"{size / 2**20:>9.1f}" if mode != "untraced" else f"{'':>9}"
        print(f"{label:<12} {mode:<13} {wall:>8.3f} {wall / base[0]:>6.2f} "
              f"{wr:>8.3f} {wr / base[1]:>6.2f} {ev} {mib}", flush=True)  # fmt: skip
