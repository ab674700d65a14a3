"""The commands besides the report on a trace of many short-lived processes (issue 17: `missed`,
`show` and every export in memory bounded by a setting): what they hold and do per process is
counted here on a trace of N processes (the figures at 20,000 and 100,000 are in bench/README.md,
"procexports")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import iotrace

N = 60  # processes (`cat`, each its log)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("many")
    out = tmp / "trace"
    cmd = f"printf x > f; for i in $(seq {N}); do cat f > /dev/null; done"
    proc = iotrace("run", "-o", str(out), "--", "sh", "-c", cmd, cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    return out


HELD = """
import json, sys, tracemalloc
from pathlib import Path
from iotrace.analyzer.load import shim_logs
tracemalloc.start()
logs = shim_logs(Path(sys.argv[1]), damaged_ok=True)
held = tracemalloc.get_traced_memory()[0]
lists = {id(lg.header.get("functions")) for lg in logs}
print(json.dumps({"logs": len(logs), "held": held, "lists": len(lists)}))
"""


def test_the_headers_held_share_their_function_names(many):
    """Every command lists the trace's logs with their headers (`missed` and the exports hold
    them all at once): a header's ~200 function names were ~17 KiB of Python strings per log,
    1.1 GB of `missed`'s 1.1 GB peak at 20,000 processes; the logs' one list is now one object."""
    run = subprocess.run([sys.executable, "-c", HELD, str(many)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["logs"] > N
    assert got["lists"] <= 2, got  # before: one list per log
    assert got["held"] / got["logs"] < 6 << 10, got  # bytes per log; before: ~19.4 KiB


SHOW_HELD = """
import json, os, sys, tracemalloc
from iotrace import show
d = sys.argv[1]
out = open(os.devnull, "w")
show.show(d, out)  # the imports and the tables made once, outside the count
held, real = [], show._shim_log
def counted(lines, *args):  # memory held as each log is read, beside the lines
    held.append(tracemalloc.get_traced_memory()[0] - lines.held)
    return real(lines, *args)
show._shim_log = counted
tracemalloc.start()
n = show.show(d, out)
print(json.dumps({"logs": len(held), "lines": n, "grown": held[-1] - held[1]}))
"""


def test_show_lets_go_of_each_log_it_has_read(many):
    """`show` held every log's Log, its records and its whole header until the end (~30 KiB a
    log of a short-lived process, 1.19 GB at 20,000 processes): now what a line needs of each
    header, and a log's records only while it is read."""
    run = subprocess.run([sys.executable, "-c", SHOW_HELD, str(many)], capture_output=True,
                         text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["logs"] > N and got["lines"] > N, got
    assert got["grown"] / got["logs"] < 1 << 10, got  # bytes held per log read


DARSHAN_HELD = """
import json, pickle, sys, tempfile
from iotrace.analyzer import darshan, parts
d = sys.argv[1]
plan, _ = parts.planned(parts.Bounded(d, workers=1, part_bytes=1 << 16))
with tempfile.TemporaryDirectory() as tmp:
    got = darshan.Collected()
    for k, t in enumerate(parts.groups(plan)):
        got.add(darshan.collect_parts(d, t, tmp, f"p{k}", None))
print(json.dumps({"records": len(got.stats), "parts": len(plan),
                  "pickled": len(pickle.dumps(got.stats))}))
"""


def test_the_darshan_records_held_until_written_are_small(many):
    """The Darshan export holds every (rank, file) record until the log is written, and each
    part's worker sends its own: ~1 KiB pickled a record (6 KiB in memory), mostly zero sums,
    for a record of a process that opened a file once; now its non-zero numbers (~200 B)."""
    run = subprocess.run([sys.executable, "-c", DARSHAN_HELD, str(many)], capture_output=True,
                         text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["records"] > N and got["parts"] > 1, got
    assert got["pickled"] / got["records"] < 400, got  # before: ~960


EXPORT_LOADS = """
import json, sys, tempfile
from pathlib import Path
from iotrace.analyzer import export, parts
d = sys.argv[1]
b = parts.Bounded(d, workers=1, part_bytes=1 << 16)
plan = [(p.first, p.stop, p.stracer_only) for p in parts.planned(b)[0]]
loads, real = [], parts.load_part
def counted(trace_dir, part, select=None):
    loads.append((part.first, part.stop, part.stracer_only))
    return real(trace_dir, part, select)
parts.load_part = counted
out = {"plan": plan}
with tempfile.TemporaryDirectory() as tmp:
    for fmt in ("darshan", "chrome"):
        loads.clear()
        export.export_parts(fmt, b, Path(tmp) / f"out.{fmt}")
        out[fmt] = list(loads)
print(json.dumps(out))
"""


def test_the_darshan_and_chrome_exports_read_each_part_once(many):
    """The Darshan and Chrome exports read each part's logs once, and nothing else: the whole
    trace's processes table (their ranks, tracks, the job's start) is the parts' own rows
    joined (export.trace_of_parts).  Before, the command loaded the whole trace's metadata once
    more (every header, the stracer log's records), ~14 KB a process at that load's peak: 1.4
    GB of a trace of 100,000 processes in the command beside its workers."""
    run = subprocess.run([sys.executable, "-c", EXPORT_LOADS, str(many)], capture_output=True,
                         text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    plan = sorted(map(tuple, got["plan"]))
    assert len(plan) > 1, got
    for fmt in ("darshan", "chrome"):
        assert sorted(map(tuple, got[fmt])) == plan, (fmt, got)  # before: one more, Part(0, 0)


DARSHAN_FOLDED = """
import json, sys, tempfile
from pathlib import Path
from iotrace.analyzer import darshan, parts

def size(x):  # bytes of Python objects reachable from x (ints, strings, containers, records)
    n = sys.getsizeof(x)
    if isinstance(x, dict):
        return n + sum(size(k) + size(v) for k, v in x.items())
    if isinstance(x, (list, tuple)):
        return n + sum(size(v) for v in x)
    if hasattr(x, "__dict__"):
        return n + size(vars(x))
    return n

got = {}
def measured(trace, collected, out):  # the records as held when the log is written
    got["records"] = len(collected.stats)
    got["held"] = sum(size(v) for v in collected.stats.values())
    return real(trace, collected, out)
real, darshan._write_log = darshan._write_log, measured
with tempfile.TemporaryDirectory() as tmp:
    b = parts.Bounded(sys.argv[1], workers=1, part_bytes=1 << 16)
    darshan.write_darshan_parts(b, Path(tmp) / "out.darshan")
print(json.dumps(got))
"""


def test_the_darshan_records_held_in_the_command_are_packed(many):
    """The command holds every (rank, file) record until the log is written: each packed as it
    arrives (Collected.fold), ~0.8 KB for a process that opened a file once; as a Stats (its
    dicts of counters) it was ~3 KB."""
    run = subprocess.run([sys.executable, "-c", DARSHAN_FOLDED, str(many)], capture_output=True,
                         text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["records"] > N, got
    assert got["held"] / got["records"] < 1200, got  # before: ~3,000


MISSED_HELD = """
import json, sys, tracemalloc
import importlib
load = importlib.import_module("iotrace.analyzer.load")
from iotrace.analyzer import missed_groups
got, real = {}, load.shim_logs
def counted(*args, **kw):  # the logs as `missed` holds them, every one at once
    logs = real(*args, **kw)
    got["logs"] = len(logs)
    got["keys"] = sorted({k for lg in logs for k in lg.header})
    return logs
load.shim_logs = counted
missed_groups.collect(sys.argv[1], True)
print(json.dumps(got))
"""


def test_missed_holds_of_each_header_what_it_reads(many):
    """`missed` holds every shim log's header at once (its processes for the stracer's
    events): each whole (argv, cwd, the function names' list ...: the logs held 2.5 KiB each
    at 5,000 processes, 1.8 now), where it reads seven fields; now those only."""
    from iotrace.analyzer.missed_groups import HEADER

    run = subprocess.run([sys.executable, "-c", MISSED_HELD, str(many)], capture_output=True,
                         text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["logs"] > N, got
    assert "pid" in got["keys"] and "clock" in got["keys"], got
    assert set(got["keys"]) <= HEADER, got  # before: argv, cwd, functions ...


SHOW_SLOGS = """
import json, os, sys
from iotrace import show
got, read, header = {"slogs": [], "held": []}, show.stracer_logs, show.log_header
def listed(*args):  # the stracer's logs as show keeps them
    got["slogs"] = read(*args)
    return got["slogs"]
def opened(*args):  # each shim log's header read: what the stracer's logs hold then
    got["held"].append([len(got["slogs"]),
                        sum(len(sl.procs) + len(sl.kio) for sl in got["slogs"])])
    return header(*args)
show.stracer_logs, show.log_header = listed, opened
n = show.show(sys.argv[1], open(os.devnull, "w"))
print(json.dumps({"lines": n, "slogs": len(got["slogs"]), "held": got["held"]}))
"""


def test_show_holds_no_stracer_process_records_beside_the_listing(many):
    """`show` lists every shim log (what its lines read of each header) and held the stracer's
    logs' process and kernel-count records beside them till the end (~2.2 KiB a process, none
    read by a line: a third of its peak at 5,000 processes); now their forks are taken (a
    reused pid's processes) and the rest let go before the shim logs are listed."""
    run = subprocess.run([sys.executable, "-c", SHOW_SLOGS, str(many)], capture_output=True,
                         text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["lines"] > N and got["slogs"] >= 1 and len(got["held"]) > N, got
    # read before the listing (before: after it, their records held to the end), none held
    assert all(n == got["slogs"] and not held for n, held in got["held"]), got
