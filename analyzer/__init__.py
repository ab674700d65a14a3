"""The analyzer: from a trace directory to DataFrames, reports and exports.

    from iotrace.analyzer import load
    trace = load("iotrace-job-dir")
    trace.events, trace.files, trace.processes, trace.stacks, trace.missed

    from iotrace.analyzer import scan       # larger than memory: a lazy Dask DataFrame
    scan("iotrace-job-dir").groupby("path", observed=True)["bytes"].sum().compute()

See docs/analyzer.md for the columns and the rules behind every number.

The names below are imported at their first use: a submodule that needs no pandas (the C
decoder's event_columns, which `iotrace show` formats with) costs no pandas (~0.4 s of CPU,
~100 MB) to whoever imports it alone.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .load import TruncatedLogWarning, load
    from .scan import scan
    from .summary import Summary, summarise
    from .trace import Trace

# public name -> the submodule that defines it
_LAZY = {"TruncatedLogWarning": "load", "load": "load", "scan": "scan", "Summary": "summary",
         "summarise": "summary", "Trace": "trace"}  # fmt: skip
__all__ = ["Summary", "Trace", "TruncatedLogWarning", "load", "scan", "summarise"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """The package, whose `load` and `scan` are functions named as their submodules: the import
    of submodule `load` binds the package's `load` to the module (import system), which would
    hide the function from a later `from iotrace.analyzer import load`; that binding is not
    made (the submodule stays in sys.modules: importlib.import_module("iotrace.analyzer.load"))."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
