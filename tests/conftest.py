"""Shared helpers: compile the C programs under tests/progs, run them under `iotrace run`, and
read their traces back."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iotrace.calls import EVENT_FIELDS
from iotrace.record import record
from iotrace.tracefile import Log, log_paths, read_log

HERE = Path(__file__).resolve().parent
PROGS = HERE / "progs"
BUILD = HERE / ".build"


def build(name: str, *flags: str) -> Path:
    """Compile tests/progs/NAME.c (once per source change) and return the binary."""
    src = PROGS / f"{name}.c"
    suffix = "".join(f.replace("-", "_") for f in flags)
    out = BUILD / f"{name}{suffix}"
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        BUILD.mkdir(exist_ok=True)
        subprocess.run(
            ["gcc", "-O1", "-g", "-Wall", "-pthread", "-o", str(out), str(src), *flags], check=True
        )
    return out


@record
class Traced:
    proc: subprocess.CompletedProcess[str]
    dir: Path

    @property
    def logs(self) -> list[Log]:
        return [read_log(p) for p in log_paths(self.dir)]

    def events(self, *names: str) -> list[dict[str, Any]]:
        """Every event of every process as a dict, time-ordered; only `names` if given."""
        out = []
        for log in self.logs:
            fns = log.functions
            for ev in log.events:
                d = dict(zip(("tid", *EVENT_FIELDS[1:]), ev, strict=True))
                d["fn"] = fns[d["fn"]]
                d["path"] = log.strings.get(d["path"]) if d["path"] is not None else None
                d["pid"] = log.header["pid"]
                d["stack"] = log.stacks.get(d["stack"]) if d["stack"] is not None else None
                if not names or d["fn"] in names:
                    out.append(d)
        out.sort(key=lambda d: d["t_start"])
        return out


def iotrace(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the iotrace command line (the installed package, as a user would)."""
    return subprocess.run(
        [sys.executable, "-m", "iotrace", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory user nobody can use (pytest's tmp_path is root's alone)."""
    d = Path(tempfile.mkdtemp(prefix="iotrace-public-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def trace(tmp_path: Path):
    """trace(cmd..., stack=N) -> Traced: runs cmd under `iotrace run` in tmp_path/work."""
    work = tmp_path / "work"
    work.mkdir()
    count = [0]

    def run(
        *cmd: str | os.PathLike[str],
        stack: int = 8,
        env: dict[str, str] | None = None,
        extra: tuple[str, ...] = (),
        stdin: str | None = None,
    ) -> Traced:
        count[0] += 1
        out = tmp_path / f"trace{count[0]}"
        proc = iotrace(
            "run",
            "-o",
            str(out),
            "--stack",
            str(stack),
            *extra,
            "--",
            *map(str, cmd),
            cwd=work,
            env=env,
            stdin=stdin,
        )
        made.append(out)
        return Traced(proc, out)

    made: list[Path] = []
    run.work = work  # type: ignore[attr-defined]
    yield run
    # IOTRACE_CHECK_PARTS=1: every trace the suite makes is also reported by the bounded path,
    # a part per process, and the two JSON reports compared (slow: a whole-suite audit);
    # IOTRACE_CHECK_PARTS=ranges: every log cut into time ranges of ~64 events too
    check = os.environ.get("IOTRACE_CHECK_PARTS")
    if check:
        import warnings

        from iotrace.tracefile import TraceFormatError

        for d in made:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    ref = report_in_memory(d)
                except (TraceFormatError, OSError):
                    continue
                kw = {"range_bytes": 1} if check == "ranges" else {}
                diff = same_report(ref, report_of_parts(d, **kw))
            assert not diff, f"{d}: bounded report differs: {diff[:10]}"


def report_of_parts(d: Path, workers: int = 1, **kw: object) -> dict:
    """The JSON report of the bounded path (analyzer/parts.py), a part per process."""
    from iotrace.analyzer import parts
    from iotrace.analyzer.report import report_dict

    return report_dict(parts.summarise(parts.Bounded(d, workers=workers, part_bytes=1, **kw))[0])


def report_in_memory(d: Path) -> dict:
    from iotrace.analyzer import load, summarise
    from iotrace.analyzer.report import report_dict

    return report_dict(summarise(load(d)))


def same_report(a: object, b: object, where: str = "") -> list[str]:
    """Where two JSON reports differ (floats: to 1e-9, sums of floats in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: in one only" for k in set(a) ^ set(b)]
        for k in a.keys() & b.keys():
            out += same_report(a[k], b[k], f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} != {len(b)} items"]
        return [
            x
            for i, (p, q) in enumerate(zip(a, b, strict=True))
            for x in same_report(p, q, f"{where}[{i}]")
        ]
    if isinstance(a, float) and isinstance(b, float):
        return [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6) else [f"{where}: {a} != {b}"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]
