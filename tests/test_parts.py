"""The bounded path (analyzer/parts.py: a trace reported part by part, in worker processes, the
parts' sums merged) gives the in-memory path's report, number for number, on traces with several
processes, exec'd images, threads, MPI-IO ranks, missed syscalls and a killed process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import build, iotrace, report_in_memory, report_of_parts, same_report
from iotrace.analyzer import load, parts
from iotrace.analyzer.export import export, export_parts, to_parquet_parts
from test_hdf5 import COLS, H5PCC, ROWS, N, build_h5
from test_mpi import MPICC, MPIRUN, _shim_has_mpi, build_mpi, run_job

from iotrace import cluster as cluster_mod


def _check(d, workers: int = 1, **kw) -> dict:
    ref = report_in_memory(d)
    got = report_of_parts(d, workers, **kw)
    diff = same_report(ref, got)
    assert not diff, diff[:10]
    return got


def test_forks_execs_threads_and_missed_syscalls_report_the_same_in_parts(trace):
    # a fork tree that execs (several images of one pid), threads, raw syscalls the stracer
    # catches; each process its own part
    t = trace("sh", "-c", f"{build('proc_fork')} && {build('st_raw')} x && {build('proc_threads')}")
    assert t.proc.returncode == 0, t.proc.stderr
    assert len(parts.plan(t.dir, parts.MEMORY_DEFAULT, 1, part_bytes=1)) >= 3
    got = _check(t.dir)
    assert got["overview"]["missed"] > 0 and got["overview"]["images"] >= 4
    # the same on 2 worker processes
    _check(t.dir, workers=2)


def test_a_killed_process_reports_the_same_in_parts(trace):
    kill = f"{build('proc_kill')} 500 2>/dev/null & sleep 1; kill -KILL $!; wait; true"
    t = trace("sh", "-c", kill)
    assert t.proc.returncode == 0, t.proc.stderr
    got = _check(t.dir)
    assert any(p["ended"] == "signal 9" for p in got["processes"]), got["processes"]
    # and cut into ranges: its events after its last counters reading carried to its end
    _check(t.dir, range_bytes=1)


def _ranges(d, at_least: int) -> None:
    """Some log of the trace is cut into `at_least` ranges by range_bytes=1."""
    pl = parts.plan(d, parts.MEMORY_DEFAULT, 1, part_bytes=1, range_bytes=1)
    most = max((sum(1 for p in pl if p.window and p.first == q.first) for q in pl), default=0)
    assert most >= at_least, [(p.first, p.window) for p in pl]


def test_processes_cut_into_ranges_report_the_same(trace):
    # every log cut into time ranges of ~64 events (range_bytes=1): a process's streams (an
    # access pattern's sequential/random runs), calls in flight (mmap_threads' overlap the
    # cuts: time in I/O), threads, stacks, paths, the stracer's missed syscalls and the
    # kernel's counters carried from range to range
    cmd = (f"{build('an_pattern')} && {build('proc_fork')} && {build('st_raw')} x"
           f" && {build('proc_threads')} && {build('mmap_threads')}")  # fmt: skip
    t = trace("sh", "-c", cmd)
    assert t.proc.returncode == 0, t.proc.stderr
    _ranges(t.dir, 5)
    got = _check(t.dir, range_bytes=1)
    assert got["overview"]["missed"] > 0 and got["overview"]["classified"] > 0
    assert got["overview"]["classified"] > got["overview"]["sequential"] > 0
    _check(t.dir, workers=2, range_bytes=1)


def test_html_timeline_of_processes_cut_into_ranges_is_the_in_memory_one(trace):
    # threads whose calls overlap the cuts (mmap_threads), runs of calls closer than a bar's
    # resolution across them (an_pattern), the stracer's missed syscalls (st_raw): a bar across
    # a cut was two bars
    # (the page's SVG is drawn from these frames; matplotlib is not imported here: in the
    # whole suite's process its import aborted once, after ~200 other tests)
    from iotrace.analyzer.summary import summarise

    cmd = f"{build('an_pattern')} && {build('st_raw')} x && {build('mmap_threads')}"
    t = trace("sh", "-c", cmd)
    assert t.proc.returncode == 0, t.proc.stderr
    _ranges(t.dir, 5)
    tr = load(t.dir)
    ref = summarise(tr, plots=True).over_time
    for w in (1, 2):
        ot = parts.summarise(
            parts.Bounded(t.dir, workers=w, part_bytes=1, range_bytes=1), plots=True
        )[0]
        ot = ot.over_time
        assert ref is not None and ot is not None and ot.lanes.busy == ref.lanes.busy
        pd.testing.assert_frame_equal(ot.lanes.bars, ref.lanes.bars)
        pd.testing.assert_frame_equal(ot.lanes.missed, ref.lanes.missed)
        assert len(ref.lanes.missed)


@pytest.mark.skipif(not (MPIRUN and MPICC and _shim_has_mpi()), reason="needs Open MPI")
def test_mpi_io_ranks_report_the_same_in_parts(tmp_path):
    job = run_job(tmp_path, "launcher", 2, build_mpi("mpi_io"), "mio.dat", str(65536), "4096")
    got = _check(job.dir)
    assert got["mpi"] and got["overview"]["ranks"] == 2
    # each rank cut into ranges (never inside an MPI-IO call: its POSIX calls stay with it)
    _ranges(job.dir, 3)
    _check(job.dir, range_bytes=1)
    # the HTML page's plots from the parts' sums: the in-memory ones
    from iotrace.analyzer.summary import summarise

    ref = summarise(load(job.dir), plots=True).over_time
    ot = parts.summarise(parts.Bounded(job.dir, workers=1, part_bytes=1), plots=True)[0].over_time
    assert ref is not None and ot is not None and ot.span == ref.span
    assert sorted(ot.heatmap) == sorted(ref.heatmap) == [0, 1]
    for r, grid in ref.heatmap.items():
        assert np.allclose(ot.heatmap[r], grid) and grid[0].sum() > 0
    assert ot.lanes.busy == ref.lanes.busy
    pd.testing.assert_frame_equal(
        ot.lanes.bars.sort_values(["proc", "cls", "start"]).reset_index(drop=True),
        ref.lanes.bars.sort_values(["proc", "cls", "start"]).reset_index(drop=True),
    )


def test_files_that_tie_are_in_path_order_in_both_paths(trace):
    # 24 files of the same bytes and calls, each written by a process of its own (a part each),
    # met in the reverse of their names' order: ties were left in whatever order the sort and
    # each path met them in (quicksort: not stable past 16 rows)
    t = trace("sh", "-c", "for i in $(seq 24 -1 1); do /bin/echo x > tie$i; done")
    assert t.proc.returncode == 0, t.proc.stderr
    got = _check(t.dir)
    ties = [f["path"] for f in got["files"] if os.path.basename(f["path"]).startswith("tie")]
    assert len(ties) == 24 and ties == sorted(ties)


def test_report_memory_and_workers_options(trace):
    t = trace(build("proc_fork"))
    ok = iotrace("report", str(t.dir), "--json", "--memory", "300M", "--workers", "2")
    assert ok.returncode == 0, ok.stderr
    bad = iotrace("report", str(t.dir), "--memory", "lots")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "memory" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert parts.parse_memory("2G") == 2 << 30 and parts.parse_memory("1500M") == 1500 << 20


def _start_cluster() -> tuple[subprocess.Popen[str], str]:
    """A 2-worker LocalCluster started apart (`python -m iotrace.cluster`, ends when its stdin
    does) and the address it prints."""
    cluster = subprocess.Popen(
        [sys.executable, "-m", "iotrace.cluster", "--workers", "2"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert cluster.stdout is not None
    return cluster, cluster.stdout.readline().strip()


def _scheduler_and_workers_have(address: str) -> tuple[set[str], list[tuple[bool, bool]]]:
    """The analyzer's modules and pandas the scheduler has imported; per worker: whether it
    has imported the analyzer's parts and whether its profiler is on."""
    from distributed import Client

    def worker() -> tuple[bool, bool]:
        import dask

        return "iotrace.analyzer.parts" in sys.modules, dask.config.get(
            "distributed.worker.profile.enabled"
        )

    def scheduler() -> set[str]:
        return {m for m in sys.modules if m.startswith(("iotrace.analyzer", "pandas"))}

    with Client(address) as client:
        return client.run_on_scheduler(scheduler), list(client.run(worker).values())


def test_dask_cluster_already_running_reports_the_same(trace, tmp_path):
    # a cluster started apart (`python -m iotrace.cluster`: a 2-worker LocalCluster with
    # iotrace.cluster.CONFIG), its address given to the library and to `report --scheduler`
    t = trace("sh", "-c", f"{build('proc_fork')} && {build('st_raw')} x")
    assert t.proc.returncode == 0, t.proc.stderr
    local = report_of_parts(t.dir)
    cluster, address = _start_cluster()
    try:
        assert address.startswith("tcp://"), address
        # the workers imported the analyzer before any task (the preload), profiler off
        assert _scheduler_and_workers_have(address)[1] == [(True, False)] * 2
        on_dask = report_of_parts(t.dir, scheduler=address)  # parts apart
        ranges_on_dask = report_of_parts(t.dir, scheduler=address, range_bytes=1)
        # the JSON merged on a worker too: the command imports neither pandas nor the analyzer
        # (PYTHONPROFILEIMPORTTIME: every module the command imported, on its stderr)
        env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
        cli = iotrace("report", str(t.dir), "--json", "--scheduler", address, env=env)
        # two traces' summaries on the cluster, one after the other
        diff_on_dask = iotrace("diff", str(t.dir), str(t.dir), "--json", "--scheduler", address)
        # the command sends the parts before it imports the analyzer (cluster.start)
        early = subprocess.run([sys.executable, "-c", STARTED, str(t.dir), address],
                               capture_output=True, text=True, timeout=120)  # fmt: skip
        csv = iotrace("export", str(t.dir), "--format", "csv", "-o", str(tmp_path / "csv"),
                      "--scheduler", address)  # fmt: skip
        # every other export on the cluster (and the HTML report's plots, from the parts' sums)
        for fmt in ("chrome", "darshan", "parquet"):
            r = iotrace("export", str(t.dir), "--format", fmt, "-o", str(tmp_path / f"d.{fmt}"),
                        "--scheduler", address)  # fmt: skip
            assert r.returncode == 0, r.stderr
        on_dask_plots = parts.summarise(
            parts.Bounded(t.dir, scheduler=address, part_bytes=1), plots=True
        )[0].over_time
        # iotrace's client is not made the process's default: closed out of order with a
        # caller's (the release thread) it left `scheduler: dask.distributed` set with no client,
        # and a later compute failed ("no Client active", test_scan in a full run)
        import dask

        mine = cluster_mod.connect(address)
        try:
            assert dask.config.get("scheduler", None) is None
        finally:
            mine.close()
        # the tasks reach the scheduler pickled whole: it unpickles neither the analyzer's
        # functions nor its records (it imported the analyzer and pandas for them)
        assert _scheduler_and_workers_have(address)[0] == set()
        # scan's lazy frame computed on the cluster of the current Client, its parts cut for
        # that cluster's 2 workers less its own memory (parts.cluster_bound)
        import importlib

        from distributed import Client

        scan_mod = importlib.import_module("iotrace.analyzer.scan")  # the module, not scan()

        with Client(address):
            assert scan_mod._client_workers() == 2
            lazy = scan_mod.scan(parts.Bounded(t.dir, part_bytes=1)).compute()
        assert scan_mod._client_workers() is None
        assert len(lazy) == len(load(t.dir).events)
        # its tasks pickled whole too (a Dask DataFrame's graph has pandas, not the analyzer)
        assert not {m for m in _scheduler_and_workers_have(address)[0] if "iotrace" in m}
    finally:
        cluster.communicate("", timeout=60)
    assert cluster.returncode == 0
    assert not same_report(local, on_dask)
    assert not same_report(report_of_parts(t.dir, range_bytes=1), ranges_on_dask)
    assert cli.returncode == 0, cli.stderr
    imported = {ln.rsplit("|", 1)[1].strip() for ln in cli.stderr.splitlines() if "|" in ln}
    assert "distributed" in imported, cli.stderr[-500:]
    assert not {m for m in imported if m.startswith(("pandas", "iotrace.analyzer"))}
    diff = same_report(local, json.loads(cli.stdout))
    assert not diff, diff[:10]
    assert diff_on_dask.returncode == 0, diff_on_dask.stderr
    local_diff = iotrace("diff", str(t.dir), str(t.dir), "--json")
    assert json.loads(diff_on_dask.stdout) == json.loads(local_diff.stdout)
    assert early.returncode == 0, early.stderr
    imported, report = early.stdout.split("\n", 1)
    assert imported == "[]"
    diff = same_report(local, json.loads(report))
    assert not diff, diff[:10]
    assert csv.returncode == 0, csv.stderr  # the exports' tasks too: the in-memory bytes
    tr = load(t.dir)
    export(tr, "csv", tmp_path / "whole")
    for f in sorted((tmp_path / "whole").iterdir()):
        assert f.read_bytes() == (tmp_path / "csv" / f.name).read_bytes(), f.name
    for fmt in ("chrome", "darshan"):  # the in-memory exports' very bytes
        export(tr, fmt, tmp_path / f"m.{fmt}")
        assert (tmp_path / f"m.{fmt}").read_bytes() == (tmp_path / f"d.{fmt}").read_bytes(), fmt
    export(tr, "parquet", tmp_path / "m.parquet")
    key = ["t_start", "proc", "tid", "function", "ret"]
    a = _sorted(ds.dataset(tmp_path / "m.parquet" / "events", partitioning="hive").to_table(), key)
    b = _sorted(ds.dataset(tmp_path / "d.parquet" / "events", partitioning="hive").to_table(), key)
    pd.testing.assert_frame_equal(a, b[a.columns], check_dtype=False)
    from iotrace.analyzer.summary import summarise

    ref = summarise(tr, plots=True).over_time
    assert ref is not None and on_dask_plots is not None
    assert on_dask_plots.lanes.busy == ref.lanes.busy
    pd.testing.assert_frame_equal(on_dask_plots.lanes.bars, ref.lanes.bars)
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="1s")
    bad = iotrace("report", str(t.dir), "--scheduler", "tcp://127.0.0.1:9", env=env)
    assert bad.returncode == 2 and "no Dask scheduler" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr


STARTED = """
import sys
from iotrace import cluster
b = {"trace_dir": sys.argv[1], "scheduler": sys.argv[2]}
started = cluster.start(sys.argv[2], b, False, False, False)
print(sorted(m for m in sys.modules if m.startswith(("pandas", "iotrace.analyzer"))))
from iotrace.analyzer import parts
from iotrace.analyzer.report import report_json
print(report_json(parts.summarise(b, started=started)[0]))
"""


SAME_PARTS = """
import multiprocessing as mp, sys
from pathlib import Path
from iotrace import cli, cluster
cli._lean_allocators()  # as the command line: one thread, workers forked from it
from iotrace.analyzer import parts
d, address = sys.argv[1], sys.argv[2]
span = parts._span_guess(Path(d))
args = [(d, t, span) for t in parts.groups(parts.plan(d, parts.MEMORY_DEFAULT, 1, part_bytes=1))]
if address:  # every part on each worker of the cluster, as a report's tasks (cluster.call)
    from distributed import Client
    with Client(address) as c:
        tasks = [cluster.task(parts.group, a) for a in args]
        each = [c.map(cluster.call, tasks, workers=[w], allow_other_workers=False, pure=False)
                for w in c.scheduler_info()["workers"]]
        for futures in each:
            c.gather(futures)
else:  # every part in each of 2 workers forked from here, as local_map's
    def work():
        parts.tune_malloc()
        for a in args:
            parts.group(*a)
    ps = [mp.get_context("fork").Process(target=work) for _ in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    print(*(p.pid for p in ps))  # the workers (their forks for tools, short-lived, apart)
    sys.exit(max(p.exitcode for p in ps))
"""


def _peaks(roots: list[int], run: subprocess.Popen) -> dict[int, tuple[int, str]]:
    """Each process's peak RSS (VmHWM) and command line in the trees of `roots` while `run`
    runs (read every 20 ms: a process is read until it ends)."""
    import time

    def kids() -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            try:
                with open(f"/proc/{d}/stat") as f:
                    out.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
        return out

    peaks: dict[int, tuple[int, str]] = {}
    while True:
        k, todo = kids(), list(roots)
        while todo:
            pid = todo.pop()
            todo += k.get(pid, [])
            try:
                with open(f"/proc/{pid}/status") as f:
                    hwm = [int(ln.split()[1]) << 10 for ln in f if ln.startswith("VmHWM:")]
                with open(f"/proc/{pid}/cmdline") as f:
                    cmd = f.read().replace("\0", " ")
            except OSError:
                continue
            if hwm:
                peaks[pid] = (max(hwm[0], peaks.get(pid, (0, ""))[0]), cmd)
        if run.poll() is not None:
            return peaks
        time.sleep(0.02)


def test_a_dask_clusters_own_memory_is_within_its_constants(trace):
    # the bound holds a Dask cluster's own memory (parts.DASK_BASE, DASK_WORKER_BASE): 2 local
    # workers and the 2 workers of a LocalCluster (python -m iotrace.cluster) each reduce every
    # part (the same work in every worker: a report's spread of parts over its workers, which
    # made each worker's peak differ run to run, left out), each process's peak RSS summed: what
    # the cluster adds is within the constants (the parts would otherwise be cut for more memory
    # than there is), and not far below them (parts cut smaller than they need be: the constants
    # were 100 and 150 MiB, measured ~78-112 and ~100)
    t = trace("sh", "-c", f"{build('proc_fork')} && {build('an_pattern')}")
    assert t.proc.returncode == 0, t.proc.stderr

    def report(address: str, roots: list[int]) -> tuple[int, dict[int, tuple[int, str]], str]:
        run = subprocess.Popen([sys.executable, "-c", SAME_PARTS, str(t.dir), address],
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
        got = _peaks([run.pid, *roots], run)
        assert run.returncode == 0
        return run.pid, got, run.communicate()[0]

    me, local, out = report("", [])
    own = local.pop(me)[0]
    pool = [local[int(pid)][0] for pid in out.split()]
    assert len(pool) == 2, local
    local_workers = sum(pool)
    cluster, address = _start_cluster()
    try:
        from distributed import Client

        with Client(address) as c:  # the workers' pids (a cluster's tree has other processes)
            pids = set(c.run(os.getpid).values())
        me, on_dask, _ = report(address, [cluster.pid])
    finally:
        cluster.communicate("", timeout=60)
    client = on_dask.pop(me)[0] - own
    assert len(pids) == 2 and pids <= set(on_dask), on_dask
    dask_workers = sum(v for k, (v, _) in on_dask.items() if k in pids)
    # the scheduler's process (with the nannies) and its resource tracker: not a worker's forks
    # for its tools, nor a worker restarted
    scheduler = sum(v for k, (v, cmd) in on_dask.items()
                    if k == cluster.pid or "resource_tracker" in cmd)  # fmt: skip
    per_worker = (dask_workers - local_workers) / 2
    mib = 1 << 20
    figures = f"scheduler {scheduler / mib:.0f}, client {client / mib:.0f}, "
    figures += f"a worker {per_worker / mib:.0f} MiB"
    assert scheduler + client <= parts.DASK_BASE, figures
    assert per_worker <= parts.DASK_WORKER_BASE, figures
    added = scheduler + client + 2 * per_worker
    assert added >= (parts.DASK_BASE + 2 * parts.DASK_WORKER_BASE) / 2, figures


def test_the_cluster_settings_as_yaml_are_its_config(tmp_path):
    # `python -m iotrace.cluster --yaml`, the file a cluster's processes read (docs/scale.md)
    import dask

    from iotrace import cluster

    r = subprocess.run([sys.executable, "-m", "iotrace.cluster", "--yaml"], capture_output=True,
                       text=True, check=True)  # fmt: skip
    (tmp_path / "iotrace.yaml").write_text(r.stdout)
    read = dask.config.collect([str(tmp_path)], env={})
    assert {k: dask.config.get(k, config=read) for k in cluster.CONFIG} == cluster.CONFIG


def _sorted(t: pa.Table, keys: list[str]) -> pd.DataFrame:
    df = t.to_pandas()
    for c in df.columns:
        if isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype(str)
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def test_parquet_export_in_parts_is_the_in_memory_one(trace, tmp_path, monkeypatch):
    import importlib

    export_mod = importlib.import_module("iotrace.analyzer.export")  # the module (not export())
    t = trace("sh", "-c", f"{build('proc_fork')} && {build('st_raw')} x && {build('proc_threads')}")
    assert t.proc.returncode == 0, t.proc.stderr
    whole = tmp_path / "whole"
    export(load(t.dir), "parquet", whole)
    # processes whole, then cut into ranges; then each part written a row group at a time (of
    # 4 rows: files of their own), here
    for i, kw in enumerate([{}, {"range_bytes": 1}, {"workers": 1}]):
        inparts = tmp_path / f"parts{i}"
        if i == 2:
            monkeypatch.setattr(export_mod, "ROWS_PER_GROUP", 4)
        to_parquet_parts(parts.Bounded(t.dir, **{"workers": 2, "part_bytes": 1, **kw}), inparts)
        files = list((inparts / "events").rglob("*.parquet"))
        assert len(files) >= (3 if i < 2 else 12)  # a file per part (per row group)
        for f in files:  # each in time order (write_dataset's threads reordered the rows)
            ts = pq.read_table(f).column("t_start").to_numpy()
            assert (np.diff(ts) >= 0).all(), f
        key = ["t_start", "proc", "tid", "function", "ret"]
        a = _sorted(ds.dataset(whole / "events", partitioning="hive").to_table(), key)
        b = _sorted(ds.dataset(inparts / "events", partitioning="hive").to_table(), key)
        pd.testing.assert_frame_equal(a, b[a.columns], check_dtype=False)
        tables = (("processes", ["proc"]), ("files", ["path"]), ("missed", ["proc", "first"]),
                  ("stacks", ["stack_id", "level"]))  # fmt: skip
        for name, k in tables:
            a = _sorted(pq.read_table(whole / f"{name}.parquet"), k)
            b = _sorted(pq.read_table(inparts / f"{name}.parquet"), k)
            pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=name)
    # the command line: in parts by default
    r = iotrace("export", str(t.dir), "--format", "parquet", "-o", str(tmp_path / "cli"))
    assert r.returncode == 0 and "events" in r.stderr, r.stderr


@pytest.mark.skipif(not (H5PCC and MPIRUN), reason="needs h5pcc (libhdf5-openmpi-dev), mpirun")
def test_hdf5_datasets_report_the_same_in_parts(tmp_path):
    prog = build_h5("h5_io")
    job = run_job(tmp_path, "launcher", 2, prog, "t.h5", "coll", "chunk", str(ROWS), str(COLS),
                  str(N), "conv", io="ompio")  # fmt: skip
    got = _check(job.dir)
    assert got["datasets"] and got["overview"]["datasets"]["writes"] > 0
    _ranges(job.dir, 3)
    _check(job.dir, range_bytes=1)


@pytest.mark.skipif(not (H5PCC and MPIRUN), reason="needs h5pcc (libhdf5-openmpi-dev), mpirun")
def test_a_range_that_cannot_be_cut_to_its_share_is_said_once(tmp_path):
    # /g/bad chunked 4 x 2: each H5Dwrite of a rank's 4 rows x 1024 writes 512 chunks, ~1,000
    # events inside one HDF5 call, which no cut may split; ranges of ~100 events asked
    import warnings

    prog = build_h5("h5_chunks")
    job = run_job(tmp_path, "launcher", 1, prog, "c.h5", "4", "1024", "4", io="ompio")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pl = parts.plan(job.dir, parts.MEMORY_DEFAULT, 1, part_bytes=1, range_bytes=3000)
    said = [str(w.message) for w in caught if "memory bound exceeded" in str(w.message)]
    assert len(said) == 1 and "more than a worker's share" in said[0], said
    assert sum(1 for p in pl if p.window) >= 3  # the rest of the log is still cut
    _check(job.dir, range_bytes=3000)
    # on a Dask cluster a worker plans (cluster.start): what it warned is warned here, once
    cluster, address = _start_cluster()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            parts.summarise(parts.Bounded(job.dir, scheduler=address, part_bytes=1,
                                          range_bytes=3000))  # fmt: skip
    finally:
        cluster.communicate("", timeout=60)
    assert [str(w.message) for w in caught if "memory bound exceeded" in str(w.message)] == said
    # ranges that fit: nothing said
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts.plan(job.dir, parts.MEMORY_DEFAULT, 1, part_bytes=1, range_bytes=1 << 20)
    assert not [w for w in caught if "memory bound" in str(w.message)]


def test_read_filters_report_the_same_in_parts(trace):
    from iotrace.analyzer.report import report_dict
    from iotrace.analyzer.summary import summarise
    from iotrace.analyzer.trace import selected

    from iotrace.select import Select

    t = trace("sh", "-c", f"{build('proc_fork')} && {build('st_raw')} x")
    assert t.proc.returncode == 0, t.proc.stderr
    sel = Select(failed=False, t_from=0)
    ref = report_dict(summarise(selected(load(t.dir), sel)))
    got = report_of_parts(t.dir, select=sel)
    assert not same_report(ref, got)
    assert got["overview"]["selection"] and got["completeness"]["line"].startswith("not checked")


@pytest.mark.parametrize("fmt", ["csv", "chrome"])
def test_csv_and_chrome_exports_in_parts_are_the_in_memory_ones(trace, tmp_path, fmt, monkeypatch):
    # a part per process, merged by time: the very bytes the in-memory export writes
    import importlib

    export_mod = importlib.import_module("iotrace.analyzer.export")  # the module (not export())
    t = trace("sh", "-c", f"{build('proc_fork')} && {build('st_raw')} x && {build('proc_threads')}")
    assert t.proc.returncode == 0, t.proc.stderr
    assert len(parts.plan(t.dir, parts.MEMORY_DEFAULT, 1, part_bytes=1)) >= 3
    whole, inparts = tmp_path / "whole", tmp_path / "parts"
    export(load(t.dir), fmt, whole)
    held: list[tuple[int, int, int]] = []  # per merge: parts, their largest batch, rows
    merged = export_mod._merged

    def spy(files: list[str], *rest: object) -> object:
        readers = [pa.ipc.open_file(f) for f in files]
        batches = [r.get_batch(i).num_rows for r in readers for i in range(r.num_record_batches)]
        held.append((len(files), max(batches), sum(batches)))
        return merged(files, *rest)

    monkeypatch.setattr(export_mod, "_merged", spy)
    fan_in: list[int] = []  # per merge of files at once: how many
    merge_files = export_mod._merge_files

    def count(files: list[str], *rest: object) -> object:
        fan_in.append(len(files))
        return merge_files(files, *rest)

    monkeypatch.setattr(export_mod, "_merge_files", count)
    # processes whole, then cut into ranges; then the merge holding 64 rows in all (a batch of
    # each part's file at once: with more parts, smaller batches); then the ranges merged 2 files
    # at a time, in levels (the batches of 32 rows whatever the number of parts)
    for k, kw in enumerate([{}, {"range_bytes": 1}, {}, {"range_bytes": 1}]):
        if k >= 2:
            monkeypatch.setattr(export_mod, "MERGE_ROWS", 64)
            monkeypatch.setattr(export_mod, "MERGE_BATCH_MIN", 1)
        if k == 3:
            monkeypatch.setattr(export_mod, "MERGE_FAN_IN", 2)
        inparts = tmp_path / f"parts{k}"
        del fan_in[:]
        export_parts(fmt, parts.Bounded(t.dir, workers=2, part_bytes=1, **kw), inparts)
        n, most, rows = held[-1]
        assert most <= {2: 64 // n, 3: 32}.get(k, export_mod.MERGE_BATCH) and rows > 64, held
        assert max(fan_in) == (2 if k == 3 else n) and len(fan_in) >= (n - 1 if k == 3 else 1)
        if fmt == "chrome":
            assert whole.read_bytes() == inparts.read_bytes()
        else:
            names = sorted(p.name for p in whole.iterdir())
            assert names == sorted(p.name for p in inparts.iterdir())
            for n in names:
                assert (whole / n).read_bytes() == (inparts / n).read_bytes(), n
    # the command line: in parts (a low bound makes several)
    cli = tmp_path / "cli"
    r = iotrace("export", str(t.dir), "--format", fmt, "-o", str(cli), "--memory", "1M")
    assert r.returncode == 0, r.stderr
    got = cli.read_bytes() if fmt == "chrome" else (cli / "events.csv").read_bytes()
    assert got == (whole.read_bytes() if fmt == "chrome" else (whole / "events.csv").read_bytes())


def test_missed_holds_neither_the_events_nor_the_missed_records(tmp_path):
    """`iotrace missed` groups the stracer's records as it reads them and, for a filter by rank
    or time, reads the shim logs' headers only: reading them whole held ~300 B per event and
    each missed record (~500 B)."""
    import tracemalloc

    from iotrace.analyzer.missed_groups import collect

    from iotrace.select import Select

    fill, loop, peaks = build("ft_fill"), build("st_loop"), []
    for n in (10, 50_000):
        out = tmp_path / f"t{n}"
        cmd = f"{fill} {2 * n} 0 {tmp_path / 'f'}; {loop} {n}"
        r = iotrace("run", "--stack", "0", "-o", str(out), "--", "sh", "-c", cmd, timeout=300)
        assert r.returncode == 0, r.stderr
        for sel in (Select(), Select(t_from=0)):  # the filter: the shim logs' start times
            tracemalloc.start()
            groups, _ = collect(out, sel=sel)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            assert sum(g["count"] for g in groups if g["syscall"] == "write") == n
    # nothing per record or event: the stracer log is read a window at a time (before: ~1,200 B
    # a record, and ~300 B per shim event with --from)
    assert peaks[2] - peaks[0] < 50_000 * 200 and peaks[3] - peaks[1] < 50_000 * 200, peaks


def test_a_part_holds_only_its_processes_stracer_records(trace, monkeypatch):
    # st_loop: 10,000 writes only the stracer sees, in one process; every other process's part
    # read and held all of them (~700 B a record) to convert them and then drop them; and
    # decoded all of them: now the log is read whole once (its index) and each part decodes
    # only the blocks of its records.  A static st_loop (no shim: a stracer-only process) makes
    # 3,000 more: the part of the stracer-only processes held every record of the log, now its
    # processes' only; and each part holds only its threads' STOP records
    from iotrace.analyzer import stracer_src
    from iotrace.analyzer.load import _missed_of, load, shim_logs
    from iotrace.analyzer.log_kinds import STRACER
    from iotrace.stracer import slog

    monkeypatch.setattr(stracer_src, "_INDEX", {})
    whole, decoded = [], []
    read, records = slog.read, slog.records
    monkeypatch.setattr(slog, "read", lambda p, *a, **k: whole.append(p) or read(p, *a, **k))
    monkeypatch.setattr(slog, "records", lambda p, a, b: decoded.append(b - a) or records(p, a, b))

    n, m = 10_000, 3_000
    cmd = (f"{build('proc_fork')} && {build('st_loop')} {n} && {build('st_loop', '-static')} {m}"
           f" && {build('an_pattern')}")  # fmt: skip
    t = trace("sh", "-c", cmd)
    assert t.proc.returncode == 0, t.proc.stderr
    logs = shim_logs(t.dir)
    loop = [lg.proc for lg in logs if "st_loop" in str(lg.header.get("exe", ""))]
    pl = parts.plan(t.dir, parts.MEMORY_DEFAULT, 1, part_bytes=1, range_bytes=1)
    pl += parts.plan(t.dir, parts.MEMORY_DEFAULT, 1, part_bytes=1)
    held, read_by = {}, {}
    (log,) = STRACER.find(t.dir)
    for p in pl:
        keep = _missed_of(logs, p)
        decoded.clear()
        got = stracer_src.read_logs([log], keep)
        k = (p.first, p.window, p.stracer_only)
        held[k] = sum(len(s.log.missed) for s in got if s.log is not None)
        read_by[k] = sum(decoded)
    assert whole == [log]  # read whole once: the index every part then uses
    mine = {k: v for k, v in held.items() if k[0] in loop}
    others = [v for k, v in held.items() if k[0] not in loop and not k[2]]
    assert sum(v for (_, w, _), v in mine.items() if w is None) >= n  # st_loop's, whole
    assert others and max(others) < 10, held  # the others': the first record of each pid
    # the stracer-only part: the static st_loop's records, not the shim st_loop's
    alone = [v for k, v in held.items() if k[2] and k[0] not in loop]
    assert alone and all(m <= v < m + 10 for v in alone), held
    # the others' parts (and ranges) decode no block: their first records are in the index
    assert max(v for k, v in read_by.items() if k[0] not in loop and not k[2]) == 0, read_by
    assert min(v for k, v in read_by.items() if k[0] in loop) > 0, read_by
    assert max(read_by[k] for k in held if k[2] and k[0] not in loop) < log.stat().st_size / 2
    # STOP records: a part's are its threads' (the whole trace's counted apart)
    every = load(t.dir).stops
    assert len(every) > 0
    seen = 0
    for p in parts.plan(t.dir, parts.MEMORY_DEFAULT, 1, part_bytes=1):
        tr = parts.load_part(str(t.dir), p)
        assert set(tr.stops["tid"]) <= set(tr.events["tid"]), p
        seen += len(tr.stops)
    assert seen < len(every) * len(pl) // 2
    # the reports of parts and ranges (each the records of its time) equal the in-memory one
    got = _check(t.dir, range_bytes=1)
    assert got["overview"]["missed"] >= n + m
    assert got["overview"]["stracer_stops"] == len(every)


PEAK = """
import sys
from iotrace.cli import main

status = main(sys.argv[1:])
peak = [ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmPeak:")][0]
print(status, int(peak) << 10)
"""


def test_a_bounded_export_reserves_little_address_space(trace, tmp_path):
    """pyarrow's allocator reserved 1 GiB of address space and each allocating thread a 64 MiB
    glibc arena: the Parquet export of a small trace peaked at ~1.8 GiB of address space (an
    RLIMIT_AS, as in test_readers, made its threads fail to start)."""
    t = trace(build("proc_fork"))
    r = subprocess.run([sys.executable, "-c", PEAK, "export", str(t.dir), "--format", "parquet",
                        "-o", str(tmp_path / "pq"), "--workers", "1"],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    status, peak = map(int, r.stdout.split())
    assert status == 0 and peak < 1 << 30, (peak, r.stderr[-2000:])


def _missed_by_site(rows: list[dict]) -> dict:
    """(host, pid, proc, syscall, call site) -> count, errors, bytes, time, first, rank, paths:
    the report's missed I/O rows, or `iotrace missed`'s groups summed to them."""
    out: dict = {}
    for m in rows:
        k = (m["host"], m["pid"], m["proc"], m["function"], m["site"])
        paths = m["paths"].split(", ") if "paths" in m else [m["path"]]
        c, e, b, t, f, r, p = out.get(k, (0, 0, 0, 0, 1 << 62, m["rank"], set()))
        out[k] = (c + m["count"], e + m["errors"], b + m["bytes"], t + m["time"],
                  min(f, m["first"]), r, p | {x for x in paths if x})  # fmt: skip
    return out


def test_missed_and_the_report_group_missed_io_alike(trace):
    """`iotrace missed` (the stracer logs read a window at a time, grouped a batch at a time)
    and the report's missed I/O, in memory and in parts, are one grouping: the same groups and
    numbers on raw syscalls, a static and a Go binary (processes without the shim) and io_uring,
    whole and with a filter."""
    from iotrace.analyzer.report import report_dict
    from iotrace.analyzer.summary import summarise
    from iotrace.analyzer.trace import selected
    from test_stracer import _go_binary

    from iotrace.select import Select

    progs = [build("st_raw"), build("st_static", "-static"), build("st_uring", "-luring"),
             _go_binary()]  # fmt: skip
    t = trace("sh", "-c", " && ".join(f"{p} out{i}" for i, p in enumerate(progs)))
    assert t.proc.returncode == 0, t.proc.stderr
    r = iotrace("missed", str(t.dir), "--json")
    assert r.returncode == 0, r.stderr
    groups = json.loads(r.stdout)
    cmd = _missed_by_site(groups)
    assert {k[3] for k in cmd} >= {"openat", "write", "readlink", "pwrite64 via io_uring"}
    assert len({k[2] for k in cmd}) >= 4  # st_raw's image, static's, st_uring's, Go's
    for rep in (report_in_memory(t.dir), report_of_parts(t.dir)):
        assert _missed_by_site(rep["missed"]) == cmd
    # a filter: the later half of the groups' first calls
    cut = sorted(g["first"] for g in groups)[len(groups) // 2]
    r = iotrace("missed", str(t.dir), "--json", "--from", f"{cut / 1e9:.9f}")
    cmd = _missed_by_site(json.loads(r.stdout))
    assert 0 < sum(v[0] for v in cmd.values()) < sum(g["count"] for g in groups)
    rep = iotrace("report", str(t.dir), "--json", "--from", f"{cut / 1e9:.9f}")
    assert _missed_by_site(json.loads(rep.stdout)["missed"]) == cmd
    sel = Select(t_from=round(float(f"{cut / 1e9:.9f}") * 1e9))  # as --from parses it
    whole = report_dict(summarise(selected(load(t.dir), sel)))
    assert _missed_by_site(whole["missed"]) == cmd


def test_fast_bins_and_buckets_are_the_slow_ones_at_their_edges():
    # bandwidth_sums's bins (job._floor_div: x / w floored, the values next to an integer
    # divided again) and the size buckets (access.bucket_of: edges counted) give what float
    # floor division and searchsorted gave, at the edges and next to them
    from iotrace.analyzer.access import BUCKET_EDGES, bucket_of
    from iotrace.analyzer.job import BANDWIDTH_BINS, _floor_div

    for span in (10**9, 123_456_789_123, 10**10 + 7, 999):
        w = span / BANDWIDTH_BINS
        x = np.arange(BANDWIDTH_BINS + 1) * w
        x = np.concatenate([x, np.nextafter(x, -np.inf), np.nextafter(x, np.inf)])
        assert (_floor_div(x, w) == (x // w).astype(np.int64)).all(), span
    sizes = np.concatenate([BUCKET_EDGES + d for d in (-1, 0, 1)] + [np.arange(5)])
    assert (bucket_of(sizes) == np.searchsorted(BUCKET_EDGES, sizes, side="left")).all()


FAST_EXIT = """
import atexit, sys
from iotrace import cli

class Witness:  # a global of __main__: freed only by the interpreter's teardown
    def __del__(self):
        sys.stderr.write("torn down\\n")

main = cli.main
def later_main():  # a handler registered while the command runs, as multiprocessing's is
    code = main()
    atexit.register(sys.stderr.write, "handler ran\\n")
    return code
cli.main = later_main
witness = Witness()
cli.entry()
"""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_bounded_command_ends_without_the_teardown_its_handlers_run(trace, workers):
    # cli.entry: after a command that read a whole trace, no interpreter teardown (it freed
    # every object one by one), but every exit handler run, the output whole, main's status;
    # a command that reads no trace (`env`) ends as any Python program
    t = trace(build("proc_fork"))
    cmd = [sys.executable, "-c", FAST_EXIT, "report", str(t.dir), "--json", "--workers", workers]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["overview"]["events"] > 0
    assert "handler ran" in r.stderr and "torn down" not in r.stderr, r.stderr
    bad = subprocess.run([sys.executable, "-c", FAST_EXIT, "report", str(t.dir), "--workers", "0"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "handler ran" in bad.stderr, bad.stderr
    usage = subprocess.run([sys.executable, "-c", FAST_EXIT, "report", "--no-such-option"],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert usage.returncode == 2 and "torn down" not in usage.stderr, usage.stderr
    other = subprocess.run([sys.executable, "-c", FAST_EXIT, "env"],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "torn down" in other.stderr, other.stderr


def test_a_worker_gives_back_what_it_kept_for_the_next_part(monkeypatch):
    # parts.release_memory, run on each Dask worker after a map (a local worker's exit gives it
    # back): the load's kept array mappings unmapped, the heap trimmed
    from iotrace.analyzer import event_columns

    monkeypatch.setattr(event_columns, "_POOL", [])  # kept, as in a worker (tune_malloc)
    a = event_columns.empty(1 << 21, np.int64)  # 16 MiB: a mapping of its own
    a[:] = 1
    del a
    assert len(event_columns._POOL) == 1
    m = event_columns._POOL[0]
    parts.release_memory()
    assert event_columns._POOL == [] and m.closed


def test_a_parquet_export_of_a_large_part_keeps_the_time_order(trace, tmp_path):
    # write_dataset's threads write the scanner's batches (128 Ki rows) as they finish them:
    # without preserve_order a file of a million rows came out of order, its bytes differing run
    # to run; a process of 1.04 M events (dd's 1-byte reads and writes), one part, one file of a
    # million rows, bounded and in memory
    t = trace("dd", "if=/dev/zero", "of=out", "bs=1", "count=520000", "status=none")
    assert t.proc.returncode == 0, t.proc.stderr
    whole, inparts = tmp_path / "whole", tmp_path / "parts"
    to_parquet_parts(parts.Bounded(t.dir, workers=1), inparts)
    export(load(t.dir), "parquet", whole)
    for out in (inparts, whole):
        files = list((out / "events").rglob("*.parquet"))
        assert max(pq.ParquetFile(f).metadata.num_rows for f in files) >= 1_000_000, files
        for f in files:
            ts = pq.read_table(f, columns=["t_start"]).column("t_start").to_numpy()
            assert (np.diff(ts) >= 0).all(), f


def test_a_stracer_only_process_of_an_odd_name_is_named_alike_in_parts(trace):
    # the stracer log's records a worker keeps for its parts are packed (stracer_src.Packed):
    # an exec of a program whose name is not UTF-8 (a static one: the stracer's process, named
    # by its exec record) is spelled as the in-memory load spells it, in every part
    prog = build("st_static", "-static")
    odd = trace.work / os.fsdecode(b"st\xff\xfe")
    shutil.copy(prog, odd)
    t = trace(odd, "out")
    assert t.proc.returncode == 0, t.proc.stderr
    ref = report_in_memory(t.dir)
    rows = [p for p in ref["processes"] if p["command"].endswith("/st\\xff\\xfe")]
    assert rows, ref["processes"]  # its exe, named by the stracer's exec record
    diff = same_report(ref, report_of_parts(t.dir))
    assert not diff, diff[:10]
