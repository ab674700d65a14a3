"""The readers (report, show, export, missed, diff) as root on what another user could plant:
a trace directory reached through their symbolic link, a module swapped for a FIFO while the
report runs addr2line on it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import iotrace

NOBODY = 65534
READS = (["report", "--json"], ["show"], ["missed"], ["export", "--format", "csv", "-o", "x"])


@pytest.fixture
def private(tmp_path: Path) -> Path:
    """A trace of root's own, its command line (/etc/hostname) private to root."""
    t = tmp_path / "private"
    r = iotrace("run", "--no-stracer", "-o", str(t), "--", "cat", "/etc/hostname")
    assert r.returncode == 0, r.stderr
    return t


def _link(link: Path, target: Path, uid: int) -> None:
    link.symlink_to(target)
    os.lchown(link, uid, uid)


@pytest.mark.parametrize("where", ["dir", "parent"])
def test_a_trace_dir_linked_by_another_user_is_not_followed(
    tmp_path: Path, public_dir: Path, private: Path, where: str
) -> None:
    """Root asked to read a trace of nobody's (support for a user): nobody's link named as the
    trace (or as a directory on its way) led root's report, show, missed and exports to root's
    private trace, its command line shown as nobody's.  Now a link of another user's is not
    followed: one line, status 2; root's own link is."""
    n = public_dir / "n"
    n.mkdir()
    os.chown(n, NOBODY, NOBODY)
    if where == "dir":
        _link(n / "trace", private, NOBODY)
        given = n / "trace"
    else:
        _link(n / "up", private.parent, NOBODY)
        given = n / "up" / private.name
    for cmd in READS:
        r = iotrace(*cmd, str(given), cwd=tmp_path)
        assert "hostname" not in r.stdout, (cmd, r.stdout)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (cmd, r.stderr)
        assert "symbolic link of uid 65534's" in r.stderr, (cmd, r.stderr)
    r = iotrace("diff", str(private), str(given), cwd=tmp_path)
    assert r.returncode == 2 and "symbolic link of uid 65534's" in r.stderr, r.stderr
    mine = tmp_path / "mine"
    _link(mine, private, os.geteuid())
    r = iotrace("report", "--json", str(mine))
    assert r.returncode == 0 and "hostname" in r.stdout, r.stderr


WRITER_C = r"""
#include <fcntl.h>
#include <unistd.h>
void save_it(const char *p)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    write(fd, "hello\n", 6);
    close(fd);
}
int main(int argc, char **argv) { save_it(argv[1]); return 0; }
"""


def test_a_module_swapped_for_a_fifo_does_not_hold_the_report(tmp_path: Path) -> None:
    """The module's owner swaps it for a FIFO after the report checked it (its build-id) and
    before addr2line opens it (an addr2line in PATH that makes the swap first puts it exactly
    in that window): the tool refused the FIFO ("not an ordinary file"; swapped in between its
    own check and its open, it would wait for a writer until the report's 120 s timeout) and
    the call site went unnamed.  Now the tool opens only the file the report opened (a link to
    its descriptor): the call site is named."""
    if shutil.which("gcc") is None or shutil.which("addr2line") is None:
        pytest.skip("needs gcc and addr2line")
    (tmp_path / "w.c").write_text(WRITER_C)
    prog = tmp_path / "w"
    subprocess.run(["gcc", "-g", "-O0", "-o", str(prog), str(tmp_path / "w.c")], check=True)
    r = iotrace("run", "--no-stracer", "-o", str(tmp_path / "t"), "--", str(prog),
                str(tmp_path / "out"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    tools = tmp_path / "bin"
    tools.mkdir()
    wrapper = tools / "addr2line"
    wrapper.write_text(f"#!/bin/sh\n[ -p {prog} ] || {{ mv {prog} {prog}.old; mkfifo {prog}; }}\n"
                       f"exec {shutil.which('addr2line')} \"$@\"\n")  # fmt: skip
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"}
    try:
        r = iotrace("report", "--json", str(tmp_path / "t"), env=env, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the report was held by a FIFO swapped in for the module")
    assert r.returncode == 0, r.stderr
    assert prog.is_fifo(), "the swap was not made"
    assert "save_it (w.c:" in r.stdout, r.stdout[:2000]


@pytest.mark.parametrize("cmd", [["export", "--format", "parquet", "-o"], ["report", "--html"]])
def test_an_output_under_another_users_directory_is_refused(
    tmp_path: Path, public_dir: Path, private: Path, cmd: list[str]
) -> None:
    """Root asked to write an export or report into a directory of nobody's: nobody's link
    there (or a rename while it is written) sent it into a directory of root's, and the Parquet
    export deleted that directory's `events` first (shutil.rmtree, then pyarrow's writer).  Now
    an output whose way another user could change is refused, as `run -o` is: one line, status
    2, nothing of root's touched."""
    mine = tmp_path / "mine"
    (mine / "out" / "events").mkdir(parents=True)
    (mine / "out" / "events" / "keep").write_text("root's\n")
    n = public_dir / "n"
    n.mkdir()
    os.chown(n, NOBODY, NOBODY)
    _link(n / "link", mine, NOBODY)
    name = "out" if cmd[0] == "export" else "r.html"
    r = iotrace(*cmd, str(n / "link" / name), str(private))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "another user could move it elsewhere" in r.stderr, r.stderr
    assert sorted(p.name for p in mine.rglob("*")) == ["events", "keep", "out"]
    r = iotrace(*cmd, str(tmp_path / name), str(private))
    assert r.returncode == 0, r.stderr


def test_a_module_checked_for_reading_is_never_opened_unless_regular(tmp_path: Path) -> None:
    """Whether a module of the job can be read (after its build-id could not be) was asked by
    opening it (O_RDONLY|O_NONBLOCK): a device swapped in since (by a link on the way to it)
    would be opened by root's report, with its driver's effects (a watchdog armed, a tape
    rewound).  A FIFO shows it: opening it let go the writer that waited for a reader.  Now
    only a regular file is opened (elf.open_regular)."""
    import threading

    from iotrace.analyzer.modules import _unreadable

    fifo = tmp_path / "lib.so"
    os.mkfifo(fifo)
    let_go = threading.Event()

    def writer() -> None:
        fd = os.open(fifo, os.O_WRONLY)  # waits for a reader
        let_go.set()
        os.close(fd)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    while t.native_id is None or not Path(
        f"/proc/self/task/{t.native_id}/syscall"
    ).read_text().startswith("257 "):  # the writer waits in openat
        time.sleep(0.01)
    said = _unreadable(str(fifo))
    opened = let_go.wait(1.0)
    with contextlib.suppress(OSError):  # the writer's reader, if it still waits
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    t.join(5)
    assert not opened, "the FIFO was opened"
    assert said == "not a regular file", said


def test_a_module_swapped_after_its_build_id_check_is_not_symbolised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report checks a module is the file the job ran (its build-id, by path), then has
    addr2line read it: the module's owner swapped another build in between (here right after
    the check, in that window) and its names were given to the job's frames (`forged_name`
    where the job ran `save_it`).  Now the build-id is checked on the very descriptor the tool
    reads: the frames stay module+offset."""
    if shutil.which("gcc") is None or shutil.which("addr2line") is None:
        pytest.skip("needs gcc and addr2line")
    from iotrace.analyzer import load, symbols

    src = tmp_path / "w.c"
    src.write_text(WRITER_C.replace("save_it", "FN"))
    prog, forged = tmp_path / "w", tmp_path / "forged"
    for exe, name in ((prog, "save_it"), (forged, "forged_name")):  # the same code, other names
        subprocess.run(["gcc", "-g", "-O0", f"-DFN={name}", "-o", str(exe), str(src)], check=True)
    r = iotrace("run", "--no-stracer", "-o", str(tmp_path / "t"), "--", str(prog),
                str(tmp_path / "out"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    checked = symbols.same_file

    def checked_then_swapped(module: str, ran: dict[str, set[bytes]]) -> bool:
        same = checked(module, ran)
        if module == str(prog) and forged.exists():
            os.replace(forged, prog)  # the owner's rename, after the check
        return same

    monkeypatch.setattr(symbols, "same_file", checked_then_swapped)
    st = load(tmp_path / "t").stacks
    assert not forged.exists(), "the swap was not made"
    names = set(st[st["module"] == str(prog)]["function"].dropna())
    assert "forged_name" not in names, names


def test_a_trace_dir_swapped_while_it_is_read_is_not_followed(
    tmp_path: Path,
    public_dir: Path,
    private: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Root reads a trace of nobody's (support for a user); nobody named their log as root's
    private log is named (HOST.PID.iot, guessed), and once the reader has listed the trace,
    renames it away and puts their link to root's private trace in its place (here: right
    after the listing, as root does it for them).  The reader opened each log by path: it read
    root's log, its command line shown as nobody's.  Now the trace directory is opened once
    (tracedir.pin) and every file of it opened relative to that descriptor."""
    from iotrace import cli, show, tracedir

    monkeypatch.setattr(tracedir, "_PINNED", {}, raising=False)  # this test's alone
    theirs = _nobodys_trace(public_dir, "cat", "/etc/passwd")
    n = theirs.parent
    rootlog = next(private.glob("*.iot"))
    next(theirs.glob("*.iot")).rename(theirs / rootlog.name)  # nobody's own rename
    listed = show.log_paths

    def listed_then_swapped(d: Path) -> list[Path]:
        logs = listed(d)
        theirs.rename(n / "old")
        theirs.symlink_to(private)
        os.lchown(theirs, NOBODY, NOBODY)
        return logs

    monkeypatch.setattr(show, "log_paths", listed_then_swapped)
    try:
        status = cli.main(["show", str(theirs)])
        out = capsys.readouterr().out
    finally:
        for fd in getattr(tracedir, "_PINNED", {}).values():
            os.close(fd)
    assert theirs.is_symlink(), "the swap was not made"
    assert "hostname" not in out, out
    assert status == 0 and "/etc/passwd" in out, out  # nobody's own log, read


def test_addr2line_links_are_not_made_in_another_users_tmpdir(
    tmp_path: Path, public_dir: Path
) -> None:
    """Root with a user's environment (su without -) kept their TMPDIR: the report made the
    private directory of addr2line's links there, where that user could rename it away as it
    was made and put a directory of theirs, whose links the tool then opened as root (a
    device, a FIFO, a file of root's in place of the module).  Now a TMPDIR another user could
    change is not used (/tmp is); root's own is.  An addr2line first in PATH says where the
    links it was given are."""
    if shutil.which("gcc") is None or shutil.which("addr2line") is None:
        pytest.skip("needs gcc and addr2line")
    (tmp_path / "w.c").write_text(WRITER_C)
    prog = tmp_path / "w"
    subprocess.run(["gcc", "-g", "-O0", "-o", str(prog), str(tmp_path / "w.c")], check=True)
    r = iotrace("run", "--no-stracer", "-o", str(tmp_path / "t"), "--", str(prog),
                str(tmp_path / "out"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    tools, said = tmp_path / "bin", tmp_path / "said"
    tools.mkdir()
    (tools / "addr2line").write_text(
        "#!/bin/sh\nfor a; do case $a in /proc/self/fd/*) d=${a#/proc/self/fd/}\n"
        f"  readlink /proc/self/fd/${{d%%/*}} >> {said};; esac; done\n"
        f'exec {shutil.which("addr2line")} "$@"\n'
    )
    (tools / "addr2line").chmod(0o755)
    theirs, mine = public_dir / "tmp", tmp_path / "tmp"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, NOBODY, NOBODY)
    mine.mkdir(mode=0o700)
    for tmp, where in ((theirs, "/tmp"), (mine, str(mine))):
        env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "TMPDIR": str(tmp)}
        r = iotrace("report", "--json", str(tmp_path / "t"), env=env)
        assert r.returncode == 0 and "save_it (w.c:" in r.stdout, r.stderr
        dirs = said.read_text().split()
        said.unlink()
        assert dirs and {os.path.dirname(d) for d in dirs} == {where}, (tmp, dirs)
    assert list(theirs.iterdir()) == []


def _nobodys_trace(public_dir: Path, *cmd: str) -> Path:
    """A trace of nobody's own (`iotrace run` as nobody), in a directory of nobody's."""
    n = public_dir / "n"
    n.mkdir()
    os.chown(n, NOBODY, NOBODY)
    theirs = n / "theirs"
    site = ":".join(p for p in sys.path if p.endswith("site-packages"))
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        sys.executable, "-m", "iotrace", "run", "--no-stracer", "-o", str(theirs),
                        "--", *cmd], cwd=public_dir, capture_output=True,
                       text=True, timeout=60,
                       env={"PATH": os.environ["PATH"], "PYTHONPATH": site})  # fmt: skip
    assert r.returncode == 0, r.stderr
    return theirs


def test_show_spills_a_users_trace_in_a_private_place(
    public_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root's `show` of a trace of nobody's, beyond its memory bound, wrote its sorted runs
    into nobody's trace directory (root may write there): nobody could rename the directory
    away and put a link in its place, and root's runs went wherever it led.  Now the runs go
    to the trace's directory only when it is the caller's alone, else to /tmp (a TMPDIR of
    ours)."""
    import io

    import iotrace.show as show_mod
    import iotrace.spill as spill

    theirs = _nobodys_trace(public_dir, "head", "-c", "100000", "/etc/services")
    where: list[str] = []
    write = spill.Sorter._write

    def noted(s: spill.Sorter, blocks):  # type: ignore[no-untyped-def]
        f = write(s, blocks)
        where.append(os.path.dirname(os.readlink(f"/proc/self/fd/{f.fileno()}")))
        return f

    monkeypatch.setattr(spill.Sorter, "_write", noted)
    monkeypatch.setattr(show_mod, "BATCH", 7)
    monkeypatch.setattr(show_mod, "WINDOW", 1)
    monkeypatch.setattr(show_mod, "BASE_MEMORY", 0)
    monkeypatch.delenv("TMPDIR", raising=False)
    out = io.StringIO()
    show_mod.show(theirs, out, memory=1)
    assert "/etc/services" in out.getvalue()
    assert where and set(where) == {"/tmp"}, where


RAW_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
void first_raw(const char *p);
void FN(const char *p)
{
    long fd = syscall(SYS_openat, AT_FDCWD, p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    syscall(SYS_write, fd, "hello\n", 6);
    close((int)fd);
}
int main(int argc, char **argv)
{
    first_raw(argv[1]);
    if (argc > 3 && rename(argv[3], argv[2]) != 0) /* its owner's swap, after that */
        return 3;
    FN(argv[1]);
    return 0;
}
"""

# a raw syscall in a thread of a library's: the stracer reads the process's maps (the program's
# path among them) and symbolises that library, not the program
FIRST_C = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
static void *raw(void *p) { syscall(SYS_access, (const char *)p, F_OK); return NULL; }
void first_raw(const char *p)
{
    pthread_t t;
    pthread_create(&t, NULL, raw, (void *)p);
    pthread_join(t, NULL);
}
"""


def test_the_stracer_names_sites_only_from_the_file_the_process_runs(tmp_path: Path) -> None:
    """A bypass (raw syscalls) is named on the console as it runs, by an addr2line the stracer
    starts per module, given the path its maps said: the program's owner swapped another build
    in after the stracer read them (here the program itself, after a raw syscall of a library's
    thread) and the job's frames were named by it (`forged_name` where the job ran
    `save_raw`), on the console and in the trace.  Now the stracer reads the ids of the file
    the process maps from its memory and addr2line reads only a file with them: the frames
    stay module+offset."""
    if shutil.which("gcc") is None or shutil.which("addr2line") is None:
        pytest.skip("needs gcc and addr2line")
    src, lib = tmp_path / "w.c", tmp_path / "libfirst.so"
    src.write_text(RAW_C)
    (tmp_path / "first.c").write_text(FIRST_C)
    subprocess.run(["gcc", "-g", "-shared", "-fPIC", "-o", str(lib), str(tmp_path / "first.c"),
                    "-lpthread"], check=True)  # fmt: skip
    prog, forged = tmp_path / "w", tmp_path / "forged"
    for exe, name in ((prog, "save_raw"), (forged, "forged_name")):  # the same code, other names
        subprocess.run(["gcc", "-g", "-O0", f"-DFN={name}", "-o", str(exe), str(src),
                        f"-L{tmp_path}", "-lfirst", f"-Wl,-rpath,{tmp_path}"],
                       check=True)  # fmt: skip
    r = iotrace("run", "-o", str(tmp_path / "t0"), "--", str(prog), str(tmp_path / "o0"))
    assert r.returncode == 0 and "at save_raw (w.c:" in r.stderr, r.stderr  # named when it is
    r = iotrace("run", "-o", str(tmp_path / "t"), "--", str(prog), str(tmp_path / "out"),
                str(prog), str(forged))  # fmt: skip
    assert r.returncode == 0 and not forged.exists(), r.stderr
    assert "at raw (first.c:" in r.stderr and "forged_name" not in r.stderr, r.stderr
    from iotrace.analyzer import load

    st = load(tmp_path / "t").stacks  # the trace's frames as the report names them
    assert "forged_name" not in set(st["function"].dropna()), st
    assert "raw" in set(st["function"].dropna()), st


@pytest.mark.parametrize("where", ["forkserver", "dask"])
def test_workers_read_the_trace_dir_the_command_opened(
    public_dir: Path, private: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Root reads a trace of nobody's in parts; nobody named a log of theirs as root's private
    log is named, and once root's command opened the trace (tracedir.pin), renamed it away and
    put a link to root's private trace in its place.  The command's files were opened relative
    to its descriptor, but its workers (a forkserver's: a library caller with threads; a Dask
    cluster's) opened them by path: root's log read as nobody's.  Now each worker reads the
    directory the command opened (tracedir.handed, adopted)."""
    import threading

    from iotrace.analyzer import parts
    from iotrace.analyzer.report import report_json

    from iotrace import tracedir

    monkeypatch.setattr(tracedir, "_PINNED", {})  # this test's alone
    theirs = _nobodys_trace(public_dir, "sh", "-c", "cat /etc/passwd; cat /etc/passwd")
    rootlog = next(private.glob("*.iot"))
    next(theirs.glob("*.iot")).rename(theirs / rootlog.name)  # nobody's own rename
    tracedir.pin(theirs)

    def swap() -> None:
        theirs.rename(theirs.parent / "old")
        theirs.symlink_to(private)
        os.lchown(theirs, NOBODY, NOBODY)

    if where == "dask":  # before the plan, which a worker makes
        swap()
    else:  # once the command planned the parts
        grouped = parts.groups
        monkeypatch.setattr(parts, "groups", lambda ps: swap() or grouped(ps))
    held = threading.Event()  # a library caller's thread: its workers from a forkserver
    t = threading.Thread(target=held.wait)
    t.start()
    cluster = None
    try:
        if where == "dask":
            pytest.importorskip("distributed")
            cluster = subprocess.Popen([sys.executable, "-m", "iotrace.cluster", "--workers", "1"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL, text=True)  # fmt: skip
            assert cluster.stdout is not None
            b = parts.Bounded(str(theirs), scheduler=cluster.stdout.readline().strip())
        else:
            b = parts.Bounded(str(theirs), workers=2, part_bytes=1)
        s, _ = parts.summarise(b)
    finally:
        held.set()
        t.join()
        if cluster is not None:
            cluster.communicate("", timeout=60)
        for fd in tracedir._PINNED.values():
            os.close(fd)
    got = report_json(s)
    assert theirs.is_symlink(), "the swap was not made"
    assert "hostname" not in got, got
    assert "/etc/passwd" in got, got


def test_the_librarys_load_reads_the_trace_dir_it_opened(
    public_dir: Path, private: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library's `load(DIR)` (no command line to pin the trace) opened each log by path:
    nobody's trace, renamed away once listed (before its events are read) and a link to root's
    private trace put in its place (its log named as root's is), gave root's events as
    nobody's.  Now load opens the
    directory once and reads relative to it (tracedir.held)."""
    from iotrace.analyzer import load

    from iotrace import tracedir

    names = load.__globals__  # analyzer/load.py's (the package's `load` is the function)

    monkeypatch.setattr(tracedir, "_PINNED", {})
    theirs = _nobodys_trace(public_dir, "cat", "/etc/passwd")
    rootlog = next(private.glob("*.iot"))
    next(theirs.glob("*.iot")).rename(theirs / rootlog.name)
    decode = names["_decode_all"]

    def swapped_then_decoded(*a: Any) -> Any:
        theirs.rename(theirs.parent / "old")
        theirs.symlink_to(private)
        os.lchown(theirs, NOBODY, NOBODY)
        return decode(*a)

    monkeypatch.setitem(names, "_decode_all", swapped_then_decoded)
    tr = load(theirs)
    assert theirs.is_symlink(), "the swap was not made"
    got = set(map(str, tr.events["path"]))
    assert "/etc/hostname" not in got and "/etc/passwd" in got, got
