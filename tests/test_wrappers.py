"""Every row of the call table (calls.FUNCTIONS) has a wrapper in preload/ and a test program that
calls it, so that a wrapper nothing runs cannot rot unseen; every wrapper is written in the shapes
of preload/shim.h unless shim.h lists it as hand-written."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import PROGS, build

from iotrace.calls import FUNCTIONS
from iotrace.shim import shim_path

PRELOAD = Path(__file__).resolve().parent.parent / "preload"

# Rows no test program calls by name, and what exercises them instead.
ELSEWHERE = {
    "__overflow": "putc's inline path in the stdio programs",
    "__uflow": "getc's inline path in the stdio programs",
    "stdio_refill": "a stdio read's refill (stdio programs)",
    "stdio_flush": "a stdio write's flush (stdio programs)",
    "aio_read_done": "aio_return in st_aio.c",
    "aio_write_done": "aio_return in st_aio.c",
    "io_setup": "fio's libaio engine (test_engines.py)",
    "io_submit": "fio's libaio engine (test_engines.py)",
    "io_destroy": "fio's libaio engine (test_engines.py)",
    "MPI_File_iread_done": "MPI_Wait on an MPI_File_iread (mpi_io.c)",
    "MPI_File_iwrite_done": "MPI_Wait on an MPI_File_iwrite (mpi_io.c)",
}
# Rows nothing in the tests calls yet: this list may only shrink.
NOT_YET: set[str] = set()

# Files whose wrappers are not all in shim.h's shapes yet: this list may only shrink (empty now).
NOT_YET_SHAPED: set[str] = set()


def _called(name: str, text: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\s*\(", text) is not None


def test_every_function_has_a_wrapper_and_a_program_that_calls_it():
    """A wrapper: the shim exports the function, or records it from another entry point
    (IOT_FN_name in preload/: stdio's refills, AIO completions)."""
    nm = subprocess.run(["nm", "-D", "--defined-only", str(shim_path())], capture_output=True,
                        text=True, check=True).stdout  # fmt: skip
    exported = {ln.split()[-1] for ln in nm.splitlines() if ln.strip()}
    wrappers = "".join(p.read_text() for p in PRELOAD.glob("*.[ch]"))
    progs = "".join(p.read_text() for p in PROGS.glob("*.c"))
    names = {f.name for f in FUNCTIONS}
    assert [n for n in names if n not in exported and f"IOT_FN_{n}" not in wrappers] == []
    uncalled = {n for n in names if not _called(n, progs)}
    assert uncalled - ELSEWHERE.keys() - NOT_YET == set()
    assert NOT_YET & {n for n in names if _called(n, progs)} == set()  # called now: drop it
    assert ELSEWHERE.keys() | NOT_YET <= names


def test_the_last_uncalled_ones_are_recorded(trace):
    """fn_rest.c: each exec and spawn variant on a program that does not exist, fexecve on no
    descriptor, posix_fadvise, pwritev2, preadv2, newlocale: recorded with the call's result,
    and the program goes on."""
    t = trace(build("fn_rest"))
    assert t.proc.returncode == 0, t.proc.stderr
    assert t.proc.stdout.split() == ["2", "2", "0", "10", "6"]  # ENOENT, ENOENT, done, bytes
    got = {}
    for e in t.events():
        got.setdefault(e["fn"], []).append(e)
    for fn in ("execv", "execvpe", "execlp", "execle", "fexecve"):
        assert fn in got and got[fn][-1]["ret"] == -1 and got[fn][-1]["errno"] > 0, fn
    for fn in ("posix_spawn", "posix_spawnp"):
        assert [e["ret"] for e in got[fn]] == [2], fn  # the error number, as the call returns
    (adv,) = got["posix_fadvise"]
    assert adv["ret"] == 0 and adv["path"].endswith("/fadvise.dat") and adv["req"] == 4096
    (w,), (r,) = got["pwritev2"], got["preadv2"]
    assert (w["ret"], w["offset"], r["ret"], r["offset"]) == (10, 100, 6, 104)
    assert [e["path"] for e in got["newlocale"]] == ["C"]


_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_DEFINE = re.compile(r"^#\s*define\s+(\w+)(?:\(.*?\))?((?:.*\\\n)*.*)$", re.M)
_RAW = re.compile(r"\biot_(?:enter|done|leave)\s*\(")  # the primitives the shapes are made of
_CALLED = re.compile(r"\b(\w+)\s*\(")


def _name_of(signature: str) -> str | None:
    """The function a definition's signature names: the last `name(` outside parentheses."""
    depth, name = 0, None
    for m in re.finditer(r"\w+\s*\(|[()]", signature):
        tok = m.group(0)
        if tok == ")":
            depth -= 1
        else:
            if depth == 0 and tok != "(":
                name = tok.rstrip("( \t\n")
            depth += 1
    return name


def _units(text: str) -> tuple[dict[str, str], set[str], dict[str, list[str]]]:
    """A C file's functions and macros (name -> text), the exported functions (IOT_API), and the
    functions a macro defines (macro -> the first argument of each top-level use)."""
    text = _COMMENT.sub(" ", text)
    units, exported, made = {}, set(), {}
    for m in _DEFINE.finditer(text):
        units[m.group(1)] = m.group(2)
        if "IOT_API" in m.group(2):  # its names: the first arguments (pasted: MACRO(arg))
            args = re.findall(rf"^{m.group(1)}\((\w+)", text, re.M)
            pasted = re.search(r"IOT_API[^(]*##", m.group(2))
            made[m.group(1)] = [f"{m.group(1)}({a})" if pasted else a for a in args]
    code = _DEFINE.sub("", text)
    depth, start, sig = 0, 0, ""
    for i, c in enumerate(code):
        if c == "{":
            if depth == 0:
                sig = code[start:i]
                body_start = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                name = _name_of(sig) if "=" not in sig else None
                if name:
                    units[name] = code[body_start : i + 1]
                    if "IOT_API" in sig:
                        exported.add(name)
                start = i + 1
        elif c == ";" and depth == 0:
            start = i + 1
    return units, exported, made


def _hand_written() -> set[str]:
    """The names shim.h lists as hand-written: the list after "Hand-written", a line per entry
    (names first, then two spaces and why; a longer why on lines indented further)."""
    text = (PRELOAD / "shim.h").read_text()
    block = text[text.index(" * Hand-written") :]
    block = block[: block.index("*/")]
    names = set()
    for line in block.splitlines()[1:]:
        m = re.match(r" \*   (\S.*)$", line)
        if m and not line.startswith(" *    "):
            names.update(m.group(1).split("  ")[0].split())
    return names


def _outside_the_shapes(text: str) -> tuple[set[str], set[str]]:
    """A C file's wrappers, and those that reach the primitives the shapes are made of itself or
    through the file's helpers (another wrapper it calls answers for itself)."""
    units, exported, made = _units(text)
    seen: dict[str, bool] = {}

    def raw(name: str, stack: frozenset[str]) -> bool:
        if name not in seen:
            body = units[name]
            refs = set(_CALLED.findall(body)) | set(re.findall(r"\b[A-Z_][A-Z0-9_]+\b", body))
            refs = (refs & units.keys()) - exported - stack - {name}
            seen[name] = bool(_RAW.search(body)) or any(raw(n, stack | {name}) for n in refs)
        return seen[name]

    mine = {n for n in exported if raw(n, frozenset())}
    mine.update(n for macro, names in made.items() if raw(macro, frozenset()) for n in names)
    return exported.union(*made.values()), mine


def test_every_wrapper_is_in_the_shapes_or_listed_as_hand_written():
    """A wrapper outside the shapes of shim.h (it reaches iot_enter, iot_done or iot_leave
    itself or through its file's helpers) is hand-written, and shim.h's list must say so and
    why; one listed there that the shapes now cover must leave the list."""
    listed = _hand_written()
    wrappers, outside = set(), set()
    for path in sorted(PRELOAD.glob("wrap_*.c")):
        mine, raw = _outside_the_shapes(path.read_text())
        wrappers |= mine
        if path.name in NOT_YET_SHAPED:  # not converted yet: it goes from there when it is
            assert raw - listed, f"{path.name} is in the shapes now: drop it from NOT_YET_SHAPED"
            raw &= listed
        outside |= raw
    assert {"write", "stat", "fwrite", "MPI_File_write_at"} <= wrappers  # the parse found them
    assert outside - listed == set(), "outside the shapes: use them, or list it in shim.h"
    assert listed - outside == set(), "in the shapes now (or gone): drop it from the list"
