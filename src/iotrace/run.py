"""`iotrace run`: start a command with the shim preloaded, wait, report where the trace is."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from iotrace import __version__
from iotrace.mpi import command_family, which
from iotrace.record import record, replace
from iotrace.say import say
from iotrace.shim import shim_path
from iotrace.tracedir import (
    FAULTS,
    RUN_PREFIX,
    TraceDir,
    TraceDirError,
    claim,
    job_id,
    open_dir,
    run_key,
)

# Signals a batch system or a user sends to the job: passed on to the traced command.
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


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


@record(frozen=True)
class SignalState:
    """The signal dispositions and mask `iotrace run` was given: the command starts with the
    same, in every mode (an ignored signal stays ignored across execve; handlers do not)."""

    ignored: frozenset[int]
    blocked: frozenset[int]

    @classmethod
    def at_start(cls) -> SignalState:
        ignored = _status_mask("SigIgn")
        # Python sets SIGPIPE and SIGXFSZ to SIG_IGN before any of its code runs: what iotrace
        # was given for those two comes from the `iotrace` launcher (src/iotrace/launch.c), or
        # without it (`python -m iotrace`) is taken as SIG_DFL, what shells, Python's
        # subprocess and MPI launchers give a command.  The variable is not the command's.
        lost = {signal.SIGPIPE, signal.SIGXFSZ}
        ignored -= lost
        given = os.environ.pop("IOTRACE_GIVEN_SIGIGN", "")
        with contextlib.suppress(ValueError):
            bits = int(given, 16) if given else 0
            ignored |= {s for s in lost if bits >> (s - 1) & 1}
        return cls(frozenset(ignored), frozenset(signal.pthread_sigmask(signal.SIG_BLOCK, ())))

    def restore(self) -> None:
        """In the command's process, just before its execve."""
        for sig in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_IGN if sig in self.ignored else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.blocked)


def _status_mask(field: str) -> set[int]:
    """A signal set of /proc/self/status (SigIgn, SigBlk: hex, bit N-1 for signal N)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                bits = int(line.split()[1], 16)
                return {n + 1 for n in range(64) if bits >> n & 1}
    return set()


def default_dir(command: list[str], env: dict[str, str]) -> tuple[Path, bool]:
    """(directory, whether it must be new), in the central directory $IOTRACE_DIR if set, else
    here.  Ranks of one job must agree on one directory without talking: the job's id names it
    (an existing one must be ours: see tracedir; preload/jobdir.c names it the same way).
    Otherwise the name ends in a random part, so that no other user can create it first."""
    base = Path(env.get("IOTRACE_DIR") or ".")
    job = job_id(env)
    if job and job[0] != "pmi":
        return base / re.sub(r"[^A-Za-z0-9_.-]", "_", f"iotrace-{job[0]}-{job[1]}"), False
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return base / f"iotrace-{Path(command[0]).name}-{stamp}-{os.urandom(4).hex()}", True


def trace_dir(opts: RunOptions) -> TraceDir:
    """The checked trace directory of this run, claimed for it (tracedir.claim).  RunError:
    iotrace refuses it (the command does not run); OSError: it cannot be written."""
    for _ in range(100):
        path, new = (
            (Path(opts.out), False) if opts.out else default_dir(opts.command, dict(os.environ))
        )
        try:
            d = open_dir(path, opts.share, exclusive=new)
        except FileExistsError:
            continue  # a random name taken: draw another
        except TraceDirError as exc:
            raise RunError(f"iotrace: {exc}", 2) from None
        try:
            claim(d, run_key(dict(os.environ)), opts.reuse)
        except TraceDirError as exc:
            d.close()
            raise RunError(f"iotrace: {exc}", 2) from None
        except OSError:
            d.close()
            raise
        return d
    raise RunError("iotrace: cannot create a trace directory here", 2)


def resolve_command(command: list[str]) -> str:
    exe = command[0]
    found = exe if "/" in exe else which(exe)
    if not found or not os.path.exists(found):
        raise RunError(f"iotrace: {exe}: command not found", 127)
    if os.path.isdir(found) or not os.access(found, os.X_OK):
        raise RunError(f"iotrace: {exe}: permission denied (not an executable file)", 126)
    return found


FILTER_VARS = ("IOTRACE_CALLS", "IOTRACE_PATHS", "IOTRACE_DATA")


def traced_env(
    trace_dir: Path, stack: int, faults: Path, share: bool = False, mpi: str | None = None,
    record: Recording | None = None,
) -> dict[str, str]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in FILTER_VARS}
    env.update(record.env() if record else {})
    shim = str(shim_path(mpi))
    preload = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = shim + (":" + preload if preload and shim not in preload else "")
    env["IOTRACE_OUT"] = str(trace_dir.resolve())  # the shim's trace dir (preload/init.c)
    env["IOTRACE_STACK"] = str(stack)
    env["IOTRACE_FAULTS"] = str(faults)
    env.setdefault("IOTRACE_JOB", trace_dir.resolve().name)
    if share:
        env["IOTRACE_SHARE"] = "group"
    else:
        env.pop("IOTRACE_SHARE", None)
    return env


def env_exports(central: str | None, stack: int, record: Recording | None = None) -> list[str]:
    """`iotrace env`: the shell lines that trace every later command with the bare shim, each
    job into a directory of its own in the central directory (preload/jobdir.c).  RunError: the
    central directory cannot be used."""
    import shlex

    where = Path(central or os.environ.get("IOTRACE_DIR") or ".").absolute()
    try:
        if not where.exists():
            where.mkdir(mode=0o700, parents=True)
        if not where.is_dir() or not os.access(where, os.W_OK | os.X_OK):
            raise OSError(errno.EACCES, "not a directory you can write")
    except OSError as exc:
        raise RunError(f"iotrace: env: {where}: {exc.strerror}", 2) from None
    shim = str(shim_path())
    return [
        f"export LD_PRELOAD={shlex.quote(shim)}${{LD_PRELOAD:+:$LD_PRELOAD}}",
        f"export IOTRACE_DIR={shlex.quote(str(where))}",
        f"export IOTRACE_STACK={stack}",
        *(f"export {k}={shlex.quote(v)}" for k, v in (record.env() if record else {}).items()),
        # a trace dir inherited from a traced shell; filters not asked for now
        "unset IOTRACE_OUT IOTRACE_JOB "
        + " ".join(v for v in FILTER_VARS if not record or v not in record.env()),
    ]


def exit_status(returncode: int) -> int:
    """A signal death is reported the shell's way, 128+N."""
    return 128 - returncode if returncode < 0 else returncode


FALLOC_FL_KEEP_SIZE = 1
# a log's name in the trace dir: HOST.PID.N.iot (HOST up to 64 bytes)
LOG_NAME_MAX = 96


def prepare_dir(trace: TraceDir) -> Path:
    """Create, in the trace dir, the run's fault file (preload/writer.c: where the shim
    says which logs it could not write).  Creating that file proves the dir writable and its
    absolute paths short enough for the shim; space is reserved for the shim's lines so that
    they still fit on a full disk.  OSError: the trace cannot be written there."""
    name = f"{FAULTS}.{os.uname().nodename}.{os.getpid()}"
    path = trace.path.resolve() / name
    if len(os.fsencode(path)) + LOG_NAME_MAX >= os.pathconf("/", "PC_PATH_MAX"):
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
    import ctypes  # os.posix_fallocate has no mode: the file would look 64 KiB long

    with trace.create(name) as f:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fallocate(f.fileno(), FALLOC_FL_KEEP_SIZE, ctypes.c_long(0), ctypes.c_long(1 << 16))
    return path


def fault_line(
    trace_dir: Path, faults: Path, stracer_errno: int | None, record_errno: int | None
) -> str | None:
    """The one line that says what could not be recorded, or None."""
    if not trace_dir.is_dir():
        return (
            f"iotrace: the trace directory {trace_dir} was removed during the run: "
            "no trace was kept"
        )
    lines: list[str] = []
    try:
        lines = faults.read_text(errors="replace").splitlines()
        if not lines:
            faults.unlink()
    except OSError:
        pass
    why: dict[int, set[int]] = {}
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            why.setdefault(int(parts[1]), set()).add(int(parts[0]))
    what = [
        f"{len(pids)} process log{'s' if len(pids) > 1 else ''} ({os.strerror(e)})"
        for e, pids in sorted(why.items())
    ]
    if stracer_errno is not None:
        what.append(f"the stracer's log ({os.strerror(stracer_errno)})")
    if record_errno is not None:
        what.append(f"the run record ({os.strerror(record_errno)})")
    if not what:
        return None
    return (
        f"iotrace: could not record everything in {trace_dir}: {', '.join(what)} stopped early; "
        "the trace keeps what was written before"
    )


def run(opts: RunOptions) -> int:
    """Full tracing (the shim and the stracer).  Runs with the shim alone are the C launcher's
    (launcher/: a Python process costs more than their whole budget): handed over to it, as is
    a run whose stracer cannot start here or whose trace cannot be written."""
    sigs = SignalState.at_start()
    if not opts.stracer:
        hand_over(opts, sigs)
    exe = resolve_command(opts.command)
    # a trace that cannot be written: the launcher says so and runs the command untraced (the
    # job matters more than its trace)
    try:
        trace = trace_dir(opts)
    except OSError:
        hand_over(opts, sigs)
    try:
        faults = prepare_dir(trace)
    except OSError:
        trace.close()
        hand_over(replace(opts, out=str(trace.path), reuse="append"), sigs)
    mpi = command_family(opts.command, os.environ) if opts.mpi == "auto" else opts.mpi
    env = traced_env(trace.path, opts.stack, faults, opts.share, mpi, opts.record)
    started = time.time_ns()
    mono = time.monotonic_ns()
    # iotrace waits for its children, whatever it was given (the command gets it back)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # Ctrl-C reaches the whole foreground process group, the command included: iotrace itself
    # waits for the command to finish, as a shell does.
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    forwarded = [s for s in FORWARDED if s not in sigs.ignored]
    traced = _run_stracer(exe, opts, env, trace, sigs, forwarded)
    signal.signal(signal.SIGINT, old_int)
    if traced is None:  # no stracer here: the shim alone, in the directory made for this run
        with contextlib.suppress(OSError):
            faults.unlink()
        trace.close()
        hand_over(replace(opts, out=str(trace.path), reuse="append"), sigs)
    pid, returncode, lost = traced
    return _finish(opts, trace, faults, lost, pid, returncode, started, mono)


HANDOVER = "IOTRACE_HANDOVER"  # + _PKG, _CALLS, _PATHS, _DATA: launcher/run.c takes them out


def launcher() -> str | None:
    """The `iotrace` command (launcher/), installed beside the console script iotrace-py."""
    import sysconfig

    where = [os.path.dirname(os.path.abspath(sys.argv[0])), sysconfig.get_path("scripts")]
    with contextlib.suppress(KeyError):
        where.append(sysconfig.get_path("scripts", f"{os.name}_user"))
    for d in where:
        exe = os.path.join(d, "iotrace")
        if os.access(exe, os.X_OK) and os.path.isfile(os.path.join(d, "iotrace-py")):
            return exe
    return None


def hand_over(opts: RunOptions, sigs: SignalState) -> NoReturn:
    """Exec the launcher to run `opts` with the shim alone: the options decided here (filters,
    the shim's directory) in its private variables, the signals as iotrace was given them."""
    exe = launcher()
    if exe is None:
        raise RunError("iotrace: the iotrace command (the launcher beside iotrace-py) is "
                       "missing: reinstall iotrace", 2)  # fmt: skip
    argv = [exe, "run", "--no-stracer", "--stack", str(opts.stack), "--mpi", opts.mpi]
    argv += ["-o", opts.out] if opts.out is not None else []
    argv += ["--share-with-group"] if opts.share else []
    argv += [f"--{opts.reuse}"] if opts.reuse else []
    argv += ["--console", opts.console] if opts.console is not None else []
    env = {k: v for k, v in os.environ.items() if not k.startswith(HANDOVER)}
    env[HANDOVER] = "1"
    env[f"{HANDOVER}_PKG"] = str(shim_path().parent)
    for k, v in (opts.record.env() if opts.record else {}).items():
        env[k.replace("IOTRACE_", f"{HANDOVER}_", 1)] = v
    sigs.restore()
    try:
        os.execve(exe, [*argv, "--", *opts.command], env)
    except OSError as exc:
        raise RunError(f"iotrace: {exe}: {exc.strerror}", 127) from None


def _run_stracer(
    exe: str, opts: RunOptions, env: dict[str, str], trace: TraceDir, sigs: SignalState,
    forwarded: list[int],
) -> tuple[int, int, int | None] | None:  # fmt: skip
    """(pid, returncode, errno that stopped the stracer's log) of the command run under the
    stracer; None: the stracer cannot run here (said in one line), run the shim alone."""
    from iotrace.stracer.launch import run_traced

    app: list[int] = []
    end_rest: list[Callable[[], None]] = []

    def forward(sig: int, _frame: object) -> None:
        if end_rest:  # the command has exited: end the processes it left behind
            end_rest[0]()
        elif app:
            with contextlib.suppress(ProcessLookupError):
                os.kill(app[0], sig)

    def exited(end: Callable[[], None]) -> None:
        """The command exited and left traced processes running (the stracer said so)."""
        end_rest.append(end)
        if signal.SIGINT not in sigs.ignored:
            signal.signal(signal.SIGINT, forward)

    # what ends them then, as the stracer's line will say
    ender = (
        "Ctrl-C" if signal.SIGINT not in sigs.ignored
        else f"SIGTERM to iotrace run (pid {os.getpid()})" if signal.SIGTERM in forwarded
        else ""
    )  # fmt: skip

    for sig in forwarded:
        signal.signal(sig, forward)
    out = run_traced(
        exe,
        opts.command,  # argv[0] as given, as a shell passes it: programs print it
        env,
        trace,
        env["LD_PRELOAD"].split(":")[0],
        sigs.restore,
        app.append,
        exited,
        ender,
    )
    if out.unavailable is not None:
        say(f"iotrace: no stracer: {out.unavailable}; tracing with the shim alone")
        return None
    if out.exec_errno is not None:
        raise RunError(f"iotrace: {opts.command[0]}: {os.strerror(out.exec_errno)}", 126)
    assert out.returncode is not None
    return (out.app_pid or 0), out.returncode, out.log_errno


def _finish(
    opts: RunOptions, trace: TraceDir, faults: Path, stracer_errno: int | None, pid: int,
    returncode: int, started: int, mono: int,
) -> int:  # fmt: skip
    import json

    status = exit_status(returncode)
    record = {
        "iotrace": __version__,
        "host": os.uname().nodename,
        "pid": pid,
        "argv": opts.command,
        "start_real_ns": started,
        "start_mono_ns": mono,
        "end_mono_ns": time.monotonic_ns(),
        "returncode": returncode,
        "status": status,
    }
    path = trace.path
    record_errno = None
    if path.is_dir():
        name = None
        try:
            name, f = trace.create_unique(f"{RUN_PREFIX}{record['host']}.{pid}", ".json")
            with f:
                f.write((json.dumps(record, indent=1) + "\n").encode())
        except OSError as exc:
            record_errno = exc.errno or 0
            if name:
                with contextlib.suppress(OSError):
                    trace.unlink(name)
    trace.close()
    fault = fault_line(path, faults, stracer_errno, record_errno)
    if fault:
        say(fault)
    if path.is_dir():
        if not fault:  # with logs cut short, it would only say that again, less clearly
            say(f"iotrace: {completeness_line(path, record['host'], pid)}")
        say(f"iotrace: trace written to {path}")
    return status


def completeness_line(trace_dir: Path, host: str, pid: int) -> str:
    """What the trace explains of the kernel's count of the run's I/O (iotrace.kio)."""
    from iotrace.kio import run_job

    try:
        return run_job(trace_dir, host, pid).line()
    except Exception as exc:  # the run's own status matters more than this line
        return f"completeness not computed ({exc.__class__.__name__}: {exc})"
