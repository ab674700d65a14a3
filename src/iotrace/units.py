"""Human units for the console and reports (no pandas: `iotrace run` uses them too)."""

from __future__ import annotations

import math
import os
import re

MEMORY_DEFAULT = 2 << 30  # bytes: the bound when neither --memory nor IOTRACE_MEMORY says
MEMORY_ENV = "IOTRACE_MEMORY"


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


def parse_memory(text: str) -> int:
    """'2G', '1500M', '512MiB', '3000000000' -> bytes; ValueError with one line if not."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"not a memory size: {text!r} (e.g. 2G, 1500M)")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m[2].lower()]
    return int(float(m[1]) * scale)


def memory_bound(setting: str | int | None = None) -> int:
    """The memory bound of the analyzer's commands (report, export, diff, show): `setting`,
    else IOTRACE_MEMORY, else MEMORY_DEFAULT."""
    if isinstance(setting, int):
        return setting
    text = setting if setting is not None else os.environ.get(MEMORY_ENV)
    return parse_memory(text) if text else MEMORY_DEFAULT
