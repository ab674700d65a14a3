"""The readers' fuzzer, run by tests/test_readers.py in a child process under RLIMIT_AS:

    python fuzz_readers.py fuzz TRACE_DIR WORK_DIR SEED SECONDS
    python fuzz_readers.py check WORK_DIR TRACE_DIR...   (every command once on each trace)

Damages one file of a copy of TRACE_DIR at a time (bit flips, bytes overwritten, large length
fields, cuts, runs of random bytes, chunks moved), runs every reader on it in this process
(`iotrace show`, `report`, `report --json`, `report --html`, `missed`, `missed --json`, `export`
in each format, `analyzer.load`) and prints one JSON object: what was tried and every failure
(an exception out of the command line, a status other than 0 or 2, an error that is not one line,
a variant that took too long).  Single bit flips in a log must give the same output as the
undamaged trace, or status 2: a flipped bit is never read as another event."""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

from iotrace.cli import main

HANG = 60  # seconds per variant and command: more is a hang (a busy machine is slow, not hung)


class Hang(Exception):
    pass


def _alarm(_sig, _frame):
    raise Hang


def run_cli(args: list[str]) -> tuple[int | None, str, str, str | None]:
    """(status, stdout, stderr, traceback of an exception that escaped main)."""
    out, err = io.StringIO(), io.StringIO()
    status: int | None = None
    tb = None
    signal.alarm(HANG)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the CLI prints them; pandas' own are noise
                status = main(args)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 2
    except Hang:
        tb = "hang"
    except BaseException:
        tb = traceback.format_exc(limit=-3)
    finally:
        signal.alarm(0)
    return status, out.getvalue(), err.getvalue(), tb


def commands(d: Path, out: Path, html: bool) -> list[list[str]]:
    cmds = [
        ["show", str(d)],
        ["report", str(d)],
        ["report", str(d), "--json"],
        ["missed", str(d)],
        ["missed", str(d), "--json"],
        ["export", str(d), "--format", "csv", "-o", str(out / "csv")],
        ["export", str(d), "--format", "chrome", "-o", str(out / "t.json")],
        ["export", str(d), "--format", "parquet", "-o", str(out / "pq")],
    ]
    if html:
        cmds.append(["report", str(d), "--html", str(out / "r.html")])
    return cmds


def _key(args: list[str]) -> str:
    return " ".join(args[:1] + args[2:])


def damage(data: bytearray, rnd: random.Random) -> str:
    n = len(data)
    kind = rnd.choice(["flip", "flip", "flip", "bytes", "length", "cut", "random", "move"])
    if n == 0:
        return "empty"
    at = rnd.randrange(n)
    if kind == "flip":
        data[at] ^= 1 << rnd.randrange(8)
    elif kind == "bytes":
        for i in range(at, min(n, at + rnd.randint(1, 8))):
            data[i] = rnd.randrange(256)
    elif kind == "length":  # a msgpack length or id field gone large
        big = rnd.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x10000000])
        head = rnd.choice([b"\xc6", b"\xdb", b"\xdd", b"\xdf", b"\xce", b"\xc9"])
        data[at : at + 5] = head + big.to_bytes(4, "big")
        del data[n:]
    elif kind == "cut":
        del data[at:]
    elif kind == "random":
        ln = min(n - at, rnd.randint(16, 4096))
        data[at : at + ln] = rnd.randbytes(ln)
    else:  # a block of the file copied over another (a chunk in the wrong place)
        size = rnd.choice([4096, 32768])
        src, dst = rnd.randrange(0, n, 512), rnd.randrange(0, n, 512)
        block = data[src : src + size]
        data[dst : dst + len(block)] = block
        del data[n:]
    return f"{kind}@{at}"


MIN_VARIANTS, MIN_FLIPS = 10, 3  # what test_readers.py asserts


def main_fuzz(trace: Path, work: Path, seed: int, seconds: float) -> dict:
    rnd = random.Random(seed)
    files = sorted(p.name for p in trace.iterdir() if p.is_file())
    logs = [f for f in files if f.endswith((".iot", ".stracer"))]
    ref_dir = work / "ref"
    shutil.copytree(trace, ref_dir)
    ref = {}  # what the undamaged trace gives
    for args in (["show", str(ref_dir)], ["missed", str(ref_dir), "--json"]):
        status, out, err, tb = run_cli(args)
        assert status == 0 and tb is None, (args, status, err, tb)
        ref[_key(args)] = out.replace(str(ref_dir), "DIR")
    failures: list[dict] = []
    tried = flips = flips_refused = 0
    deadline = time.monotonic() + seconds
    signal.signal(signal.SIGALRM, _alarm)
    i = 0
    # the budget, but never fewer variants and flips than the test asks for (a loaded machine
    # ran 6 variants in 40 s); bounded whatever the seed
    while (time.monotonic() < deadline or i < MIN_VARIANTS or flips < MIN_FLIPS) and i < 100:
        i += 1
        d = work / f"v{i}"
        shutil.copytree(trace, d)
        name = rnd.choice(logs if rnd.random() < 0.9 else files)
        data = bytearray((d / name).read_bytes())
        what = f"{name}: {damage(data, rnd)}"
        (d / name).write_bytes(bytes(data))
        flip = what.split(": ")[1].startswith("flip") and name in logs
        out = work / f"o{i}"
        out.mkdir()
        for args in commands(d, out, html=i % 8 == 1):
            status, stdout, stderr, tb = run_cli(args)
            tried += 1
            why = None
            lines = stderr.strip().splitlines()
            if tb is not None:
                why = tb
            elif status not in (0, 2):
                why = f"status {status}"
            elif status == 2 and (len(lines) != 1 or not lines[0].startswith("iotrace")):
                why = f"error not one line: {stderr!r}"
            elif flip and status == 0 and _key(args) in ref:
                got = stdout.replace(str(d), "DIR")
                if got != ref[_key(args)]:
                    why = f"a flipped bit read as different data: {got[:300]!r}"
            if flip and args[0] == ("show" if name.endswith(".iot") else "missed"):
                flips += 1
                flips_refused += status == 2
            if why:
                failures.append({"variant": what, "args": args[:1] + args[2:], "why": why})
        shutil.rmtree(d)
        shutil.rmtree(out)
    vm = Path("/proc/self/status").read_text().split("VmPeak:")[1].split()[0]
    return {
        "vm_peak_kib": int(vm),
        "variants": i,
        "runs": tried,
        "flips": flips,
        "flips_refused": flips_refused,
        "failures": failures[:20],
        "n_failures": len(failures),
    }


def main_check(work: Path, traces: list[Path]) -> list[dict]:
    """Every command on each trace: its status, stderr and any traceback."""
    signal.signal(signal.SIGALRM, _alarm)
    out = []
    for i, d in enumerate(traces):
        o = work / f"c{i}"
        o.mkdir()
        for args in commands(d, o, html=True):
            status, _stdout, stderr, tb = run_cli(args)
            out.append({"trace": d.name, "cmd": _key(args).split(" -o ")[0],
                        "status": status, "stderr": stderr, "tb": tb})  # fmt: skip
    return out


if __name__ == "__main__":
    if sys.argv[1] == "fuzz":
        a = sys.argv[2:]
        res = main_fuzz(Path(a[0]), Path(a[1]), int(a[2]), float(a[3]))
    else:
        res = main_check(Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]])
    sys.stdout.write(json.dumps(res) + "\n")
