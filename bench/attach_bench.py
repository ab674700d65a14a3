"""The `iotrace attach` case of `make bench`: what a syscall costs in a process attached with
`iotrace attach` (PTRACE_SYSCALL: two stops per syscall, I/O or not, since a running process
cannot be given the seccomp filter of `iotrace run`), side by side with the same loop untraced
and under `iotrace run` (shim + stracer), and with the shim loaded into it instead
(`iotrace attach --shim`: no ptrace stop).  A small C program sleeps while it is attached, then
times a loop of write(1 byte to /dev/null) and one of getpid (a syscall that is no I/O).

    python3 bench/attach_bench.py [--calls 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOURCE = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
                          return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    usleep(atoi(argv[2]) * 1000); /* attach happens here */
    int fd = open("/dev/null", O_WRONLY);
    double t0 = now();
    for (long i = 0; i < n; i++) if (write(fd, "x", 1) != 1) return 1;
    double t1 = now();
    for (long i = 0; i < n; i++) syscall(SYS_getpid);
    double t2 = now();
    printf("{\"write1\": %.1f, \"getpid\": %.1f}\n", (t1 - t0) / n, (t2 - t1) / n);
    return 0;
}
"""
WAIT_MS = 1500


def once(exe: Path, mode: str, calls: int, work: Path) -> dict[str, float]:
    attached = mode.startswith("attached")
    cmd = [str(exe), str(calls), str(WAIT_MS if attached else 0)]
    if mode == "iotrace run":
        cmd = [sys.executable, "-m", "iotrace", "run", "-o", str(work / "run"), "--force",
               "--", *cmd]  # fmt: skip
    app = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    at = None
    if attached:
        time.sleep(0.2)
        shim = ["--shim"] if mode == "attached --shim" else []
        cmd = [sys.executable, "-m", "iotrace", "attach", *shim, str(app.pid), "-o",
               str(work / "att"), "--force"]  # fmt: skip
        at = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    out, _ = app.communicate()
    if at is not None:
        at.wait()
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    modes = ("untraced", "iotrace run", "attached", "attached --shim")
    with tempfile.TemporaryDirectory(prefix="iotrace-attach-bench-") as tmp:
        work = Path(tmp)
        exe = work / "loop"
        (work / "loop.c").write_text(SOURCE)
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(work / "loop.c")], check=True)
        got: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        for _ in range(args.rounds):
            for m in modes:
                got[m].append(once(exe, m, args.calls, work))
    print(f"ns per call (wall clock, median of {args.rounds} rounds of {args.calls} calls):")
    print("case   | untraced | iotrace run (shim + stracer) | attached (iotrace attach) | "
          "attach --shim")  # fmt: skip
    print("-------+----------+------------------------------+---------------------------+"
          "--------------")  # fmt: skip
    for case in ("write1", "getpid"):
        med = {m: statistics.median(r[case] for r in got[m]) for m in modes}
        print(f"{case:6s} | {med['untraced']:8.0f} | {med['iotrace run']:28.0f} | "
              f"{med['attached']:25.0f} | {med['attached --shim']:13.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
