"""Small logs cost what they hold: the padding of a log's header area and of a chunk its thread
left early is given back to the file system (holes), so a short-lived process's log takes a few
pages on disk, not 64 KiB; every byte read stays the same."""

from __future__ import annotations

from conftest import iotrace
from iotrace.analyzer import load


def test_short_lived_processes_logs_take_a_few_pages(trace):
    t = trace("sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do /bin/echo $i > f$i; done")
    assert t.proc.returncode == 0, t.proc.stderr
    logs = sorted(t.dir.glob("*.iot"))
    assert len(logs) >= 11  # sh and its 10 echo
    for lg in logs:
        st = lg.stat()
        assert st.st_size >= 64 << 10  # header area + a chunk, as before
        assert st.st_blocks * 512 <= 20 << 10, (lg.name, st.st_blocks * 512)
    r = iotrace("report", str(t.dir), "--json")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    files = load(t.dir).files
    mine = files[files["path"].str.fullmatch(r".*/f\d+")]
    assert len(mine) == 10 and int(mine["bytes_written"].sum()) == 9 * 2 + 3  # "1\n".."10\n"
