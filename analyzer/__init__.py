"""The analyzer: from a trace directory to DataFrames, reports and exports.

    from iotrace.analyzer import load
    trace = load("iotrace-job-dir")
    trace.events, trace.files, trace.processes, trace.stacks, trace.missed

    from iotrace.analyzer import scan       # larger than memory: a lazy Dask DataFrame
    scan("iotrace-job-dir").groupby("path", observed=True)["bytes"].sum().compute()

See docs/analyzer.md for the columns and the rules behind every number.
"""

from __future__ import annotations

from .load import TruncatedLogWarning, load
from .scan import scan
from .summary import Summary, summarise
from .trace import Trace

__all__ = ["Summary", "Trace", "TruncatedLogWarning", "load", "scan", "summarise"]
