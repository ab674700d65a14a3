"""`iotrace missed DIR`: the I/O syscalls that bypassed the shim (class "bypass"), with `--all`
also the libc-internal ones (class "libc": inside a libc function the shim does not wrap) and
those `iotrace attach` recorded, as missed_groups.collect groups them (the report's grouping),
printed by call site over every process (console) or as a JSON list of the groups.
docs/stracer.md, "Classification"."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from iotrace.incarnation import label
from iotrace.select import Select
from iotrace.text import escape

from .missed_groups import UNKNOWN_SITE, collect
from .symbols import site_label


def print_text(groups: list[dict[str, Any]], out: TextIO) -> None:
    """By call site as the report's missed I/O groups them (its label, without line numbers: the
    calls of one function are one site) and, inside libc, by the libc function called there
    (fts_open's and fts_read's under one caller apart), over all processes."""
    if not groups:
        out.write("no missed I/O: nothing bypassed the shim\n")
        return
    by_site: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for g in groups:
        by_site.setdefault((g["class"], g["site"], g["libc_function"]), []).append(g)
    for (cls, _site, _fn), gs in by_site.items():
        total = sum(g["count"] for g in gs)
        frames = [(f["function"], f["file"], f["line"], f["module"], f["offset"])
                  for f in gs[0]["frames"]]  # fmt: skip
        where = site_label(frames, 4, skip_libc=True, sep=" <- ") if frames else UNKNOWN_SITE
        what = (
            "missed" if cls == "bypass"
            else "recorded by iotrace attach" if cls == "attached"
            else "in flight when its thread died (a wrapper's: the stracer read it at the end)"
            if cls == "killed"
            else f"inside libc's {gs[0]['libc_function']}"
        )  # fmt: skip
        # a pid reused in the run names several processes: P, P#2, ... (iotrace.incarnation)
        pids = sorted({(g["pid"], g["process_nth"]) for g in gs})
        names = [label(*p) for p in pids]
        who = f"pid {names[0]}" if len(pids) == 1 else f"pids {', '.join(names)}"
        out.write(f"{total} {what} at {escape(where, quote=False)} [{who}]\n")
        for g in gs:
            fd = f" fd {g['fd']}" if g["fd"] is not None else ""
            path = f" {escape(g['path'], quote=False)}" if g["path"] else ""
            err = f" ({g['errors']} failed)" if g["errors"] else ""
            via = f" via {escape(g['via'])}" if g["via"] else ""
            moved = f", {g['bytes']} B" if g["bytes"] else ""
            pid = f" [pid {label(g['pid'], g['process_nth'])}]" if len(pids) > 1 else ""
            out.write(f"  {g['count']:>8}  {escape(g['syscall'])}{via}{fd}{path}{moved}{err}"
                      f"{pid}\n")  # fmt: skip


def missed(
    trace_dir: str,
    as_json: bool,
    out: TextIO | None = None,
    everything: bool = False,
    sel: Select | None = None,
) -> int:
    out = out or sys.stdout  # the stdout of the call, not of the import
    groups, warnings = collect(trace_dir, everything, sel)
    for w in warnings:
        print(f"iotrace: warning: {escape(w, quote=False)}", file=sys.stderr)
    try:
        if as_json:
            json.dump(groups, out, indent=1)
            out.write("\n")
        else:
            print_text(groups, out)
        out.flush()
    except BrokenPipeError:  # `iotrace missed DIR | head`
        sys.stderr.close()
    return 0
