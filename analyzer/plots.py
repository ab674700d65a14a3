"""The report's plots, drawn with matplotlib into inline SVG.

Why matplotlib SVG and not plotly: a plotly page carries its 3.5-4.5 MB JavaScript bundle inline
(no CDN allowed) in every report, and shows nothing without JavaScript; matplotlib's SVGs are a
few tens of KB each, need no script at all (nothing to fail in the browser, prints and archives
as is, opens in any viewer), and stay sharp at any zoom.  What is lost is interactive zooming:
the Perfetto export (`iotrace export --format chrome`) is the tool for exploring a timeline.
Plots with very many shapes are rasterised inside their SVG so that the file stays small.
"""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from iotrace.calls import Op
from iotrace.text import escape

from .access import BUCKETS, OP_CODE, READ, WRITE, Arrays

plt.rcParams.update(
    {
        "svg.fonttype": "none",  # text stays text: smaller, selectable
        "svg.hashsalt": "iotrace",  # stable element ids
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)
COLORS = {"read": "#1f77b4", "write": "#ff7f0e", "metadata": "#2ca02c", "other": "#7f7f7f"}
MAX_ROWS = 32  # processes shown in the timeline
SEGMENTS = 800  # timeline resolution: calls closer than span/SEGMENTS merge into one bar
RASTER_ABOVE = 4000  # shapes in one plot beyond which it is rasterised


def svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(
        buf,
        format="svg",
        bbox_inches="tight",
        metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
    )
    plt.close(fig)
    text = buf.getvalue()
    return re.sub(r"^.*?(<svg\b)", r"\1", text, count=1, flags=re.S)  # drop XML prolog/doctype


def _classes(a: Arrays) -> np.ndarray:
    """0 read, 1 write, 2 metadata (open/close/meta), 3 other I/O, -1 not I/O."""
    cls = np.full(a.n, 3, dtype=np.int8)
    cls[a.op == READ] = 0
    cls[a.op == WRITE] = 1
    for o in (Op.OPEN, Op.CLOSE, Op.META):
        cls[a.op == OP_CODE[o.value]] = 2
    cls[~a.io] = -1
    return cls


def timeline(a: Arrays, procs: pd.DataFrame, span: int) -> tuple[str, int]:
    """Bars where each process was inside I/O calls, by kind.  Returns the SVG and the number
    of processes left out."""
    if a.n == 0 or len(procs) == 0:
        return "", 0
    busy = np.bincount(a.proc[a.io], weights=(a.t_end - a.t_start)[a.io], minlength=len(procs))
    p = procs.assign(busy=busy[procs["proc"].to_numpy()])
    shown = p.sort_values("busy", ascending=False).head(MAX_ROWS)
    shown = shown.sort_values(["rank", "start", "pid"], na_position="last")
    row_of = np.full(len(procs), -1, dtype=np.int64)
    row_of[shown["proc"].to_numpy()] = np.arange(len(shown))
    cls = _classes(a)
    row = row_of[a.proc]
    sel = np.flatnonzero((row >= 0) & (cls >= 0))
    tol = max(span // SEGMENTS, 1)
    key = (row[sel] * 4 + cls[sel]).astype(np.uint16)
    order = sel[np.argsort(key, kind="stable")]  # per (row, kind), in start order
    k = key[np.argsort(key, kind="stable")]
    bounds = np.flatnonzero(np.diff(k)) + 1
    fig, ax = plt.subplots(figsize=(10, 0.9 + 0.28 * len(shown)))
    nshapes = 0
    names = ["read", "write", "metadata", "other"]
    bars: list[tuple[int, int, np.ndarray, np.ndarray]] = []
    for grp in np.split(order, bounds) if len(order) else []:
        r, c = int(row[grp[0]]), int(cls[grp[0]])
        s, e = a.t_start[grp], a.t_end[grp]
        reach = np.maximum.accumulate(e)
        new = np.ones(len(s), dtype=bool)
        new[1:] = s[1:] > reach[:-1] + tol
        starts = s[new]
        idx = np.flatnonzero(new)
        ends = reach[np.r_[idx[1:] - 1, len(s) - 1]]
        widths = np.maximum(ends - starts, tol // 2 + 1)
        bars.append((r, c, starts, widths))
        nshapes += len(starts)
    raster = nshapes > RASTER_ABOVE
    seen: set[int] = set()
    for r, c, starts, widths in bars:
        h = 0.8 / 4
        y = r - 0.4 + c * h
        ax.broken_barh(
            list(zip(starts / 1e9, widths / 1e9, strict=True)),
            (y, h),
            facecolors=COLORS[names[c]],
            label=None if c in seen else names[c],
            rasterized=raster,
        )
        seen.add(c)
    # the stracer's missed syscalls: red ticks (their duration is not known)
    mm = a.missed & (row >= 0)
    if mm.any():
        ax.scatter(
            a.t_start[mm] / 1e9,
            row[mm] + 0.45,
            marker="|",
            s=30,
            color="#d62728",
            label="missed (stracer)",
            rasterized=raster or int(mm.sum()) > RASTER_ABOVE,
        )
    labels = [
        (f"rank {int(x.rank)} " if pd.notna(x.rank) else "") + f"pid {int(x.pid)}"
        for x in shown.itertuples()
    ]
    ax.set_yticks(range(len(shown)), labels)
    ax.set_ylim(len(shown) - 0.5, -0.5)
    ax.set_xlim(0, max(span, 1) / 1e9)
    ax.set_xlabel("seconds since the job started")
    ax.set_title("I/O timeline per process (time inside calls, by kind)", loc="left")
    ax.legend(loc="upper right", fontsize=8, ncols=4, frameon=False, bbox_to_anchor=(1, 1.12))
    return svg(fig), max(0, len(procs) - len(shown))


def bandwidth(bw: pd.DataFrame) -> str:
    """The job's aggregate bandwidth (summary.bandwidth: POSIX level, all processes)."""
    if bw.empty or int(bw["bytes_read"].sum() + bw["bytes_written"].sum()) == 0:
        return ""
    width = float(bw["t_end"].iloc[0] - bw["t_start"].iloc[0])
    fig, ax = plt.subplots(figsize=(10, 2.8))
    for name, col in (("read", "bytes_read"), ("write", "bytes_written")):
        if int(bw[col].sum()) == 0:
            continue
        ax.plot(
            bw["t_start"] / 1e9,
            bw[f"{name}_bw"] / 2**20,
            color=COLORS[name],
            label=name,
            drawstyle="steps-post",
        )
    ax.set_xlabel("seconds since the job started")
    ax.set_ylabel("MiB/s")
    ax.set_title(
        f"Bandwidth over time (the job's aggregate, POSIX level, {width / 1e6:.3g} ms bins)",
        loc="left",
    )
    ax.legend(frameon=False)
    ax.set_ylim(bottom=0)
    return svg(fig)


def sizes(hist: pd.DataFrame) -> str:
    if int(hist["reads"].sum() + hist["writes"].sum()) == 0:
        return ""
    x = np.arange(len(BUCKETS))
    fig, ax = plt.subplots(figsize=(10, 2.8))
    ax.bar(x - 0.2, hist["reads"], 0.4, color=COLORS["read"], label="reads")
    ax.bar(x + 0.2, hist["writes"], 0.4, color=COLORS["write"], label="writes")
    ax.set_xticks(x, BUCKETS)
    ax.set_ylabel("calls")
    ax.set_title("Access sizes (bytes per call)", loc="left")
    ax.legend(frameon=False)
    return svg(fig)


def files(df: pd.DataFrame, top: int = 15) -> str:
    f = df.assign(total=df["bytes_read"] + df["bytes_written"])
    f = f[f["total"] > 0].sort_values("total", ascending=False).head(top)
    if f.empty:
        return ""
    fig, ax = plt.subplots(figsize=(10, 0.8 + 0.3 * len(f)))
    y = np.arange(len(f))
    # names as text: controls escaped, and no '$' starting matplotlib's mathtext
    names = [escape(p, quote=False).replace("$", r"\$") for p in f["path"]]
    labels = [p if len(p) <= 60 else "…" + p[-59:] for p in names]
    ax.barh(y, f["bytes_read"] / 2**20, color=COLORS["read"], label="read")
    ax.barh(
        y,
        f["bytes_written"] / 2**20,
        left=f["bytes_read"] / 2**20,
        color=COLORS["write"],
        label="written",
    )
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("MiB")
    ax.set_title(f"Bytes per file (top {len(f)})", loc="left")
    ax.legend(frameon=False)
    return svg(fig)
