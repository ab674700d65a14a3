"""`iotrace diff A B [--json] [--map OLD=NEW]`: what changed from run A to run B.

Both traces are summarised as `report` summarises one (analyzer/summary.py); then, side by side
with the change: the totals, and time, bytes and calls per function, file, rank and call site;
the findings (analyzer/insights.py) that appeared in B or went away from A; a verdict line on
top.  Files are matched by path, after A's paths are rewritten by each `--map OLD=NEW` (a prefix
OLD becomes NEW: runs in different directories); call sites by their label (function and source
line); findings by their key (and subject, where a finding names one).
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from iotrace.record import field, record
from iotrace.text import escape
from iotrace.tracedir import write_atomic

from .fmt import fmt_bytes, fmt_int, fmt_time
from .insights import Insight
from .summary import Summary

TOP_ROWS = 15  # rows per table on the console (JSON: all)

# (name in JSON, label, kind) of the totals compared; kind picks the formatter
TOTALS = (
    ("run_time", "run time", "time"),
    ("io_time", "I/O time", "time"),
    ("bytes_read", "bytes read", "bytes"),
    ("bytes_written", "bytes written", "bytes"),
    ("reads", "reads", "int"),
    ("writes", "writes", "int"),
    ("metadata_ops", "metadata calls", "int"),
    ("mpi_bytes_read", "MPI-IO bytes read", "bytes"),
    ("mpi_bytes_written", "MPI-IO bytes written", "bytes"),
    ("errors", "failed calls", "int"),
    ("missed", "missed syscalls", "int"),
    ("events", "calls", "int"),
    ("files", "files", "int"),
    ("processes", "processes", "int"),
)
# per table: the key column and the compared columns (name, kind), the first ones ordering the
# rows (the largest change first); the console shows the columns up to CONSOLE_COLUMNS
TABLES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "functions": ("function", (("time", "time"), ("bytes", "bytes"), ("calls", "int"))),
    "files": (
        "path",
        (
            ("bytes_read", "bytes"),
            ("bytes_written", "bytes"),
            ("ops", "int"),
            ("io_time", "time"),
            ("reads", "int"),
            ("writes", "int"),
        ),
    ),
    "ranks": (
        "rank",
        (
            ("io_time", "time"),
            ("bytes_read", "bytes"),
            ("bytes_written", "bytes"),
            ("reads", "int"),
            ("writes", "int"),
        ),
    ),
    "sites": ("site", (("time", "time"), ("bytes", "bytes"), ("calls", "int"))),
}
CONSOLE_COLUMNS = 4
LABELS = {"bytes_read": "read", "bytes_written": "written", "io_time": "I/O time", "ops": "calls"}
FORMAT = {"time": fmt_time, "bytes": fmt_bytes, "int": fmt_int}


class DiffError(Exception):
    """Bad diff input (a --map that is not OLD=NEW): one line for the user."""


def parse_maps(specs: list[str]) -> list[tuple[str, str]]:
    """Each OLD=NEW; a relative prefix is taken against the current directory, as `--path`
    globs are (recorded paths are absolute: `--map run1=run2` from the runs' parent)."""
    out = []
    for s in specs:
        old, sep, new = s.partition("=")
        if not sep or not old:
            raise DiffError(f"--map {s!r}: expected OLD=NEW (a path prefix of A and its B)")
        out.append((_absolute(old), _absolute(new)))
    return out


def _absolute(prefix: str) -> str:
    return prefix if prefix.startswith("/") or not prefix else os.path.abspath(prefix)


# a kernel object's name holds its inode number (`pipe:[9402591]`), another in each run: the
# runs' pipes (sockets ...) are compared together, as one row each
_KERNEL_OBJECT = re.compile(r"^(pipe|socket):\[\d+\]$")


def _file_key(p: str, maps: list[tuple[str, str]]) -> str:
    return _KERNEL_OBJECT.sub(r"\1:[*]", map_path(p, maps))


def map_path(p: str, maps: list[tuple[str, str]]) -> str:
    """A's path as B would spell it: the first --map whose OLD prefixes it (a whole path
    component: OLD=/a/run1 maps /a/run1/x, not /a/run10/x)."""
    for old, new in maps:
        base = old.rstrip("/")
        if p == base or p.startswith(base + "/"):
            return new.rstrip("/") + p[len(base) :]
    return p


@record
class Diff:
    a: str
    b: str
    verdict: str
    totals: list[dict[str, Any]]
    tables: dict[str, pd.DataFrame]
    appeared: list[Insight] = field(default_factory=list)
    gone: list[Insight] = field(default_factory=list)
    kept: list[Insight] = field(default_factory=list)


def _change(a: float | None, b: float | None) -> float | None:
    """Relative change from a to b (None: not defined)."""
    if a is None or b is None:
        return None
    if a == 0:
        return None if b == 0 else math.inf
    return (b - a) / a


def _pct(x: float | None) -> str:
    if x is None or x == 0:
        return "="
    if math.isinf(x):
        return "new"
    return f"{100 * x:+.1f}%"


def _side(s: Summary, name: str, maps: list[tuple[str, str]]) -> pd.DataFrame:
    key, cols = TABLES[name]
    src = {"functions": s.functions, "files": s.files, "ranks": s.ranks,
           "sites": s.call_sites}[name]  # fmt: skip
    names = [c for c, _ in cols]
    if src is None or src.empty or key not in src.columns:
        return pd.DataFrame({key: pd.Series([], dtype=object), **{c: [] for c in names}})
    df = src[[key, *names]].copy()
    if name == "files":
        df[key] = df[key].map(lambda p: _file_key(str(p), maps))
        df = df.groupby(key, as_index=False, sort=False)[names].sum()
    return df


@record
class Side:
    """What diff compares of one run: its totals, its tables' compared columns (A's paths
    already mapped) and its findings with their keys.  The command makes A's before it
    summarises B and lets A's Summary go: a trace of many processes holds rows per process
    there (its processes, per-process and per-rank tables) that diff never reads."""

    totals: dict[str, int]
    tables: dict[str, pd.DataFrame]
    insights: dict[tuple[str, str], Insight]


def side(s: Summary, maps: list[tuple[str, str]] | None = None) -> Side:
    """Run A's side (`maps`: its paths rewritten as B spells them), or B's (no maps)."""
    maps = maps or []
    return Side(
        {name: int(s.overview.get(name) or 0) for name, _, _ in TOTALS},
        {name: _side(s, name, maps if name == "files" else []) for name in TABLES},
        {_finding_key(i, maps): i for i in s.insights},
    )


def _table(a: pd.DataFrame, b: pd.DataFrame, name: str) -> pd.DataFrame:
    """key, then per compared column: <col>_a, <col>_b, <col>_delta; sorted by the largest
    change of the first two columns together (files: bytes read and written; the others: time),
    then of the third.  A call site missing on one side (outside that run's top sites) has no
    value there (NA), not 0."""
    key, cols = TABLES[name]
    m = a.merge(b, on=key, how="outer", suffixes=("_a", "_b"))
    order = []
    for c, _ in cols:
        for side in ("a", "b"):
            col = f"{c}_{side}"
            m[col] = m[col].astype("Int64") if name == "sites" else m[col].fillna(0).astype("int64")
        m[f"{c}_delta"] = m[f"{c}_b"] - m[f"{c}_a"]
        order.append(f"{c}_delta")
    k0 = m[order[0]].abs() + (m[order[1]].abs() if name == "files" else 0)
    m["_k0"] = k0.fillna(-1)
    m["_k1"] = m[order[2 if name == "files" else 1]].abs().fillna(-1)
    m = m.sort_values(["_k0", "_k1"], ascending=False, kind="stable")
    return m.drop(columns=["_k0", "_k1"]).reset_index(drop=True)


def _finding_key(i: Insight, maps: list[tuple[str, str]]) -> tuple[str, str]:
    subject = getattr(i, "subject", None)
    subject = map_path(str(subject), maps) if subject else ""
    return (i.key, subject)


def _verdict(totals: list[dict[str, Any]], appeared: int, gone: int) -> str:
    t = {r["name"]: r for r in totals}
    parts = []
    for name in ("io_time", "bytes_read", "bytes_written", "events"):
        r = t[name]
        if r["a"] == 0 and r["b"] == 0:
            continue
        fmt = FORMAT[r["kind"]]
        parts.append(f"{r['label']} {fmt(r['a'])} → {fmt(r['b'])} ({_pct(r['change'])})")
    parts.append(f"findings: {gone} went away, {appeared} appeared")
    return "B against A: " + "; ".join(parts)


def diff(
    sa: Summary | Side, sb: Summary | Side, a: str, b: str, maps: list[tuple[str, str]]
) -> Diff:
    """B against A; a Summary is taken as side() takes it (A's paths mapped by `maps`)."""
    da = sa if isinstance(sa, Side) else side(sa, maps)
    db = sb if isinstance(sb, Side) else side(sb)
    totals = []
    for name, label, kind in TOTALS:
        va, vb = da.totals[name], db.totals[name]
        totals.append({"name": name, "label": label, "kind": kind, "a": va, "b": vb,
                       "delta": vb - va, "change": _change(va, vb)})  # fmt: skip
    tables = {name: _table(da.tables[name], db.tables[name], name) for name in TABLES}
    ka, kb = da.insights, db.insights
    appeared = [i for k, i in kb.items() if k not in ka]
    gone = [i for k, i in ka.items() if k not in kb]
    kept = [i for k, i in kb.items() if k in ka]
    return Diff(a, b, _verdict(totals, len(appeared), len(gone)), totals, tables, appeared,
                gone, kept)  # fmt: skip


# ---- output -------------------------------------------------------------------------------


def _clean(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float):
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf"
        return int(v) if v.is_integer() else v
    if hasattr(v, "item"):
        return _clean(v.item())
    return v


def _insight(i: Insight) -> dict[str, Any]:
    out = {"key": i.key, "level": i.level, "title": i.title}
    subject = getattr(i, "subject", None)
    if subject:
        out["subject"] = subject
    return out


def diff_dict(d: Diff) -> dict[str, Any]:
    return {
        "a": d.a,
        "b": d.b,
        "verdict": d.verdict,
        "totals": {
            r["name"]: {k: _clean(r[k]) for k in ("a", "b", "delta", "change")} for r in d.totals
        },
        **{
            name: [{k: _clean(v) for k, v in row.items()} for row in df.to_dict("records")]
            for name, df in d.tables.items()
        },
        "findings": {
            "appeared": [_insight(i) for i in d.appeared],
            "went_away": [_insight(i) for i in d.gone],
            "in_both": [_insight(i) for i in d.kept],
        },
    }


def diff_json(d: Diff) -> str:
    return json.dumps(diff_dict(d), indent=1)


def _cell(kind: str, v: Any) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return FORMAT[kind](v)


def _delta(kind: str, v: Any) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if v == 0:
        return "="
    return ("+" if v > 0 else "-") + FORMAT[kind](abs(v))


def print_diff(d: Diff, console: Console) -> None:
    console.print(d.verdict, soft_wrap=True, markup=False)
    console.print(f"A: {escape(d.a)}\nB: {escape(d.b)}")
    t = Table(title="Totals", title_justify="left", title_style="bold", header_style="bold")
    for col in ("", "A", "B", "change"):
        t.add_column(col, justify="left" if not col else "right")
    for r in d.totals:
        t.add_row(r["label"], _cell(r["kind"], r["a"]), _cell(r["kind"], r["b"]),
                  f"{_delta(r['kind'], r['delta'])} ({_pct(r['change'])})"
                  if r["delta"] else "=")  # fmt: skip
    console.print(t)
    titles = {"functions": "Per function", "files": "Per file", "ranks": "Per rank",
              "sites": "Per call site (each run's top sites; - = not among them)"}  # fmt: skip
    for name, df in d.tables.items():
        if df.empty:
            continue
        key, cols = TABLES[name]
        t = Table(title=titles[name], title_justify="left", title_style="bold",
                  header_style="bold")  # fmt: skip
        t.add_column(key)
        shown = cols[:CONSOLE_COLUMNS]
        for c, _ in shown:
            for side in ("A", "B", "Δ"):
                t.add_column(f"{LABELS.get(c, c)} {side}", justify="right")
        for row in df.head(TOP_ROWS).to_dict("records"):
            cells = [escape(str(row[key]))]
            for c, kind in shown:
                cells += [_cell(kind, row[f"{c}_a"]), _cell(kind, row[f"{c}_b"]),
                          _delta(kind, row[f"{c}_delta"])]  # fmt: skip
            t.add_row(*cells)
        if len(df) > TOP_ROWS:
            t.caption = f"{len(df) - TOP_ROWS} more in --json"
        console.print(t)
    for title, found in (("Findings that appeared in B", d.appeared),
                         ("Findings that went away (in A, not in B)", d.gone)):  # fmt: skip
        console.print(f"[bold]{title}[/bold]: {len(found) or 'none'}")
        for i in found:
            console.print(f"  [{i.level}] {escape(i.title)}", markup=False)


def render_html(d: Diff) -> str:
    """The comparison as one self-contained HTML page (the report's style)."""
    from .html import CSS, _e, _table

    parts = [
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>",
        f"<title>iotrace diff</title><style>{CSS}</style></head><body>",
        f"<h1>iotrace diff</h1><div class='sub'>A: {_e(d.a)} — B: {_e(d.b)}</div>",
        f"<p><b>{_e(d.verdict)}</b></p><h2>Totals</h2>",
    ]
    rows = [[_e(r["label"]), _cell(r["kind"], r["a"]), _cell(r["kind"], r["b"]),
             f"{_delta(r['kind'], r['delta'])} ({_pct(r['change'])})" if r["delta"] else "="]
            for r in d.totals]  # fmt: skip
    parts.append(_table(["", "A", "B", "change"], rows, {0}))
    titles = {"functions": "Per function", "files": "Per file", "ranks": "Per rank",
              "sites": "Per call site"}  # fmt: skip
    for name, df in d.tables.items():
        if df.empty:
            continue
        key, cols = TABLES[name]
        heads = [key] + [f"{LABELS.get(c, c)} {s}" for c, _ in cols for s in ("A", "B", "Δ")]
        body = []
        for row in df.head(4 * TOP_ROWS).to_dict("records"):
            cells = [_e(str(row[key]))]
            for c, kind in cols:
                cells += [_cell(kind, row[f"{c}_a"]), _cell(kind, row[f"{c}_b"]),
                          _delta(kind, row[f"{c}_delta"])]  # fmt: skip
            body.append(cells)
        parts.append(f"<h2>{titles[name]}</h2>" + _table(heads, body, {0}))
    for title, found in (("Findings that appeared in B", d.appeared),
                         ("Findings that went away", d.gone)):  # fmt: skip
        parts.append(f"<h2>{title}: {len(found) or 'none'}</h2>")
        for i in found:
            parts.append(f"<div class='ins {i.level}'><span class='lvl'>{i.level}</span>"
                         f"<b>{_e(i.title)}</b>{_e(i.detail)}</div>")  # fmt: skip
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(d: Diff, out: str | os.PathLike[str]) -> None:
    data = render_html(d).encode("utf-8")
    write_atomic(out, lambda f: f.write(data))
