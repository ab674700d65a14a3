"""The MPI case of `make bench`: an MPI job writing a shared file, untraced vs traced.

4 ranks (mpirun -np 4, one `iotrace run` per rank) each write 64 MiB to their own part of one
shared file with MPI_File_write_at, in 1 MiB and in 4 KiB pieces, untraced, under the shim
alone (`iotrace run --no-stracer`) and under shim + stracer (`iotrace run`, when it has a
stracer).  Each run starts on a fresh file, in /dev/shm unless --dir says otherwise (a disk's
writeback would swamp the tracer's cost).  Prints, from this run: the job's wall
time (mpirun start to end, start-up included) and the write phase (the slowest rank's loop of
writes, timed inside the program between a barrier and its last write), each with its ratio to
untraced, the events recorded and the trace's size.  Every figure is a median of --rounds runs.

    python3 bench/mpi_bench.py [--rounds 5] [--ranks 4] [--mib 64] [--io ompio|romio321]

Needs mpicc and mpirun (Open MPI); the shim is the installed one, or IOTRACE_SHIM's.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from jobs import has_stracer, prefix, print_write_rows, run_timed, trace_size

SOURCE = r"""
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    long piece = atol(argv[2]), total = atol(argv[3]);
    char *buf = malloc((size_t)piece);
    memset(buf, 'a' + rank % 26, (size_t)piece);
    MPI_File fh;
    if (MPI_File_open(MPI_COMM_WORLD, argv[1], MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL,
                      &fh) != MPI_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Offset base = (MPI_Offset)rank * total;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (long off = 0; off < total; off += piece)
        if (MPI_File_write_at(fh, base + off, buf, (int)piece, MPI_BYTE, MPI_STATUS_IGNORE))
            MPI_Abort(MPI_COMM_WORLD, 2);
    double t = MPI_Wtime() - t0, tmax;
    MPI_Reduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_File_close(&fh);
    if (rank == 0)
        printf("write_s %.6f\n", tmax);
    MPI_Finalize();
    return 0;
}
"""

PIECES = ((1 << 20, "1 MiB"), (4 << 10, "4 KiB"))


def run_once(
    app: Path,
    work: Path,
    np: int,
    piece: int,
    total: int,
    mode: str,
    env: dict[str, str],
) -> tuple[float, float, int, int]:
    """(wall s, write phase s, events, trace bytes) of one job."""
    data = work / "shared.dat"
    trace = work / "trace"
    data.unlink(missing_ok=True)
    shutil.rmtree(trace, ignore_errors=True)
    os.sync()
    root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    cmd = [shutil.which("mpirun") or "mpirun", *root, "--oversubscribe", "-np", str(np)]
    cmd += prefix(mode, trace)
    cmd += [str(app), str(data), str(piece), str(total)]
    out, wall, _ = run_timed(cmd, work, env)
    write_s = float(out.split("write_s ")[1].split()[0])
    events, size = trace_size(trace) if mode != "untraced" else (0, 0)
    return wall, write_s, events, size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="runs per case and mode (median)")
    ap.add_argument("--ranks", type=int, default=4)
    ap.add_argument("--mib", type=int, default=64, help="MiB written per rank")
    ap.add_argument("--io", default=None, help="Open MPI io component (default: Open MPI's)")
    ap.add_argument("--dir", default=None, help="where to write (default: under /dev/shm)")
    args = ap.parse_args()
    mpicc, mpirun = shutil.which("mpicc"), shutil.which("mpirun")
    if not (mpicc and mpirun):
        print("(skipped: needs mpicc and mpirun)")
        return 0
    stracer = has_stracer()
    modes = ["untraced", "shim"] + (["shim+stracer"] if stracer else [])
    env = dict(os.environ, OMPI_MCA_btl="self,vader")
    if args.io:
        env["OMPI_MCA_io"] = args.io
    total = args.mib << 20
    # tmpfs by default: the figures are the tracer's cost, not the disk's writeback
    where = args.dir or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    with tempfile.TemporaryDirectory(prefix="iotrace-mpibench-", dir=where) as tmp:
        work = Path(tmp)
        app = work / "mpi_write"
        (work / "mpi_write.c").write_text(SOURCE)
        subprocess.run([mpicc, "-O2", "-o", str(app), str(work / "mpi_write.c")], check=True)
        print(f"MPI: {args.ranks} ranks x {args.mib} MiB, MPI_File_write_at to one shared file "
              f"in {where or tempfile.gettempdir()} (io {args.io or 'default'}, btl self,vader, "
              f"{os.cpu_count()} CPUs); median of {args.rounds}")  # fmt: skip
        if not stracer:
            print("(shim+stracer: skipped, `iotrace run` has no stracer)")
        print(f"{'piece':<12} {'mode':<13} {'wall s':>8} {'x':>6} {'write s':>8} {'x':>6} "
              f"{'events':>8} {'trace MiB':>9}")  # fmt: skip
        for piece, label in PIECES:
            once = functools.partial(run_once, app, work, args.ranks, piece, total, env=env)
            print_write_rows(label, modes, args.rounds, once)
    return 0


if __name__ == "__main__":
    sys.exit(main())
