"""The costs of issue 19, untraced and traced side by side from one run (bench/README.md).

Each case runs its program untraced, under `iotrace run --no-stracer` (the shim alone), under
`iotrace run` (full: shim + stracer) and, where it says so, under `strace -f`; the modes are
interleaved round by round; every figure is the median of --rounds runs.  Everything is pinned
to one CPU (--cpu; -1: unpinned) except the MPI cases, whose ranks get the two last CPUs.

    python3 bench/cost_bench.py [--rounds 5] [--cases sem,mpi_fopen,...] [--cpu N]
                                [--before OTHER_IOTRACE]

--before names another installation's `iotrace` command (e.g. main's, in a venv of its own):
the ior and fixed cases then also run its shim and full modes ("shim@before", "full@before") in
the same interleaved rounds, so a change is measured before and after side by side.

Cases:
  sem        sem_open(O_CREAT) + sem_close + sem_unlink (bench/progs/semloop.c), us per iteration;
             full vs shim alone, and strace's cost for the same syscalls
  mpi_fopen  MPI_File_open + MPI_File_close, 2 ranks, ms per pair (bench/progs/mpi_fopen.c);
             target: full <= 1.2x the shim alone
  fixed      a program that does nothing (bench/progs/noop.c): wall and CPU (the whole process
             tree) added per run, alone and per rank under `mpirun -np 2 iotrace run`; targets:
             shim alone <= +20 ms, full <= +100 ms
  md         mdtest-like (bench/progs/mdbench.c), 2 ranks, N files per rank in one directory
             (on /dev/shm when it is a tmpfs): create, stat, read, remove; then the in-process
             loop of the same calls on one name; the us added per op next to the loop's, and
             the gap; target: the us added per file within 2 of those added per loop iteration;
             then each phase's wall time, its time off the CPU, the part of it spent waiting
             for a CPU (runnable, preempted by whatever else runs) and its context switches
             (barriers that sleep: the time off the CPU is the machine's and the ranks'
             directory lock's, not a spinning rank's)
  ior        IOR-like (bench/progs/iorlike.c), 2 ranks, 256 MiB each of one shared file in 4 KiB
             transfers, written then read, POSIX (lseek + write/read) and MPI-IO (write_at /
             read_at); target: the whole run's wall time under full tracing <= 1.15x untraced
  libc       libc functions that do I/O inside glibc (bench/progs/libcloop.c: NSS, gettext,
             the time zone, realpath, mkstemp, tmpfile, opendir, sysconf), each 50 times under
             full tracing: the stracer's stops left per call, covered (resumed by its C loop)
             and libc-internal (two stops each, recorded by the C loop at a known call site),
             from its summary line of a run with no call and one with 50
  libc_us    the same functions' cost: us per call untraced, shim alone, full and `strace -f`,
             pinned, (a run with N calls - a run with none) / N by wall and by the CPU of the
             whole process tree; full/strace: target <= 1.0 (issue 19, "a stop handled
             anywhere costs no more than strace's"), and (full - shim) / (strace - untraced):
             the stracer's own addition against strace's; --libc F,G: those functions only
  mpi_init   the same program with no open: the CPU seconds of the whole job (mpirun, iotrace,
             stracers, ranks) per rank; target: full adds <= 0.1 s per rank to untraced; beside
             it the same for a program that does nothing (iotrace run's own cost per rank) and
             what is left for MPI_Init + MPI_Finalize; and ld.so's stops inside the dlopens of
             Open MPI's components (the STOP records within the shim's dlopen events)
  dlopen     dlopen + dlclose of a small library (bench/progs/dlloop.c): us of CPU per pair
             untraced, shim, full, strace; the covered stops per dlopen (ld.so's syscalls,
             which carry no cookie) and what each costs beyond the shim alone
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from jobs import command, has_stracer, run_timed
from jobs import prefix as iotrace_prefix

HERE = Path(__file__).resolve().parent
PROGS = HERE / "progs"
MODES = ("untraced", "shim", "full")
BEFORE: list[str] = []  # --before: the other installation's iotrace command


def prefix(mode: str, trace: Path) -> list[str]:
    """The command in front of the program for one mode (strace's too)."""
    if mode == "strace":
        return ["strace", "-f", "-qq", "-o", "/dev/null", "--seccomp-bpf",
                "-e", "trace=%file,%desc,%memory"]  # fmt: skip
    base, _, other = mode.partition("@")
    cmd = iotrace_prefix(base, trace)
    return [*BEFORE, *cmd[len(command()) :]] if other and cmd else cmd


def field(out: str, name: str) -> float:
    return float(out.split(name + " ")[1].split()[0])


def compile_c(src: Path, out: Path, mpi: bool = False) -> Path:
    cc = shutil.which("mpicc") if mpi else "gcc"
    subprocess.run([cc, "-O2", "-o", str(out), str(src)], check=True)
    return out


def rounds(
    modes: tuple[str, ...], n: int, one: Callable[[str, int], dict[str, float]]
) -> dict[str, dict[str, float]]:
    """Medians per mode and metric; modes interleaved, in a rotating order."""
    got: dict[str, dict[str, list[float]]] = {m: {} for m in modes}
    for i in range(n):
        for m in modes[i % len(modes) :] + modes[: i % len(modes)]:
            for k, v in one(m, i).items():
                got[m].setdefault(k, []).append(v)
    return {m: {k: statistics.median(v) for k, v in d.items()} for m, d in got.items()}


def pin(cpu: int) -> list[str]:
    return [] if cpu < 0 else ["taskset", "-c", str(cpu)]


def case_sem(work: Path, args: argparse.Namespace, modes: tuple[str, ...]) -> None:
    prog = compile_c(PROGS / "semloop.c", work / "semloop")
    n = str(int(300 * args.scale))
    env = dict(os.environ)
    ms = modes + (("strace",) if shutil.which("strace") else ())

    def one(mode: str, i: int) -> dict[str, float]:
        trace = work / f"t-sem-{mode}-{i}"
        out, _, _ = run_timed([*pin(args.cpu), *prefix(mode, trace), str(prog), n], work, env)
        shutil.rmtree(trace, ignore_errors=True)
        return {"us": field(out, "ns") / 1e3}

    med = rounds(ms, args.rounds, one)
    base = med["untraced"]["us"]
    print(f"sem: sem_open(O_CREAT)+sem_close+sem_unlink, {n} per run, us per iteration "
          f"(wall, pinned), median of {args.rounds}")  # fmt: skip
    print(f"  {'mode':<10} {'us':>9} {'x untraced':>11}")
    for m in ms:
        print(f"  {m:<10} {med[m]['us']:>9.1f} {med[m]['us'] / base:>11.2f}")
    if "full" in med and "strace" in med:
        print(f"  full / shim {med['full']['us'] / med['shim']['us']:.2f}; added: full "
              f"{med['full']['us'] - base:+.1f} us, strace {med['strace']['us'] - base:+.1f} us "
              f"(target: full adds no more than strace)")  # fmt: skip


LIBC_CALLS = ("getpwuid", "getgrgid", "getgrouplist", "getaddrinfo", "gethostbyname",
              "getservbyname", "gettext", "localtime", "mktime", "strftime", "realpath",
              "mkstemp", "tmpfile", "opendir", "sysconf")  # fmt: skip


def case_libc(work: Path, args: argparse.Namespace, modes: tuple[str, ...]) -> None:
    if "full" not in modes:
        print("(skipped: needs full tracing)")
        return
    prog = compile_c(PROGS / "libcloop.c", work / "libcloop")
    n = 50
    pat = re.compile(r"(\d+) covered by the shim, .* (\d+) inside libc functions")

    def stops(fn: str, count: int) -> tuple[int, int]:
        trace = work / f"t-libc-{fn}-{count}"
        err: list[str] = []
        run_timed([*prefix("full", trace), str(prog), fn, str(count)], work, None, err)
        shutil.rmtree(trace, ignore_errors=True)
        m = pat.search(err[0])
        if not m:
            raise SystemExit(f"cost_bench: no stracer summary for {fn}:\n{err[0]}")
        return int(m[1]), int(m[2])

    print(f"libc: stracer stops per call left inside libc functions, full tracing, {n} calls")
    print(f"  {'function':<14} {'covered':>8} {'libc-internal':>14}")
    for fn in LIBC_CALLS:
        (c0, l0), (c1, l1) = stops(fn, 0), stops(fn, n)
        print(f"  {fn:<14} {(c1 - c0) / n:>8.2f} {(l1 - l0) / n:>14.2f}")


def case_libc_us(work: Path, args: argparse.Namespace, modes: tuple[str, ...]) -> None:
    """us per call of each libc function: (run with N calls - run with none) / N, by wall and by
    the CPU of the whole process tree (the tracer's included), each mode's median."""
    prog = compile_c(PROGS / "libcloop.c", work / "libcloop")
    n = max(1, int(1000 * args.scale))
    fns = args.libc.split(",") if args.libc else list(LIBC_CALLS)
    ms = modes + (("strace",) if shutil.which("strace") else ())

    def one(mode: str, i: int) -> dict[str, float]:
        got: dict[str, float] = {}
        for fn, count in [("getpwuid", 0)] + [(fn, n) for fn in fns]:  # 0: setlocale alone
            trace = work / f"t-libcus-{mode}-{i}"
            cmd = [*pin(args.cpu), *prefix(mode, trace), str(prog), fn, str(count)]
            _, wall, cpu = run_timed(cmd, work)
            shutil.rmtree(trace, ignore_errors=True)
            key = fn if count else ""
            got[f"w{key}"], got[f"c{key}"] = wall, cpu
        return got

    med = rounds(ms, args.rounds, one)

    def us(m: str, fn: str, kind: str) -> float:
        return (med[m][kind + fn] - med[m][kind]) / n * 1e6

    print(f"libc_us: us per call, {n} calls per run minus a run with none, pinned, median of "
          f"{args.rounds}; wall, then the CPU of the whole process tree")  # fmt: skip
    for kind, title in (("w", "wall"), ("c", "CPU")):
        head = "".join(f"{m:>9}" for m in ms)
        print(f"  {title:<5} {'function':<14}{head}  full/strace  added/added")
        for fn in fns:
            cols = "".join(f"{us(m, fn, kind):>9.1f}" for m in ms)
            ratio = ""
            if "full" in med and "strace" in med and us("strace", fn, kind) > 0:
                ratio = f"{us('full', fn, kind) / us('strace', fn, kind):>13.2f}"
                added = us("strace", fn, kind) - us("untraced", fn, kind)
                if added > 0:  # the stracer's own cost against strace's: the shim's taken out
                    ratio += f"{(us('full', fn, kind) - us('shim', fn, kind)) / added:>13.2f}"
            print(f"  {'':<5} {fn:<14}{cols}{ratio}")
    print(
        "  full/strace: target <= 1.0; added/added: (full - shim) / (strace - untraced), what "
        "the stracer adds against what strace adds"
    )


def case_dlopen(work: Path, args: argparse.Namespace, modes: tuple[str, ...]) -> None:
    lib = work / "libdllib.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(PROGS / "dllib.c")], check=True)
    prog = compile_c(PROGS / "dlloop.c", work / "dlloop")
    n = int(2000 * args.scale)
    ms = modes + (("strace",) if shutil.which("strace") else ())
    pat = re.compile(r"(\d+) covered by the shim")

    def one(mode: str, i: int) -> dict[str, float]:
        got = {}
        for count in (0, n):  # the difference: the loop alone, whatever the start costs
            trace = work / f"t-dl-{mode}-{i}-{count}"
            err: list[str] = []
            cmd = [*pin(args.cpu), *prefix(mode, trace), str(prog), str(lib), str(count)]
            _, _, got[f"cpu{count}"] = run_timed(cmd, work, None, err)
            shutil.rmtree(trace, ignore_errors=True)
            m = pat.search(err[0]) if mode == "full" else None
            got[f"stops{count}"] = int(m[1]) if m else 0
        return {"us": (got[f"cpu{n}"] - got["cpu0"]) / n * 1e6,
                "stops": (got[f"stops{n}"] - got["stops0"]) / n}  # fmt: skip

    med = rounds(ms, args.rounds, one)
    base = med["untraced"]["us"]
    print(f"dlopen: dlopen + dlclose of a small library, {n} per run, us of CPU per pair (the "
          f"whole process tree, pinned; a run of {n} less a run of none), median of "
          f"{args.rounds}")  # fmt: skip
    print(f"  {'mode':<10} {'us':>8} {'added':>8}")
    for m in ms:
        print(f"  {m:<10} {med[m]['us']:>8.1f} {med[m]['us'] - base:>+8.1f}")
    if "full" in med:
        f, s = med["full"], med["shim"]
        per = (f["us"] - s["us"]) / f["stops"] if f["stops"] else math.nan
        print(f"  full: {f['stops']:.2f} covered stops per dlopen (ld.so's syscalls), "
              f"{per:.1f} us of CPU each beyond the shim alone")  # fmt: skip


def dlopen_stops(trace: Path) -> tuple[float, float]:
    """The stracer's stops inside the shim's dlopen events (ld.so's openat, read, fstat, close
    of each library: covered, resumed by the C loop) per rank, and ms the ranks were held in
    them (STOP records: the stracer's part, not the kernel's)."""
    from iotrace.stracer import slog

    from iotrace.calls import EVENT_FIELDS
    from iotrace.tracefile import log_paths, read_log

    spans: dict[int, list[tuple[int, int]]] = {}
    for p in log_paths(trace):
        log = read_log(p)
        for e in log.events:
            r = dict(zip(("tid", *EVENT_FIELDS[1:]), e, strict=True))
            if log.functions[r["fn"]] == "dlopen":
                spans.setdefault(r["tid"], []).append((r["t_start"], r["t_start"] + r["dur"]))
    ranks = [slog.read(p).stops for p in trace.glob("*.stracer")]
    inside = [s for st in ranks for s in st
              if any(a <= s[2] <= b for a, b in spans.get(s[1], ()))]  # fmt: skip
    n = max(len(ranks), 1)
    return len(inside) / n, sum(s[3] for s in inside) / n / 1e6


def mpirun(np: int) -> list[str]:
    root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    return [shutil.which("mpirun") or "mpirun", *root, "--oversubscribe", "-np", str(np)]


def mpi_env() -> dict[str, str]:
    return dict(os.environ, OMPI_MCA_btl="self,vader", OMPI_MCA_rmaps_base_oversubscribe="1")


def case_mpi(work: Path, args: argparse.Namespace, modes: tuple[str, ...], opens: int) -> None:
    if not (shutil.which("mpicc") and shutil.which("mpirun")):
        print("(skipped: needs mpicc and mpirun)")
        return
    prog = compile_c(PROGS / "mpi_fopen.c", work / "mpi_fopen", mpi=True)
    # mpi_init: also a program that does nothing, the same way in the same rounds: what
    # `iotrace run` costs a rank by itself, to tell MPI_Init+Finalize's own share from it
    noop = compile_c(PROGS / "noop.c", work / "noop") if not opens else None
    env = mpi_env()
    data = Path(tempfile.gettempdir()) / f"iotrace-cost-{os.getpid()}.dat"
    if os.access("/dev/shm", os.W_OK):
        data = Path("/dev/shm") / data.name

    def covered(err: list[str]) -> float:
        """The stracer's covered stops per rank (its summary line, one per rank)."""
        n = [int(c) for c in re.findall(r"(\d+) covered by the shim", "".join(err))]
        return sum(n) / len(n) if n else math.nan

    def one(mode: str, i: int) -> dict[str, float]:
        trace = work / f"t-mpi-{mode}-{i}"
        cmd = [*mpirun(2), *prefix(mode, trace), str(prog), str(data), str(opens)]
        err: list[str] = []
        out, wall, cpu = run_timed(cmd, work, env, err)
        dl = dlopen_stops(trace) if mode.startswith("full") else (math.nan, math.nan)
        shutil.rmtree(trace, ignore_errors=True)
        data.unlink(missing_ok=True)
        got = {"open_ms": field(out, "open_ms"), "init_cpu": field(out, "init_cpu"),
               "init_s": field(out, "init_s"), "fin_cpu": field(out, "fin_cpu"), "wall": wall,
               "cpu": cpu / 2, "covered": covered(err), "dl_stops": dl[0],
               "dl_ms": dl[1]}  # fmt: skip
        if opens and mode.startswith("full"):  # the stops of MPI_Init & co.: no open
            err = []
            run_timed([*cmd[:-1], "0"], work, env, err)
            shutil.rmtree(trace, ignore_errors=True)
            got["covered0"] = covered(err)
        if noop:
            _, _, cpu = run_timed([*mpirun(2), *prefix(mode, trace), str(noop)], work, env)
            shutil.rmtree(trace, ignore_errors=True)
            got["noop_cpu"] = cpu / 2
        return got

    med = rounds(modes, args.rounds, one)
    base = med["untraced"]
    if opens:
        print(f"mpi_fopen: MPI_File_open+MPI_File_close x {opens}, 2 ranks (OMPIO), ms per pair "
              f"(slowest rank), median of {args.rounds}")  # fmt: skip
        print(f"  {'mode':<10} {'ms':>8} {'x untraced':>11}")
        for m in modes:
            ms = med[m]["open_ms"]
            print(f"  {m:<10} {ms:>8.3f} {ms / base['open_ms']:>11.2f}")
        if "full" in med:
            r = med["full"]["open_ms"] / med["shim"]["open_ms"]
            print(f"  full / shim {r:.2f} (target <= 1.20: {'ok' if r <= 1.2 else 'OVER'})")
            f = med["full"]
            print(f"  full: {f['covered']:.0f} covered stops per rank, {f['covered0']:.0f} with "
                  f"no open: {(f['covered'] - f['covered0']) / opens:.2f} per pair (stracer's "
                  f"summary)")  # fmt: skip
    else:
        print(f"mpi_init: MPI_Init + MPI_Finalize, 2 ranks: CPU s per rank of the whole job "
              f"(mpirun, iotrace, stracer, rank), and the rank's own CPU in MPI_Init/Finalize; "
              f"median of {args.rounds}")  # fmt: skip
        print(f"  {'mode':<10} {'job cpu s':>10} {'added':>7} {'noop cpu':>9} {'added':>7} "
              f"{'mpi own':>8} | {'init cpu':>9} {'init s':>7} {'fin cpu':>8} "
              f"{'wall s':>7}")  # fmt: skip
        for m in modes:
            d = med[m]
            a, f = d["cpu"] - base["cpu"], d["noop_cpu"] - base["noop_cpu"]
            print(f"  {m:<10} {d['cpu']:>10.3f} {a:>+7.3f} {d['noop_cpu']:>9.3f} {f:>+7.3f} "
                  f"{a - f:>+8.3f} | {d['init_cpu']:>9.3f} {d['init_s']:>7.3f} "
                  f"{d['fin_cpu']:>8.3f} {d['wall']:>7.3f}")  # fmt: skip
        print(
            "  (noop: a program that does nothing, the same way: iotrace run's own cost per "
            "rank; mpi own: the job's added CPU less that; init s: MPI_Init's wall time)"
        )
        if "full" in med:
            a = med["full"]["cpu"] - base["cpu"]
            own = a - (med["full"]["noop_cpu"] - base["noop_cpu"])
            print(f"  full adds {a:+.3f} s CPU per rank, {own:+.3f} s beyond a trivial program's "
                  f"(target <= 0.1: {'ok' if a <= 0.1 else 'OVER'})")  # fmt: skip
            f = med["full"]
            print(f"  full: {f['covered']:.0f} covered stops per rank, {f['dl_stops']:.0f} of "
                  f"them ld.so's inside dlopen, which held the rank {f['dl_ms']:.2f} ms "
                  f"(stracer's STOP records)")  # fmt: skip


def run_imports(noop: Path, work: Path) -> list[str]:
    """The modules full `iotrace run` imports: its stracer's, the one Python process the C
    launcher starts (PYTHONPROFILEIMPORTTIME, top level; `--no-stracer` runs no Python)."""
    trace = work / "t-imports"
    cmd = [*prefix("full", trace), str(noop)]
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    err = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stderr
    shutil.rmtree(trace, ignore_errors=True)
    names = [line.rsplit("|", 1)[1] for line in err.splitlines() if line.startswith("import time:")]
    # top level only (one space after the bar)
    top = [n.strip() for n in names[1:] if n[:2] == " " + n.strip()[:1]]
    return [n for n in top if not n.startswith("_")]


def case_fixed(work: Path, args: argparse.Namespace, modes: tuple[str, ...]) -> None:
    prog = compile_c(PROGS / "noop.c", work / "noop")
    mpi = shutil.which("mpirun") is not None
    env = mpi_env()
    from iotrace.shim import shim_path

    # where the time goes, each part run by itself in the same rounds: the interpreter, the
    # modules `iotrace run` imports, the shim's own start in the program
    py = [sys.executable, "-I"]
    imports = run_imports(prog, work)
    parts = {
        "python": [*py, "-c", "pass"],
        "imports": [*py, "-c", "import " + ", ".join(imports)],
        "shim-init": ["env", f"LD_PRELOAD={shim_path()}", str(prog)],
        "env": ["env", str(prog)],
    }

    def one(mode: str, i: int) -> dict[str, float]:
        trace = work / f"t-fixed-{mode}-{i}"
        if mode in parts:
            trace.mkdir()
            e = dict(env, IOTRACE_OUT=str(trace))
            _, wall, cpu = run_timed([*pin(args.cpu), *parts[mode]], work, e)
            shutil.rmtree(trace, ignore_errors=True)
            return {"wall": wall * 1e3, "cpu": cpu * 1e3}
        _, wall, cpu = run_timed([*pin(args.cpu), *prefix(mode, trace), str(prog)], work, env)
        shutil.rmtree(trace, ignore_errors=True)
        got = {"wall": wall * 1e3, "cpu": cpu * 1e3}
        if mpi:  # an iotrace per rank, then one over mpirun
            _, wall, cpu = run_timed([*mpirun(2), *prefix(mode, trace), str(prog)], work, env)
            shutil.rmtree(trace, ignore_errors=True)
            got |= {"mwall": wall * 1e3, "mcpu": cpu / 2 * 1e3}
            _, wall, cpu = run_timed([*prefix(mode, trace), *mpirun(2), str(prog)], work, env)
            shutil.rmtree(trace, ignore_errors=True)
            got |= {"owall": wall * 1e3, "ocpu": cpu / 2 * 1e3}
        return got

    if BEFORE:  # the other installation's shim and full modes, in the same rounds
        modes = modes + tuple(f"{m}@before" for m in modes[1:])
    med = rounds(modes + tuple(parts), args.rounds, one)
    base = med["untraced"]
    print(f"fixed: a program that does nothing, run by `{' '.join(prefix('shim', work)[:2])}`; "
          f"ms per run (CPU: the whole process tree), median of {args.rounds}; alone pinned; "
          f"per rank: `mpirun -np 2 iotrace run -- prog` (rank) and `iotrace run -- mpirun -np "
          f"2 prog` (over), each against untraced `mpirun -np 2 prog`")  # fmt: skip
    head = f"  {'mode':<10} {'wall':>7} {'added':>7} {'cpu':>7} {'added':>7}"
    for what in ("rank", "over") if mpi else ():
        head += f" | {what + ' wall':>9} {'added':>7} {'cpu/rank':>8} {'added':>7}"
    print(head)
    for m in modes:
        d = med[m]
        row = (f"  {m:<10} {d['wall']:>7.1f} {d['wall'] - base['wall']:>+7.1f} "
               f"{d['cpu']:>7.1f} {d['cpu'] - base['cpu']:>+7.1f}")  # fmt: skip
        for w, c in (("mwall", "mcpu"), ("owall", "ocpu")) if mpi else ():
            b = base["mwall" if w == "owall" else w], base["mcpu" if c == "ocpu" else c]
            row += (f" | {d[w]:>9.1f} {d[w] - b[0]:>+7.1f} "
                    f"{d[c]:>8.1f} {d[c] - b[1]:>+7.1f}")  # fmt: skip
        print(row)
    for m, target in (("shim", 20), ("full", 100)):
        if m not in med:
            continue
        d = med[m]
        added = {"alone": (d["wall"] - base["wall"], d["cpu"] - base["cpu"])}
        if mpi:
            added["per rank"] = (d["mwall"] - base["mwall"], d["mcpu"] - base["mcpu"])
            added["over mpirun, per rank"] = (d["owall"] - base["mwall"], d["ocpu"] - base["mcpu"])
        for how, (a, c) in added.items():
            ok = {v: "ok" if v <= target else "OVER" for v in (a, c)}
            print(f"  {m} {how} adds {a:+.1f} ms wall, {c:+.1f} ms CPU (target <= {target}: "
                  f"CPU {ok[c]}, wall {ok[a]})")  # fmt: skip
    cpu = {m: d["cpu"] for m, d in med.items()}
    shim_init = cpu["shim-init"] - cpu["env"]
    split = {
        "the shim's start in the program": shim_init,
        "the launcher (C: arguments, trace dir, fork/exec, wait, end line)": (
            cpu["shim"] - base["cpu"] - shim_init
        ),
    }
    if "full" in cpu:  # full tracing: the launcher, then the stracer (Python)
        split["full: the interpreter's start"] = cpu["python"]
        split[f"full: imports ({len(imports)} top-level modules)"] = cpu["imports"] - cpu["python"]
        split["full: the stracer and the rest (full - shim alone - the two above)"] = (
            cpu["full"] - cpu["shim"] - cpu["imports"]
        )
    print("  where the CPU goes (each part run alone, medians):")
    for what, ms in split.items():
        print(f"    {ms:>+7.1f} ms  {what}")


def tmpfs_dir() -> Path | None:
    """/dev/shm when it is a tmpfs: the md verdict's file system (on ext4 the inode allocator
    alone makes identical untraced runs differ several-fold, bench/README.md)."""
    shm = Path("/dev/shm")
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    ok = any(ln.split()[1:3] == [str(shm), "tmpfs"] for ln in mounts if len(ln.split()) > 2)
    return shm if ok and os.access(shm, os.W_OK) else None


MD_OPS = ("create", "stat", "read", "remove")
# MiB per rank of the ior case at --scale 1: phases of seconds, as an IOR run would have
IOR_MIB = 256
IOR_LABELS = {"wall": "run s", "cpu": "run cpu s", "write": "write s", "read": "read s",
              "write_cpu": "write cpu s", "read_cpu": "read cpu s"}  # fmt: skip


def case_md(work: Path, args: argparse.Namespace, modes: tuple[str, ...]) -> None:
    if not (shutil.which("mpicc") and shutil.which("mpirun")):
        print("(skipped: needs mpicc and mpirun)")
        return
    prog = compile_c(PROGS / "mdbench.c", work / "mdbench", mpi=True)
    n = int(2000 * args.scale)
    env = mpi_env()
    shm = tmpfs_dir()
    fs = "tmpfs (/dev/shm)" if shm else "the temporary directory's file system (no tmpfs)"
    data = Path(tempfile.mkdtemp(prefix="iotrace-md-", dir=shm)) if shm else work / "md"
    data.mkdir(exist_ok=True)
    keys = ("files", "loop", "cpu_files", "cpu_loop")
    keys += tuple(f"cpu_{op}" for op in MD_OPS) + tuple(f"cpu_loop_{op}" for op in MD_OPS)
    keys += tuple(f"{k}{op}" for k in ("", "off_", "rq_", "vcs_", "ivcs_") for op in MD_OPS)

    def one(mode: str, i: int) -> dict[str, float]:
        trace = work / f"t-md-{mode}-{i}"
        out, _, _ = run_timed([*mpirun(2), *prefix(mode, trace), str(prog), str(data), str(n)],
                              work, env)  # fmt: skip
        shutil.rmtree(trace, ignore_errors=True)
        return {k: field(out, k) for k in keys}

    try:
        med = rounds(modes, args.rounds, one)
    finally:
        if shm:
            shutil.rmtree(data, ignore_errors=True)
    base = med["untraced"]
    print(f"md: 2 ranks x {n} files in one directory on {fs}: create (open O_CREAT, write 8 B, "
          f"close), stat, read (open, read, close), remove; loop: the same calls on one name, "
          f"each step timed alone; us of the thread's CPU per file, the slowest rank; median of "
          f"{args.rounds}")  # fmt: skip
    head = f"  {'op':<7} {'untraced':>8} {'loop':>6}"
    for m in modes[1:]:
        head += f" | {m + ' +file':>11} {'+loop':>6} {'gap':>6}"
    print(head)
    for op in (*MD_OPS, "total"):
        f, lp = ("cpu_files", "cpu_loop") if op == "total" else (f"cpu_{op}", f"cpu_loop_{op}")
        row = f"  {op:<7} {base[f]:>8.2f} {base[lp]:>6.2f}"
        for m in modes[1:]:
            af, al = med[m][f] - base[f], med[m][lp] - base[lp]
            row += f" | {af:>+11.2f} {al:>+6.2f} {af - al:>+6.2f}"
        print(row)
    walls = ", ".join(f"{m} {med[m]['files']:.1f}" for m in modes)
    print(f"  wall us per file (the whole run's load shows here): {walls}")
    print("  the wall time beside the CPU, per phase (slowest rank each): wall us per file, us "
          "off the CPU, us of it waiting for a CPU (runnable, the kernel's run_delay: whatever "
          "else runs took the CPU), context switches per 1,000 files voluntary (blocked) / "
          "involuntary (preempted)")  # fmt: skip
    print(f"  {'op':<7}" + "".join(f" | {m:>9} {'off':>7} {'waiting':>7} {'vol/inv':>9}"
                                   for m in modes))  # fmt: skip
    for op in MD_OPS:
        row = f"  {op:<7}"
        for m in modes:
            d = med[m]
            sw = f"{d[f'vcs_{op}']:.0f}/{d[f'ivcs_{op}']:.0f}"
            row += f" | {d[op]:>9.2f} {d[f'off_{op}']:>7.2f} {d[f'rq_{op}']:>7.2f} {sw:>9}"
        print(row)
    for m in modes[1:]:
        gap = (med[m]["cpu_files"] - base["cpu_files"]) - (med[m]["cpu_loop"] - base["cpu_loop"])
        print(f"  {m}: added per file - added per loop iteration {gap:+.2f} us CPU "
              f"(target <= 2: {'ok' if gap <= 2 else 'OVER'})")  # fmt: skip


def case_ior(work: Path, args: argparse.Namespace, modes: tuple[str, ...]) -> None:
    if not (shutil.which("mpicc") and shutil.which("mpirun")):
        print("(skipped: needs mpicc and mpirun)")
        return
    prog = compile_c(PROGS / "iorlike.c", work / "iorlike", mpi=True)
    mib = str(int(IOR_MIB * args.scale))
    env = mpi_env()
    data = work / "ior.dat"
    print(f"ior: 2 ranks x {mib} MiB of one shared file ({work}) in 4 KiB transfers, written "
          f"(fsync) then read; seconds: the whole run (mpirun start to end) and each phase "
          f"(slowest rank); CPU seconds: the whole job (every process) and each phase (the "
          f"ranks' threads, summed), which load on the machine does not stretch; median of "
          f"{args.rounds}")  # fmt: skip
    keys = ("wall", "cpu", "write", "read", "write_cpu", "read_cpu")
    if BEFORE:
        modes = modes + tuple(f"{m}@before" for m in modes[1:])
    for api in ("posix", "mpiio"):

        def one(mode: str, i: int, api: str = api) -> dict[str, float]:
            trace = work / f"t-ior-{mode}-{i}"
            cmd = [*mpirun(2), *prefix(mode, trace), str(prog), api, str(data), mib, "4096"]
            out, wall, cpu = run_timed(cmd, work, env)
            shutil.rmtree(trace, ignore_errors=True)
            data.unlink(missing_ok=True)
            got = {k: field(out, k + "_s" if k in ("write", "read") else k) for k in keys[2:]}
            return {"wall": wall, "cpu": cpu} | got

        med = rounds(modes, args.rounds, one)
        base = med["untraced"]
        head = " ".join(f"{IOR_LABELS[k]:>12} {'x':>5}" for k in keys)
        print(f"  {api:<6} {'mode':<11} {head}")
        for m in modes:
            d = med[m]
            row = " ".join(f"{d[k]:>12.3f} {d[k] / base[k]:>5.2f}" for k in keys)
            print(f"  {api:<6} {m:<11} {row}")
        for full in ("full@before", "full"):
            if full not in med:
                continue
            r = med[full]["wall"] / base["wall"]
            c = med[full]["cpu"] / base["cpu"]
            print(f"  {api}: {full} / untraced, whole run {r:.2f} wall (target <= 1.15: "
                  f"{'ok' if r <= 1.15 else 'OVER'}), {c:.2f} CPU")  # fmt: skip


CASES: dict[str, Callable[[Path, argparse.Namespace, tuple[str, ...]], None]] = {
    "sem": case_sem,
    "libc": case_libc,
    "libc_us": case_libc_us,
    "fixed": case_fixed,
    "md": case_md,
    "ior": case_ior,
    "mpi_fopen": lambda w, a, m: case_mpi(w, a, m, 20),
    "mpi_init": lambda w, a, m: case_mpi(w, a, m, 0),
    "dlopen": case_dlopen,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies iterations per run")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--cpu", type=int, default=(sorted(os.sched_getaffinity(0)) or [0])[-1])
    ap.add_argument(
        "--before", help="another installation's iotrace command (the ior and fixed cases)"
    )
    ap.add_argument("--libc", help="the libc_us case's functions (default: all of libcloop.c's)")
    args = ap.parse_args()
    if args.before:
        BEFORE[:] = [args.before]
    modes = MODES if has_stracer() else MODES[:2]
    with tempfile.TemporaryDirectory(prefix="iotrace-costbench-") as tmp:
        for name in args.cases.split(","):
            if name not in CASES:
                print(f"cost_bench: no case {name!r} (cases: {', '.join(CASES)})", file=sys.stderr)
                return 2
            print(f"\n-- {name} --", flush=True)
            CASES[name](Path(tmp), args, modes)
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
