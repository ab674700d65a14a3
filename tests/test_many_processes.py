"""A trace of many short-lived processes (issue 17: "small logs must cost what they hold"): a
bounded report's part reads its own logs, not every log of the trace again (a trace of 1,501
one-process parts took 27 min to export with 2 workers: each part opened every log), and makes
only its own processes' rows of the tables every part builds the same."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import report_in_memory, same_report

N = 100  # processes (`cat`, each its log)

COUNT = """
import importlib, json, os, sys
from pathlib import Path
from iotrace.analyzer import completeness, log_kinds, parts, schema, stracer_src
from iotrace.analyzer.report import report_dict

load = importlib.import_module("iotrace.analyzer.load")  # the module (the package's is load())

d, n_parts = sys.argv[1], int(sys.argv[2])
parts.tune_malloc()  # as a worker and the command line: part after part in one process
log_kinds.SCAN_TRUSTED_NS = 0  # the trace was just written: its listing kept all the same
logs = load.shim_logs(Path(d))
size = sum(lg.size for lg in logs) // n_parts + 1
plan = parts.plan(d, parts.MEMORY_DEFAULT, 1, part_bytes=size)
opened, scans, rows, images = [], [], {"processes": 0, "kio": 0}, []
real = load.opened
load.opened = lambda i, p: opened.append(p) or real(i, p)
# what a part reads of the other logs of the trace (their _Log objects as listed): the tables
# every part builds the same are made with the first part (stracer_only: it holds the
# stracer-only processes), the others read none
current, others = [None], [0]
real_partial = parts.partial
def partial(d, part, *a, **k):
    current[0] = part
    try:
        return real_partial(d, part, *a, **k)
    finally:
        current[0] = None
parts.partial = partial
get = object.__getattribute__
def getattribute(self, name):
    p = current[0]
    if p is not None and not p.stracer_only and not p.first <= get(self, "proc") < p.stop:
        others[0] += 1
    return get(self, name)
load._Log.__getattribute__ = getattribute
# nor walks every process: the starts of each pid's processes made once for the parts
begun = [0]
real_begins = completeness.begins
def begins(procs):
    begun[0] += current[0] is not None
    return real_begins(procs)
completeness.begins = begins
scandir = os.scandir
os.scandir = lambda p=".": (scans.append(p) if str(p) == d else None) or scandir(p)
typed = load._typed_frame
def counted(r, dtypes):
    kind = {id(schema.PROCESS_COLUMNS): "processes", id(schema.KIO_COLUMNS): "kio"}.get(id(dtypes))
    rows[kind] = rows.get(kind, 0) + len(r)
    return typed(r, dtypes)
load._typed_frame = counted
# a part's per-process rows made of its own processes (before: of every process, each part)
per_proc = parts._per_proc
def own_rows(a, procs, *rest):
    rows["per_proc"] = rows.get("per_proc", 0) + len(procs)
    return per_proc(a, procs, *rest)
parts._per_proc = own_rows
real_images = stracer_src._images
stracer_src._images = lambda *a: images.append(1) or real_images(*a)
got = report_dict(parts.summarise(parts.Bounded(d, workers=1, part_bytes=size))[0])
# the headers a worker keeps: the listing's (of the keys the tables read), and its last part's
listed = load._listing(Path(d)).logs
cached = [h for h, *_ in load._HEADERS.values()]
keys = sorted({k for h in [*(lg.header for lg in listed), *cached] for k in h})
# what a worker's index of the stracer's log holds for its parts: its PROC and KIO records (a
# fork, an exec, an exit, the shim's hello, a reading a process) packed, not as Python lists
import contextlib, gc
from iotrace.analyzer import kept
from iotrace.format import SRec
stracer_src._INDEX.clear()
kept.making = contextlib.nullcontext  # (its objects not frozen out of gc.get_objects)
indexes = [stracer_src.index(p) for p in log_kinds.STRACER.find(Path(d))]
what = ("fork", "exec", "exit", "shim", "attach")
held = sum(type(o) is list and len(o) > 5 and o[0] == SRec.PROC and o[4] in what
           for o in gc.get_objects())
print(json.dumps({"logs": len(logs), "proc_records": held, "parts": len(plan),
                  "opened": len(opened), "report": got,
                  "scans": len(scans), "rows": rows, "images": len(images),
                  "others": others[0], "begins": begun[0], "keys": keys,
                  "headers": len(load._NAMED)}, default=str))
"""


def test_a_part_opens_its_own_logs_not_every_log(trace):
    t = trace("sh", "-c", f"printf x > f; for i in $(seq {N}); do cat f > /dev/null; done")
    assert t.proc.returncode == 0, t.proc.stderr
    run = subprocess.run(
        [sys.executable, "-c", COUNT, str(t.dir), "10"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["logs"] > N and got["parts"] >= 8, got["parts"]
    # each log opened when its part is read, and a part's listing once: not once per part
    # (before: parts x logs, ~2,000 here)
    assert got["opened"] <= 2 * got["logs"], (got["opened"], got["logs"], got["parts"])
    # the tables every part builds the same (its process rows, the stracer's end readings, the
    # stracer's images of every pid, the directory's listing) made once for the parts, not once
    # each (before: parts x processes rows, ~2,000 here; 5 listings and 1 image pass a part);
    # a part's per-process rows its own processes' (before: every process's, ~1,000 here)
    per_log = {k: v / got["logs"] for k, v in got["rows"].items()}
    assert max(per_log.values()) < 3, (got["rows"], got["logs"], got["parts"])
    assert got["images"] <= 2 and got["scans"] <= 4, (got["images"], got["scans"], got["parts"])
    # and beyond the first, a part reads nothing of the other logs (before: ~10 walks of every
    # log a part, the sum of their events, their namespaces, their modules, HDF5 records...: a
    # part's CPU grew with the trace, 0.24 s a part of 2 logs at 20,000 processes)
    assert got["others"] == 0, (got["others"], got["logs"], got["parts"])
    assert got["begins"] <= 1, (got["begins"], got["parts"])  # before: 3 a part
    # a worker holds the trace's headers once, slim: not every log's named again for the parts
    # it reduced (before: every log's twice), nor the keys no table reads (before: 15 a log)
    assert got["headers"] <= 4 * got["logs"] / got["parts"], (got["headers"], got["logs"])
    unread = {"format", "version", "size", "job", "stack_depth", "chunk_size"}
    assert got["keys"] and not unread & set(got["keys"]), got["keys"]
    # the stracer log's index a worker keeps holds its records packed (before: its PROC and KIO
    # records as Python lists, ~2 KB a process at 20,000 processes; ~4 PROC records a process)
    assert got["proc_records"] == 0, (got["proc_records"], got["logs"])
    # and the parts' report, read from that listing, is the in-memory one
    ref = json.loads(json.dumps(report_in_memory(t.dir), default=str))
    diff = same_report(ref, got["report"])
    assert not diff, diff[:10]


RUN_LINE = """
import sys
from pathlib import Path, PurePath
from iotrace.kio import run_line

d, n = Path(sys.argv[1]), int(sys.argv[2])
for pid in range(1000, 1000 + n):
    (d / f"vm.{pid}.iot").touch()  # logs never written: each is skipped, after the selection
compared = [0]
eq = PurePath.__eq__
def counted(a, b):
    compared[0] += 1
    return eq(a, b)
PurePath.__eq__ = counted
run_line(d, "vm", 1000)
print(compared[0])
"""


def test_the_runs_end_line_picks_its_logs_in_one_pass(tmp_path):
    """`iotrace run`'s end line (kio.run_job) picks the run's logs from the directory's: a
    list's `in` per log made it O(logs^2) (20,000 short processes, 40,000 logs: the run went on
    for an hour after its command had ended)."""
    n = 2000
    run = subprocess.run(
        [sys.executable, "-c", RUN_LINE, str(tmp_path), str(n)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) <= 3 * n, run.stdout  # before: ~n^2 / 2 comparisons of paths
