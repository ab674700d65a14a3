"""Every row of the call table (calls.FUNCTIONS) has a wrapper in preload/ and a test program that
calls it, so that a wrapper nothing runs cannot rot unseen."""

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
NOT_YET = {
    "MPI_File_read", "MPI_File_read_all", "MPI_File_read_shared", "MPI_File_write_shared",
    "MPI_File_read_ordered", "MPI_File_write_ordered", "MPI_File_iread_all",
    "MPI_File_iwrite_all", "MPI_File_iread_at_all", "MPI_File_iwrite_at_all",
    "MPI_File_set_size", "io_cancel",
    "ncmpi_put_vara", "ncmpi_put_vara_all", "ncmpi_get_vara", "ncmpi_get_vara_double",
    "ncmpi_get_vara_double_all", "ncmpi_put_vara_float", "ncmpi_put_vara_float_all",
    "ncmpi_get_vara_float", "ncmpi_get_vara_float_all", "ncmpi_put_vara_int",
    "ncmpi_put_vara_int_all", "ncmpi_get_vara_int", "ncmpi_get_vara_int_all",
}  # fmt: skip


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
