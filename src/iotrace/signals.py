"""The signal dispositions and mask `iotrace` was given, which the traced command starts with
in every mode (the stracer's child, run.py's hand-over, `python -m iotrace`).  A module of its
own: the stracer needs only this of `iotrace run`'s Python (run.py and the shim's lookup cost
~0.4 ms of every stracer's start, per rank under mpirun: issue 19)."""

from __future__ import annotations

import _signal as signal  # the stracer's too: signal.py's enums cost it ~0.7 ms
import contextlib
import os

from iotrace.record import record


@record(frozen=True)
class SignalState:
    """The signal dispositions and mask `iotrace run` was given: the command starts with the
    same, in every mode (an ignored signal stays ignored across execve; handlers do not)."""

    ignored: frozenset[int]
    blocked: frozenset[int]

    @classmethod
    def at_start(cls) -> SignalState:
        # What iotrace was given to ignore comes from the `iotrace` launcher (launcher/main.c),
        # which saw it before Python set SIGPIPE and SIGXFSZ to SIG_IGN and before the stracer's
        # start ignored the job's signals.  Without it (`python -m iotrace`) this process's own,
        # SIGPIPE and SIGXFSZ taken as SIG_DFL, what shells, Python's subprocess and MPI
        # launchers give a command.  The variable is not the command's.
        given = os.environ.pop("IOTRACE_GIVEN_SIGIGN", "")
        try:
            bits = int(given, 16)
            ignored = {n + 1 for n in range(64) if bits >> n & 1}
        except ValueError:
            ignored = _status_mask("SigIgn") - {signal.SIGPIPE, signal.SIGXFSZ}
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
