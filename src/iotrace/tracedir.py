"""The trace directory and every file iotrace writes.

iotrace runs as root in shared working directories, so nothing it writes may be steered by
another user: the trace directory is created 0700 (0750 with --share-with-group) or, if it
exists, must be a real directory owned by the caller and writable by no one else; every file in
it is created through that checked directory's descriptor with O_EXCL|O_NOFOLLOW, 0600 (0640).
Outputs elsewhere (HTML report, exports) are written to a fresh temporary in their own
directory and renamed over the target: a planted symlink is replaced, never followed.

A trace directory belongs to one run or one job: `iotrace-job` in it holds the key of whoever
created it. The ranks of one MPI job (one `iotrace run` each) share the job's key and join;
any other run refuses the directory unless told to replace it (--force) or add to it
(--append).  Those rules, the default name and the run's own files are the launcher's
(launcher/dir.c), which makes and claims the directory of every run (run.trace_dir for
`iotrace attach`); this module checks and writes in one.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from iotrace.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: ~2 ms of the stracer's start (issue 19)
    from typing import IO

NEW = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class TraceDirError(Exception):
    """A trace directory iotrace will not use; the message is one line."""


@record
class TraceDir:
    path: Path
    fd: int  # the checked directory, O_DIRECTORY|O_NOFOLLOW; files are created relative to it
    share: bool = False  # group may read (0750 / 0640)

    @property
    def file_mode(self) -> int:
        return 0o640 if self.share else 0o600

    def create(self, name: str) -> IO[bytes]:
        """A new file `name` in the directory, opened for writing; never an existing name."""
        fd = os.open(name, os.O_WRONLY | NEW, self.file_mode, dir_fd=self.fd)
        return os.fdopen(fd, "wb")

    def create_unique(self, stem: str, suffix: str) -> tuple[str, IO[bytes]]:
        """A new file STEM+SUFFIX, else STEM.N+SUFFIX (a pid seen before, in an appended run)."""
        for n in range(1000):
            name = f"{stem}{f'.{n}' if n else ''}{suffix}"
            try:
                return name, self.create(name)
            except FileExistsError:
                continue
        raise FileExistsError(f"{self.path / stem}{suffix}")

    def unlink(self, name: str) -> None:
        os.unlink(name, dir_fd=self.fd)

    def remove(self) -> None:
        """Remove the directory and its files: one this command made and nothing was recorded
        in (a refused `attach`); it is ours alone (checked), so every entry is one of ours."""
        with contextlib.suppress(OSError):
            for name in os.listdir(self.fd):
                self.unlink(name)
            os.rmdir(self.path)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _check(fd: int, path: Path) -> None:
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        raise TraceDirError(
            f"{path}: owned by uid {st.st_uid}, not by you (uid {os.geteuid()}): "
            "refusing to write there"
        )
    if st.st_mode & 0o022:
        raise TraceDirError(
            f"{path}: writable by other users (mode {st.st_mode & 0o7777:04o}): "
            f"refusing to write there (chmod go-w {path})"
        )


def open_dir(path: Path, share: bool = False) -> TraceDir:
    """Create `path` (mode 0700/0750) or open the existing one, and check it is ours alone:
    TraceDirError if it is not (a symlink, another user's, writable by others), OSError if it
    cannot be created or opened."""
    mode = 0o750 if share else 0o700
    created = True
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            created = False
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP) and path.is_symlink():
            raise TraceDirError(
                f"{path}: a symbolic link: refusing to write there (give the directory itself)"
            ) from None
        raise
    try:
        _check(fd, path)
        if created:  # exactly, whatever the umask; a setgid parent's group stays inherited
            os.fchmod(fd, mode | (os.fstat(fd).st_mode & stat.S_ISGID))
    except BaseException:
        os.close(fd)
        raise
    return TraceDir(path, fd, share)


LINKS_MAX = 40  # the kernel's limit of links followed in one path (ELOOP)
_PATH = os.O_PATH | os.O_CLOEXEC

# the trace directories a reader was given (as it spells them, absolute) -> a descriptor of
# each, opened once by pin; tracefile.open_regular opens their files relative to it
_PINNED: dict[str, int] = {}


def pin(path: str | os.PathLike[str]) -> None:
    """Open the trace directory `path` a reader was given, once, for every file of it the
    reader opens (tracefile.open_regular, by `pinned`): its owner renaming it (or a directory
    on its way) mid-read, a link to another trace put in its place, led root's report, show
    and exports there for the logs not yet read: root's private trace, read as that user's.

    On the way, a symbolic link of another user's (not the caller's, not root's) is refused
    (TraceDirError): a link of nobody's named as the trace of nobody's to read (support for a
    user) led root's readers to a private trace of root's, its paths shown as that user's.  A
    user's own link (`latest`) and the system's are followed.  The way is walked one descriptor
    at a time, each link read from the descriptor it was found as: what is checked is what is
    opened.  The kernel's protected_symlinks covers sticky directories only.  Nothing there,
    not a directory, not searchable: nothing pinned (the reader says it, by path)."""
    me = os.geteuid()
    given = os.fspath(path)
    todo = given.split("/")[::-1]
    at = "/" if given.startswith("/") else "."
    try:
        fd = os.open(at, _PATH | os.O_DIRECTORY)
    except OSError:
        return
    links = 0
    try:
        while todo:
            name = todo.pop()
            if name in ("", "."):
                continue
            try:
                nxt = os.open(name, _PATH | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:
                return
            st = os.fstat(nxt)
            if not stat.S_ISLNK(st.st_mode):
                os.close(fd)
                fd, at = nxt, os.path.join(at, name)
                continue
            try:
                if st.st_uid not in (me, 0):
                    raise TraceDirError(
                        f"{given}: {os.path.join(at, name)} is a symbolic link of uid "
                        f"{st.st_uid}'s, not yours (uid {me}): not followed (give the directory "
                        "it names)"
                    )
                links += 1
                if links > LINKS_MAX:
                    return  # the reader says ELOOP
                target = os.readlink("", dir_fd=nxt)
            finally:
                os.close(nxt)
            if target.startswith("/"):
                os.close(fd)
                fd, at = os.open("/", _PATH | os.O_DIRECTORY), "/"
            todo.extend(target.split("/")[::-1])
        try:
            _PINNED[os.path.abspath(given)] = os.open(
                ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd
            )
        except OSError:
            return
    finally:
        os.close(fd)


def pinned(directory: str | os.PathLike[str]) -> int | None:
    """The descriptor `pin` opened for this trace directory (or `adopted` took over), None if
    none was."""
    if not _PINNED and not getattr(_ADOPTED, "fds", None):
        return None
    path = os.path.abspath(directory)
    fd = _PINNED.get(path)
    return fd if fd is not None else getattr(_ADOPTED, "fds", {}).get(path, (None,))[0]


# A pinned directory as handed to the processes that read parts of the trace (local workers,
# Dask's): (path, pid and descriptor of the process that opened it, its st_dev and st_ino, the
# kernel's boot_id: the same host)
Pin = tuple[str, int, int, int, int, str]
_ADOPTED = threading.local()  # .fds: path -> (descriptor, Pin) while a task reads the trace


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def handed() -> tuple[Pin, ...]:
    """The trace directories this process reads, pinned (pin) or adopted (adopted), for the
    processes that read parts of them: a worker took each again by its path, which its owner
    could have led elsewhere since the command opened it."""
    boot = _boot_id()
    out = [(path, os.getpid(), fd, (st := os.fstat(fd)).st_dev, st.st_ino, boot)
           for path, fd in _PINNED.items()]  # fmt: skip
    out += [pin for path, (_, pin) in getattr(_ADOPTED, "fds", {}).items() if path not in _PINNED]
    return tuple(out)


def _take(pin: Pin) -> int:
    """A descriptor of the directory `pin` names, checked to be it: the command's own
    descriptor reopened through /proc on its host, else its path walked as `pin` walks it;
    TraceDirError if what is there now is another directory."""
    path, pid, fd, dev, ino, boot = pin
    if boot and boot == _boot_id():
        with contextlib.suppress(OSError):
            mine = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            st = os.fstat(mine)
            if (st.st_dev, st.st_ino) == (dev, ino):
                return mine
            os.close(mine)
    pin(path)  # another host (its own st_dev), or the command gone: by the path, checked
    mine = _PINNED.pop(path, -1)
    st = os.fstat(mine) if mine >= 0 else None
    if st is None or st.st_ino != ino or (boot == _boot_id() and st.st_dev != dev):
        if mine >= 0:
            os.close(mine)
        raise TraceDirError(f"{path}: not the directory the command opened (moved or replaced "
                            "since): refusing to read it")  # fmt: skip
    return mine


@contextlib.contextmanager
def held(directory: str | os.PathLike[str]) -> Iterator[None]:
    """The trace directory `directory` pinned (pin) by this thread while it is read, unless it
    is already: the library's readers (analyzer.load, the bounded summary) opened the logs by
    their paths, which the trace's owner could lead elsewhere while they were read."""
    path = os.path.abspath(directory)
    if pinned(path) is not None:
        yield
        return
    pin(directory)
    fd = _PINNED.pop(path, None)
    if fd is None:  # nothing there to pin: the reader says it, by path
        yield
        return
    st = os.fstat(fd)
    fds = getattr(_ADOPTED, "fds", None)
    if fds is None:
        fds = _ADOPTED.fds = {}
    fds[path] = (fd, (path, os.getpid(), fd, st.st_dev, st.st_ino, _boot_id()))
    try:
        yield
    finally:
        os.close(fds.pop(path)[0])


@contextlib.contextmanager
def adopted(pins: Iterable[Pin]) -> Iterator[None]:
    """The command's pinned trace directories (handed) used by this thread while it reads a
    part of the trace: every file opened relative to them (tracefile.open_regular), as in
    the command.  Those this process pinned itself (a forked worker's, inherited) stay."""
    fds: dict[str, tuple[int, Pin]] = getattr(_ADOPTED, "fds", {})
    mine: list[str] = []
    try:
        for p in pins:
            if p[0] in _PINNED or p[0] in fds:
                continue
            fds[p[0]] = (_take(p), p)
            mine.append(p[0])
        _ADOPTED.fds = fds
        yield
    finally:
        for path in mine:
            os.close(fds.pop(path)[0])


def check_way(out: str | os.PathLike[str]) -> None:
    """TraceDirError if another user could move `out` (an output file or an export's directory)
    while it is written: the way to its directory is changed by no one but root and the
    caller, the rule of `run -o` (launcher/dir.c).  Root writing an export under a directory of
    nobody's went where nobody's link there led: into a directory of root's, whose `events` the
    Parquet export deleted first."""
    said = _way(os.path.dirname(os.path.abspath(out)) or "/")
    if said is not None:
        raise TraceDirError(f"{out}: {said}: another user could move it elsewhere while it is "
                            "written; refusing to write there (give a path whose parents only "
                            "you and root can change)")  # fmt: skip


def way_ours(directory: str) -> bool:
    """No other user than root and the caller could change the way to `directory`'s entries
    (launcher/dir.c's rules; True where the launcher is not installed: the library alone)."""
    return _way(directory) is None


@functools.lru_cache(maxsize=16)
def _way(parent: str) -> str | None:
    """What another user could change on the way to `parent`'s entries, asked of the launcher
    (`iotrace _way`: its rules, once per directory and process), None if nothing."""
    import subprocess

    from iotrace.run import launcher

    exe = launcher()
    if exe is None:  # the analyzer used as a library, without the command: as before
        return None
    r = subprocess.run([exe, "_way", parent], capture_output=True)
    return os.fsdecode(r.stdout.rstrip(b"\n")) if r.returncode == 2 else None


def private_tmp() -> str:
    """Where this command puts its temporaries (show's sorted runs, addr2line's links): $TMPDIR
    if no other user than root and the caller could change the way to its entries (way_ours),
    else /tmp.  Root with a user's environment (su without -) made its private directory of
    links in the user's TMPDIR, where the user could rename it away as it was made and put
    theirs, whose links the tool then opened as root (a device, a FIFO, a file of root's in
    place of the module)."""
    tmp = os.environ.get("TMPDIR")
    return tmp if tmp and os.path.isabs(tmp) and way_ours(tmp) else "/tmp"


def ours(directory: str | os.PathLike[str]) -> bool:
    """`directory` is the caller's, writable by no one else, on a way only root and the caller
    can change: a place for the caller's own temporaries."""
    try:
        st = os.stat(directory)
    except OSError:
        return False
    return (stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022
            and way_ours(os.path.abspath(directory)))  # fmt: skip


def check_replaceable(out: str | os.PathLike[str]) -> None:
    """OSError unless a new file may be renamed over `out`: nothing there, a file, a directory
    (said by the caller) or a symlink to one or to nothing.  A device, FIFO or socket, or a
    symlink to one (/dev/null, /dev/stdout) is refused: root's rename would replace it for
    every user of the machine."""
    try:
        mode = os.stat(out).st_mode
    except OSError:  # nothing there, a dangling symlink; else the rename says it
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise OSError(errno.EINVAL, "not a regular file (a device, FIFO or socket: give a file "
                      "name)", str(out))  # fmt: skip


def write_atomic(out: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> None:
    """Write a file through `write` into a new temporary next to `out`, then rename it over
    `out`: a reader never sees half a file, and whatever was at `out` (a symlink included) is
    replaced, not written through (but a device: check_replaceable).  Mode 0600: a report
    holds the job's paths."""
    check_replaceable(out)
    check_way(out)
    target = Path(out)
    if not target.name or (target.is_dir() and not target.is_symlink()):
        # the rename would fail on the temporary's name: say it of the name given
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(out))
    parent = target.parent
    dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        tmp = f".{target.name}.{os.urandom(8).hex()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | NEW, 0o600, dir_fd=dfd)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, target.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
    finally:
        os.close(dfd)
