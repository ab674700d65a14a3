"""Metadata and directory wrappers: every call of deterministic programs checked exactly (paths
absolute against the cwd, a dirfd, after chdir/fchdir; errno of failures), both stat ABIs
(glibc >= 2.33 `stat` and the old `__xstat`), and the app seeing the same results traced and
untraced."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import build, iotrace

META = (
    "stat", "lstat", "fstat", "fstatat", "statx", "access", "faccessat", "euidaccess", "unlink",
    "unlinkat", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "truncate",
    "opendir", "fdopendir", "readdir", "closedir", "chdir", "fchdir",
)  # fmt: skip

# -D_FILE_OFFSET_BITS=64 binds stat64, fstatat64, readdir64, truncate64, ... instead
ABIS = pytest.mark.parametrize("flags", [(), ("-D_FILE_OFFSET_BITS=64",)], ids=["plain", "fob64"])


def untraced(exe: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(exist_ok=True)
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def aux_path(t, ev) -> str:
    """The path whose string id is in an event's aux (rename*)."""
    (log,) = t.logs
    return log.strings[ev["aux"]]


@ABIS
def test_meta_basic_events_exact(trace, tmp_path, flags):
    exe = build("meta_basic", *flags)
    t = trace(exe)
    assert t.proc.returncode == 3, t.proc.stderr
    plain = untraced(exe, cwd=tmp_path / "plain")
    assert (t.proc.stdout, t.proc.returncode) == (plain.stdout, plain.returncode)
    assert "mkdir-again=-1 errno=17" in t.proc.stdout and "size=100" in t.proc.stdout

    w = str(trace.work)
    d, f = f"{w}/d", f"{w}/d/f"
    evs = t.events(*META)
    got = [(e["fn"], e["path"], e["ret"], e["errno"]) for e in evs]
    assert got == [
        ("mkdir", d, 0, 0),
        ("mkdir", d, -1, errno.EEXIST),
        ("stat", f, 0, 0),
        ("stat", f"{w}/missing", -1, errno.ENOENT),
        ("lstat", f, 0, 0),  # "./d/../d/f" made absolute and clean
        ("fstat", f, 0, 0),
        ("fstatat", f, 0, 0),  # relative to the dirfd
        ("fstatat", d, 0, 0),  # AT_EMPTY_PATH: the dirfd itself
        ("fstatat", f, 0, 0),
        ("statx", f, 0, 0),
        ("access", f, 0, 0),
        ("access", f"{w}/nope", -1, errno.ENOENT),
        ("faccessat", f, 0, 0),
        ("euidaccess", f, 0, 0),
        ("rename", f, 0, 0),
        ("renameat", f"{d}/g", 0, 0),
        ("renameat2", f"{w}/h", 0, 0),
        ("rename", f"{d}/nothing", -1, errno.ENOENT),
        ("truncate", f, 0, 0),
        ("stat", f, 0, 0),
        ("chdir", d, 0, 0),
        ("stat", f, 0, 0),  # "f" after chdir("d")
        ("chdir", w, 0, 0),  # ".." against d
        ("fchdir", d, 0, 0),
        ("access", f, 0, 0),  # "f" after fchdir(dfd)
        ("chdir", w, 0, 0),
        ("mkdirat", f"{d}/sub", 0, 0),
        ("rmdir", d, -1, errno.ENOTEMPTY),
        ("unlinkat", f"{d}/sub", 0, 0),
        ("unlinkat", f"{d}/zzz", -1, errno.ENOENT),
        ("unlink", f, 0, 0),
        ("rmdir", d, 0, 0),
        ("stat", "", -1, errno.ENOENT),  # kept as given, not made the cwd
        ("fstatat", w, 0, 0),  # AT_FDCWD with AT_EMPTY_PATH: the cwd
    ]
    assert evs[0]["mode"] == 0o750 and evs[26]["mode"] == 0o700
    assert evs[5]["fd"] == 3 and evs[7]["fd"] == evs[23]["fd"] == 3  # fstat, AT_EMPTY_PATH, fchdir
    assert evs[6]["fd"] is None and evs[6]["flags"] == 0
    assert evs[7]["flags"] == 0x1000 and evs[8]["flags"] == 0x100  # AT_EMPTY/AT_SYMLINK_NOFOLLOW
    assert evs[9]["flags"] == 0 and evs[9]["mode"] == 0x200  # statx mask STATX_SIZE
    assert evs[10]["mode"] == os.R_OK and evs[12]["mode"] == os.W_OK and evs[12]["flags"] == 0
    assert evs[18]["offset"] == 10  # truncate's length
    assert evs[28]["flags"] == 0x200  # AT_REMOVEDIR
    assert evs[16]["flags"] == 1  # RENAME_NOREPLACE
    renames = [aux_path(t, evs[i]) for i in (14, 15, 16, 17)]
    assert renames == [f"{d}/g", f"{w}/h", f, f"{d}/other"]
    # the metadata calls themselves open nothing: only the program's own two opens
    opens = t.events("open", "openat")
    assert [e["path"] for e in opens] == [f, d]


@ABIS
def test_old_and_new_stat_abis_both_traced(trace, tmp_path, flags):
    exe = build("meta_old", *flags)
    undefined = subprocess.run(["nm", "-u", str(exe)], capture_output=True, text=True).stdout
    for sym in ("__xstat@", "__lxstat@", "__fxstat@", "__fxstatat@", "__xstat64@"):
        assert sym in undefined
    t = trace(exe)
    assert t.proc.returncode == 0, t.proc.stderr
    plain = untraced(exe, cwd=tmp_path / "plain")
    assert t.proc.stdout == plain.stdout
    assert "stat: new 0 13, old 0 13, old64 0 13" in t.proc.stdout
    f = str(trace.work / "f.txt")
    got = [(e["fn"], e["path"], e["ret"], e["errno"]) for e in t.events(*META)]
    assert got == [
        *[("stat", f, 0, 0)] * 3,
        *[("lstat", f, 0, 0)] * 3,
        *[("fstat", f, 0, 0)] * 3,
        *[("fstatat", f, 0, 0)] * 3,
        ("stat", str(trace.work / "missing.txt"), -1, errno.ENOENT),
    ]
    # each comes from its own call site: three distinct stacks per kind
    stacks = [tuple(e["stack"]) for e in t.events("stat")[:3]]
    assert len(set(stacks)) == 3


@ABIS
@pytest.mark.parametrize("n", [0, 5, 40])
def test_readdir_counts_and_dir_descriptor(trace, tmp_path, flags, n):
    exe = build("meta_dir", *flags)
    t = trace(exe, str(n))
    assert t.proc.returncode == 0, t.proc.stderr
    plain = untraced(exe, str(n), cwd=tmp_path / "plain")
    assert t.proc.stdout == plain.stdout
    entries = n + 2  # with . and ..
    assert f"entries={entries} errno_at_end=0\nagain=0 errno=42\n" in t.proc.stdout
    dd = str(trace.work / "dd")
    evs = t.events("opendir", "fdopendir", "readdir", "closedir", "fstat", "openat")
    got = [(e["fn"], e["fd"], e["path"], e["ret"], e["errno"]) for e in evs]
    first = [("readdir", 3, dd, 1, 0)] * entries + [("readdir", 3, dd, 0, 0)] * 2
    second = [("readdir", 3, dd, 1, 0)] * entries + [("readdir", 3, dd, 0, 0)]
    assert got == [
        ("opendir", 3, dd, 1, 0),
        *first,
        ("fstat", 3, dd, 0, 0),  # the stream's descriptor carries the directory's path
        ("openat", 4, f"{dd}/f0", 4, 0) if n else ("openat", None, f"{dd}/f0", -1, errno.ENOENT),
        ("closedir", 3, dd, 0, 0),
        ("opendir", None, str(trace.work / "no-such-dir"), 0, errno.ENOENT),
        ("fdopendir", 3, dd, 1, 0),
        *second,
        ("closedir", 3, dd, 0, 0),
    ]
    dev, ino = evs[0]["aux"]  # [dev, inode] as for open (the directory is gone by now)
    assert dev == os.stat(trace.work).st_dev and ino > 0
    # glibc's opendir opens the directory internally: no open event of its own
    assert [e["path"] for e in t.events("open")] == [f"{dd}/f{i}" for i in range(n)] + [dd]


def test_stat_result_used_same_traced_and_untraced(trace, tmp_path):
    exe = build("meta_size")
    for where in (trace.work, tmp_path / "plain"):
        where.mkdir(exist_ok=True)
        (where / "blob").write_bytes(b"z" * 12345)
        (where / "blob").chmod(0o604)
        (where / "sub").mkdir()
    args = ("blob", "sub", "missing")
    t = trace(exe, *args)
    plain = untraced(exe, *args, cwd=tmp_path / "plain")
    assert (t.proc.stdout, t.proc.returncode) == (plain.stdout, plain.returncode)
    assert t.proc.stdout.splitlines()[0] == "blob 12345 604"
    assert t.proc.returncode == 1
    got = [(e["path"], e["ret"], e["errno"]) for e in t.events("stat")]
    w = trace.work
    assert got == [(f"{w}/blob", 0, 0), (f"{w}/sub", 0, 0), (f"{w}/missing", -1, errno.ENOENT)]


def test_errno_of_successful_calls_untouched(trace, tmp_path):
    exe = build("meta_errno")
    t = trace(exe)
    assert t.proc.returncode == 0, t.proc.stderr
    assert t.proc.stdout == untraced(exe, cwd=tmp_path / "plain").stdout
    assert t.proc.stdout.split() == ["1234"] * 11
    assert len(t.events(*META)) == 9


def test_show_prints_meta_events(trace):
    t = trace(build("meta_basic"))
    r = iotrace("show", str(t.dir))
    assert r.returncode == 0, r.stderr
    w = trace.work
    lines = r.stdout.splitlines()
    assert any(f'rename("{w}/d/f", "{w}/d/g") = 0' in ln for ln in lines)
    assert any(f'mkdir("{w}/d", 0750) = -1 EEXIST' in ln for ln in lines)
    assert any(f"fchdir(3<{w}/d>) = 0" in ln for ln in lines)


@pytest.mark.parametrize("flags", [(), ("-O2", "-D_FORTIFY_SOURCE=2")], ids=["plain", "fortify"])
def test_readlink_and_posix_fallocate(trace, tmp_path, flags):
    """readlink/readlinkat (and their fortified entries) and posix_fallocate are recorded, and
    under the stracer not missed."""
    exe = build("meta_link", *flags)
    for d in (tmp_path / "plain", trace.work):
        d.mkdir(exist_ok=True)
        (d / "l").symlink_to("target-file")
    plain = untraced(exe, cwd=tmp_path / "plain")
    t = trace(exe)
    assert t.proc.returncode == 0 == plain.returncode, t.proc.stderr
    assert t.proc.stdout == plain.stdout
    assert "readlink 11 target-file" in plain.stdout and "posix_fallocate bad EBADF" in plain.stdout
    w = str(trace.work)
    got = [(e["fn"], e["path"], e["req"], e["ret"], e["errno"])
           for e in t.events("readlink", "readlinkat", "posix_fallocate")]  # fmt: skip
    assert got == [
        ("readlink", f"{w}/l", 64, 11, 0),
        ("readlinkat", f"{w}/l", 3, 3, 0),
        ("readlink", f"{w}/missing", 64, -1, errno.ENOENT),
        ("posix_fallocate", f"{w}/f", 8192, 0, 0),
        ("posix_fallocate", None, 1, errno.EBADF, errno.EBADF),
    ]
    assert "missed I/O" not in t.proc.stderr


MORE = (
    "chmod", "fchmod", "fchmodat", "chown", "lchown", "fchown", "fchownat", "link", "linkat",
    "symlink", "symlinkat", "utimensat", "futimens", "utimes", "realpath", "mkstemp", "mkdtemp",
    "tmpfile", "eventfd", "popen", "pclose",
)  # fmt: skip


@pytest.mark.parametrize("extra", [(), ("--no-stracer",)], ids=["stracer", "shim"])
def test_more_wrappers_exact_and_unchanged(trace, tmp_path, extra):
    """What real programs call next (issue 13): each call recorded once with its path, result
    and errno; the program's output the same untraced, with the stracer and with the shim
    alone; nothing missed and no syscall left libc-internal inside these functions."""
    exe = build("meta_more")
    plain = untraced(exe, cwd=tmp_path / "plain")
    t = trace(exe, extra=extra)
    assert t.proc.returncode == 0 == plain.returncode, t.proc.stderr
    assert t.proc.stdout == plain.stdout
    assert "pclose exit 768" in plain.stdout and "eventfd bad -1 EINVAL" in plain.stdout
    pid = next(e["pid"] for e in t.events("chmod"))
    evs = [e for e in t.events(*MORE) if e["pid"] == pid]
    got = [(e["fn"], e["path"] and os.path.basename(e["path"]), e["ret"], e["errno"])
           for e in evs]  # fmt: skip
    made = ("mkstemp", "mkdtemp", "tmpfile")  # random names
    tmp = [g[1] for g in got if g[0] in made]
    got = [(fn, "T" if fn in made else p and p.split("[")[0], r, err) for fn, p, r, err in got]
    E = errno
    assert got == [
        ("chmod", "f", 0, 0), ("chmod", "missing", -1, E.ENOENT), ("fchmod", "f", 0, 0),
        ("fchmod", None, -1, E.EBADF), ("fchmodat", "f", 0, 0), ("fchmodat", "f", 0, 0),
        ("fchmodat", "f", -1, E.EINVAL), ("chown", "f", 0, 0), ("chown", "missing", -1, E.ENOENT),
        ("lchown", "f", 0, 0), ("fchown", "f", 0, 0), ("fchown", None, -1, E.EBADF),
        ("fchownat", "f", 0, 0), ("link", "f", 0, 0), ("link", "f", -1, E.EEXIST),
        ("linkat", "f", 0, 0), ("symlink", "s", 0, 0), ("symlink", "s", -1, E.EEXIST),
        ("symlinkat", "s2", 0, 0), ("utimensat", "f", 0, 0),
        ("utimensat", "missing", -1, E.ENOENT), ("futimens", "f", 0, 0),
        ("futimens", None, -1, E.EBADF), ("utimes", "f", 0, 0), ("utimes", "f", 0, 0),
        ("utimes", "missing", -1, E.ENOENT), ("utimes", "s", 0, 0), ("futimens", "f", 0, 0),
        ("futimens", None, -1, E.EBADF), ("realpath", "s", 1, 0),
        ("realpath", "missing", 0, E.ENOENT), ("realpath", "g", 1, 0), ("mkstemp", "T", 4, 0),
        ("mkstemp", "T", 4, 0), ("mkstemp", "T", 4, 0), ("mkstemp", "T", -1, E.EINVAL),
        ("mkdtemp", "T", 1, 0), ("tmpfile", "T", 1, 0), ("eventfd", None, 4, 0),
        ("eventfd", None, -1, E.EINVAL), ("popen", None, 1, 0), ("pclose", "pipe:", 0, 0),
        ("popen", None, 1, 0), ("pclose", "pipe:", 768, 0),
    ]  # fmt: skip
    assert [p[:3] for p in tmp[:4]] == ["tmp", "tmp", "tmp", "bad"]
    assert tmp[4].startswith("d") and len(tmp[4]) == 7
    assert tmp[2].endswith(".c") and tmp[5].endswith(" (deleted)")  # an O_TMPFILE file
    # the descriptor mkstemp made carries its name into the write on it
    w = next(e for e in t.events("write") if e["pid"] == pid and e["req"] == 5)
    assert w["path"] == str(trace.work / tmp[0])
    link = next(e for e in evs if e["fn"] == "link")
    (log,) = [lg for lg in t.logs if lg.header["pid"] == pid]
    assert log.strings[link["aux"]] == str(trace.work / "g")
    assert "missed I/O" not in t.proc.stderr
    if not extra:
        assert ", 0 missed," in t.proc.stderr
        r = iotrace("missed", str(t.dir), "--all", "--json")
        inside = {g["libc_function"] for g in json.loads(r.stdout)}
        assert not inside & {*MORE, "mkostemp", "mkstemps", "canonicalize_file_name"}, inside


@pytest.mark.parametrize("mode", ["stracer", "shim"])
def test_remove_is_an_event_of_its_own(trace, tmp_path, mode):
    """remove() of a file, an empty directory, a missing name and a full directory: one event
    each with the call's result, the program's results as untraced (under the stracer the
    wrapper makes glibc's unlinkat, and unlinkat AT_REMOVEDIR after EISDIR, itself); glibc's
    syscalls inside it no longer stop as libc-internal ones (OMPIO removes a file at every
    MPI_File_close)."""
    exe = build("meta_remove")
    t = trace(exe, extra=("--no-stracer",) if mode == "shim" else ())
    assert t.proc.returncode == 0, t.proc.stderr
    plain = untraced(exe, cwd=tmp_path / "plain")
    assert t.proc.stdout == plain.stdout
    w = trace.work
    got = [(e["fn"], e["path"], e["ret"], e["errno"]) for e in t.events("remove")]
    assert got == [
        ("remove", f"{w}/f", 0, 0),
        ("remove", f"{w}/d", 0, 0),
        ("remove", f"{w}/f", -1, errno.ENOENT),
        ("remove", f"{w}/full", -1, errno.ENOTEMPTY),
    ]
    if mode == "stracer":
        assert "0 inside libc functions" in t.proc.stderr, t.proc.stderr
        r = iotrace("missed", str(t.dir), "--all")
        assert "unlinkat" not in r.stdout, r.stdout
