"""Readers never crash, never lie, never exhaust memory (docs/format.md): every command on
damaged, hostile and odd input is status 0 or one line and status 2; a flipped bit is refused,
not read as another event; names that are not UTF-8 or hold controls are kept and escaped."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import HERE, build

from iotrace.calls import CHUNK_SIZE
from iotrace.tracefile import read_log

DATA = HERE / "data"
# bytes of address space: a reader of a small trace (pandas, pyarrow, matplotlib) needs ~1 GiB,
# the fuzzer, all of them in one process, ~2 GiB; the bugs of issue 10 took 8.5-11 GB
AS_LIMIT = 1536 << 20
FUZZ_AS_LIMIT = 3 << 30


def _limit_memory(limit: int = AS_LIMIT) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_limited(
    *args: str, timeout: float = 120, limit: int = AS_LIMIT
) -> subprocess.CompletedProcess[str]:
    """`iotrace ARGS` under RLIMIT_AS, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "iotrace", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=lambda: _limit_memory(limit),
    )


@pytest.fixture(scope="module")
def names_trace(tmp_path_factory) -> Path:
    """A real trace of rd_names: shim log and stracer log, odd file names in both."""
    base = tmp_path_factory.mktemp("names")
    work = base / "work"
    work.mkdir()
    out = base / "trace"
    proc = subprocess.run(
        [sys.executable, "-m", "iotrace", "run", "-o", str(out), "--", str(build("rd_names"))],
        cwd=work, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert list(out.glob("*.stracer")) and list(out.glob("*.iot"))
    return out


BAD = "bad\\xff\\xfe.dat"  # as printed
FORGED = 'two\\n[pid 1 tid 1] +0.000000 unlink(\\"precious\\") = 0 <0.000001>'
ESC = "esc\\x1b]0;owned\\x07\\x1b[31m.dat"
RAW = "raw\\xff\\n\\x1b[2J.dat"


def _no_controls(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\udcff" not in text
    assert "precious" not in text or all(
        not ln.startswith("[pid 1 tid 1]") for ln in text.splitlines()
    )


def test_odd_names_are_recorded_and_escaped_everywhere(names_trace, tmp_path):
    # recorded: the exact bytes are in the shim's log and in the stracer's
    names = {os.fsencode(s) for lg in [read_log(p) for p in names_trace.glob("*.iot")]
             for s in lg.strings.values()}  # fmt: skip
    work = names_trace.parent / "work"
    assert os.fsencode(str(work)) + b"/bad\xff\xfe.dat" in names
    show = run_limited("show", str(names_trace))
    assert show.returncode == 0, show.stderr
    for name in (BAD, FORGED, ESC):
        assert sum(name in ln for ln in show.stdout.splitlines()) == 3, name  # open, write, close
    _no_controls(show.stdout)
    missed = run_limited("missed", str(names_trace))
    assert missed.returncode == 0, missed.stderr
    assert RAW.replace('\\"', '"') in missed.stdout
    _no_controls(missed.stdout)
    report = run_limited("report", str(names_trace))
    assert report.returncode == 0, report.stderr
    _no_controls(report.stdout)
    html = tmp_path / "r.html"
    assert run_limited("report", str(names_trace), "--html", str(html)).returncode == 0
    _no_controls(html.read_text())
    assert "bad\\xff\\xfe.dat" in html.read_text()


def test_odd_names_are_exported_without_loss(names_trace, tmp_path):
    work = os.fsencode(str(names_trace.parent / "work"))
    want = {work + b"/bad\xff\xfe.dat", work + b"/raw\xff\n\x1b[2J.dat"}
    # the bounded Parquet export's workers each start pyarrow's thread pools, whose per-thread
    # arenas reserve address space (not memory): "cannot allocate memory for thread-local data"
    # was seen under AS_LIMIT on a loaded machine
    assert run_limited("export", str(names_trace), "--format", "parquet",
                       "-o", str(tmp_path / "pq"), limit=FUZZ_AS_LIMIT).returncode == 0  # fmt: skip
    ev = pq.read_table(tmp_path / "pq" / "events").to_pandas()
    assert want <= set(ev["path_bytes"].dropna())
    files = pd.read_parquet(tmp_path / "pq" / "files.parquet")
    assert work + b"/bad\xff\xfe.dat" in set(files["path_bytes"].dropna())
    assert run_limited("export", str(names_trace), "--format", "csv",
                       "-o", str(tmp_path / "csv")).returncode == 0  # fmt: skip
    csv = pd.read_csv(tmp_path / "csv" / "events.csv")
    assert want <= {bytes.fromhex(h) for h in csv["path_bytes"].dropna()}
    assert run_limited("export", str(names_trace), "--format", "chrome",
                       "-o", str(tmp_path / "t.json")).returncode == 0  # fmt: skip
    events = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    got = {
        bytes.fromhex(e["args"]["path_bytes"]) for e in events if "path_bytes" in e.get("args", {})
    }
    assert want <= got


# tests/data/readers/CASE: made by make_cases.py there (a synthetic trace, one damage each).
# case -> (the log damaged, status, what stderr says)
CASES = {
    "valid": ("", 0, ""),
    "huge_string_id": ("iot", 2, "corrupt log (bad record"),
    "huge_stack_id": ("iot", 2, "corrupt log (bad record"),
    "huge_length": ("iot", 2, "corrupt log (bad record"),
    "huge_array": ("iot", 2, "corrupt log (bad record"),
    "huge_chunk_length": ("iot", 2, "corrupt log (chunk too long"),
    "bit_flip": ("iot", 2, "corrupt log (checksum mismatch"),
    "header_bit_flip": ("iot", 2, "corrupt log (header checksum mismatch"),
    "unsealed_records_after_length": ("iot", 2, "data after the committed records"),
    "truncated_chunk": ("iot", 0, "cut short"),
    "stracer_bit_flip": ("stracer", 2, "corrupt stracer log (checksum mismatch"),
    "stracer_huge_length": ("stracer", 2, "corrupt stracer log (bad record"),
}


@pytest.fixture(scope="module")
def checked(tmp_path_factory) -> dict[tuple[str, str], dict]:
    """Every command once on every case, and on a trace whose log is a FIFO, /dev/zero or a
    directory: (trace, command) -> status, stderr, traceback.  In one child (fuzz_readers.py
    check) under RLIMIT_AS: a crash signal, a hang or a MemoryError fails every test."""
    base = tmp_path_factory.mktemp("cases")
    dirs = [DATA / "readers" / c for c in CASES]
    for kind in ("fifo", "dev_zero", "directory"):
        for suffix in (".iot", ".stracer"):
            d = base / f"{kind}{suffix}"
            shutil.copytree(DATA / "readers" / "valid", d)
            victim = d / f"node01.7{suffix}"
            if kind == "fifo":
                os.mkfifo(victim)
            elif kind == "dev_zero":
                victim.symlink_to("/dev/zero")
            else:
                victim.mkdir()
            dirs.append(d)
    proc = subprocess.run(
        [sys.executable, str(HERE / "fuzz_readers.py"), "check", str(base), *map(str, dirs)],
        capture_output=True, text=True, timeout=600,
        preexec_fn=lambda: _limit_memory(FUZZ_AS_LIMIT),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {(r["trace"], r["cmd"]): r for r in json.loads(proc.stdout.strip().splitlines()[-1])}


def _refused(r: dict, what: str) -> None:
    assert r["tb"] is None, r["tb"]
    assert r["status"] == 2, r
    lines = r["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("iotrace: "), r
    assert what in lines[0], r


@pytest.mark.parametrize("case", sorted(CASES))
def test_regression_cases(checked, case):
    log, status, what = CASES[case]
    runs = [r for (t, _c), r in checked.items() if t == case]
    assert len(runs) == 9
    for r in runs:
        assert r["tb"] is None, r["tb"]
        reads = {"missed": "stracer"}.get(r["cmd"].split()[0], log)  # show, load: both
        if reads != log:
            assert r["status"] == 0, r
        elif status == 0:
            assert r["status"] == 0, r
            warned = [ln for ln in r["stderr"].splitlines() if "warning" in ln]
            assert (what in warned[0] and len(warned) == 1) if what else not warned, r
        else:
            _refused(r, what)


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory"])
@pytest.mark.parametrize("suffix", [".iot", ".stracer"])
def test_only_regular_files_are_read(checked, kind, suffix):
    runs = [r for (t, _c), r in checked.items() if t == f"{kind}{suffix}"]
    assert len(runs) == 9
    for r in runs:
        cmd = r["cmd"].split()[0]
        if (cmd, suffix) == ("missed", ".iot"):
            assert r["status"] == 0, r  # that command reads the other kind of log only
        else:
            _refused(r, "not a regular file")


def test_fuzz_every_reader(names_trace, tmp_path):
    """Seeded and bounded: about 40 s of damaged variants through every command in one child
    under RLIMIT_AS (a crash signal, a hang or a MemoryError fails it)."""
    proc = subprocess.run(
        [sys.executable, str(HERE / "fuzz_readers.py"), "fuzz", str(names_trace), str(tmp_path),
         "1009", "40"],
        capture_output=True, text=True, timeout=400,
        preexec_fn=lambda: _limit_memory(FUZZ_AS_LIMIT),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["n_failures"] == 0, json.dumps(res["failures"][:5], indent=1)
    assert res["variants"] >= 10 and res["flips"] >= 3, res


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a host name of its own")
def test_a_damaged_header_on_a_host_named_with_dots_keeps_its_process(tmp_path):
    """A shim log whose header is damaged is known by its name, HOST.PID[.N].iot: on a host
    named with dots (ci-7.example.org: how clusters and CI runners name nodes) the name was cut
    at its first dot (host ci-7, pid "example"), the log lost its process and `missed` numbered
    the processes otherwise ("proc": 0 -> 1) than on the undamaged trace (the fuzzer's finding
    in a UTS namespace of that name; on a host without dots it passed)."""
    work = tmp_path / "work"
    work.mkdir()
    run = [sys.executable, "-m", "iotrace", "run", "-o", str(tmp_path / "t"), "--",
           str(build("rd_names"))]  # fmt: skip
    named = ["unshare", "-u", "sh", "-c", 'hostname ci-7.example.org && exec "$@"', "sh"]
    r = subprocess.run([*named, *run], cwd=work, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    good, bad = tmp_path / "t", tmp_path / "bad"
    (log,) = good.glob("ci-7.example.org.*.iot")
    shutil.copytree(good, bad)
    data = bytearray(log.read_bytes())
    data[data.index(b"MPI_File_iwrite_at") + 3] ^= 1  # a bit of the header's function names
    (bad / log.name).write_bytes(bytes(data))
    missed = [sys.executable, "-m", "iotrace", "missed"]
    got = [subprocess.run([*missed, str(d), "--json"], capture_output=True, text=True, timeout=120)
           for d in (good, bad)]  # fmt: skip
    assert got[1].returncode == 0, got[1].stderr
    assert got[1].stdout.replace(str(bad), "DIR") == got[0].stdout.replace(str(good), "DIR")
    assert '"proc": 0' in got[0].stdout


@pytest.mark.parametrize("how", ["renamed", "nested"])
def test_damaged_run_record_is_skipped_not_a_traceback(names_trace, tmp_path, how):
    """A bit flipped in iotrace-run.*.json can rename a key or change a value's type (the fuzzer
    found a KeyError traceback in report): such a record is skipped as an unparsable one is.
    So is a hostile one nested deeper than Python's recursion limit (a RecursionError
    traceback in report, show, export and diff)."""
    d = tmp_path / "trace"
    shutil.copytree(names_trace, d)
    (path,) = d.glob("iotrace-run.*.json")
    rec = json.loads(path.read_text())
    rec["start_real_nr"] = rec.pop("start_real_ns")  # one flipped bit of the key
    path.write_text(json.dumps(rec) if how == "renamed" else "[" * 100000 + "]" * 100000)
    for args in (["report"], ["report", "--json"], ["show"], ["export", "--format", "csv",
                 "-o", str(tmp_path / "csv")], ["diff", str(names_trace)]):  # fmt: skip
        r = run_limited(args[0], str(d), *args[1:])
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr[-2000:])


def test_every_single_bit_flip_of_a_stracer_log_is_refused_or_harmless(names_trace, tmp_path):
    """Every bit of a real stracer log flipped in turn: read as the undamaged log or refused,
    never read as other records (the fuzzer found a length flip read as a killed stracer's torn
    tail, dropping every record after it)."""
    from iotrace.stracer import slog

    (src,) = names_trace.glob("*.stracer")
    data = src.read_bytes()

    def seen(lg: slog.StracerLog) -> tuple:
        return (lg.missed, lg.procs, lg.kio, lg.sites, lg.stops, lg.counts, lg.returncode)

    ref = seen(slog.read(src))
    q = tmp_path / "flipped.stracer"
    wrong = []
    for pos in range(len(data)):
        for bit in range(8):
            b = bytearray(data)
            b[pos] ^= 1 << bit
            q.write_bytes(b)
            try:
                if seen(slog.read(q)) != ref:
                    wrong.append((pos, bit))
            except slog.StracerLogError:
                pass
    assert not wrong, f"{len(wrong)} flips read as other records, e.g. {wrong[:5]}"


SHRINK = """
import importlib, os, sys
from iotrace.tracefile import verify

L = importlib.import_module("iotrace.analyzer.load")  # the module (the package's `load` is load())
path, keep, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "rb") as f:
    data = f.read()
marks = (data[:64], data[first : first + 64])  # the log's bytes, mapped whole or read by window
cut = []

def shrink_then_verify(buf, *args):
    if not cut and bytes(buf[:64]) in marks:  # as its shim trims it at exit, while it is read
        cut.append(os.truncate(path, keep))
    return verify(buf, *args)

L.verify = shrink_then_verify
print(len(L.load(os.path.dirname(path)).events), len(cut))
"""


def test_a_log_that_shrinks_while_it_is_read_is_read(trace):
    """A shim trims its log at exit (preload/writer.c iot_log_finish): a report of a running
    job reads logs that can shrink under it.  Mapped, the pages past the new end killed the
    reader with SIGBUS; read with pread, it reads what the log held (here, the log of a killed
    process, whose preallocated tail was never trimmed, trimmed while load reads it).  The run's
    end now cuts a killed process's log after its last written chunk (launcher/trim.c): the
    never-written tail the shim left it is made again here (a hole, read as zeros)."""
    t = trace("sh", "-c", f"{build('proc_kill')} 500 2>/dev/null & sleep 1; kill -KILL $!; wait")
    from iotrace.analyzer import load

    n = len(load(t.dir).events)
    chunk = CHUNK_SIZE
    killed = max(t.dir.glob("*.iot"), key=lambda p: p.stat().st_size)  # its 500 writes
    os.truncate(killed, killed.stat().st_size + 4 * chunk)
    # a log with a slot never written after its data: where the shim would have trimmed it
    for log in t.dir.glob("*.iot"):
        data = log.read_bytes()
        keep = next((o for o in range(chunk, len(data), chunk) if data[o] == 0), len(data))
        if len(data) - keep >= chunk:
            break
    else:
        raise AssertionError("no log with an untrimmed tail")
    r = subprocess.run([sys.executable, "-c", SHRINK, str(log), str(keep), str(chunk)],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert r.stdout.split() == [str(n), "1"] and log.stat().st_size == keep
