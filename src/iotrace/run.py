"""`iotrace run`'s options as Python decides them (-e, --path, -s), handed to the launcher
(launcher/), which runs every run; `iotrace env`."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from iotrace.record import record
from iotrace.shim import shim_path
from iotrace.signals import SignalState
from iotrace.tracedir import TraceDir, TraceDirError, open_dir

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: ~2 ms of the stracer's start (issue 19)
    from typing import NoReturn


class RunError(Exception):
    """A command that cannot be started; carries the exit status to use."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@record
class RunOptions:
    command: list[str]
    out: str | None = None
    stack: int = 8
    stracer: bool = True
    share: bool = False  # --share-with-group: dir 0750, files 0640
    reuse: str | None = None  # "force" (replace an existing trace) or "append" (add to it)
    mpi: str = "auto"  # the MPI family whose shim is preloaded (iotrace.mpi), auto: detected
    record: Recording | None = None  # -e trace=, --path (None: everything)
    console: str | None = None  # --console FILE


@record(frozen=True)
class Recording:
    """What the shim records (preload/filter.c): the functions of `-e trace=` (None: all),
    the `--path` globs (empty: every path), and `-s N` bytes of each read/write buffer."""

    calls: frozenset[str] | None = None
    paths: tuple[str, ...] = ()
    data: int = 0

    @classmethod
    def parse(
        cls, specs: list[str] | None, paths: list[str] | None, data: int | None = None
    ) -> Recording:
        """From the command line; RunError (status 2) on a name or glob iotrace cannot use."""
        from iotrace.calls import DATA_MAX, trace_set

        if data is not None and not 0 <= data <= DATA_MAX:
            raise RunError(f"iotrace: -s must be between 0 and {DATA_MAX}", 2)

        try:
            calls = trace_set(specs) if specs else None
        except ValueError as exc:
            raise RunError(f"iotrace: -e trace=: {exc}", 2) from None
        globs = []
        if paths:
            from iotrace.select import absolute_glob  # the read filters' module: only for --path
        for g in paths or ():
            if not g or "\n" in g:
                raise RunError(f"iotrace: --path {g!r}: an empty glob or one with a newline", 2)
            globs.append(absolute_glob(g))
        return cls(calls, tuple(globs), data or 0)

    def env(self) -> dict[str, str]:
        """IOTRACE_CALLS, IOTRACE_PATHS, IOTRACE_DATA for the shim; absent: the default."""
        from iotrace.calls import trace_mask

        out = {}
        if self.calls is not None:
            out["IOTRACE_CALLS"] = trace_mask(self.calls)
        if self.paths:
            out["IOTRACE_PATHS"] = "\n".join(self.paths)
        if self.data:
            out["IOTRACE_DATA"] = str(self.data)
        return out


def trace_dir(name: str, out: str | None, share: bool, reuse: str | None) -> TraceDir:
    """The trace directory of a run Python traces itself (`iotrace attach`; `name`: the
    default's command word), made and claimed by the launcher (launcher/dir.c: one set of rules
    for every run).  RunError: iotrace refuses it; OSError: it cannot be written."""
    import subprocess

    argv = [_launcher(), "_trace-dir", name, "1" if share else "0", reuse or "-"]
    r = subprocess.run([*argv, *([out] if out is not None else [])], capture_output=True)
    said = os.fsdecode(r.stdout.rstrip(b"\n"))
    if r.returncode == 2:
        raise RunError(f"iotrace: {said}", 2)
    if r.returncode != 0:
        err = int(said) if said.isdigit() else errno.EIO
        raise OSError(err, os.strerror(err), out)
    try:
        return open_dir(Path(said), share)  # checked again: no other's since
    except TraceDirError as exc:
        raise RunError(f"iotrace: {exc}", 2) from None


FILTER_VARS = ("IOTRACE_CALLS", "IOTRACE_PATHS", "IOTRACE_DATA")


def _way_ours(central: Path) -> None:
    """RunError unless only root and the caller can change the way to the job directories the
    shims make in `central` (launcher/dir.c's rules, as for `-o`; preload/jobdir.c checks it
    again in each job): else another user could move a job's trace away mid-run."""
    import subprocess

    r = subprocess.run([_launcher(), "_way", str(central)], capture_output=True)
    if r.returncode == 2:
        said = os.fsdecode(r.stdout.rstrip(b"\n"))
        raise RunError(f"iotrace: env: {central}: {said}: another user could move a job's trace "
                       "elsewhere while it is written; refusing it (give --dir a directory whose "
                       "parents only you and root can change)", 2)  # fmt: skip


def env_exports(central: str | None, stack: int, record: Recording | None = None) -> list[str]:
    """`iotrace env`: the shell lines that trace every later command with the bare shim, each
    job into a directory of its own in the central directory (preload/jobdir.c).  RunError: the
    central directory cannot be used."""
    import shlex
    import subprocess

    where = Path(central or os.environ.get("IOTRACE_DIR") or ".").absolute()
    try:
        _way_ours(where)  # before anything is made on it, and again once it is there
        if not where.exists():
            where.mkdir(mode=0o700, parents=True)
        if not where.is_dir() or not os.access(where, os.W_OK | os.X_OK):
            raise OSError(errno.EACCES, "not a directory you can write")
        _way_ours(where)
    except OSError as exc:
        raise RunError(f"iotrace: env: {where}: {exc.strerror}", 2) from None
    shim = str(shim_path())
    # the shims trust a directory of the caller's primary group only when told it is theirs
    # alone (preload/jobdir.c: they call no NSS)
    private = subprocess.run([_launcher(), "_private-group"]).returncode == 0
    return [
        f"export LD_PRELOAD={shlex.quote(shim)}${{LD_PRELOAD:+:$LD_PRELOAD}}",
        f"export IOTRACE_DIR={shlex.quote(str(where))}",
        f"export IOTRACE_STACK={stack}",
        *(f"export {k}={shlex.quote(v)}" for k, v in (record.env() if record else {}).items()),
        *([f"export IOTRACE_PRIVATE_GID={os.getegid()}"] if private else []),
        # a trace dir inherited from a traced shell; filters not asked for now
        "unset IOTRACE_OUT IOTRACE_JOB "
        + " ".join(v for v in FILTER_VARS if not record or v not in record.env())
        + ("" if private else " IOTRACE_PRIVATE_GID"),
    ]


def run(opts: RunOptions) -> NoReturn:
    """Every run is the C launcher's (launcher/: the trace directory, the environment, the
    signals, a full run's stracer, the run record, the closing lines): Python decides only what
    the launcher does not (-e, --path, -s, an abbreviation or a mistake) and hands it the run."""
    hand_over(opts, SignalState.at_start())


HANDOVER = "IOTRACE_HANDOVER"  # + _PKG, _CALLS, _PATHS, _DATA: launcher/run.c takes them out


def launcher() -> str | None:
    """The `iotrace` command (launcher/), installed beside the console script iotrace-py: the
    one installed with this package first (PREFIX/bin of PREFIX/lib/pythonX.Y/site-packages),
    whose install check is of this package (`python -m iotrace`, __main__.py)."""
    import sysconfig

    pkg = Path(__file__).resolve().parent
    where = [os.path.dirname(os.path.abspath(sys.argv[0]))]
    if pkg.parent.name.endswith("-packages") and len(pkg.parents) > 3:
        where.append(str(pkg.parents[3] / "bin"))
    where.append(sysconfig.get_path("scripts"))
    with contextlib.suppress(KeyError):
        where.append(sysconfig.get_path("scripts", f"{os.name}_user"))
    for d in where:
        exe = os.path.join(d, "iotrace")
        if os.access(exe, os.X_OK) and os.path.isfile(os.path.join(d, "iotrace-py")):
            return exe
    return None


def _launcher() -> str:
    exe = launcher()
    if exe is None:
        raise RunError("iotrace: the iotrace command (the launcher beside iotrace-py) is "
                       "missing: reinstall iotrace", 2)  # fmt: skip
    return exe


GIVEN_PY = "IOTRACE_GIVEN_PY"


def command_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The command's environment: this process's, but Python's variables as iotrace was given
    them (the launcher gave this process its own, and those in IOTRACE_GIVEN_PY_*:
    launcher/pyenv.c) and no handover left from a caller."""
    env = {k: v for k, v in environ.items() if not k.startswith((HANDOVER, GIVEN_PY))}
    if GIVEN_PY in environ:
        env = {k: v for k, v in env.items() if not k.startswith("PYTHON")}
        for k, v in environ.items():
            if k.startswith(f"{GIVEN_PY}_PYTHON"):
                env[k[len(GIVEN_PY) + 1 :]] = v
    return env


def hand_over(opts: RunOptions, sigs: SignalState) -> NoReturn:
    """Exec the launcher to run `opts`: the options decided here (filters, the shim's
    directory) in its private variables, the signals as iotrace was given them."""
    exe = _launcher()
    argv = [exe, "run", "--stack", str(opts.stack), "--mpi", opts.mpi]
    argv += [] if opts.stracer else ["--no-stracer"]
    argv += ["-o", opts.out] if opts.out is not None else []
    argv += ["--share-with-group"] if opts.share else []
    argv += [f"--{opts.reuse}"] if opts.reuse else []
    argv += ["--console", opts.console] if opts.console is not None else []
    env = command_env(os.environ)
    env[HANDOVER] = "1"
    env[f"{HANDOVER}_PKG"] = str(shim_path().parent)
    for k, v in (opts.record.env() if opts.record else {}).items():
        env[k.replace("IOTRACE_", f"{HANDOVER}_", 1)] = v
    sigs.restore()
    try:
        os.execve(exe, [*argv, "--", *opts.command], env)
    except OSError as exc:
        raise RunError(f"iotrace: {exe}: {exc.strerror}", 127) from None
