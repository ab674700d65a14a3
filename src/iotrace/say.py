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
_tag = {"tag": ""}  # "rank N" in a rank of a parallel job (launcher/main.c iot_say: the same)


def use_console(fd: int) -> None:
    """From now on, iotrace's lines go to fd (the stracer: the launcher's console)."""
    _console["fd"] = fd


def use_tag(tag: str) -> None:
    """From now on, a line "iotrace: ..." says "iotrace: TAG: ...": whose lines they are where
    the ranks of a job share one console."""
    _tag["tag"] = tag


def console_fd() -> int:
    return _console["fd"]


def say(line: str) -> None:
    """One line, one write(2) (a line longer than a pipe takes at once goes on in more)."""
    if _tag["tag"] and line.startswith("iotrace: "):
        line = f"iotrace: {_tag['tag']}: {line[9:]}"
    data = (line.rstrip("\n") + "\n").encode(errors="backslashreplace")
    try:
        while data:
            data = data[os.write(_console["fd"], data) :]
    except OSError:
        pass  # a closed or full console never costs the command anything
