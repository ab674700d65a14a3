"""A full run's stracer: `iotrace-stracer SPEC_FD`, started by the `iotrace` command
(launcher/stracer.c, which has the rest of the run and the protocol: what the spec holds, the
lines this process writes on its pipe).

The stracer forks the command, which installs the seccomp filter, stops itself, and is seized
(PTRACE_SEIZE, so group-stops can be told apart and job control works) before its execve.  The
launcher is a child subreaper: if the stracer dies, PTRACE_O_EXITKILL kills the command at once
(its I/O would otherwise fail with ENOSYS where the filter says "trace") and the launcher reaps
it and says so loudly.
"""

from __future__ import annotations

import _signal as signal  # as tracer.py: signals by number, no enums
import contextlib
import errno as errno_mod
import os
import sys
from collections.abc import Callable
from pathlib import Path

from iotrace.stracer import _ffi as F
from iotrace.stracer import loop
from iotrace.stracer.bpf import build_filter
from iotrace.stracer.console import Console
from iotrace.stracer.slog import Writer
from iotrace.stracer.tracer import Tracer

from iotrace.native import WHY_NOT
from iotrace.say import say, use_console, use_tag
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
# from the launcher, once the command has exited: end the traced processes it left behind
# (SIGTERM; from the second on, SIGKILL).  One the stracer ignores until then.
END_REST = signal.SIGUSR1
ANNOUNCE_AFTER = 0.2  # seconds after the command's exit: who is left behind
# descriptors 0-2 that were closed when iotrace started (launcher/main.c hold_std): the command's
try:
    _given = int(os.environ.pop("IOTRACE_GIVEN_CLOSED", "0"), 16)
except ValueError:
    _given = 0
CLOSED = tuple(fd for fd in range(3) if _given >> fd & 1)


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
        for fd in CLOSED:  # closed when iotrace started: /dev/null held them meanwhile
            os.close(fd)
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
    try:
        pid = os.fork()
    except OSError as exc:  # RLIMIT_NPROC (`ulimit -u`): the stracer takes a process of them
        os.close(errr)
        os.close(errw)
        _report(report, f"unavailable it could not start the command ({exc.strerror})")
        return 0
    if pid == 0:
        os.close(errr)
        os.close(report)  # a stopped child left behind must not keep `iotrace run` waiting
        _child(exe, argv, env, prog, restore_signals, errw)
    os.close(errw)
    # made while the command installs its filter and stops itself (on another CPU when there is
    # one: ~1 ms of the run's start it waited for before), undone if it does not stop
    try:
        log = Writer(trace_dir, argv)
        console = Console()
        tracer = Tracer(log, shim, console)
        tracer.cookie = cookie
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # not yet seized: stopped, it would stay stopped for good
        raise
    _, st = os.waitpid(pid, os.WUNTRACED)
    why = None
    if not os.WIFSTOPPED(st):
        why = os.read(errr, 512).decode(errors="replace") or "the command did not start"
    else:
        try:
            tracer.attach_root(pid)
        except OSError as exc:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            why = f"ptrace not permitted ({os.strerror(exc.errno or 1)})"
    if why is not None:
        made = log.f is not None  # else its path may name another run's log (--append)
        log.close()
        if made:
            with contextlib.suppress(OSError):
                log.path.unlink()
        _report(report, f"unavailable {why}")
        return 0
    _report(report, f"started {pid}")

    def root_exit(rc: int) -> None:
        # at once: a stracer that dies later (killed, a fault in its summary or end line) must
        # not cost the command its status, which only this process reaped
        _report(report, f"status {rc}")
        _left_behind(tracer, console, report, argv[0], rc, ender)

    tracer.on_root_exit = root_exit
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
    if not why.startswith("exec "):
        from iotrace.kio import run_line

        line = run_line(trace_dir.path, os.uname().nodename, pid, tracer.end_part())
        _report(report, f"end {line}")
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


def main() -> None:
    """`iotrace-stracer SPEC_FD`: the stracer of a full run; `iotrace-stracer --end-line DIR
    HOST PID`: that run's completeness line, for the launcher when its stracer died."""
    args = sys.argv[1:]
    if len(args) == 4 and args[0] == "--end-line" and args[3].isdigit():
        from iotrace.kio import run_line

        print(run_line(Path(args[1]), args[2], int(args[3])), flush=True)
        os._exit(0)
    try:
        fd = int(args[0]) if len(args) == 1 else -1
        data = b""
        while chunk := os.read(fd, 1 << 16):
            data += chunk
        os.close(fd)
        f = data.split(b"\0")[:-1]
        report, dfd, console, argc = int(f[0]), int(f[1]), int(f[4]), int(f[8])
    except (ValueError, OSError, IndexError):
        print("iotrace-stracer: the stracer of `iotrace run`, started by it alone", file=sys.stderr)
        os._exit(2)
    for d in {report, dfd, console} - {2}:  # the command inherits none of them
        os.set_inheritable(d, False)
    use_console(console)
    use_tag(os.environ.pop("IOTRACE_GIVEN_TAG", ""))  # launcher/stracer.c: "rank N" or none
    from iotrace.signals import SignalState

    sigs = SignalState.at_start()
    text = [os.fsdecode(b) for b in f]
    env = dict(e.split("=", 1) for e in text[9 + argc :] if "=" in e)
    trace = TraceDir(Path(text[2]), dfd, text[3] == "1")
    code = 70
    try:
        code = stracer_main(text[7], text[9 : 9 + argc], env, trace, text[5], report,
                            sigs.restore, text[6])  # fmt: skip
    except BaseException:
        import traceback

        say(traceback.format_exc())
    finally:
        os._exit(code)


def exec_error(errno: int) -> str:
    return errno_mod.errorcode.get(errno, str(errno))
