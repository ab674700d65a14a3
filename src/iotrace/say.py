"""iotrace's own console lines (`iotrace run` and its stracer).

Each line is one write(2): on a stderr shared with the traced command, a line of iotrace never
lands inside one of the command's writes, and none of the command's lands inside ours (buffered
text I/O may split a line in two writes).  `iotrace run --console FILE` sends them to FILE
(opened by the launcher, launcher/run.c, which checks it first), for appending: the iotrace of
each rank of a job can share one file, each line whole.
"""

from __future__ import annotations

import os

_console = {"fd": 2}  # stderr, or the --console file (close-on-exec: the command never sees it)


def use_console(fd: int) -> None:
    """From now on, iotrace's lines go to fd (the stracer: the launcher's console)."""
    _console["fd"] = fd


def console_fd() -> int:
    return _console["fd"]


def say(line: str) -> None:
    """One line, one write(2) (a line longer than a pipe takes at once goes on in more)."""
    data = (line.rstrip("\n") + "\n").encode(errors="backslashreplace")
    try:
        while data:
            data = data[os.write(_console["fd"], data) :]
    except OSError:
        pass  # a closed or full console never costs the command anything
