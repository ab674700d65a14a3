"""`iotrace-stracer`, the stracer's process (stracer/launch.py): what must precede its imports.

Two stdlib modules are taken as their C halves, which hold what the stracer uses, without the
Python body that costs every stracer's start (per rank under mpirun: issue 19):
- msgpack imports datetime for its Timestamp type, which the stracer never packs: datetime.py
  runs a whole pure-Python implementation (~1.5-2 ms) and then replaces it with _datetime;
- signal.py re-exports _signal's functions and constants and builds enums over them (Signals,
  Handlers, Sigmasks: ~2.6 M instructions, ~0.7 ms, enum's _convert_ over the module), which
  the stracer never names: it sets, blocks and compares signals by number.
Done on import, so that importing this module first gives what the stracer's start imports
(bench/cost_bench.py)."""

from __future__ import annotations

import sys

for _full, _c in (("datetime", "_datetime"), ("signal", "_signal")):
    try:
        sys.modules.setdefault(_full, __import__(_c))
    except ImportError:  # a build without it: the module's own implementation is used
        pass


def main() -> None:
    from iotrace.stracer.launch import main as stracer

    stracer()
