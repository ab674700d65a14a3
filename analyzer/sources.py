"""Where events come from: the kinds of log in a trace directory.

Today one source writes logs: the shim (`HOST.PID[.N].iot`, docs/format.md).  The stracer (issue
3) will write its own log of the syscalls the shim did not see; its format is not defined yet, so
its hook below finds nothing and the `missed` table stays empty (but correctly typed).

To plug the stracer in once its format exists:

1. make `find_stracer_logs` return its log files;
2. if its logs use the shim's chunk/record layout (EVENT records whose `fn` indexes a
   `functions` list of syscall names in its header), nothing else is needed: `load` decodes them
   with the same decoder and marks their rows `source='stracer'`, `missed=True`;
3. if not, give the source its own `read` (see `Source.read`): it must fill a
   `decode.RawColumns` slice and say which process each event belongs to (the `proc` column:
   index into the processes table; a stracer traces many processes from one log).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from iotrace.tracefile import LOG_SUFFIX


@dataclass(frozen=True)
class Source:
    name: str  # the value of the events' `source` column
    missed: bool  # its events are I/O the shim missed
    find: Callable[[Path], list[Path]]  # its logs in a trace directory


def find_shim_logs(trace_dir: Path) -> list[Path]:
    return sorted(p for p in trace_dir.glob(f"*{LOG_SUFFIX}") if p.is_file())


def find_stracer_logs(trace_dir: Path) -> list[Path]:
    """HOOK (issue 3): the stracer's logs in `trace_dir`.  None until its format is defined."""
    del trace_dir
    return []


SHIM = Source("shim", missed=False, find=find_shim_logs)
STRACER = Source("stracer", missed=True, find=find_stracer_logs)
SOURCES: tuple[Source, ...] = (SHIM, STRACER)
SOURCE_NAMES: list[str] = [s.name for s in SOURCES]
