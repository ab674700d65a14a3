"""Event times (preload/clock.c): CLOCK_MONOTONIC, interpolated from the TSC between a thread's
anchors where the kernel's clock is the TSC.  Each event must lie within the program's own
clock_gettime readings around its call, as if the shim had read that clock itself."""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict

from conftest import build, iotrace
from iotrace.analyzer import load
from iotrace.analyzer.summary import summarise
from iotrace.stracer import slog

from iotrace.tracefile import log_paths, read_log

SLACK_NS = 200  # an anchor's own error (<= ~0.1 us) and an unfenced rdtsc's few ns


def test_event_times_lie_within_the_programs_own_clock_readings(trace):
    """Two threads, 9,000 writes each, in rounds between sleeps longer than an anchor lives,
    over longer than the scale takes to measure (an anchor whose scale was off by 0.5%, tried:
    events ended up to 0.5 us late)."""
    t = trace(build("clock_bracket"), stack=0, extra=("--no-stracer",))
    assert t.proc.returncode == 0, t.proc.stderr
    stamps: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for line in t.proc.stdout.splitlines():
        tid, before, after = map(int, line.split())
        stamps[tid].append((before, after))
    events: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for e in t.events("write"):
        if e["path"] == "/dev/null":
            events[e["tid"]].append((e["t_start"], e["t_start"] + e["dur"]))
    assert sorted(map(len, events.values())) == sorted(map(len, stamps.values())) == [9000] * 2
    out = [
        (tid, i, ev, st)
        for tid, evs in events.items()
        for i, (ev, st) in enumerate(zip(evs, stamps[tid], strict=True))
        if not (st[0] - SLACK_NS <= ev[0] <= ev[1] <= st[1] + SLACK_NS)
    ]
    assert not out, f"{len(out)} events outside their call: {out[:5]}"


def _offset() -> int:
    """CLOCK_REALTIME - CLOCK_MONOTONIC here, from the tightest of many pairs (a preemption
    between a pair's reads only makes its difference larger)."""
    pairs = []
    for _ in range(2000):
        mono = time.monotonic_ns()
        pairs.append(time.time_ns() - mono)
    return min(pairs)


def test_a_preempted_clock_pair_misaligns_nothing(tmp_path):
    """Each log's header pairs CLOCK_MONOTONIC with CLOCK_REALTIME (its times' alignment with
    every other log's).  A preemption between the pair's two reads (64 ms measured at a load of
    19; made certain here: preloaded late_realtime takes each process's first such real reading
    200 ms late) made every time of that log 200 ms off against the others': the stracer's
    stops fell outside the sem_open calls they held (held in 2 of 3 under load, once, and 0 of
    3 here), and exec'd images' loader reads in no process of the completeness table.  Every
    pair is read whole (_clockpair.h, slog.clock_pair): the shim's, the stracer's, the run's."""
    lib = build("late_realtime", "-shared", "-fPIC", "-ldl")
    env = {**os.environ, "LD_PRELOAD": str(lib), "LATE_REALTIME_MS": "200"}
    out = tmp_path / "t"
    prog = build("shm_names")
    p = iotrace("run", "-o", str(out), "--", prog, f"iotrace-late-{os.getpid()}", env=env)
    assert p.returncode == 0, p.stderr
    want = _offset()
    got = {path.name: _pair(read_log(path).header["clock"]) for path in log_paths(out)}
    (st,) = out.glob("*.stracer")
    got[st.name] = _pair(slog.read_header(st)["clock"])
    (run,) = out.glob("iotrace-run.*.json")
    rec = json.loads(run.read_text())
    got[run.name] = rec["start_real_ns"] - rec["start_mono_ns"]
    assert len(got) == 3 and all(abs(v - want) < 50_000_000 for v in got.values()), (want, got)
    s = summarise(load(out))
    assert s.overview["stracer_held_events"] >= 3  # the three sem_open of the long name


def _pair(clock: dict[str, int]) -> int:
    return clock["real"] - clock["mono"]
