"""Every byte on the right file (issue 11): calls with two ends (copy_file_range, sendfile,
splice, tee) record and count both the end read and the end written, in the shim and when the
stracer sees them as missed syscalls; real programs (cp, python3's shutil.copyfile) show the
bytes they read from the input.  Each run is compared with the untraced one."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import build, iotrace
from iotrace.analyzer import load

MODES = ("plain", "shim", "stracer")
SRC_SIZE = 16384


def run(mode: str, cmd: list[str], cwd: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """`cmd` untraced, under `iotrace run --no-stracer` or under `iotrace run`."""
    cwd.mkdir(parents=True, exist_ok=True)
    if mode == "plain":
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    extra = ("--no-stracer",) if mode == "shim" else ()
    return iotrace("run", "-o", str(out), *extra, "--", *cmd, cwd=cwd, timeout=120)


def outputs(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def per_file(out: Path) -> dict[str, tuple[int, int]]:
    """path -> (bytes read, bytes written) from the analyzer's files table."""
    files = load(out).files
    return {
        r.path: (int(r.bytes_read), int(r.bytes_written))
        for r in files.itertuples()
        if r.bytes_read or r.bytes_written
    }


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("src") / "input.bin"
    p.write_bytes(os.urandom(SRC_SIZE))
    return p


@pytest.mark.parametrize("raw", [False, True], ids=["libc", "raw"])
def test_two_ends_both_counted(tmp_path: Path, src: Path, raw: bool) -> None:
    exe = build("two_ends")
    results = {}
    for mode in MODES:
        work = tmp_path / mode
        args = [str(exe), str(src), str(work), *(["raw"] if raw else [])]
        p = run(mode, args, work, tmp_path / f"t_{mode}")
        assert p.returncode == 0, p.stderr
        results[mode] = outputs(work)
    assert results["shim"] == results["plain"] == results["stracer"]
    data = src.read_bytes()
    assert results["plain"]["cfr.out"] == data[100:1100]
    for mode in ("shim", "stracer") if not raw else ("stracer",):
        out = tmp_path / f"t_{mode}"
        work = tmp_path / mode
        files = per_file(out)
        assert files[str(src)] == (1000 + 2000 + 500 + 3000, 0), (mode, files)
        assert files[str(work / "cfr.out")] == (0, 1000)
        assert files[str(work / "sendfile.out")] == (0, 2500)
        assert files[str(work / "splice.out")] == (0, 3000)
        assert files[str(work / "tee.out")] == (0, 3000)
        ev = load(out).events
        ends = ev[ev["function"].astype(str).str.endswith(":in")]
        # the end read: its own descriptor, path and offset
        got = sorted(
            (str(r.function), int(r.bytes), None if pd_na(r.offset) else int(r.offset))
            for r in ends.itertuples()
            if r.path == str(src)
        )
        assert got == sorted(
            [
                ("copy_file_range:in", 1000, 100),
                ("sendfile:in", 2000, 0),
                ("sendfile:in", 500, 4096),
                ("splice:in", 3000, 8192),
            ]
        ), got
        assert bool(ev.loc[ev.index.isin(ends.index), "missed"].all()) == raw
        if raw:  # show names both ends of a stracer event (the end read was a bare number)
            shown = iotrace("show", str(out)).stdout.splitlines()
            lines = [
                ln for ln in shown if re.search(r"\] \+[\d.]+ (copy_file_range|sendfile)\(", ln)
            ]
            assert len(lines) == 3 and all(f"<{src}>" in ln for ln in lines), lines


def pd_na(v: object) -> bool:
    import pandas as pd

    return v is None or v is pd.NA


def test_cp_and_shutil_read_the_input(tmp_path: Path, src: Path) -> None:
    """cp (copy_file_range) and python3's shutil.copyfile (sendfile) read every byte of the
    input: the trace says so, in both modes, and the copies are identical to untraced ones."""
    cp = shutil.which("cp")
    assert cp
    cmds = {
        "cp": [cp, str(src), "copy.bin"],
        "shutil": [
            sys.executable,
            "-c",
            f"import shutil; shutil.copyfile({str(src)!r}, 'copy.bin')",
        ],
    }
    copies_read_the_input(tmp_path, src, cmds)


def copies_read_the_input(tmp_path: Path, src: Path, cmds: dict[str, list[str]]) -> None:
    """Each command copies `src` to copy.bin in every mode: the copy is the input, and the
    trace has every byte of the input read and of the copy written."""
    for name, cmd in cmds.items():
        for mode in MODES:
            work = tmp_path / name / mode
            out = tmp_path / name / f"t_{mode}"
            p = run(mode, cmd, work, out)
            assert p.returncode == 0, p.stderr
            assert (work / "copy.bin").read_bytes() == src.read_bytes()
            if mode == "plain":
                continue
            files = per_file(out)
            assert files[str(src)][0] == SRC_SIZE, (name, mode, files)
            assert files[str(work / "copy.bin")] == (0, SRC_SIZE), (name, mode, files)


JAVA_COPY = """import java.nio.file.*;
public class Copy {
    public static void main(String[] a) throws Exception {
        Files.copy(Paths.get(a[0]), Paths.get(a[1]), StandardCopyOption.REPLACE_EXISTING);
    }
}
"""
RUST_COPY = "fn main() { let a: Vec<String> = std::env::args().collect(); " \
    "std::fs::copy(&a[1], &a[2]).unwrap(); }\n"  # fmt: skip


def test_java_and_rust_copies_read_the_input(tmp_path: Path, src: Path) -> None:
    """Java's Files.copy and Rust's fs::copy (they showed 0 bytes read from the input, issue
    11): every byte of the input read and of the copy written, in both modes, as untraced."""
    progs = tmp_path / "progs"
    progs.mkdir()
    (progs / "Copy.java").write_text(JAVA_COPY)
    (progs / "copy.rs").write_text(RUST_COPY)
    subprocess.run(["javac", "Copy.java"], cwd=progs, check=True, timeout=300)
    subprocess.run(["rustc", "-O", "-o", "rcopy", "copy.rs"], cwd=progs, check=True, timeout=300)
    cmds = {
        "java": ["java", "-cp", str(progs), "Copy", str(src), "copy.bin"],
        "rust": [str(progs / "rcopy"), str(src), "copy.bin"],
    }
    copies_read_the_input(tmp_path, src, cmds)


STDIO_CMDS = {
    # coreutils echo: fputs, then putchar('\n') inline: the newline is flushed at exit
    "echo": "for i in $(seq 40); do /bin/echo line$i > echo$i.out; done",
    # wc: printf, then inline putc through __overflow
    "wc": "wc -l < in.txt > wc.out",
    # a pipeline whose last writers are echo children of xargs
    "pipeline": "cat in.txt | sort | uniq -c > uniq.out; seq 30 | xargs -n1 /bin/echo > xargs.out",
}


@pytest.mark.parametrize("name", list(STDIO_CMDS))
def test_stdio_bytes_counted_once(tmp_path: Path, name: str) -> None:
    """Every byte that reaches a file through stdio is counted once, the exit-time flush
    included: bytes written per file (analyzer) = the file's size, in both modes, and the
    outputs are the untraced ones."""
    made = {}
    for mode in MODES:
        work = tmp_path / mode
        work.mkdir()
        (work / "in.txt").write_text("".join(f"w{i % 7}\n" for i in range(7)))
        p = run(mode, ["bash", "-c", STDIO_CMDS[name]], work, tmp_path / f"t_{mode}")
        assert p.returncode == 0, p.stderr
        made[mode] = {k: v for k, v in outputs(work).items() if k.endswith(".out")}
        assert made[mode]
        if mode == "plain":
            continue
        files = per_file(tmp_path / f"t_{mode}")
        for fname, data in made[mode].items():
            assert files.get(str(work / fname), (0, 0))[1] == len(data), (mode, fname, files)
    assert made["plain"] == made["shim"] == made["stracer"]


@pytest.mark.parametrize("mode", ["shim", "stracer"])
def test_fork_exec_is_one_process(tmp_path: Path, mode: str) -> None:
    """bash forking and exec'ing 20 programs: 21 processes, 41 images (each child is bash's
    fork, then the program), and the report says so."""
    out = tmp_path / "t"
    p = run(mode, ["bash", "-c", "for i in {1..20}; do /bin/true; done"], tmp_path / "w", out)
    assert p.returncode == 0, p.stderr
    from iotrace.analyzer import summarise

    ov = summarise(load(out)).overview
    assert (ov["processes"], ov["images"]) == (21, 41), ov
    rep = iotrace("report", str(out))
    assert "21 process(es) (41 program image(s)" in rep.stdout, rep.stdout


def test_stdio_totals_are_what_moved_underneath(tmp_path: Path, src: Path) -> None:
    """fseek + fread of 100 bytes makes stdio read a whole block: the file totals count the
    blocks read (stdio_refill), as strace does, and the functions table keeps the 1,000 bytes
    the program got; the writes, patched by an fseek back, are the flushes strace sees."""
    from oracle import strace_bytes

    exe = build("stdio_seek")
    big = tmp_path / "big.bin"
    big.write_bytes(src.read_bytes() * 5)  # 80 KiB
    work = tmp_path / "w"
    work.mkdir()
    got, p = strace_bytes([str(exe), str(big), "out.bin"], work)
    assert p.returncode == 0, p.stderr
    want = {str(big): [got[("read", str(big))], 0],
            str(work / "out.bin"): [0, got[("write", str(work / "out.bin"))]]}  # fmt: skip
    for mode in ("shim", "stracer"):
        out = tmp_path / f"t_{mode}"
        p = run(mode, [str(exe), str(big), "out.bin"], work, out)
        assert p.returncode == 0, p.stderr
        files = per_file(out)
        assert files[str(big)] == tuple(want[str(big)]), (mode, files, dict(want))
        assert files[str(work / "out.bin")] == tuple(want[str(work / "out.bin")])
        from iotrace.analyzer import summarise

        fn = summarise(load(out)).functions.set_index("function")
        assert int(fn.loc["fread", "bytes"]) == 1000
        assert int(fn.loc["stdio_refill", "bytes"]) == want[str(big)][0]


def test_every_stdio_flush_and_refill_equals_strace(tmp_path: Path) -> None:
    """What stdio moves behind the app's calls (tests/progs/stdio_flushes.c): the seeks of a
    "w+" stream that flush and read its block back, one past the end that reads less than its
    block, freopen's flush of the stream it reopens, a prompt on a line-buffered stdout flushed
    by a read, fflush(NULL) before _exit: bytes per file are strace's, with and without the
    stracer."""
    from oracle import strace_bytes

    exe = build("stdio_flushes")
    src = tmp_path / "in.txt"
    src.write_text("one line\nanother\n")
    work = tmp_path / "w"
    work.mkdir()
    got, p = strace_bytes([str(exe), str(src), str(work)], work)
    assert p.returncode == 0, p.stderr
    want = {path: (got[("read", path)], got[("write", path)]) for _, path in got}
    names = {"rw.bin", "first.txt", "second.txt", "log.txt"}
    assert {Path(k).name for k in want} >= names, want
    for mode in ("shim", "stracer"):
        out = tmp_path / f"t_{mode}"
        p = run(mode, [str(exe), str(src), str(work)], work, out)
        assert p.returncode == 0, p.stderr
        files = {k: v for k, v in per_file(out).items() if k in want}
        assert files == want, (mode, files, want)


VFORK_PY = (
    "import os, subprocess\n"
    "f = open('py.out', 'w')\n"
    "os.mkdir('sub')\n"
    "subprocess.run(['true'], cwd='sub', stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,\n"
    "               check=True)\n"
    "f.write('x' * 10)\n"
    "f.close()\n"
    "open('after.out', 'w').write('y' * 5)\n"  # the child's chdir is not the parent's
)


@pytest.mark.parametrize("mode", ["shim", "stracer"])
def test_vfork_child_acts_for_itself(tmp_path: Path, mode: str) -> None:
    """A vfork child's dup2 and close (a C program; python3's subprocess, which vforks) leave the
    parent's descriptor table in the trace alone: the parent's later writes are on its file, not
    the child's pipe, and the child's calls are not logged under the parent's pid.  They are the
    child's own events, under the stracer (its syscalls) and with the shim alone (its calls, in
    a log the parent writes for it): the C program's dup2 and close before its exec; a second
    child's open, failed exec, write of 12 bytes to its own file and _exit(3), or exit(3), whose
    atexit handlers (the shim's) run on the parent's memory."""
    exe = build("vfork_dup")
    cases = {"c": ([str(exe), "c.out"], "c.out", 7), "py": ([sys.executable, "-c", VFORK_PY],
             "py.out", 10), "fail": ([str(exe), "f.out", "fail"], "f.out", 7),
             "exit": ([str(exe), "e.out", "exit"], "e.out", 7)}  # fmt: skip
    for name, (cmd, fname, size) in cases.items():
        work = tmp_path / name
        out = tmp_path / f"t_{name}"
        p = run(mode, cmd, work, out)
        assert p.returncode == 0, p.stderr
        assert (work / fname).stat().st_size == size
        files = per_file(out)
        assert files.get(str(work / fname)) == (0, size), (name, files)
        ev = load(out).events
        procs = load(out).processes
        top = int(procs.loc[~procs["ppid"].isin(procs["pid"]), "pid"].iloc[0])
        mine = ev[(ev["source"] == "shim") & (ev["pid"] == top)]
        assert not mine["function"].astype(str).isin(["dup2", "execl", "execve"]).any(), name
        kids = procs.loc[procs["ppid"] == top, "pid"]
        child = ev[ev["pid"].isin(kids)]
        got = {(str(f), int(fd)) for f, fd in zip(child["function"], child["fd"], strict=True)
               if str(f) in ("dup2", "close")}  # fmt: skip
        if name == "c":  # dup2(pipe's write end 5, 3), close(4)
            assert got == {("dup2", 5), ("close", 4)}, child[["function", "fd", "path"]]
        if name == "py":
            assert files.get(str(work / "after.out")) == (0, 5), files
        if name in ("fail", "exit"):  # the child's exit status is its own, not the parent's
            assert files.get(str(work / "child.log")) == (0, 12), files
            exits = procs.loc[procs["pid"].isin(kids), "exit_status"].dropna().astype(int)
            assert 3 in set(exits), procs
            assert set(procs.loc[procs["pid"] == top, "exit_status"].dropna()) <= {0}, procs


SPAWN_CALL = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+= (-?\d+)(?: (E[A-Z]+))?")
FORKED = re.compile(r"^(\d+)\s+(?:<\.\.\. )?(?:clone3?|vfork)(?:\(.*\)| resumed>.*)\s+= (\d+)$")
ACTS = {"open", "openat", "dup2", "close", "chdir", "fchdir", "close_range"}


def _spawn_actions(calls: list[tuple]) -> list[tuple]:
    """A child's calls before its exec as the file actions asked: glibc's close of the
    descriptor an addopen names, and its open elsewhere then dup2+close to it, are one open.
    (function, path of an open or chdir, descriptor of the others, result, errno name)."""
    c = [("open" if x[0] == "openat" else x[0], *x[1:]) for x in calls if x[0] in ACTS]
    out, i = [], 0
    while i < len(c):
        fn, path, fd, ret, err = c[i]
        if fn == "close" and i + 1 < len(c) and c[i + 1][0] == "open":
            nxt = c[i + 2] if i + 2 < len(c) else ("",) * 5
            if c[i + 1][3] in (fd, -1) or (nxt[0], *nxt[2:4]) == ("dup2", c[i + 1][3], fd):
                i += 1
                continue
        if fn == "open" and ret >= 0 and i + 2 < len(c) and c[i + 1][0] == "dup2" and \
                c[i + 1][2] == ret and c[i + 2][:3:2] == ("close", ret):  # fmt: skip
            ret = c[i + 1][3]
            i += 2
        out.append((fn, path if fn in ("open", "chdir") else None,
                    None if fn in ("open", "chdir") else fd, ret, err))  # fmt: skip
        i += 1
    return out


def _strace_spawned(exe: Path, work: Path) -> list[list[tuple]]:
    """Per child of the program (in pid order), its file actions before its exec (strace -f)."""
    log = work.parent / "spawn.strace"
    p = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=openat,dup2,close,chdir,fchdir,close_range,execve,"
         "clone,clone3,vfork", "-e", "signal=none", "-o", str(log), str(exe), work.name],
        cwd=work.parent, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = log.read_text().splitlines()
    root = int(lines[0].split()[0])
    kids, before, execd = [], {}, set()
    for ln in lines:
        if (m := FORKED.match(ln)) and int(m[1]) == root:
            kids.append(int(m[2]))
        if " execve(" in ln:
            execd.add(int(ln.split()[0]))
        m = SPAWN_CALL.match(ln)
        if not m:
            continue
        pid, fn, args, ret, err = int(m[1]), m[2], m[3], int(m[4]), m[5]
        if pid != root and pid not in execd and fn in ACTS:
            q = re.search(r'"([^"]*)"', args)
            fd = None if q and fn != "fchdir" else int(args.split(",")[0])
            before.setdefault(pid, []).append((fn, Path(q[1]).name if q else None, fd, ret, err))
    return [a for a in (_spawn_actions(before.get(k, [])) for k in sorted(kids)) if a]


def _traced_spawned(out: Path) -> list[list[tuple]]:
    """The same from a trace: the events of the children's images before their exec."""
    import pandas as pd

    t = load(out)
    procs, ev = t.processes, t.events
    root = int(procs.loc[~procs["forked"], "pid"].min())
    pre = procs[procs["forked"] & (procs["ppid"] == root)].sort_values("pid")
    got = []
    for proc in pre["proc"]:
        rows = ev[ev["proc"] == proc].sort_values("t_start")
        calls = [
            (str(r.function), Path(r.path).name if isinstance(r.path, str) and r.path else None,
             None if pd.isna(r.fd) else int(r.fd), int(r.ret),
             errno.errorcode.get(int(r.errno)) if not pd.isna(r.errno) and r.errno else None)
            for r in rows.itertuples()
        ]  # fmt: skip
        if a := _spawn_actions(calls):
            got.append(a)
    return got


@pytest.mark.parametrize("mode", ["shim", "stracer"])
def test_spawn_file_actions_are_the_childs(tmp_path: Path, mode: str) -> None:
    """posix_spawn's file actions (addopen, adddup2, addclose, addchdir_np; posix_spawnp; an
    addopen and an adddup2 that fail and make the spawn fail with their errno) and popen's dup2
    of the pipe's end: the child's own open/dup2/close events before its exec, as strace -f sees
    them, with the shim alone as under the stracer; the app's output as untraced."""
    exe = build("spawn_fa")
    runs = {}
    for m in ("plain", mode):
        work = tmp_path / m
        (work / "sub").mkdir(parents=True)
        if m == "shim":  # its first call: chdir to the relative name of its directory
            # a failed spawn's child has a pid only the kernel's last pid tells, when no other
            # process was made meanwhile: in a pid namespace of its own, none is
            p = subprocess.run(
                ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "iotrace",
                 "run", "-o", str(tmp_path / f"t_{m}"), "--no-stracer", "--", str(exe), m],
                cwd=tmp_path, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        else:
            p = run(m, [str(exe), m], tmp_path, tmp_path / f"t_{m}")
        assert p.returncode == 0, p.stderr
        runs[m] = (p.stdout, outputs(work), outputs(work / "sub"))
    assert runs[mode] == runs["plain"]
    assert runs["plain"][0].split("\n")[:3] == ["spawn 0 1", "addopen 2", "adddup2 9"]
    owork = tmp_path / "oracle"
    (owork / "sub").mkdir(parents=True)
    want = _strace_spawned(exe, owork)
    got = _traced_spawned(tmp_path / f"t_{mode}")
    ev = load(tmp_path / f"t_{mode}").events
    (cd,) = ev.loc[ev["function"].astype(str) == "chdir", "path"].dropna().iloc[:1]
    assert cd == str(tmp_path / mode)  # against the cwd before it, as the first call
    if mode == "stracer":  # chdir does not stop the stracer (not in its table)
        want = [[a for a in acts if a[0] != "chdir"] for acts in want]
    assert len(want) == 4 and want[0][0] == ("open", "out.txt", None, 1, None), want
    assert got == want
