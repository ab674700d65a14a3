"""Names of flag and enum values (open flags, lseek whence), for `iotrace show` and the
stracer's decoding alike."""

from __future__ import annotations

import os


def flag_names(value: int, table: list[tuple[int, str]], zero: str = "") -> list[str]:
    names, rest = [], value
    for bit, name in table:
        if bit and value & bit == bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(hex(rest))
    return names or ([zero] if zero else [])


_ACC = {os.O_RDONLY: "O_RDONLY", os.O_WRONLY: "O_WRONLY", os.O_RDWR: "O_RDWR"}
_OFLAGS = [
    (getattr(os, n), n)
    for n in (
        "O_CREAT",
        "O_EXCL",
        "O_NOCTTY",
        "O_TRUNC",
        "O_APPEND",
        "O_NONBLOCK",
        "O_DSYNC",
        "O_DIRECT",
        "O_LARGEFILE",
        "O_DIRECTORY",
        "O_NOFOLLOW",
        "O_NOATIME",
        "O_CLOEXEC",
        "O_SYNC",
        "O_PATH",
        "O_TMPFILE",
    )
    if hasattr(os, n)
]
_OFLAGS.sort(key=lambda t: -bin(t[0]).count("1"))  # O_SYNC/O_TMPFILE before their parts


def oflags(v: int) -> list[str]:
    """O_* names of open flags, the access mode first."""
    return [_ACC.get(v & 3, hex(v & 3)), *flag_names(v & ~3, _OFLAGS)]


WHENCE = {0: "SEEK_SET", 1: "SEEK_CUR", 2: "SEEK_END", 3: "SEEK_DATA", 4: "SEEK_HOLE"}
