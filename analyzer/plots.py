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
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from iotrace.text import escape

from .access import BUCKETS
from .over_time import OverTime

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


def legend(ax: Axes) -> None:
    """The legend beside the axes, right of them: never over the data (by construction)."""
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8, frameon=False
    )


def rank_heatmap(ot: OverTime) -> str:
    """Ranks x time: bytes moved (POSIX level) and time inside I/O calls on files, per rank and
    time bin (as Darshan's summary has; over_time.heatmap); every rank is a row, whatever their
    number."""
    if not ot.heatmap:
        return ""
    ranks = np.array(sorted(ot.heatmap))
    grid = np.stack([ot.heatmap[int(r)] for r in ranks])  # ranks x 2 x bins
    span = max(int(ot.span), 1)
    panels = [("bytes moved (MiB)", grid[:, 0] / 2**20), ("time in I/O calls on files (ms)",
              grid[:, 1] / 1e6)]  # fmt: skip
    height = 1.4 + min(len(ranks), 64) * 0.09
    fig, axes = plt.subplots(1, 2, figsize=(11, height), sharey=True)
    for ax, (name, grid) in zip(axes, panels, strict=True):
        im = ax.imshow(
            grid,
            aspect="auto",
            interpolation="nearest",
            cmap="viridis",
            extent=(0, span / 1e9, len(ranks) - 0.5, -0.5),
        )
        fig.colorbar(im, ax=ax, location="right", pad=0.02, fraction=0.05)
        ax.set_title(f"Per rank: {name}", loc="left")
        ax.set_xlabel("seconds since the job started")
    if len(ranks) <= 32:
        axes[0].set_yticks(range(len(ranks)), [f"rank {int(r)}" for r in ranks])
    else:
        ticks = np.linspace(0, len(ranks) - 1, 9).round().astype(int)
        axes[0].set_yticks(ticks, [f"rank {int(ranks[t])}" for t in ticks])
    axes[0].set_ylabel("rank")
    return svg(fig)


def timeline(ot: OverTime, procs: pd.DataFrame) -> tuple[str, int]:
    """Bars where each process was inside I/O calls, by kind (over_time.lanes).  Returns the
    SVG and the number of processes left out."""
    ln = ot.lanes
    span = max(int(ot.span), 1)
    if not ln.busy or len(procs) == 0:
        return "", 0
    shown = procs[procs["proc"].isin(ln.top())]
    shown = shown.sort_values(["rank", "start", "pid"], na_position="last")
    row_of = {int(p): i for i, p in enumerate(shown["proc"])}
    fig, ax = plt.subplots(figsize=(10, 0.9 + 0.28 * len(shown)))
    names = ["read", "write", "metadata", "other"]
    raster = len(ln.bars) > RASTER_ABOVE
    seen: set[int] = set()
    for (p, c), g in ln.bars.groupby(["proc", "cls"], sort=True):
        h = 0.8 / 4
        y = row_of[int(p)] - 0.4 + int(c) * h
        ax.broken_barh(
            list(zip(g["start"] / 1e9, g["width"] / 1e9, strict=True)),
            (y, h),
            facecolors=COLORS[names[int(c)]],
            label=None if c in seen else names[int(c)],
            rasterized=raster,
        )
        seen.add(int(c))
    # the stracer's missed syscalls: red ticks (their duration is not known)
    if len(ln.missed):
        ax.scatter(
            ln.missed["t"] / 1e9,
            [row_of[int(p)] + 0.45 for p in ln.missed["proc"]],
            marker="|",
            s=30,
            color="#d62728",
            label="missed (stracer)",
            rasterized=raster or len(ln.missed) > RASTER_ABOVE,
        )
    labels = [
        (f"rank {int(x.rank)} " if pd.notna(x.rank) else "") + f"pid {int(x.pid)}"
        for x in shown.itertuples()
    ]
    ax.set_yticks(range(len(shown)), labels)
    ax.set_ylim(len(shown) - 0.5, -0.5)
    ax.set_xlim(0, span / 1e9)
    ax.set_xlabel("seconds since the job started")
    ax.set_title("I/O timeline per process (time inside calls, by kind)", loc="left")
    legend(ax)
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
    legend(ax)
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
    legend(ax)
    return svg(fig)


def files(df: pd.DataFrame, top: int = 15) -> str:
    """Bytes per file (paths: pipes and sockets are no files)."""
    df = df[df["path"].astype(str).str.startswith("/")]
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
    legend(ax)
    return svg(fig)
