"""The report's views at 4 and at 64 ranks: the HTML page in headless Chromium (loads without
errors, a table of contents, the rank x time heatmap, every legend beside its axes and never
over the data, measured on the rendered page), the console folding many ranks to the outliers
(`--ranks all` shows every one), and the JSON holding every table the console shows with what
it left out.  The ranks are tests/progs/an_rank.c processes with PMI_RANK set, started by one
shell under one `iotrace run`."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import build, iotrace
from iotrace.analyzer import load, parts, summarise
from test_analyzer import _chromium, _chromium_flags

# Run inside the page after it loaded: for every plot, the legend's box against its axes' box
# (the axes' background patch); the answer is written into the page for --dump-dom.
GEOMETRY = """<script>
const out = [];
for (const ax of document.querySelectorAll('svg g[id^="axes_"]')) {
  const bg = ax.querySelector(':scope > g[id^="patch_"]');
  if (!bg) continue;
  const a = bg.getBoundingClientRect();
  for (const lg of ax.querySelectorAll('g[id^="legend_"]')) {
    const b = lg.getBoundingClientRect();
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    out.push({legend: lg.id, overlap: Math.max(0, w) * Math.max(0, h), area: b.width * b.height});
  }
}
const pre = document.createElement('pre');
pre.id = 'geometry';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


def _job(tmp_path: Path, ranks: int) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    prog = build("an_rank")
    script = (
        f"for r in $(seq 0 {ranks - 1}); do PMI_RANK=$r PMI_SIZE={ranks} {prog} shared.dat & "
        "done; wait"
    )
    out = tmp_path / "job"
    proc = iotrace("run", "--no-stracer", "-o", str(out), "--", "sh", "-c", script, cwd=work)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("ranks", [4, 64])
def test_html_at_many_ranks_in_chromium(tmp_path: Path, ranks: int) -> None:
    job = _job(tmp_path, ranks)
    html = tmp_path / "report.html"
    proc = iotrace("report", str(job), "--html", str(html))
    assert proc.returncode == 0, proc.stderr
    text = html.read_text()
    assert "<script" not in text
    assert "<nav class='toc'>" in text and "href='#insights'" in text and "id='ranks'" in text
    assert "Per rank: bytes moved" in text and "Per rank: time in I/O calls on files" in text
    # the page was drawn from the parts' sums (a part per process here): the in-memory ones
    ref = summarise(load(job), plots=True).over_time
    ot = parts.summarise(parts.Bounded(job, workers=1, part_bytes=1), plots=True)[0].over_time
    assert ref is not None and ot is not None and len(ot.heatmap) == ranks
    assert all(np.allclose(ot.heatmap[r], g) for r, g in ref.heatmap.items())
    assert ot.lanes.busy == ref.lanes.busy and len(ot.lanes.top()) == min(len(ot.lanes.busy), 32)
    key = ["proc", "cls", "start"]
    pd.testing.assert_frame_equal(
        ot.lanes.bars.sort_values(key).reset_index(drop=True),
        ref.lanes.bars.sort_values(key).reset_index(drop=True),
    )
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed and cannot be installed here")
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", GEOMETRY + "</body>"))
    flags = _chromium_flags(tmp_path)
    dom = subprocess.run([chromium, *flags, "--dump-dom", probe.as_uri()], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert [ln for ln in dom.stderr.splitlines() if "Uncaught" in ln] == []
    geometry = json.loads(dom.stdout.split('<pre id="geometry">')[1].split("</pre>")[0])
    assert len(geometry) >= 3  # timeline, bandwidth, sizes (and files) have legends
    assert all(g["area"] > 0 and g["overlap"] == 0 for g in geometry), geometry
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *flags, "--window-size=1200,2400", f"--screenshot={shot}",
                    html.as_uri()], capture_output=True, timeout=120)  # fmt: skip
    assert shot.exists() and shot.stat().st_size > 20_000


def test_console_folds_many_ranks_and_json_holds_it_all(tmp_path: Path) -> None:
    job = _job(tmp_path, 64)
    wide = {**os.environ, "COLUMNS": "400"}  # titles on one line
    text = iotrace("report", str(job), env=wide).stdout
    # the 8 slowest and 4 fastest, and the outliers a finding names (the load decides those)
    shown = int(re.search(r"Ranks \((\d+) of 64: the 8 slowest and 4 fastest", text).group(1))
    assert 12 <= shown < 64
    assert f"{64 - shown} ranks folded (--ranks all shows every one)" in text
    every = iotrace("report", str(job), "--ranks", "all", env=wide).stdout
    assert "of 64: the 8 slowest" not in every and "ranks folded" not in every
    ranks_part = every.split("\nRanks")[1].split("\nProcesses")[0]
    assert len([ln for ln in ranks_part.splitlines() if ln.startswith("│")]) == 64
    rep = json.loads(iotrace("report", str(job), "--json").stdout)
    tables = rep["tables"]
    assert tables["ranks"]["total"] == tables["ranks"]["shown"] == 64
    assert not tables["ranks"]["truncated"]
    assert sorted(r["rank"] for r in tables["ranks"]["rows"]) == list(range(64))
    # every table the console prints is in the JSON, and says whether rows were left out
    for t in tables.values():
        assert t["shown"] == len(t["rows"]) <= t["total"]
        assert t["truncated"] == (t["total"] > t["shown"])
    procs = tables["processes"]
    assert procs["total"] == procs["shown"] > 64  # the shell, its forks, the 64 ranks
    for title in ("Functions", "Processes (by I/O time)", "Access sizes"):
        assert title in text and any(t["title"].startswith(title) for t in tables.values())
    assert rep["insights"] and all("subject" in i and "evidence" in i for i in rep["insights"])


def test_system_files_apart_with_a_flag(tmp_path: Path) -> None:
    """A Python program: its interpreter's files are kept out of the tables, their cost is one
    line, and --system puts them back."""
    work = tmp_path / "work"
    work.mkdir()
    import sys

    (work / "w.py").write_text("open('out.txt', 'w').write('x' * 100000)\n")
    out = tmp_path / "t"
    proc = iotrace("run", "--no-stracer", "-o", str(out), "--", sys.executable, "w.py", cwd=work)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(iotrace("report", str(out), "--json").stdout)
    paths = [r["path"] for r in rep["tables"]["files"]["rows"]]
    assert str(work / "out.txt") in paths and not [p for p in paths if "/lib/python" in p]
    assert rep["overview"]["system_io"]["files"] > 0
    assert "--system shows them" in rep["system_line"]
    text = iotrace("report", str(out)).stdout
    assert "system and runtime files" in text and "--system shows them" in text
    full = json.loads(iotrace("report", str(out), "--json", "--system").stdout)
    assert [r for r in full["tables"]["files"]["rows"] if "/lib/python" in r["path"]]
