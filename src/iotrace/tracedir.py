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
(--append).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from iotrace.calls import JOB_VARS
from iotrace.record import record

MARK = "iotrace-job"
RUN_PREFIX = "iotrace-run."
FAULTS = "iotrace-faults"  # + .HOST.PID: what the shim could not write (run.prepare_dir)
NEW = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class TraceDirError(Exception):
    """A trace directory iotrace will not use; the message is one line."""


def job_id(env: dict[str, str]) -> tuple[str, str] | None:
    """(prefix, id) of the batch or MPI job this process is part of, from its environment."""
    for var, prefix in JOB_VARS:
        job = env.get(var)
        if job:
            step = env.get("SLURM_STEP_ID", "") if var == "SLURM_JOB_ID" else ""
            return prefix, job + (f".{step}" if step else "")
    if env.get("PMI_RANK") is not None:
        # MPICH's Hydra exports no job id; its ranks on one host are children of one
        # hydra_pmi_proxy: that process (pid + start time, against pid reuse) names the job here.
        ppid = os.getppid()
        return "pmi", f"{os.uname().nodename}.{ppid}.{_start_time(ppid)}"
    return None


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return "0"


# A rank of a parallel launch (the shim reads the same ones, preload/header.c): only then is the
# job's id this run's key -- two commands one after the other in one batch script share the
# batch job's id but are two runs.
RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID")


def run_key(env: dict[str, str]) -> str:
    """What `iotrace-job` holds: the job's id for a rank of a parallel launch, else an id
    unique to this run."""
    job = job_id(env) if any(v in env for v in RANK_VARS) else None
    if job:
        return f"job {job[0]} {job[1]}"
    return f"run {os.uname().nodename} {os.getpid()} {os.urandom(8).hex()}"


def is_trace_file(name: str) -> bool:
    from iotrace.stracer.slog import SUFFIX
    from iotrace.tracefile import LOG_SUFFIX

    return (
        name == MARK
        or name.startswith(FAULTS + ".")
        or name.endswith((LOG_SUFFIX, SUFFIX))
        or (name.startswith(RUN_PREFIX) and name.endswith(".json"))
    )


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


def open_dir(path: Path, share: bool = False, exclusive: bool = False) -> TraceDir:
    """Create `path` (mode 0700/0750) or open the existing one, and check it is ours alone:
    TraceDirError if it is not (a symlink, another user's, writable by others), OSError if it
    cannot be created or opened.  `exclusive`: it must not exist yet (FileExistsError)."""
    mode = 0o750 if share else 0o700
    created = True
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            created = False
        if exclusive and not created:
            raise FileExistsError(path)
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


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    """Ranks starting together on one host decide about the directory one at a time.  A file
    system without flock (some NFS mounts) goes unlocked: the marker is still created with
    link(2), which only one can win."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        yield
        return
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _read_mark(d: TraceDir) -> str | None:
    try:
        fd = os.open(MARK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=d.fd)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read(4096).decode(errors="replace").strip()


def _regular(d: TraceDir, name: str) -> bool:
    """A trace is regular files: a symlink planted under a trace file's name is not one."""
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=d.fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _write_mark(d: TraceDir, key: str, replace: bool) -> bool:
    """Install the marker; False if another process (of another run) installed one first."""
    tmp = f".{MARK}.{os.urandom(8).hex()}"
    with d.create(tmp) as f:
        f.write(key.encode() + b"\n")
    try:
        if replace:
            os.replace(tmp, MARK, src_dir_fd=d.fd, dst_dir_fd=d.fd)
        else:
            os.link(tmp, MARK, src_dir_fd=d.fd, dst_dir_fd=d.fd, follow_symlinks=False)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            d.unlink(tmp)
    return True


def claim(d: TraceDir, key: str, reuse: str | None) -> None:
    """Make `d` this run's: join the run or job that owns it (same key), take an empty one, and
    otherwise refuse, unless `reuse` is "force" (remove the old trace first) or "append"."""
    with _locked(d.fd):
        for _ in range(3):
            mark = _read_mark(d)
            if mark == key:
                return
            held = [n for n in os.listdir(d.fd) if is_trace_file(n) and _regular(d, n)]
            if mark is None and not held:
                if _write_mark(d, key, replace=False):
                    return
                continue  # someone else's marker appeared: look again
            if reuse == "append":
                return
            if reuse == "force":
                for name in held:
                    if name != MARK:
                        with contextlib.suppress(FileNotFoundError):
                            d.unlink(name)
                _write_mark(d, key, replace=True)
                return
            break
        raise TraceDirError(
            f"{d.path} already holds a trace of another run: "
            "--force to replace it, --append to add this run to it"
        )


def write_atomic(out: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> None:
    """Write a file through `write` into a new temporary next to `out`, then rename it over
    `out`: a reader never sees half a file, and whatever was at `out` (a symlink included) is
    replaced, not written through.  Mode 0600: a report holds the job's paths."""
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
