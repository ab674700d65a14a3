"""The strace oracle (issue 11, "Done means"): for real programs, the bytes read and written per
file that the trace reports (the analyzer's files table, default `iotrace run`: shim and
stracer) equal what strace sees the kernel move for the same command (tests/oracle.py: data
syscalls and both ends of sendfile, copy_file_range, splice and tee).  Compared: the job's own
files (under the work directory), not the libraries the loader reads before the shim runs.  The
accepted differences are explained in docs/analyzer.md, "Agreement with strace"."""

from __future__ import annotations

import os
import shutil
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from conftest import iotrace
from iotrace.analyzer import load
from oracle import strace_bytes

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")


def trace_files(out: Path) -> dict[str, list[int]]:
    """path -> [bytes read, bytes written] from the analyzer's files table."""
    files = load(out).files
    return {r.path: [int(r.bytes_read), int(r.bytes_written)] for r in files.itertuples()}


def strace_files(got: Counter[tuple[str, str]]) -> dict[str, list[int]]:
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (op, path), n in got.items():
        per[path][op == "write"] += n
    return per


def mine(per: dict[str, list[int]], work: Path) -> dict[str, tuple[int, int]]:
    """The job's own files (under `work`) with bytes moved."""
    root = str(work) + "/"
    return {p: (r, w) for p, (r, w) in per.items() if p.startswith(root) and (r or w)}


def _setup(work: Path) -> None:
    rnd = os.urandom(200_000)
    (work / "in.bin").write_bytes(rnd)
    lines = [f"{(i * 7919) % 10007:05d} line {i}\n" for i in range(20_000)]
    (work / "in.txt").write_text("".join(lines))
    d = work / "dir"
    d.mkdir()
    for i in range(5):
        (d / f"f{i}.dat").write_bytes(rnd[i * 10_000 : (i + 1) * 37_000])


PY = (
    "import shutil\n"
    "shutil.copyfile('in.bin', 'py_copy.bin')\n"
    "with open('in.txt') as f, open('py_out.txt', 'w') as g:\n"
    "    for line in f: g.write(line.upper())\n"
    "with open('in.bin', 'rb') as f: f.seek(1000); b = f.read(5000)\n"
    "open('py_small.bin', 'wb').write(b)\n"
)
SQL = (
    "create table t(a integer, b text);"
    "with recursive c(x) as (select 1 union all select x + 1 from c where x < 5000) "
    "insert into t select x, printf('%0100d', x) from c;"
    "select count(*), sum(length(b)) from t;"
)

PROGRAMS: dict[str, list[str]] = {
    "cat": ["sh", "-c", "cat in.txt > cat.out"],
    "cp": ["cp", "in.bin", "cp.out"],
    "dd": ["dd", "if=in.bin", "of=dd.out", "bs=4096", "status=none"],
    "sort": ["sort", "in.txt", "-o", "sorted.txt"],
    "tar": ["sh", "-c", "tar cf arch.tar dir && mkdir x && tar xf arch.tar -C x"],
    "gzip": ["sh", "-c", "gzip -c in.bin > in.gz && gzip -dc in.gz > gunzip.out"],
    "pipeline": ["sh", "-c", "cat in.txt | sort | tail -c 100000 > tail.out"],
    # stdio: getdelim/fwrite (sed), fgets/printf (awk), /bin/echo's inline putc flushed at exit
    "sed": ["sh", "-c", "sed s/line/LINE/ in.txt > sed.out"],
    "awk": ["sh", "-c", "awk '{ n += length($0); print $1 }' in.txt > awk.out"],
    "echo": ["sh", "-c", "for i in 1 2 3 4 5; do /bin/echo x$i >> echo.out; done"],
    "python3": [sys.executable, "-c", PY],
    "sqlite3": ["sqlite3", "db.sqlite", SQL],
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_bytes_per_file_equal_strace(tmp_path: Path, name: str) -> None:
    cmd = PROGRAMS[name]
    if shutil.which(cmd[0]) is None:
        pytest.skip(f"{cmd[0]} not installed")
    results = {}
    for how in ("strace", "iotrace"):
        work = tmp_path / how / "work"
        work.mkdir(parents=True)
        _setup(work)
        if how == "strace":
            got, p = strace_bytes(cmd, work)
            per = strace_files(got)
        else:
            out = tmp_path / "trace"
            p = iotrace("run", "-o", str(out), "--", *cmd, cwd=work, timeout=300)
            per = trace_files(out)
        assert p.returncode == 0, (how, p.stderr)
        # the same files, named from the work directory of this run
        results[how] = {k.replace(str(work), "W"): v for k, v in mine(per, work).items()}
    assert results["iotrace"] == results["strace"]
