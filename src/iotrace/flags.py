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


_PROT = [(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC")]
# Linux's MAP_* (x86-64 and the generic ABI): the mapping type is the low 2 bits
_MAP_TYPE = {1: "MAP_SHARED", 2: "MAP_PRIVATE", 3: "MAP_SHARED_VALIDATE"}
_MAP = [(0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"), (0x100, "MAP_GROWSDOWN"),
        (0x800, "MAP_DENYWRITE"), (0x1000, "MAP_EXECUTABLE"), (0x2000, "MAP_LOCKED"),
        (0x4000, "MAP_NORESERVE"), (0x8000, "MAP_POPULATE"), (0x10000, "MAP_NONBLOCK"),
        (0x20000, "MAP_STACK"), (0x40000, "MAP_HUGETLB"), (0x80000, "MAP_SYNC"),
        (0x100000, "MAP_FIXED_NOREPLACE")]  # fmt: skip
_MS = [(1, "MS_ASYNC"), (2, "MS_INVALIDATE"), (4, "MS_SYNC")]
# MPI_MODE_* of Open MPI and MPICH alike (both from ROMIO's mpio.h)
_AMODE = [
    (1 << i, f"MPI_MODE_{n}")
    for i, n in enumerate(
        "CREATE RDONLY WRONLY RDWR DELETE_ON_CLOSE UNIQUE_OPEN EXCL APPEND SEQUENTIAL".split()
    )
]


def mmap_prot(v: int) -> list[str]:
    return flag_names(v, _PROT, "PROT_NONE")


def mmap_flags(v: int) -> list[str]:
    kind = [_MAP_TYPE[v & 3]] if v & 3 else []
    return kind + flag_names(v & ~3, _MAP)


# the flags of pipe2 and dup3 as strace names them: the bits' order, 0 as 0, no access mode
_FD_FLAGS = [(os.O_NONBLOCK, "O_NONBLOCK"), (os.O_DIRECT, "O_DIRECT"), (os.O_CLOEXEC, "O_CLOEXEC")]


def fd_flags(v: int) -> list[str]:
    return flag_names(v, _FD_FLAGS, "0")


def msync_flags(v: int) -> list[str]:
    return flag_names(v, _MS, "0")


def mpi_amode(v: int) -> list[str]:
    return flag_names(v, _AMODE, "0")
