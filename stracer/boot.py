"""`iotrace-stracer`, the stracer's process (stracer/launch.py): what must precede its imports.

msgpack imports datetime for its Timestamp type, which the stracer never packs: datetime.py
runs a whole pure-Python implementation (~1.5-2 ms of every stracer's start, per rank under
mpirun) and then replaces it with its C half, _datetime.  The stracer takes the C half as the
module directly: the same classes, without the pure-Python body (issue 19).  Done on import, so
that importing this module first gives what the stracer's start imports (bench/cost_bench.py).
(signal.py is the same case -- enums over _signal, ~0.7 ms -- but other modules a stracer may
import later use its enums, subprocess's errors among them: the stracer's modules import
_signal themselves instead.)"""

from __future__ import annotations

import sys

try:
    import _datetime
except ImportError:  # a build without it: datetime.py's own implementation is used
    pass
else:
    sys.modules.setdefault("datetime", _datetime)


def main() -> None:
    from iotrace.stracer.launch import main as stracer

    stracer()
