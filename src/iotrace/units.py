"""Human units for the console and reports (no pandas: `iotrace run` uses them too)."""

from __future__ import annotations

import math


def fmt_bytes(n: float | None) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def fmt_pct(x: float | None) -> str:
    """A share in %, one decimal; never "100.0%" (nor "0.0%") unless it is all (nothing): a trace
    1 B short of 18 KiB explains 99.99%, not 100.0% (more decimals until it shows)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    p = 100 * x
    for d in range(1, 10):
        text = f"{p:.{d}f}"
        if float(text) not in (100.0, 0.0) or p in (100.0, 0.0):
            break
    return f"{text}%"
