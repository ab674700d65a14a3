"""`iotrace run`: start a command with the shim preloaded, wait, report where the trace is."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from iotrace import __version__
from iotrace.shim import shim_path

# Signals a batch system or a user sends to the job: passed on to the traced command.
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


class RunError(Exception):
    """A command that cannot be started; carries the exit status to use."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class RunOptions:
    command: list[str]
    out: str | None = None
    stack: int = 8
    stracer: bool = True


def default_dir(command: list[str], env: dict[str, str]) -> Path:
    """Ranks of one job must agree on one directory without talking: use the job's id."""
    for var, prefix in (
        ("SLURM_JOB_ID", "slurm"),
        ("PBS_JOBID", "pbs"),
        ("PMIX_NAMESPACE", "pmix"),
        ("OMPI_MCA_ess_base_jobid", "ompi"),
    ):
        job = env.get(var)
        if job:
            step = env.get("SLURM_STEP_ID", "") if var == "SLURM_JOB_ID" else ""
            name = f"iotrace-{prefix}-{job}" + (f".{step}" if step else "")
            return Path(re.sub(r"[^A-Za-z0-9_.-]", "_", name))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(f"iotrace-{Path(command[0]).name}-{stamp}-{os.getpid()}")


def resolve_command(command: list[str]) -> str:
    exe = command[0]
    found = exe if "/" in exe else shutil.which(exe)
    if not found or not os.path.exists(found):
        raise RunError(f"iotrace: {exe}: command not found", 127)
    if os.path.isdir(found) or not os.access(found, os.X_OK):
        raise RunError(f"iotrace: {exe}: permission denied (not an executable file)", 126)
    return found


def traced_env(trace_dir: Path, stack: int) -> dict[str, str]:
    env = dict(os.environ)
    shim = str(shim_path())
    preload = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = shim + (":" + preload if preload and shim not in preload else "")
    env["IOTRACE_DIR"] = str(trace_dir.resolve())
    env["IOTRACE_STACK"] = str(stack)
    env.setdefault("IOTRACE_JOB", trace_dir.resolve().name)
    return env


def exit_status(returncode: int) -> int:
    """A signal death is reported the shell's way, 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def run(opts: RunOptions) -> int:
    exe = resolve_command(opts.command)
    trace_dir = Path(opts.out) if opts.out else default_dir(opts.command, dict(os.environ))
    try:
        trace_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(
            f"iotrace: cannot create trace directory {trace_dir}: {exc.strerror}", 2
        ) from None
    env = traced_env(trace_dir, opts.stack)
    started = time.time_ns()
    mono = time.monotonic_ns()
    # Ctrl-C reaches the whole foreground process group, the command included: iotrace itself
    # waits for the command to finish, as a shell does.
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    child_int = signal.SIG_IGN if old_int == signal.SIG_IGN else signal.SIG_DFL
    if opts.stracer:
        traced = _run_stracer(exe, opts, env, trace_dir, child_int)
        if traced is not None:
            signal.signal(signal.SIGINT, old_int)
            pid, returncode = traced
            return _finish(opts, trace_dir, pid, returncode, started, mono)
    try:
        proc = subprocess.Popen(
            [exe, *opts.command[1:]],
            executable=exe,
            env=env,
            restore_signals=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, child_int),
        )
    except OSError as exc:
        signal.signal(signal.SIGINT, old_int)
        raise RunError(f"iotrace: {opts.command[0]}: {exc.strerror}", 126) from None
    for sig in FORWARDED:
        signal.signal(sig, lambda s, _f: proc.send_signal(s))
    returncode = proc.wait()
    signal.signal(signal.SIGINT, old_int)
    return _finish(opts, trace_dir, proc.pid, returncode, started, mono)


def _run_stracer(
    exe: str, opts: RunOptions, env: dict[str, str], trace_dir: Path, child_int: signal.Handlers
) -> tuple[int, int] | None:
    """(pid, returncode) of the command run under the stracer; None: the stracer cannot run
    here (said in one line), run the shim alone."""
    from iotrace.stracer.launch import run_traced

    app: list[int] = []

    def forward(sig: int, _frame: object) -> None:
        if app:
            with contextlib.suppress(ProcessLookupError):
                os.kill(app[0], sig)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    out = run_traced(
        exe,
        [exe, *opts.command[1:]],
        env,
        trace_dir,
        env["LD_PRELOAD"].split(":")[0],
        child_int,
        app.append,
    )
    if out.unavailable is not None:
        print(f"iotrace: no stracer: {out.unavailable}; tracing with the shim alone",
              file=sys.stderr)  # fmt: skip
        return None
    if out.exec_errno is not None:
        raise RunError(f"iotrace: {opts.command[0]}: {os.strerror(out.exec_errno)}", 126)
    assert out.returncode is not None
    return (out.app_pid or 0), out.returncode


def _finish(
    opts: RunOptions, trace_dir: Path, pid: int, returncode: int, started: int, mono: int
) -> int:
    status = exit_status(returncode)
    record = {
        "iotrace": __version__,
        "host": socket.gethostname(),
        "pid": pid,
        "argv": opts.command,
        "start_real_ns": started,
        "start_mono_ns": mono,
        "end_mono_ns": time.monotonic_ns(),
        "returncode": returncode,
        "status": status,
    }
    run_file = trace_dir / f"iotrace-run.{record['host']}.{pid}.json"
    run_file.write_text(json.dumps(record, indent=1) + "\n")
    print(f"iotrace: trace written to {trace_dir}", file=sys.stderr)
    return status
