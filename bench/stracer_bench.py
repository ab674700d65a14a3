"""What the stracer costs, measured now, on this machine.

1. The shim's benchmark cases (bench/shim_bench.c), each under `iotrace run --no-stracer` (the
   shim alone) and `iotrace run` (shim + stracer), side by side from one run, with the ratio.
2. A program whose I/O all bypasses the shim (raw write(2) syscalls): native, under iotrace,
   under `strace -f --seccomp-bpf -e trace=%desc,%file -o /dev/null`, and under `perf trace`
   where it runs: ns per syscall.
3. The cookie fast path (preload/sysraw.h): the same raw write carrying the run's cookie in its
   free argument slot, as a wrapper using sysraw.h would issue it: the filter lets it through
   without a stop.
4. fd news (docs/stracer.md): a raw openat, a wrapped write on it (the shim fetches the news of
   the raw openat before it answers) and a raw close, per round: native and under iotrace.

Every command runs pinned to one CPU (`taskset -c N`, the last one allowed unless `--cpu N`):
the stracer, the traced program and strace share it, as they do for an MPI rank bound to a core.
`--cpu -1` leaves placement to the kernel; on this VM that mostly measures how long waking the
other, halted vCPU takes (9-62 us per stop in the runs of 2026-11-23, changing from minute to
minute; docs/stracer.md).

    python3 bench/stracer_bench.py [--scale 1.0] [--rounds 3] [--cpu N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHIM_BENCH = HERE / "shim_bench.c"

# case -> iterations per round (a covered syscall still stops until the wrappers use sysraw.h)
CASES = {"write1": 20_000, "pwrite4k": 20_000, "fwrite16": 200_000, "openclose": 5_000,
         "stat": 10_000}  # fmt: skip

RAW_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* one call site for the warm-up and the timed loop: its first-time unwind is not timed */
__attribute__((noinline)) static void loop(int fd, long n, long cookie)
{
    for (long i = 0; i < n; i++)
        syscall(SYS_write, fd, "x", 1, cookie);
}

/* a raw open and close behind the shim's back; the wrapped write in between looks the fd up */
__attribute__((noinline)) static void news(const char *path, long n)
{
    for (long i = 0; i < n; i++) {
        int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT, 0644);
        if (write(fd, "x", 1) != 1)
            exit(1);
        syscall(SYS_close, fd);
    }
}

int main(int argc, char **argv)
{
    long n = atol(argv[1]);
    if (argc > 3 && !strcmp(argv[2], "news")) {
        news(argv[3], 10);
        long t0 = now();
        news(argv[3], n);
        char out[64];
        int len = snprintf(out, sizeof out, "%.1f\n", (double)(now() - t0) / n);
        syscall(SYS_write, 2, out, len);
        return 0;
    }
    int cookie_mode = argc > 2 && !strcmp(argv[2], "cookie");
    const char *c = getenv("IOTRACE_COOKIE");
    long cookie = c && cookie_mode ? strtoul(c, NULL, 0) : 0;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY);
    loop(fd, 100, cookie);
    long t0 = now();
    loop(fd, n, cookie);
    long t1 = now();
    char out[64];
    int len = snprintf(out, sizeof out, "%.1f\n", (double)(t1 - t0) / n);
    syscall(SYS_write, 2, out, len);
    return 0;
}
"""


PIN: list[str] = []  # taskset -c N, set by --cpu


def compile_progs(tmp: Path) -> tuple[Path, Path]:
    bench = tmp / "shim_bench"
    subprocess.run(["gcc", "-O2", "-o", str(bench), str(SHIM_BENCH)], check=True)
    raw = tmp / "raw_write"
    (tmp / "raw_write.c").write_text(RAW_C)
    subprocess.run(["gcc", "-O2", "-o", str(raw), str(tmp / "raw_write.c")], check=True)
    return bench, raw


def iotrace_cmd(tmp: Path, *opts: str) -> list[str]:
    out = tempfile.mkdtemp(dir=tmp, prefix="trace")
    return [sys.executable, "-m", "iotrace", "run", "-o", out, "--stack", "0", *opts, "--"]


def shim_case(tmp: Path, bench: Path, data: Path, case: str, iters: int, rounds: int,
              stracer: bool) -> float:  # fmt: skip
    cmd = iotrace_cmd(tmp, *(() if stracer else ("--no-stracer",)))
    r = subprocess.run(
        [*PIN, *cmd, str(bench), "-n", str(iters), "-r", str(rounds), "-w", str(iters // 10),
         case, str(data)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if r.returncode != 0:
        raise RuntimeError(f"{case}: {r.stderr.strip()}")
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("{"))
    return statistics.median(json.loads(line)["rounds_ns"])


def raw_run(cmd: list[str]) -> float | None:
    r = subprocess.run([*PIN, *cmd], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return None
    for ln in reversed(r.stderr.splitlines()):
        try:
            return float(ln)
        except ValueError:
            continue
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to; -1: none")
    args = ap.parse_args()
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[-1] if args.cpu is None else args.cpu
    if cpu >= 0 and shutil.which("taskset"):
        if cpu not in allowed:
            sys.exit(f"stracer_bench: CPU {cpu} is not available (allowed: {allowed})")
        PIN[:] = ["taskset", "-c", str(cpu)]
        print(f"pinned: taskset -c {cpu} (stracer, program and strace on one CPU)")
    else:
        print("not pinned: placement left to the kernel")
    with tempfile.TemporaryDirectory(prefix="iotrace-stbench-") as t:
        tmp = Path(t)
        bench, raw = compile_progs(tmp)
        data = tmp / "data"
        data.write_bytes(b"\0" * (64 * 1024))
        print("stracer: the shim's cases, --stack 0, ns per call (median of rounds)")
        print(f"  {'case':<10} {'shim alone':>12} {'shim+stracer':>14} {'ratio':>7}")
        for case, iters in CASES.items():
            n = max(100, int(iters * args.scale))
            alone = shim_case(tmp, bench, data, case, n, args.rounds, stracer=False)
            both = shim_case(tmp, bench, data, case, n, args.rounds, stracer=True)
            print(f"  {case:<10} {alone:>12.0f} {both:>14.0f} {both / alone:>7.2f}")

        n = str(max(100, int(20_000 * args.scale)))
        print("\nstracer: raw write(2) to /dev/null, every call bypassing the shim, ns per syscall")
        rows: list[tuple[str, float | None]] = [("native", raw_run([str(raw), n]))]
        rows.append(("iotrace run", raw_run([*iotrace_cmd(tmp), str(raw), n])))
        if shutil.which("strace"):
            rows.append((
                "strace -f --seccomp-bpf",
                raw_run(["strace", "-f", "--seccomp-bpf", "-e", "trace=%desc,%file", "-o",
                         os.devnull, str(raw), n]),
            ))  # fmt: skip
        if shutil.which("perf"):
            rows.append(("perf trace", raw_run(["perf", "trace", "-o", os.devnull, str(raw), n])))
        rows.append((
            "iotrace, cookie in slot 3",
            raw_run([*iotrace_cmd(tmp), str(raw), str(int(n) * 10), "cookie"]),
        ))  # fmt: skip
        show_rows(rows)

        n = str(max(100, int(2_000 * args.scale)))
        news = [str(raw), n, "news", str(tmp / "news.out")]
        print("\nstracer: fd news: raw openat + wrapped write + raw close, ns per round")
        show_rows([("native", raw_run(news)), ("iotrace run", raw_run([*iotrace_cmd(tmp), *news]))])
    return 0


def show_rows(rows: list[tuple[str, float | None]]) -> None:
    base = rows[0][1] or 1.0
    for name, v in rows:
        shown = f"{v:>10.0f}  x{v / base:>6.1f}" if v else f"{'did not run':>10}"
        print(f"  {name:<26} {shown}")


if __name__ == "__main__":
    sys.exit(main())
