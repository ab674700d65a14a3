"""The commands besides the report on a trace of many short-lived processes (issue 17: `missed`,
`show` and every export in memory bounded by a setting): what they hold and do per process is
counted here on a trace of N processes (the figures at 20,000 and 100,000 are in bench/README.md,
"procexports")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import iotrace

N = 60  # processes (`cat`, each its log)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("many")
    out = tmp / "trace"
    cmd = f"printf x > f; for i in $(seq {N}); do cat f > /dev/null; done"
    proc = iotrace("run", "-o", str(out), "--", "sh", "-c", cmd, cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    return out


HELD = """
import json, sys, tracemalloc
from pathlib import Path
from iotrace.analyzer.load import shim_logs
tracemalloc.start()
logs = shim_logs(Path(sys.argv[1]), damaged_ok=True)
held = tracemalloc.get_traced_memory()[0]
lists = {id(lg.header.get("functions")) for lg in logs}
print(json.dumps({"logs": len(logs), "held": held, "lists": len(lists)}))
"""


def test_the_headers_held_share_their_function_names(many):
    """Every command lists the trace's logs with their headers (`missed` and the exports hold
    them all at once): a header's ~200 function names were ~17 KiB of Python strings per log,
    1.1 GB of `missed`'s 1.1 GB peak at 20,000 processes; the logs' one list is now one object."""
    run = subprocess.run([sys.executable, "-c", HELD, str(many)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["logs"] > N
    assert got["lists"] <= 2, got  # before: one list per log
    assert got["held"] / got["logs"] < 6 << 10, got  # bytes per log; before: ~19.4 KiB
