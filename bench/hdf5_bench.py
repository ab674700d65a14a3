"""The HDF5 case of `make bench`: a parallel HDF5 job writing one shared dataset, untraced vs
traced.

Each rank (mpirun -np 4, one `iotrace run` per rank) writes --mib MiB of doubles to its own rows
of one 2-D contiguous dataset, one H5Dwrite per --kib KiB piece (a hyperslab of whole rows),
collective and independent (H5Pset_dxpl_mpio), untraced, under the shim alone (`iotrace run
--no-stracer`) and under shim + stracer (`iotrace run`, when it has a stracer).  The program is
linked against the shared libhdf5 (h5pcc -shlib).  Each run starts on a fresh file, in /dev/shm
unless --dir says otherwise.  Prints, from this run: the job's wall time (mpirun start to end),
the write phase (the slowest rank's loop of H5Dwrite, timed inside the program between a
barrier and its last write, before H5Fclose), each with its ratio to untraced, the events
recorded and the trace's size.  Every figure is a median of --rounds runs.

    python3 bench/hdf5_bench.py [--rounds 3] [--ranks 4] [--mib 16] [--kib 256]

Needs h5pcc (libhdf5-openmpi-dev) and mpirun (Open MPI); the shim is the installed one, or
IOTRACE_SHIM's.
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
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#define COLS 1024 /* doubles per row: 8 KiB */

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int coll = argv[2][0] == 'c';
    hsize_t piece = atol(argv[3]) / (COLS * 8), rows = atol(argv[4]) / (COLS * 8);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
    hid_t f = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    hsize_t dims[2] = {size * rows, COLS}, count[2] = {piece, COLS};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(f, "data", H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, coll ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT);
    double *buf = malloc(piece * COLS * sizeof *buf);
    for (hsize_t i = 0; i < piece * COLS; i++)
        buf[i] = rank + (double)i;
    hid_t ms = H5Screate_simple(2, count, NULL), fs = H5Dget_space(d);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (hsize_t r = 0; r < rows; r += piece) {
        hsize_t start[2] = {rank * rows + r, 0};
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        if (H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, fs, dxpl, buf) < 0)
            MPI_Abort(MPI_COMM_WORLD, 2);
    }
    double t = MPI_Wtime() - t0, tmax;
    MPI_Reduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Sclose(space);
    H5Dclose(d);
    H5Pclose(dxpl);
    H5Fclose(f);
    H5Pclose(fapl);
    if (rank == 0)
        printf("write_s %.6f\n", tmax);
    free(buf);
    MPI_Finalize();
    return 0;
}
"""


def run_once(app: Path, work: Path, args: argparse.Namespace, xfer: str, mode: str,
             env: dict[str, str]) -> tuple[float, float, int, int]:  # fmt: skip
    """(wall s, write phase s, events, trace bytes) of one job."""
    data, trace = work / "bench.h5", work / "trace"
    data.unlink(missing_ok=True)
    shutil.rmtree(trace, ignore_errors=True)
    root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    cmd = [shutil.which("mpirun") or "mpirun", *root, "--oversubscribe", "-np", str(args.ranks)]
    cmd += prefix(mode, trace)
    cmd += [str(app), str(data), xfer, str(args.kib << 10), str(args.mib << 20)]
    out, wall, _ = run_timed(cmd, work, env)
    write_s = float(out.split("write_s ")[1].split()[0])
    events, size = trace_size(trace) if mode != "untraced" else (0, 0)
    return wall, write_s, events, size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="runs per case and mode (median)")
    ap.add_argument("--ranks", type=int, default=4)
    ap.add_argument("--mib", type=int, default=16, help="MiB written per rank")
    ap.add_argument("--kib", type=int, default=256, help="KiB per H5Dwrite (multiple of 8)")
    ap.add_argument("--dir", default=None, help="where to write (default: under /dev/shm)")
    args = ap.parse_args()
    h5pcc, mpirun = shutil.which("h5pcc"), shutil.which("mpirun")
    if not (h5pcc and mpirun):
        print("(skipped: needs h5pcc and mpirun)")
        return 0
    modes = ["untraced", "shim"] + (["shim+stracer"] if has_stracer() else [])
    env = dict(os.environ, OMPI_MCA_btl="self,vader")
    where = args.dir or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    with tempfile.TemporaryDirectory(prefix="iotrace-h5bench-", dir=where) as tmp:
        work = Path(tmp)
        app = work / "h5_write"
        (work / "h5_write.c").write_text(SOURCE)
        # in `work`: h5pcc leaves its .o in the current directory
        cc = [h5pcc, "-shlib", "-O2", "-o", str(app), str(work / "h5_write.c")]
        subprocess.run(cc, check=True, cwd=work)
        print(f"HDF5: {args.ranks} ranks x {args.mib} MiB in H5Dwrite of {args.kib} KiB to one "
              f"contiguous dataset in {where or tempfile.gettempdir()} (Open MPI default io, "
              f"{os.cpu_count()} CPUs); median of {args.rounds}")  # fmt: skip
        print(f"{'xfer':<12} {'mode':<13} {'wall s':>8} {'x':>6} {'write s':>8} {'x':>6} "
              f"{'events':>8} {'trace MiB':>9}")  # fmt: skip
        for xfer in ("collective", "independent"):
            once = functools.partial(run_once, app, work, args, xfer, env=env)
            print_write_rows(xfer, modes, args.rounds, once)
    return 0


if __name__ == "__main__":
    sys.exit(main())
