"""iotrace's own console lines (`iotrace run` and its stracer).

Each line is one write(2): on a stderr shared with the traced command, a line of iotrace never
lands inside one of the command's writes, and none of the command's lands inside ours (buffered
text I/O may split a line in two writes).  `iotrace run --console FILE` sends them to FILE,
opened for appending: the iotrace of each rank of a job can share one file, each line whole.
"""

from __future__ import annotations

import errno
import os
import stat

_console = {"fd": 2}  # stderr, or the --console file (close-on-exec: the command never sees it)


def open_console(path: str) -> None:
    """From now on, iotrace's lines go to path (OSError if it cannot be opened)."""
    # never through a planted symlink; 0600: the lines name the job's files.  A file or FIFO
    # another user made there first is neither written (theirs to read) nor waited on (a FIFO
    # no one reads): launcher/run.c, the same rules
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OSError(exc.errno, "a FIFO no one reads") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) and st.st_uid != os.geteuid():
        os.close(fd)
        raise OSError(errno.EPERM, f"owned by uid {st.st_uid}, not by you (uid {os.geteuid()}): "
                      "refusing to write there")  # fmt: skip
    os.set_blocking(fd, True)
    _console["fd"] = fd


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
