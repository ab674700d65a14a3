"""`iotrace run -s N`: the first N bytes of each read/write call's buffer, kept in the log (DATA
records), shown escaped as strace does, and in the exports; nothing of the kind without -s."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

from conftest import build, iotrace

from iotrace.calls import DATA_FUNCS, DATA_MAX

# what data_rw.c moves through each call's buffer, in order (fputs is compiled as fwrite)
MOVED = [
    ("write", b"hi\n\0\x01\xffend"),
    ("writev", b"abcdef"),
    ("write", b"z" * 5000),
    ("pread", b"hi\n\0\x01\xffendabc"),
    ("fwrite", b"line1\n"),
    ("fwrite", b"xyz"),
    ("fgets", b"line1\n"),
    ("fread", b"xyz"),
]


def _kept(t) -> list[tuple[str, bytes | None]]:
    out = []
    for log in t.logs:
        names = log.functions
        for ev in log.events:
            fn = names[ev[1]]
            if fn in DATA_FUNCS and Path(log.strings.get(ev[5], "")).name in ("d.bin", "s.txt"):
                out.append((fn, log.data.get((ev[0], ev[2]))))
    return out


def test_no_data_without_s(trace) -> None:
    t = trace(build("data_rw"), extra=("--no-stracer",))
    assert t.proc.returncode == 0, t.proc.stderr
    assert _kept(t) == [(fn, None) for fn, _ in MOVED]
    # the calls on the descriptor (an open's path and its `= 3</path>` result aside)
    assert '"' not in "".join(
        ln for ln in iotrace("show", str(t.dir)).stdout.splitlines() if "(3<" in ln
    )


def test_first_n_bytes_kept_and_shown(trace) -> None:
    t = trace(build("data_rw"), extra=("-s", "8"))
    assert t.proc.returncode == 0, t.proc.stderr
    assert _kept(t) == [(fn, b[:8]) for fn, b in MOVED]
    show = iotrace("show", str(t.dir)).stdout
    assert '/d.bin>, "hi\\n\\0\\1\\377en"..., 9) = 9 <' in show
    assert '/d.bin>, "abcdef", 6) = 6 <' in show
    assert '/s.txt>, "line1\\n", 64) = 6 <' in show  # fgets: whole, no "..."
    out = t.dir.parent / "csv"
    r = iotrace("export", str(t.dir), "--format", "csv", "-o", str(out))
    assert r.returncode == 0, r.stderr
    rows = [r for r in csv.DictReader((out / "events.csv").open()) if r["data"]]
    assert [(r["function"], r["data"]) for r in rows if r["path"].endswith("d.bin")] == [
        ("write", "hi\\n\\0\\1\\377en"), ("writev", "abcdef"), ("write", "zzzzzzzz"),
        ("pread", "hi\\n\\0\\1\\377en"),
    ]  # fmt: skip


def test_buffer_escaped_as_strace_prints_it(trace, tmp_path: Path) -> None:
    """A strace user compares `show`'s buffers with strace's: every byte escaped alike (octal,
    three digits only before a digit 0-7; \\t \\v \\f \\r named), strace the oracle."""
    prog = build("data_esc")
    t = trace(prog, extra=("--no-stracer", "-s", "64"))
    assert t.proc.returncode == 0, t.proc.stderr
    st = tmp_path / "strace.out"
    subprocess.run(["strace", "-s", "64", "-e", "trace=write", "-o", str(st), str(prog)],
                   cwd=tmp_path, check=True)  # fmt: skip
    want = re.search(r'^write\(3, (".*"), 18\) = 18$', st.read_text(), re.M)
    assert want, st.read_text()
    show = iotrace("show", str(t.dir)).stdout
    assert f"/esc.bin>, {want[1]}, 18) = 18 <" in show, (want[1], show)


def test_at_most_data_max(trace, tmp_path: Path) -> None:
    t = trace(build("data_rw"), extra=("--no-stracer", "-s", str(DATA_MAX)))
    assert t.proc.returncode == 0, t.proc.stderr
    assert _kept(t) == [(fn, b[:DATA_MAX]) for fn, b in MOVED]
    r = iotrace("run", "-o", str(tmp_path / "x"), "-s", str(DATA_MAX + 1), "--", "true")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
