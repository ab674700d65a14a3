"""The command's side of a bounded report of many processes (issue 17): what it holds while it
merges the parts' sums and writes the report.  A trace of 100,002 processes must fit the memory
bound: the merge makes each process's explained counters (kio.Process, ~1.9 KB of objects) one
at a time from the parts' packed C records, and the JSON is written as it is encoded, never
joined whole (json.dumps held ~360 pieces per process: 324 MB for 20,002 processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

N = 60  # processes (`cat`, each its log)


def _cats(trace, n: int, prog: str = "cat f") -> Any:
    """A trace of a shell running `prog` n times (a log each)."""
    t = trace("sh", "-c", f"printf x > f; for i in $(seq {n}); do {prog} > /dev/null; done")
    assert t.proc.returncode == 0, t.proc.stderr
    return t


def _script(script: str, trace_dir: Path) -> Any:
    """What `script` prints (JSON) about the trace, run in a fresh interpreter."""
    run = subprocess.run([sys.executable, "-c", script, str(trace_dir)], capture_output=True,
                         text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


MERGE = """
import gc, json, sys
from iotrace import kio
from iotrace.analyzer import parts
from iotrace.analyzer import report

d = sys.argv[1]
live = []  # kio.Process objects alive as the merge adds each process to the job's sums
add_all = kio.Job.add_all
def counted(self, procs):
    def each():
        for x in procs:
            live.append(sum(type(o) is kio.Process for o in gc.get_objects()))
            yield x
    return add_all(self, each())
kio.Job.add_all = counted
s, _ = parts.summarise(parts.Bounded(d, workers=1, part_bytes=1))  # a part per process
writes = []
class Out:
    def write(self, text):
        writes.append(text)
report.write_json(s, Out())
whole = json.dumps(report.report_dict(s), indent=1, ensure_ascii=False) + "\\n"
# the records made column by column: each table's rows as pandas makes them, cleaned
frames = [v for v in vars(s).values() if hasattr(v, "to_dict")]
frames.append(s.completeness["processes"])
slow = [[report._clean(r) for r in f.astype(object).to_dict("records")] for f in frames]
print(json.dumps({"live": live, "rows": len(s.completeness["processes"]),
                  "same": "".join(writes) == whole, "writes": [len(w) for w in writes],
                  "records": [report._records(f) == r for f, r in zip(frames, slow)]}))
"""


def test_the_merge_holds_no_process_objects_and_the_json_is_written_as_encoded(trace):
    got = _script(MERGE, _cats(trace, N).dir)
    assert got["rows"] > N and len(got["live"]) == got["rows"]
    # one process made at a time (before: every process of every part, and link's copies)
    assert max(got["live"]) <= 2, got["live"]
    # the text json.dumps made, in blocks of JSON_BLOCK characters or a piece more
    assert got["same"]
    assert len(got["records"]) > 10 and all(got["records"]), got["records"]
    from iotrace.analyzer.report import JSON_BLOCK

    blocks = got["writes"]
    assert len(blocks) >= sum(blocks) // (2 * JSON_BLOCK), blocks
    assert max(blocks) < 2 * JSON_BLOCK, blocks


def test_the_command_folds_the_parts_as_they_arrive(trace, monkeypatch):
    # a part per process: ~2N partials, which the command held every one of until the merge
    # (~3.4 KB a process: 340 MB at 100,002 processes); now folded in as they arrive
    import gc

    import numpy as np
    import pandas as pd
    from iotrace.analyzer import parts
    from iotrace.analyzer.report import report_json

    t = _cats(trace, N)
    b = parts.Bounded(t.dir, workers=1, part_bytes=1)
    alive = []
    merge = parts.merge

    def counted(partials):
        alive.append(sum(type(o) is parts.Partial for o in gc.get_objects()))
        return merge(partials)

    monkeypatch.setattr(parts, "merge", counted)
    s, _, held, _ = parts.run(b, plots=True)
    # every partial as it came, merged at once (export's way: it reads each again)
    whole, _, every, _ = parts.run(b, export=True, plots=True)
    assert len(every) > 3 * parts.FOLD_EVERY, len(every)
    # a few folded partials (a binary counter's: O(log parts)) alive; before: every partial
    assert alive[0] == len(held) <= 4, (len(held), alive)
    assert report_json(s) == report_json(whole)
    # the plots' float sums too, to the last bit (summed in the parts' order)
    a, w = s.over_time, whole.over_time
    assert a is not None and w is not None and sorted(a.heatmap) == sorted(w.heatmap)
    assert all(np.array_equal(a.heatmap[r], w.heatmap[r]) for r in w.heatmap)
    assert a.lanes.busy == w.lanes.busy and len(w.lanes.bars)
    pd.testing.assert_frame_equal(a.lanes.bars, w.lanes.bars)
    assert s.bandwidth.equals(whole.bandwidth) and s.bandwidth["read_bw"].max() > 0


PLAN = """
import importlib, json, sys
from pathlib import Path
from iotrace.analyzer import parts

load = importlib.import_module("iotrace.analyzer.load")  # the module (the package's is load())
d = Path(sys.argv[1])
opened = []
real = load._open
load._open = lambda lg, *a: opened.append(lg.path.name) or real(lg, *a)
pl = parts.plan(d, parts.MEMORY_DEFAULT, 2, part_bytes=1)  # a part per process
n_opened = len(opened)
keys = [(lg.header.get("host"), lg.header.get("pid")) for lg in load.shim_logs(d)]
print(json.dumps({"opened": n_opened, "logs": len(keys),
                  "parts": [[p.first, p.stop, p.group] for p in pl], "keys": keys}))
"""


def test_the_plan_reads_no_header_and_keeps_each_process_whole(trace):
    # the plan read every log's header in the command, serially, before any worker started
    # (~65 us a log: 13 s of 200,000 logs) and kept them (~3.4 KB a log): now the names and
    # sizes only, a process's logs (its exec'd images: HOST.PID.N.iot) still in one part
    # (here, each process larger than a part: its logs one group, reduced in order)
    t = _cats(trace, N // 4, "(exec cat f)")
    got = _script(PLAN, t.dir)
    assert got["opened"] == 0, got["opened"]
    keys = [tuple(k) for k in got["keys"]]
    owner = {}
    for first, stop, group in got["parts"]:
        assert len(set(keys[first:stop])) <= 1, keys[first:stop]  # one process a part
        for k in keys[first:stop]:  # and each process in one part (or one group of parts)
            assert owner.setdefault(k, (first, group)) == (first, group) or group >= 0, k
            assert owner[k][1] == group, k
    images = len(keys) - len(set(keys))
    assert images >= N // 4 and len(got["parts"]) > N // 4, (images, len(got["parts"]))


def test_a_logs_name_tells_which_logs_may_be_one_process():
    from iotrace.analyzer.parts import _may_share

    assert _may_share("vm.1013.iot", "vm.1013.1.iot")
    assert not _may_share("vm.1013.1.iot", "vm.1058.iot")
    assert not _may_share("vm.1013.iot", "vm.10130.iot")
    # a host ending in .digits: HOST.PID.N or HOST'.PID', never cut where one process may be
    assert _may_share("10.0.0.5.100.iot", "10.0.0.5.100.1.iot")
    assert _may_share("node.7.iot", "node.7.2.iot")
    assert not _may_share("10.0.0.5.100.1.iot", "10.0.0.5.101.iot")


WARN = """
import json, os, sys
from iotrace.analyzer import parts
from iotrace.stracer import slog

me, held = os.getpid(), []
real = slog.read
def read(path, *a, **k):
    log = real(path, *a, **k)
    if os.getpid() == me:  # the command's reads (its 2 workers, forked, read theirs)
        held.append(len(log.procs) + len(log.kio) + len(log.missed) + len(log.stops))
    return log
slog.read = read
parts.summarise(parts.Bounded(sys.argv[1], workers=2, part_bytes=1))
print(json.dumps(held))
"""


def test_the_commands_warning_of_logs_cut_short_holds_no_stracer_record(trace):
    # _warn read the stracer's log whole in the command to know whether it was cut short: the
    # 20,002-process trace's 12 MB log held 133 MB of records there (its peak at the merge)
    got = _script(WARN, _cats(trace, N // 4).dir)
    assert got == [0], got  # read through once, nothing held


ROWS = """
import json, sys
from iotrace.analyzer import parts, report

s, _ = parts.summarise(parts.Bounded(sys.argv[1], workers=1))
whole = json.dumps(report.report_dict(s), indent=1, ensure_ascii=False) + "\\n"
report.ROWS_BLOCK, report.JSON_BLOCK = 8, 256  # (a block of rows, of text: ~60 processes)
made, at_write, writes = [0], [], []
records = report._records
def counted(df):
    made[0] += len(df)
    return records(df)
report._records = counted
class Out:
    def write(self, text):
        at_write.append(made[0])
        writes.append(text)
report.write_json(s, Out())
print(json.dumps({"same": "".join(writes) == whole, "made": made[0], "at_write": at_write,
                  "processes": len(s.processes)}))
"""


def test_the_jsons_rows_are_made_as_they_are_written(trace):
    # report_dict made every process's row dicts (processes, completeness, their tables) before
    # the first byte was written: ~3 KB a process of the command's peak (61 MB at 20,002)
    got = _script(ROWS, _cats(trace, N).dir)
    assert got["same"]  # the same text
    assert got["processes"] > N and got["made"] > got["processes"], got
    # rows made block by block between writes, not all before the first
    assert got["at_write"][0] < got["processes"], got["at_write"][:5]
    assert len(set(got["at_write"])) > got["processes"] // 8, got["at_write"]
