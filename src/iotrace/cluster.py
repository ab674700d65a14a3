"""A Dask cluster that reduces iotrace's parts (`report --scheduler`, docs/scale.md): its settings,
its workers' preload, the tasks' wrapper, a command's client of it, and a local cluster with them:

    python -m iotrace.cluster --workers 2       # prints the scheduler's address; ends at EOF/^C
    python -m iotrace.cluster --yaml > ~/.config/dask/iotrace.yaml   # CONFIG for any cluster

Light to import (the cluster's scheduler imports it to unpickle the tasks; a command starts the
parts' reduction with `start` before it imports the analyzer); the analyzer is imported by
`dask_setup`, in the workers only.
"""

from __future__ import annotations

import argparse
import pickle
import signal
import sys
from collections.abc import Iterator
from typing import Any

# dask.config settings for the cluster's processes (scheduler, nannies, workers), set before
# they start (dask.config.set, a YAML file under ~/.config/dask, or DASK_* variables):
# - each worker imports the analyzer and tunes its memory (dask_setup) when it starts, not in
#   its first part (~0.45 s of CPU per fresh worker, paid again in every worker of every report
#   on a new cluster);
# - the servers' own bookkeeping ticks less often: an idle 2-worker cluster took 2.5 CPU-s per
#   30 s of wall time with distributed's defaults, 0.3 with these (bench/README.md): the
#   worker's profiler sampling its threads' stacks every 10 ms (it also samples the part being
#   reduced), the event loops' 20 ms health tick, the 0.5 s system and 0.1 s memory monitors.
#   That cost grows with a report's wall time, which a shared machine stretches.
CONFIG: dict[str, Any] = {
    "distributed.worker.preload": ["iotrace.cluster"],
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def dask_setup(worker: object) -> None:
    """distributed's preload hook (CONFIG's distributed.worker.preload, or `dask worker
    --preload iotrace.cluster`): the analyzer imported and the worker's memory tuned for part
    after part (parts.tune_malloc) before any task arrives; the objects of its imports frozen
    (gc.freeze): the collection that gives a report's memory back (parts.release_memory) walked
    them all, ~0.04 s of the worker's CPU per report."""
    import gc

    from iotrace.analyzer.event_columns import require_native
    from iotrace.analyzer.parts import tune_malloc

    tune_malloc()
    require_native()  # the decoder's C code loaded
    gc.freeze()


def task(fn: Any, args: tuple[Any, ...]) -> bytes:
    """A task for `call`: fn and its arguments pickled whole, with the trace directories the
    command opened (tracedir.handed)."""
    from iotrace.tracedir import handed

    return pickle.dumps((fn, args, handed()), protocol=pickle.HIGHEST_PROTOCOL)


def call(task: bytes, *results: Any) -> Any:
    """Run a task that `task` pickled whole, (function, arguments), on the results of the
    tasks it waits for (Started.report_json's): the scheduler, which unpickles every task it
    is given, sees bytes and this light function, and so imports neither the analyzer nor
    pandas and pyarrow for the analyzer's functions and Part records (~0.25 s of its CPU at a
    report's first task and ~100 MB more of its memory).  The trace's files are read
    relative to the directory the command opened (tracedir.adopted), not by its path."""
    from iotrace.tracedir import adopted

    fn, args, pins = pickle.loads(task)
    with adopted(pins):
        return fn(*args, *results)


def connect(scheduler: str) -> Any:
    """A distributed Client of the scheduler at `scheduler`; ValueError (one line) if there is
    none or dask.distributed is not installed."""
    try:
        from distributed import Client
    except ImportError:
        raise ValueError(
            "--scheduler needs dask.distributed (pip install 'iotrace[dask]')"
        ) from None
    try:
        # not the process's default client: iotrace's clients are closed out of order (the
        # release thread, after_map) and each restores the dask config it found, so a default
        # one left `scheduler: dask.distributed` set with no client (a caller's compute failed)
        return Client(scheduler, set_as_default=False)  # waits comm.timeouts.connect (30 s)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"no Dask scheduler at {scheduler}: {exc}") from None


class Started:
    """A trace's parts being reduced on a cluster (`start`): the client, the plan the workers
    made (pickled: unpickled by the command once it imported the analyzer), the tasks, and what
    they were started for (parts.Bounded or its fields)."""

    def __init__(self, client: Any, plan: bytes, futures: list[Any], bounded: Any) -> None:
        self.client, self.plan, self.futures, self.bounded = client, plan, futures, bounded

    def results(self) -> Iterator[Any]:
        """The tasks' results in their order as they come, each let go on the cluster once
        taken (the command folds each in: parts.Merging)."""
        futures, self.futures = self.futures, []
        try:
            yield from taken(futures)
        except BaseException:
            self.client.close()
            raise

    def report_json(self) -> str:
        """The report's JSON, its parts merged on the workers: folded FOLD tasks' results at a
        time into one parts.Merging (parts.folded, each step on the results of the step before
        and of the next tasks: no worker holds every part's), then the report written from it
        (parts.merged_json).  This process imports neither the analyzer nor pandas; what the
        merge warned is warned here, the workers' memory given back meanwhile (after_map)."""
        import warnings

        futures, self.futures = self.futures, []
        try:
            acc = None
            for i in range(0, max(len(futures), 1), FOLD):
                step = task(_folded, (acc is not None,))
                got = futures[i : i + FOLD]
                acc = self.client.submit(
                    call, step, *([] if acc is None else [acc]), *got, pure=False
                )
            del futures, got  # each step's inputs let go once it has run
            last = task(_merged_json, (self.bounded, self.plan))
            text, said = self.client.submit(call, last, acc, pure=False).result()
        except BaseException:
            self.client.close()
            raise
        after_map(release, self.client)
        for message in said:
            warnings.warn(message, stacklevel=2)
        return text


FOLD = 16  # the tasks' results folded in a step of report_json's merge


def taken(futures: list[Any]) -> Iterator[Any]:
    """The futures' results in order, each future let go once its result is taken (the
    cluster forgets the result when no client holds its future): the list is emptied."""
    futures.reverse()
    while futures:
        yield futures.pop().result()


def _folded(carried: bool, *results: Any) -> list[Any]:
    """parts.folded, its Merging in a list: the cluster tells the client each result's type,
    and the client imported the analyzer to unpickle a Merging's."""
    from iotrace.analyzer.parts import folded

    if carried:
        results = (results[0][0], *results[1:])
    return [folded(carried, *results)]


def _merged_json(bounded: Any, plan: bytes, merging: list[Any]) -> tuple[str, list[str]]:
    from iotrace.analyzer.parts import merged_json

    return merged_json(bounded, plan, merging[0])


_ends: list[Any] = []  # the threads ending the last map (after_map), not yet joined


def after_map(fn: Any, *args: Any, **kw: Any) -> None:
    """fn (the end of a map: a local pool shut down, a cluster's workers' memory given back)
    run by a thread of its own while the command merges; joined before the next map and at
    exit (join_pools)."""
    import threading

    t = threading.Thread(target=fn, args=args, kwargs=kw)
    t.start()
    _ends.append(t)


def join_pools() -> None:
    """Wait for what the last map left running (after_map: local workers ended, this process
    forks safely again; a cluster's workers done giving their memory back, before a next map's
    tasks reach them)."""
    while _ends:
        _ends.pop().join()


def release(client: Any) -> None:
    """parts.release_memory on each worker of the client's cluster, then the client closed: run
    by after_map while the command merges (0.2 s of a 10 M-event report's wall time when waited
    for: bench/README.md).  Each worker is asked to, not waited for (its event loop runs it
    next, before any later task reaches it): giving back ~350 MiB took a worker tens of ms
    that `report --json`'s exit waited for.  Best effort: a worker gone meanwhile keeps nothing."""
    try:
        client.run(_release_memory, wait=False, on_error="ignore")
    except Exception:  # the scheduler gone: nothing to give back
        pass
    finally:
        client.close()


async def _release_memory() -> None:  # async: run by the worker's loop, not waited for
    from iotrace.analyzer.parts import release_memory

    release_memory()


def start(scheduler: str, bounded: Any, *flags: bool) -> Started:
    """The parts of a trace planned by a worker and sent to the cluster's workers, before the
    command imports the analyzer (pandas: ~0.26 s of CPU; the workers imported it when they
    started): that import, and the rest of the command's start, overlap the reduction.
    `bounded`: parts.Bounded or a dict of its fields; `flags`: parts.dask_tasks's.  What the
    plan warned (the memory bound) is warned here."""
    import warnings

    client = connect(scheduler)
    try:
        client.run(_tune_malloc)  # each worker reduces part after part, as a local one
        first = task(_dask_tasks, (bounded, *flags))
        plan, tasks, said = client.submit(call, first, pure=False).result()
        futures = client.map(call, tasks, pure=False)
    except BaseException:
        client.close()
        raise
    for message in said:
        warnings.warn(message, stacklevel=2)
    return Started(client, plan, futures, bounded)


def _tune_malloc() -> None:
    from iotrace.analyzer.parts import tune_malloc

    tune_malloc()


def _dask_tasks(bounded: Any, *flags: bool) -> tuple[bytes, list[bytes], list[str]]:
    from iotrace.analyzer.parts import dask_tasks

    return dask_tasks(bounded, *flags)


def _yaml() -> str:
    import yaml

    tree: dict[str, Any] = {}
    for key, value in CONFIG.items():
        *path, last = key.split(".")
        node = tree
        for k in path:
            node = node.setdefault(k, {})
        node[last] = value
    return yaml.safe_dump(tree, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m iotrace.cluster",
        description="A Dask LocalCluster on this node with CONFIG, for `iotrace report "
        "--scheduler ADDRESS`: prints the scheduler's address, runs until its standard input "
        "ends (or SIGINT/SIGTERM).",
    )
    ap.add_argument("--workers", type=int, default=2, help="worker processes, one thread each")
    ap.add_argument("--yaml", action="store_true", help="print CONFIG as a Dask YAML file, exit")
    args = ap.parse_args(argv)
    if args.yaml:
        sys.stdout.write(_yaml())
        return 0
    try:
        import dask
        from distributed import LocalCluster
    except ImportError:
        print(
            "iotrace.cluster needs dask.distributed (pip install 'iotrace[dask]')", file=sys.stderr
        )
        return 2

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    dask.config.set(CONFIG)
    with LocalCluster(
        n_workers=args.workers, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        print(cluster.scheduler_address, flush=True)
        try:
            sys.stdin.read()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
