"""Numbers for people: sizes in KiB/MiB/..., times in ns/µs/ms/s, shares in %."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from iotrace.units import fmt_bytes as fmt_bytes  # re-exported: the one byte formatter
from iotrace.units import fmt_pct as fmt_pct  # the one share formatter


def fmt_int(x: Any) -> str:
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{int(x):,}"


def fmt_time(ns: float | None) -> str:
    if ns is None or (isinstance(ns, float) and math.isnan(ns)):
        return "-"
    if ns >= 1e9:
        return f"{ns / 1e9:.3f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{int(ns)} ns"
