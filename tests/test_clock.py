"""Event times (preload/clock.c): CLOCK_MONOTONIC, interpolated from the TSC between a thread's
anchors where the kernel's clock is the TSC.  Each event must lie within the program's own
clock_gettime readings around its call, as if the shim had read that clock itself."""

from __future__ import annotations

from collections import defaultdict

from conftest import build

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
