"""Starting a command under the stracer.

`iotrace run` (the parent) forks the stracer; the stracer forks the command, which installs the
seccomp filter, stops itself, and is seized (PTRACE_SEIZE, so group-stops can be told apart and
job control works) before its execve.  The parent is a child subreaper: if the stracer dies,
PTRACE_O_EXITKILL kills the command at once (its I/O would otherwise fail with ENOSYS where the
filter says "trace") and the parent reaps it and says so loudly.

The stracer tells the parent, one line each on a pipe: `started PID`, `unavailable REASON`,
`execfail ERRNO`, `lost ERRNO` (its log stopped: full disk, RLIMIT_FSIZE...), `exited RETURNCODE`
(the command exited, traced processes it left behind still run: the stracer waits for them, and
ends them on END_REST), `done RETURNCODE`.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import os
import signal
from collections.abc import Callable

from iotrace.stracer import _ffi as F
from iotrace.stracer import loop
from iotrace.stracer.bpf import build_filter
from iotrace.stracer.console import Console
from iotrace.stracer.slog import Writer
from iotrace.stracer.tracer import Tracer

from iotrace.native import WHY_NOT
from iotrace.record import record
from iotrace.say import say
from iotrace.tracedir import TraceDir

# signals meant for the command: the stracer must outlive it, so it ignores them
IGNORED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
PR_SET_CHILD_SUBREAPER = 36
# from the parent, once the command has exited: end the traced processes it left behind
# (SIGTERM; from the second on, SIGKILL).  One the stracer ignores until then.
END_REST = signal.SIGUSR1
ANNOUNCE_AFTER = 0.2  # seconds after the command's exit: who is left behind


@record
class Outcome:
    returncode: int | None  # None: unknown (the stracer died before the command ended)
    app_pid: int | None
    unavailable: str | None = None  # why the stracer could not run (run the shim alone)
    exec_errno: int | None = None
    log_errno: int | None = None  # the stracer's log stopped early (errno of the fault)


def _report(fd: int, line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, (line + "\n").encode())


def _child(
    exe: str, argv: list[str], env: dict[str, str], prog: list[tuple[int, int, int, int]],
    restore_signals: Callable[[], None], errw: int,
) -> None:  # fmt: skip
    """In the command's process, before its execve: never returns."""
    try:
        restore_signals()
        bargv = [os.fsencode(a) for a in argv]
        benv = {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
        err = F.install_filter(prog, no_new_privs=os.geteuid() != 0)
        if err:
            os.write(errw, f"seccomp filter not permitted ({os.strerror(err)})".encode())
            os._exit(1)
        os.kill(os.getpid(), signal.SIGSTOP)  # the stracer seizes us here
        try:
            os.execve(exe, bargv, benv)
        except OSError as exc:
            os.write(errw, f"exec {exc.errno}".encode())
        os._exit(127)
    except BaseException:
        os._exit(127)


def stracer_main(
    exe: str, argv: list[str], env: dict[str, str], trace_dir: TraceDir, shim: str, report: int,
    restore_signals: Callable[[], None], ender: str,
) -> int:  # fmt: skip
    """The stracer process: returns its exit code (the command's status goes on the pipe)."""
    for s in IGNORED:
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM, END_REST})  # its own (below)
    if loop.library() is None:
        why = WHY_NOT.get("_loop", "its C loop (stracer/_loop.c) cannot be loaded")
        _report(report, f"unavailable {why}")
        return 0
    cookie = int.from_bytes(os.urandom(8), "little") | 1
    # IOTRACE_STRACER: a stracer is here (its filter stops the shim's hello)
    env = dict(env, IOTRACE_STRACER=str(os.getpid()), IOTRACE_COOKIE=f"{cookie:#x}")
    prog = build_filter(cookie)
    errr, errw = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(errr)
        os.close(report)  # a stopped child left behind must not keep `iotrace run` waiting
        _child(exe, argv, env, prog, restore_signals, errw)
    os.close(errw)
    _, st = os.waitpid(pid, os.WUNTRACED)
    if not os.WIFSTOPPED(st):
        why = os.read(errr, 512).decode(errors="replace") or "the command did not start"
        _report(report, f"unavailable {why}")
        return 0
    try:
        log = Writer(trace_dir, argv)
        console = Console()
        tracer = Tracer(log, shim, console)
        tracer.cookie = cookie
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # stopped, not yet seized: it would stay stopped for good
        raise
    try:
        tracer.attach_root(pid)
    except OSError as exc:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        log.close()
        with contextlib.suppress(OSError):
            log.path.unlink()
        _report(report, f"unavailable ptrace not permitted ({os.strerror(exc.errno or 1)})")
        return 0
    _report(report, f"started {pid}")
    tracer.on_root_exit = lambda rc: _left_behind(tracer, console, report, argv[0], rc, ender)
    try:
        rc = tracer.loop()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        tracer.finish()
        log.close()
    os.set_blocking(errr, False)
    try:
        why = os.read(errr, 512).decode(errors="replace")
    except BlockingIOError:
        why = ""
    if why.startswith("exec "):
        _report(report, f"execfail {why.split()[1]}")
    console.summary(dict(tracer.counts))
    if log.error is not None:
        _report(report, f"lost {log.error}")
    _report(report, f"done {rc}")
    return 0


def _left_behind(
    tracer: Tracer, console: Console, report: int, exe: str, rc: int, ender: str
) -> None:
    """The command exited: if traced processes it started still run, name them (a moment
    later: a shell that forks and exits leaves a child not yet exec'd) and end them when the
    parent says so."""
    if not tracer.remaining():
        return
    ends = [0]

    def end(_sig: int, _frame: object) -> None:
        ends[0] += 1
        for pid in tracer.remaining():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM if ends[0] == 1 else signal.SIGKILL)

    def announce(_sig: int, _frame: object) -> None:
        rest = tracer.remaining()
        if rest:
            signal.signal(END_REST, end)
            _report(report, f"exited {rc}")  # first: the parent knows, whatever comes next
            left = [(p, _cmdline(p)) for p in rest]
            console.left_behind(os.path.basename(exe), rc, left, ender)

    signal.signal(signal.SIGALRM, announce)
    signal.setitimer(signal.ITIMER_REAL, ANNOUNCE_AFTER)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().rstrip(b"\0").split(b"\0")
    except OSError:
        return "?"
    line = " ".join(a.decode(errors="backslashreplace") for a in args)
    return line if len(line) <= 60 else line[:57] + "..."


def run_traced(
    exe: str, argv: list[str], env: dict[str, str], trace_dir: TraceDir, shim: str,
    restore_signals: Callable[[], None], on_start: Callable[[int], None],
    on_exited: Callable[[Callable[[], None]], None], ender: str,
) -> Outcome:  # fmt: skip
    """In `iotrace run`: fork the stracer, wait for it, report what happened."""
    F.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    r, w = os.pipe()
    spid = os.fork()
    if spid == 0:
        os.close(r)
        code = 70
        try:
            code = stracer_main(exe, argv, env, trace_dir, shim, w, restore_signals, ender)
        except BaseException:
            import traceback

            say(traceback.format_exc())
        finally:
            os._exit(code)
    os.close(w)
    out = Outcome(None, None)
    stracer_alive = [True]
    exited: list[int] = []  # the command's returncode, when it exited before the stracer

    def end_rest() -> None:
        if stracer_alive[0]:
            os.kill(spid, END_REST)

    buf = b""
    while True:
        try:
            chunk = os.read(r, 4096)
        except InterruptedError:
            continue
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            word, _, rest = line.decode().partition(" ")
            if word == "started":
                out.app_pid = int(rest)
                on_start(out.app_pid)
            elif word == "unavailable":
                out.unavailable = rest
            elif word == "execfail":
                out.exec_errno = int(rest)
            elif word == "lost":
                out.log_errno = int(rest)
            elif word == "exited":
                exited.append(int(rest))
                on_exited(end_rest)
            elif word == "done":
                out.returncode = int(rest)
    os.close(r)
    _, st = _wait(spid)
    stracer_alive[0] = False
    if out.returncode is None and out.unavailable is None:
        how = (
            f"was killed by {signal.Signals(os.WTERMSIG(st)).name}"
            if os.WIFSIGNALED(st)
            else f"exited with status {os.waitstatus_to_exitcode(st)}"
        )
        who = "the processes the command left behind were" if exited else "the traced command was"
        say(
            f"iotrace: ERROR: the stracer (pid {spid}) {how}; {who} killed "
            "with it (PTRACE_O_EXITKILL) rather than let its I/O fail unseen. The trace "
            "holds everything recorded up to then."
        )
        if exited:
            out.returncode = exited[0]
        elif out.app_pid is not None:
            _, ast = _wait(out.app_pid)
            out.returncode = os.waitstatus_to_exitcode(ast) if ast is not None else -9
        else:
            out.returncode = -signal.SIGKILL
    _reap_orphans()
    return out


def _wait(pid: int) -> tuple[int, int]:
    while True:
        try:
            return os.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return pid, signal.SIGKILL  # already reaped: report a kill


def _reap_orphans() -> None:
    """Descendants orphaned during the run were reparented to us (subreaper): reap them."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def exec_error(errno: int) -> str:
    return errno_mod.errorcode.get(errno, str(errno))
