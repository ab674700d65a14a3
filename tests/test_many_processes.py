"""A trace of many short-lived processes (issue 17: "small logs must cost what they hold"): a
bounded report's part reads its own logs, not every log of the trace again (a trace of 1,501
one-process parts took 27 min to export with 2 workers: each part opened every log)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import report_in_memory, same_report

N = 100  # processes (`cat`, each its log)

COUNT = """
import importlib, json, sys
from pathlib import Path
from iotrace.analyzer import parts
from iotrace.analyzer.report import report_dict

load = importlib.import_module("iotrace.analyzer.load")  # the module (the package's is load())

d, n_parts = sys.argv[1], int(sys.argv[2])
parts.tune_malloc()  # as a worker and the command line: part after part in one process
logs = load.shim_logs(Path(d))
size = sum(lg.size for lg in logs) // n_parts + 1
plan = parts.plan(d, parts.MEMORY_DEFAULT, 1, part_bytes=size)
opened = []
real = load.regular_size
load.regular_size = lambda p: opened.append(p) or real(p)
got = report_dict(parts.summarise(parts.Bounded(d, workers=1, part_bytes=size))[0])
print(json.dumps({"logs": len(logs), "parts": len(plan), "opened": len(opened), "report": got},
                 default=str))
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
    # and the parts' report, read from that listing, is the in-memory one
    ref = json.loads(json.dumps(report_in_memory(t.dir), default=str))
    diff = same_report(ref, got["report"])
    assert not diff, diff[:10]
