"""MPI jobs: real Open MPI runs of programs compiled here, launched both ways
(`mpirun ... iotrace run -- APP` and `iotrace run -- mpirun ... APP`), checked exactly against
what the programs did: bytes per rank, files, ranks per file, every MPI-IO event, and the POSIX
events nested inside each MPI-IO call.

Settings (env, per run): OMPI_MCA_btl=self,vader (one host: no network transports probed, no
warnings about them, ~0.2 s less per run); OMPI_MCA_io picks the MPI-IO component: romio321 for
the exact checks (every byte goes through pread/pwrite in the calling thread, and a collective
write of per-rank contiguous blocks is done independently by each rank), ompio (Open MPI's
default) for the MPI-level checks and the blocking calls' nesting: its nonblocking I/O runs in
glibc's POSIX AIO threads, whose pwrite is libc-internal and invisible to the shim.
Runs use --no-stracer (each MPI run costs ~0.7 s instead of ~3-5 s), except one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import BUILD, PROGS, iotrace
from iotrace.analyzer import load

from iotrace.calls import EVENT_FIELDS, FUNC_IDS
from iotrace.record import record
from iotrace.shim import shim_path
from iotrace.tracefile import Log, log_paths, read_log

MPIRUN = shutil.which("mpirun")
MPICC = shutil.which("mpicc")
# Debian's MPICH beside Open MPI (the default mpicc/mpirun): its own compiler and launcher
MPICH = (shutil.which("mpicc.mpich"), shutil.which("mpirun.mpich"))


def _shim_has_mpi() -> bool:
    try:
        return b"PMPI_File_open" in shim_path().read_bytes()
    except Exception:
        return False


pytestmark = [
    pytest.mark.skipif(not (MPIRUN and MPICC), reason="needs mpirun and mpicc (Open MPI)"),
    pytest.mark.skipif(not _shim_has_mpi(), reason="shim built without MPI-IO wrappers"),
]

DATA_FNS = {"read", "write", "pread", "pwrite", "readv", "writev", "preadv", "pwritev"}
_help: list[str] = []


def stracer_flag() -> list[str]:
    """--no-stracer where `iotrace run` has a stracer to turn off."""
    if not _help:
        out = subprocess.run([sys.executable, "-m", "iotrace", "run", "--help"],
                             capture_output=True, text=True)  # fmt: skip
        _help.append(out.stdout)
    return ["--no-stracer"] if "--no-stracer" in _help[0] else []


def needs_mpich() -> None:
    if not all(MPICH):
        pytest.skip("needs mpicc.mpich and mpirun.mpich (Debian's mpich, libmpich-dev)")


def build_mpi(name: str, mpi: str = "openmpi") -> Path:
    src = PROGS / f"{name}.c"
    out = BUILD / (name if mpi == "openmpi" else f"{name}.{mpi}")
    cc = MPICC if mpi == "openmpi" else MPICH[0]
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        BUILD.mkdir(exist_ok=True)
        subprocess.run([str(cc), "-O1", "-g", "-Wall", "-o", str(out), str(src)], check=True)
    return out


def mpirun(np: int, mpi: str = "openmpi") -> list[str]:
    if mpi == "mpich":
        return [str(MPICH[1]), "-np", str(np)]
    root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    return [str(MPIRUN), *root, "--oversubscribe", "-np", str(np)]


@record
class Job:
    proc: subprocess.CompletedProcess[str]
    dir: Path
    work: Path
    np: int
    way: str
    mpi: str = "openmpi"

    @property
    def logs(self) -> list[Log]:
        return [read_log(p) for p in log_paths(self.dir)]

    def events(self) -> list[dict[str, Any]]:
        """Every event of every process, time-ordered, with its rank and exe."""
        out = []
        for log in self.logs:
            for ev in log.events:
                d = dict(zip(("tid", *EVENT_FIELDS[1:]), ev, strict=True))
                d["fn"] = log.functions[d["fn"]]
                d["path"] = log.strings.get(d["path"]) if d["path"] is not None else None
                d["pid"], d["rank"] = log.header["pid"], log.header["rank"]
                d["exe"] = log.header["exe"]
                d["t_end"] = d["t_start"] + d["dur"]
                out.append(d)
        out.sort(key=lambda d: d["t_start"])
        return out


def run_job(
    tmp_path: Path, way: str, np: int, prog: Path, *args: str, io: str = "romio321",
    stracer: bool = False, mpi: str = "openmpi", opts: tuple[str, ...] = (),
) -> Job:  # fmt: skip
    """way "ranks": mpirun starts one iotrace per rank; "launcher": iotrace runs mpirun.
    `mpi`: whose launcher (the program must be built with its compiler); `iotrace run` finds
    the family by itself, `opts` are more of its options."""
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "job"
    env = dict(os.environ, OMPI_MCA_btl="self,vader", OMPI_MCA_io=io)
    tracer = ["run", "-o", str(out), *([] if stracer else stracer_flag()), *opts, "--"]
    iot = [sys.executable, "-m", "iotrace", *tracer]
    app = [str(prog), *args]
    launch = mpirun(np, mpi)
    cmd = [*launch, *iot, *app] if way == "ranks" else [*iot, *launch, *app]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return Job(proc, out, work, np, way, mpi)


def check_job_shape(job: Job, prog: Path) -> dict[int, Log]:
    """One log per rank, with rank and size; the launcher's logs (rank None) kept apart."""
    logs = job.logs
    ranked = [lg for lg in logs if lg.header["rank"] is not None]
    launcher = [lg for lg in logs if lg.header["rank"] is None]
    assert sorted(lg.header["rank"] for lg in ranked) == list(range(job.np))
    assert all(lg.header["size"] == job.np for lg in ranked)
    assert all(lg.header["exe"] == str(prog) for lg in ranked)
    runs = list(job.dir.glob("iotrace-run.*.json"))
    if job.way == "ranks":
        assert launcher == [] and len(runs) == job.np
    else:
        # mpirun (orterun; MPICH: mpiexec.hydra and its proxy), and their forks before they
        # exec the app
        assert launcher and len(runs) == 1
        exes = {"orterun", "mpirun"} if job.mpi == "openmpi" else LAUNCHERS_MPICH
        assert {Path(lg.header["exe"]).name for lg in launcher} <= exes
        started = [Path(lg.header["exe"]).name for lg in launcher if not lg.header["forked"]]
        # Open MPI: mpirun alone; MPICH: mpiexec.hydra, and the proxy it starts
        assert len(started) == len(set(started)) == (1 if job.mpi == "openmpi" else 2)
    return {lg.header["rank"]: lg for lg in ranked}


def data_events(job: Job, path: Path) -> list[dict[str, Any]]:
    return [e for e in job.events() if e["path"] == str(path) and e["fn"] in DATA_FNS]


# ---- POSIX I/O from MPI ranks -------------------------------------------------------------

NBLK, BS = 8, 64 * 1024


@pytest.mark.parametrize(("way", "np"), [("ranks", 2), ("launcher", 4)])
def test_posix_file_per_process(tmp_path: Path, way: str, np: int) -> None:
    prog = build_mpi("mpi_posix")
    job = run_job(tmp_path, way, np, prog, "fpp", str(NBLK), str(BS))
    check_job_shape(job, prog)
    evs = job.events()
    files: dict[str, set[int]] = {}
    for e in evs:
        if e["fn"] in DATA_FNS and e["path"] and e["path"].endswith(".dat"):
            files.setdefault(e["path"], set()).add(e["rank"])
    assert files == {str(job.work / f"fpp.{r}.dat"): {r} for r in range(np)}  # 1 rank per file
    for r in range(np):
        mine = [e for e in evs if e["path"] == str(job.work / f"fpp.{r}.dat")]
        writes = [(e["req"], e["ret"], e["offset"]) for e in mine if e["fn"] == "write"]
        reads = [(e["req"], e["ret"], e["offset"]) for e in mine if e["fn"] == "pread"]
        assert writes == [(BS, BS, i * BS) for i in range(NBLK)]
        assert reads == [(BS, BS, i * BS) for i in range(NBLK)]
        assert {e["rank"] for e in mine} == {r}
        assert (job.work / f"fpp.{r}.dat").stat().st_size == NBLK * BS
    # the launcher did none of the app's I/O
    assert not [e for e in evs if e["rank"] is None and ".dat" in (e["path"] or "")]


@pytest.mark.parametrize(("way", "np"), [("ranks", 4), ("launcher", 2)])
def test_posix_shared_file(tmp_path: Path, way: str, np: int) -> None:
    prog = build_mpi("mpi_posix")
    job = run_job(tmp_path, way, np, prog, "shared", str(NBLK), str(BS))
    check_job_shape(job, prog)
    shared = job.work / "shared.dat"
    evs = data_events(job, shared)
    assert {e["rank"] for e in evs} == set(range(np))  # every rank on the one file
    for r in range(np):
        w = [(e["ret"], e["offset"]) for e in evs if e["rank"] == r and e["fn"] == "pwrite"]
        rd = [(e["ret"], e["offset"]) for e in evs if e["rank"] == r and e["fn"] == "pread"]
        assert w == [(BS, (i * np + r) * BS) for i in range(NBLK)]  # offsets by rank
        assert rd == w
    assert sum(e["ret"] for e in evs if e["fn"] == "pwrite") == np * NBLK * BS
    assert shared.stat().st_size == np * NBLK * BS
    opens = [e for e in job.events() if e["fn"] == "open" and e["path"] == str(shared)]
    assert sorted(e["rank"] for e in opens) == list(range(np))


# ---- MPI-IO --------------------------------------------------------------------------------

B, C = 64 * 1024, 4 * 1024
SEEK_SET_OMPI = 600  # MPI_SEEK_SET (checked against the program's output)
BY_WAIT, BY_TEST, BY_WAITALL = 0, 1, 2


def expected_mpi(r: int, np: int) -> list[tuple[Any, ...]]:
    """(fn, req, ret, offset, flags) of rank r's MPI-IO events, in order (rank 0's extras
    after them are checked apart)."""
    R = np * B
    mine = r * B
    return [
        ("MPI_File_open", None, 0, None, 9),
        ("MPI_File_write_at_all", B, B, mine, None),
        ("MPI_File_set_view", None, 0, R + r * C, None),
        ("MPI_File_write_all", B, B, R + r * C, None),
        ("MPI_File_set_view", None, 0, 0, None),
        ("MPI_File_write_at", B, B, 2 * R + mine, None),
        ("MPI_File_seek", None, 0, 3 * R + mine, None),
        ("MPI_File_write", B, B, 3 * R + mine, None),
        ("MPI_File_iwrite_at", B, 0, 4 * R + mine, None),
        ("MPI_File_iwrite_done", B, B, 4 * R + mine, BY_WAIT),
        ("MPI_File_seek", None, 0, 5 * R + mine, None),
        ("MPI_File_iwrite", B, 0, 5 * R + mine, None),
        ("MPI_File_iwrite_done", B, B, 5 * R + mine, BY_TEST),
        ("MPI_File_sync", None, 0, None, None),
        ("MPI_File_read_at_all", B, B, mine, None),
        ("MPI_File_read_at", B, B, 2 * R + mine, None),
        ("MPI_File_iread_at", B, 0, 4 * R + mine, None),
        ("MPI_File_seek", None, 0, 5 * R + mine, None),
        ("MPI_File_iread", B, 0, 5 * R + mine, None),
        ("MPI_File_iread_done", B, B, 4 * R + mine, BY_WAITALL),
        ("MPI_File_iread_done", B, B, 5 * R + mine, BY_WAITALL),
        ("MPI_File_close", None, 0, None, None),
    ]


AIO_DONE = {"aio_read_done", "aio_write_done"}


def nested(
    outer: dict[str, Any], evs: list[dict[str, Any]], fns: set[str] = DATA_FNS
) -> list[dict[str, Any]]:
    """POSIX data events the MPI call `outer` made: same thread, inside its time span."""
    return [
        e for e in evs
        if e["fn"] in fns and e["pid"] == outer["pid"] and e["tid"] == outer["tid"]
        and outer["t_start"] <= e["t_start"] and e["t_end"] <= outer["t_end"]
        and e["path"] == outer["path"]
    ]  # fmt: skip


def check_mpiio(job: Job, io: str) -> None:
    prog = build_mpi("mpi_io", job.mpi)
    check_job_shape(job, prog)
    out = job.proc.stdout
    for r in range(job.np):
        assert f"rank {r} of {job.np} amode 9 seek_set {SEEK_SET_OMPI} ok" in out, out
    cls = int(out.split("missing-open class ")[1].split()[0])
    data = str(job.work / "mio.dat")
    evs = job.events()
    mpi = [e for e in evs if e["fn"].startswith("MPI_")]
    for r in range(job.np):
        mine = [e for e in mpi if e["rank"] == r]
        on_data = [e for e in mine if e["path"] == data]
        got = [(e["fn"], e["req"], e["ret"], e["offset"], e["flags"]) for e in on_data]
        assert got == expected_mpi(r, job.np), r
        assert all(e["errno"] == 0 and e["fd"] is None for e in on_data)
        assert len({e["tid"] for e in mine}) == 1
        op, view, view0 = on_data[0], on_data[2], on_data[4]
        assert op["aux"] == job.np  # ranks that opened it together
        assert list(view["aux"]) == [C, job.np * C] and list(view0["aux"]) == [1, 1]
        assert [e["aux"] for e in on_data if e["fn"] == "MPI_File_seek"] == [SEEK_SET_OMPI] * 3
        # a *_done event names the call that posted it, and starts after it
        posts = {e["t_start"]: e for e in on_data if e["fn"].startswith("MPI_File_i")
                 and not e["fn"].endswith("_done")}  # fmt: skip
        for d in (e for e in on_data if e["fn"].endswith("_done")):
            post_fn, post_t = d["aux"]
            post = posts[post_t]
            assert FUNC_IDS[post["fn"]] == post_fn and post["offset"] == d["offset"]
            assert d["t_start"] >= post["t_end"]
        # two requests completed by one MPI_Waitall: the second has no time of its own
        w1, w2 = [e for e in on_data if e["fn"] == "MPI_File_iread_done"]
        assert w2["dur"] == 0 and w2["t_start"] == w1["t_end"]
        # rank 0 alone: a failed open, then open/close/delete of another file
        extra = [(e["fn"], Path(e["path"]).name, e["ret"], e["errno"])
                 for e in mine if e["path"] != data]  # fmt: skip
        assert extra == ([
            ("MPI_File_open", "nothing.dat", -1, cls),
            ("MPI_File_open", "scratch.dat", 0, 0),
            ("MPI_File_close", "scratch.dat", 0, 0),
            ("MPI_File_delete", "scratch.dat", 0, 0),
        ] if r == 0 else [])  # fmt: skip
    # bytes per rank at the MPI level: 6 regions written, 4 read back
    for r in range(job.np):
        w = sum(e["ret"] for e in mpi if e["rank"] == r and e["fn"] in MPI_WRITES)
        rd = sum(e["ret"] for e in mpi if e["rank"] == r and e["fn"] in MPI_READS)
        assert (w, rd) == (6 * B, 4 * B)
    assert (job.work / "mio.dat").stat().st_size == 6 * job.np * B

    # The POSIX events inside an MPI-IO call are its bytes.  Collective calls: the ranks' sum
    # (an aggregator may write for others); blocking independent calls: each call's own.
    on_file = [e for e in mpi if e["path"] == data]
    for fn in ("MPI_File_write_at_all", "MPI_File_write_all", "MPI_File_read_at_all"):
        calls = [e for e in on_file if e["fn"] == fn]
        inner = sum(x["ret"] for e in calls for x in nested(e, evs))
        assert inner == sum(e["ret"] for e in calls) == job.np * B, fn
    for e in on_file:
        if e["fn"] in ("MPI_File_write_at", "MPI_File_write", "MPI_File_read_at"):
            inner = nested(e, evs)
            assert sum(x["ret"] for x in inner) == e["ret"], e
            kind = "write" if "write" in e["fn"] else "read"
            assert all(kind in x["fn"] for x in inner)
    if not io.startswith("romio"):
        return
    # ROMIO: nonblocking calls do their I/O in the calling thread, inside the post or the
    # completion (MPICH's through POSIX AIO: aio_write posted in the post, completed by
    # aio_return in the completion); and no byte of the file moves outside an MPI-IO call.
    fns = DATA_FNS | AIO_DONE
    for d in (e for e in on_file if e["fn"].endswith("_done")):
        post = next(p for p in on_file if p["t_start"] == d["aux"][1] and p["pid"] == d["pid"])
        # one MPI_Waitall completes two requests: its first event spans the call (the
        # second has no duration), each request's I/O is that of its own region
        call = min((e for e in on_file if e["pid"] == d["pid"] and e["t_end"] == d["t_end"]),
                   key=lambda e: e["t_start"])  # fmt: skip
        inner = [x for x in nested(post, evs, fns) + nested(call, evs, fns)
                 if x["offset"] == d["offset"]]  # fmt: skip
        assert sum(x["ret"] for x in inner) == d["ret"] == B
        assert {x["fn"] in AIO_DONE for x in inner} == {job.mpi == "mpich"}
    inside = {id(x) for e in on_file for x in nested(e, evs, fns)}
    outside = [x for x in evs if x["path"] == data and x["fn"] in fns
               and id(x) not in inside]  # fmt: skip
    assert outside == []


LAUNCHERS_MPICH = {"mpiexec.hydra", "hydra_pmi_proxy"}
MPI_WRITES = {"MPI_File_write_at_all", "MPI_File_write_all", "MPI_File_write_at",
              "MPI_File_write", "MPI_File_iwrite_done"}  # fmt: skip
MPI_READS = {"MPI_File_read_at_all", "MPI_File_read_at", "MPI_File_iread_done"}


@pytest.mark.parametrize(
    ("mpi", "way", "np", "io", "name"),
    [
        ("openmpi", "ranks", 2, "romio321", "ufs:mio.dat"),  # ROMIO's prefix is no path
        ("openmpi", "launcher", 4, "romio321", "mio.dat"),
        ("openmpi", "ranks", 4, "ompio", "mio.dat"),
        ("openmpi", "launcher", 2, "ompio", "mio.dat"),
        # MPICH's ROMIO: the same calls through the MPICH-built shim, which `iotrace run`
        # picks by itself (the program links libmpich; mpirun.mpich links none)
        ("mpich", "ranks", 4, "romio", "ufs:mio.dat"),
        ("mpich", "launcher", 2, "romio", "mio.dat"),
    ],
)
def test_mpiio(tmp_path: Path, mpi: str, way: str, np: int, io: str, name: str) -> None:
    if mpi == "mpich":
        needs_mpich()
    prog = build_mpi("mpi_io", mpi)
    job = run_job(tmp_path, way, np, prog, name, str(B), str(C), io=io, mpi=mpi)
    check_mpiio(job, io)


def test_mpich_program_with_open_mpi_shim_runs_untraced_at_mpi_level(tmp_path: Path) -> None:
    """`--mpi openmpi` forces the Open MPI-built shim into MPICH ranks: their MPI-IO calls pass
    through untraced (wrong handle types would break them), the job and its POSIX I/O are as
    before."""
    needs_mpich()
    prog = build_mpi("mpi_io", "mpich")
    job = run_job(tmp_path, "launcher", 2, prog, "mio.dat", str(B), str(C), mpi="mpich",
                  opts=("--mpi", "openmpi"))  # fmt: skip
    check_job_shape(job, prog)
    for r in range(2):
        assert f"rank {r} of 2 amode 9 seek_set {SEEK_SET_OMPI} ok" in job.proc.stdout
    evs = job.events()
    assert not [e for e in evs if e["fn"].startswith("MPI_")]
    data = data_events(job, job.work / "mio.dat")
    aio = [e for e in job.events() if e["path"] == str(job.work / "mio.dat")
           and e["fn"] == "aio_write_done"]  # fmt: skip
    assert sum(e["ret"] for e in data + aio if "write" in e["fn"]) == 6 * 2 * B


def test_the_other_mpiio_calls(tmp_path: Path) -> None:
    """mpi_rest.c: the MPI-IO calls mpi_io.c does not make (the shared and ordered file
    pointer, the nonblocking collectives, read at the individual pointer, set_size), each
    recorded with its bytes and offset.  OMPIO: ROMIO 3.2.1 in Open MPI crashes on the
    nonblocking collectives, untraced too."""
    n = 4096
    job = run_job(tmp_path, "ranks", 2, build_mpi("mpi_rest"), "rest.dat", str(n), io="ompio")
    data, reg = str(job.work / "rest.dat"), 2 * n
    for r in range(2):
        at = r * n  # the rank's block in each region
        got = [(e["fn"], e["req"], e["ret"], e["offset"], e["errno"]) for e in job.events()
               if e["rank"] == r and e["path"] == data and e["fn"].startswith("MPI_")]  # fmt: skip
        assert got == [
            ("MPI_File_open", None, 0, None, 0),
            ("MPI_File_set_size", None, 0, 4 * reg, 0),
            ("MPI_File_write_ordered", n, n, None, 0),  # a shared pointer: no offset
            ("MPI_File_write_shared", n, n, None, 0),
            ("MPI_File_seek", None, 0, 2 * reg + at, 0),
            ("MPI_File_iwrite_all", n, 0, 2 * reg + at, 0),
            ("MPI_File_iwrite_done", n, n, 2 * reg + at, 0),
            ("MPI_File_iwrite_at_all", n, 0, 3 * reg + at, 0),
            ("MPI_File_iwrite_done", n, n, 3 * reg + at, 0),
            ("MPI_File_sync", None, 0, None, 0),
            ("MPI_File_seek", None, 0, at, 0),
            ("MPI_File_read_all", n, n, at, 0),
            ("MPI_File_seek", None, 0, 2 * reg + at, 0),
            ("MPI_File_read", n, n, 2 * reg + at, 0),
            ("MPI_File_seek", None, 0, 3 * reg + at, 0),
            ("MPI_File_iread_all", n, 0, 3 * reg + at, 0),
            ("MPI_File_iread_done", n, n, 3 * reg + at, 0),
            ("MPI_File_iread_at_all", n, 0, 2 * reg + at, 0),
            ("MPI_File_iread_done", n, n, 2 * reg + at, 0),
            ("MPI_File_read_ordered", n, n, None, 0),
            ("MPI_File_read_shared", n, n, None, 0),
            ("MPI_File_close", None, 0, None, 0),
        ], r


def test_mpiio_with_stracer(tmp_path: Path) -> None:
    """The same job with the stracer running too (iotrace run's default), one iotrace over
    mpirun: mpirun and both ranks explained exactly, bytes and syscalls (mpirun's SIGCHLD
    handler writes a byte to its signal pipe, at times while the shim was busy: was 1 B short)."""
    if not stracer_flag():
        pytest.skip("iotrace run has no stracer")
    job = run_job(tmp_path, "launcher", 2, build_mpi("mpi_io"), "mio.dat", str(B), str(C),
                  stracer=True)  # fmt: skip
    check_mpiio(job, "romio321")
    _explained_exactly(job)


def _explained_exactly(job: Job) -> None:
    from iotrace.analyzer import load

    table = load(job.dir).completeness
    assert len(table) >= job.np and table["end"].eq("stracer").all(), table.T
    for k in ("rchar", "wchar", "syscr", "syscw"):
        assert (table[f"kernel_{k}"] == table[f"explained_{k}"]).all(), (k, table.T)


def test_mpiio_4_ranks_explained_exactly(tmp_path: Path) -> None:
    """Issue 18: a 4-rank MPI-IO job, one iotrace (shim and stracer) per rank: each rank's
    trace explains every byte the kernel counted for it -- Open MPI's and hwloc's stdio reads
    of /proc and /sys (by their refills), the components dlopen loads (its inner I/O less the
    calls recorded inside it), libc's own reads (getmntent's /proc/self/mounts)."""
    if not stracer_flag():
        pytest.skip("iotrace run has no stracer")
    job = run_job(tmp_path, "ranks", 4, build_mpi("mpi_io"), "mio.dat", str(B), str(C),
                  stracer=True)  # fmt: skip
    check_mpiio(job, "romio321")
    assert job.proc.stderr.count("the trace explains 100.0% of the") == 4, job.proc.stderr
    assert len(load(job.dir).completeness) == 4
    _explained_exactly(job)
    _end_lines_per_rank(job)


def _end_lines_per_rank(job: Job) -> None:
    """Each rank's iotrace says whose its end lines are ("iotrace: rank N: ..."; they read as
    the job's: the same "N I/O syscalls checked" on every rank), and its stracer line counts
    that rank's syscalls: those its own stracer log holds for the rank's process."""
    from iotrace.stracer import slog
    from iotrace.stracer.console import syscalls_checked

    lines = job.proc.stderr.splitlines()
    pid = {lg.header["rank"]: lg.header["pid"] for lg in job.logs}
    checked = {}
    for p in slog.log_files(job.dir):
        for proc, counts in slog.read(p).counts.items():
            checked[proc] = syscalls_checked(counts)
    for r in range(job.np):
        mine = [ln for ln in lines if ln.startswith(f"iotrace: rank {r}: ")]
        said = [ln for ln in mine if " I/O syscalls checked: " in ln]
        assert len(said) == 1, lines
        n = int(said[0].split("stracer: ")[1].split()[0])
        assert n == checked[pid[r]] > 0, (r, said, checked)
        assert sum("the trace explains 100.0% of the" in ln for ln in mine) == 1, mine
        assert mine[-1] == f"iotrace: rank {r}: trace written to {job.dir}", mine
    assert not [ln for ln in lines if ln.startswith("iotrace: ") and " rank " not in ln], lines


def test_stops_inside_mpi_file_open_are_not_the_apps_time(tmp_path: Path) -> None:
    """Issue 19: OMPIO calls sem_open at every MPI_File_open, whose syscalls inside glibc
    stopped (covered); the report once named MPI_File_open the job's largest I/O time for it.
    Under full tracing of a real MPI-IO job, a rank's first MPI_File_open holds stops (ld.so's
    inside the dlopen of OMPIO's components), sem_open holds none now (the shim's own, with
    cookie'd syscalls), and the report's time of each function is its calls' time less the
    stracer's holds in them."""
    if not stracer_flag():
        pytest.skip("iotrace run has no stracer")
    from iotrace.analyzer.access import held
    from iotrace.analyzer.summary import summarise

    job = run_job(tmp_path, "ranks", 2, build_mpi("mpi_io"), "mio.dat", str(B), str(C),
                  io="ompio", stracer=True)  # fmt: skip
    tr = load(job.dir)
    ev, st = tr.events, tr.stops
    assert len(st) and (st["ns"] > 0).all()
    s = summarise(tr)
    fn, mpi = s.functions.set_index("function"), s.mpi.set_index("function")
    for name in ("MPI_File_open", "sem_open"):
        calls = ev[ev["function"] == name]
        h = held(calls, st)
        if name == "sem_open":
            assert len(h) >= 2 and (h == 0).all(), h
        else:
            assert (h[calls["rank"].to_numpy() >= 0] > 0).sum() >= 2, (name, h)  # each rank's
        raw = int((calls["t_end"] - calls["t_start"]).sum())
        assert int(fn.loc[name, "time"]) == raw - int(h.sum()), name
        assert int(fn.loc[name, "held"]) == int(h.sum()), name  # the report's `held` column
    assert int(mpi.loc["MPI_File_open", "held"]) == int(fn.loc["MPI_File_open", "held"])
    assert "the stracer held the app" in iotrace("report", str(job.dir)).stdout


def test_rank_raw_syscalls_missed(tmp_path: Path) -> None:
    """A rank that also writes with raw syscalls (one iotrace and stracer per rank): its missed
    I/O is in the analyzer's events and `missed` with its rank."""
    if not stracer_flag():
        pytest.skip("iotrace run has no stracer")
    from iotrace.analyzer import load

    n, bs = 4, 4096
    prog = build_mpi("mpi_raw")
    job = run_job(tmp_path, "ranks", 2, prog, str(n), str(bs), stracer=True)
    check_job_shape(job, prog)
    assert len(list(job.dir.glob("*.stracer"))) == 2  # one stracer per rank
    tr = load(job.dir)
    ev = tr.events
    for r in range(2):
        path = str(job.work / f"raw.{r}.dat")
        raw = ev[(ev["path"] == path) & ev["missed"]]
        assert raw["function"].astype(str).tolist() == ["openat", *["pwrite64"] * n, "close"]
        assert (raw["rank"] == r).all()
        assert raw["bytes"].sum() == n * bs
        libc = ev[(ev["path"] == path) & ~ev["missed"] & (ev["function"] == "write")]
        assert libc["bytes"].tolist() == [bs] and (libc["rank"] == r).all()  # the shim's
        m = tr.missed[tr.missed["paths"] == path]
        assert set(m["rank"]) == {r} and m["count"].sum() == n + 2
        assert (m["site"] == "raw_blocks (mpi_raw.c) ← main (mpi_raw.c)").all()


def test_non_mpi_program_does_not_load_libmpi(trace) -> None:
    """The MPI wrappers are in the shim, but libmpi is never linked: a plain program stays
    plain."""
    t = trace("cat", "/proc/self/maps", extra=tuple(stracer_flag()))
    assert t.proc.returncode == 0, t.proc.stderr
    assert "libiotrace" in t.proc.stdout
    assert "libmpi" not in t.proc.stdout


def test_command_family_from_the_programs_elf(tmp_path) -> None:
    """The MPI family whose shim `iotrace run` preloads (launcher/mpi.c), read from the real
    programs: a rank's program (its libmpi, directly or through a library such as libhdf5),
    else the launcher by name (a Python rank loads MPI itself); the default shim for a program
    without MPI.  The command words are looked at in order: here after `sh -c SCRIPT`, which
    prints the LD_PRELOAD it got."""
    needs_mpich()
    ompi, mpich = build_mpi("mpi_io"), build_mpi("mpi_io", "mpich")
    runs = [0]

    def shim(*words: str) -> str:
        runs[0] += 1
        r = iotrace("run", "--no-stracer", "-o", str(tmp_path / f"t{runs[0]}"), "--", "sh",
                    "-c", 'echo "$LD_PRELOAD"', *words)  # fmt: skip
        assert r.returncode == 0, r.stderr
        return Path(r.stdout.split(":")[0].strip()).name

    assert shim(str(ompi)) == "libiotrace.so"  # the default shim is Open MPI's
    assert shim(str(mpich)) == "libiotrace-mpich.so"
    assert shim("mpirun.mpich", "-np", "2", str(mpich), "x") == "libiotrace-mpich.so"
    assert shim("mpirun", "-np", "2", str(ompi)) == "libiotrace.so"
    assert shim("mpirun.mpich", "-np", "2", "python3", "app.py") == "libiotrace-mpich.so"
    # through a library that links it: libhdf5_hl -> libhdf5 -> libmpi
    hl = Path("/usr/lib/x86_64-linux-gnu/libhdf5_mpich_hl.so.100")
    if hl.exists():
        assert shim(str(hl)) == "libiotrace-mpich.so"
    assert shim("ls", "-l") == "libiotrace.so"
