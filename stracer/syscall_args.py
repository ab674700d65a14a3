"""Decoding a syscall's arguments by the kinds the SYSCALLS table gives them."""

from __future__ import annotations

import os
from collections.abc import Callable

from iotrace.calls import Syscall
from iotrace.flags import (
    DOMAIN,
    FCNTL_CMD,
    WHENCE,
    fd_flags,
    flag_names,
    memfd_flags,
    oflags,
    socket_type,
    umode,
)
from iotrace.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: ~2 ms of the stracer's start (issue 19)
    from typing import Any

AT_FDCWD = -100


_AT = [(0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_REMOVEDIR"), (0x400, "AT_SYMLINK_FOLLOW"),
       (0x800, "AT_NO_AUTOMOUNT"), (0x1000, "AT_EMPTY_PATH"), (0x200, "AT_EACCESS")]  # fmt: skip
_PROT = [(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC")]
_MAP = [(1, "MAP_SHARED"), (2, "MAP_PRIVATE"), (0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"),
        (0x100, "MAP_GROWSDOWN"), (0x800, "MAP_DENYWRITE"), (0x2000, "MAP_LOCKED"),
        (0x4000, "MAP_NORESERVE"), (0x8000, "MAP_POPULATE"),
        (0x100000, "MAP_FIXED_NOREPLACE")]  # fmt: skip
_AMODE = [(4, "R_OK"), (2, "W_OK"), (1, "X_OK")]


def _signed32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _signed64(v: int) -> int:
    return v - (1 << 64) if v & (1 << 63) else v


SIMPLE: dict[str, Callable[[int], Any]] = {
    "fd": _signed32,
    "dirfd": lambda v: "AT_FDCWD" if _signed32(v) == AT_FDCWD else _signed32(v),
    "size": int,
    "off": _signed64,
    "int": _signed64,
    "whence": lambda v: WHENCE.get(v, v),
    "oflags": oflags,
    "fdflags": fd_flags,
    "mfdflags": memfd_flags,
    "mode": lambda v: umode(v & 0o7777),
    "amode": lambda v: flag_names(v, _AMODE, "F_OK"),
    "atflags": lambda v: flag_names(v, _AT),
    "fcntlcmd": lambda v: FCNTL_CMD.get(_signed32(v), v),
    "prot": lambda v: flag_names(v, _PROT, "PROT_NONE"),
    "mflags": lambda v: flag_names(v, _MAP),
    "domain": lambda v: DOMAIN.get(v, v),
    "socktype": socket_type,
    "iovcnt": int,
}


def decode_args(
    sc: Syscall, raw: tuple[int, ...], read_str: Callable[[int], str | None]
) -> list[Any]:
    """One value per argument: ints, flag-name lists, strings (paths read from the tracee);
    buffers and other pointers are given as addresses."""
    out: list[Any] = []
    for kind, v in zip(sc.args, raw, strict=False):
        if kind in ("path", "str"):
            out.append(read_str(v))
        elif kind in SIMPLE:
            out.append(SIMPLE[kind](v))
        else:  # buf, ptr, iov, fds2: addresses
            out.append(v)
    return out


def abs_path(path: str, dirfd: int, pid: int) -> str:
    """A path argument made absolute against dirfd (or the tracee's cwd), as the shim does."""
    if path.startswith("/"):
        return os.path.normpath(path)
    base = f"/proc/{pid}/cwd" if dirfd == AT_FDCWD else f"/proc/{pid}/fd/{dirfd}"
    try:
        base = os.readlink(base)
    except OSError:
        return path
    return os.path.normpath(os.path.join(base, path))


def _ident(v: int) -> int:
    return v


@record(frozen=True)
class Plan:
    """How to decode one syscall, worked out once: per argument a converter (None: a string
    read from the tracee), and where its path, dirfd and descriptor arguments are."""

    convert: tuple[Callable[[int], Any] | None, ...]
    path: int  # index of the path argument, -1 if none
    dirfd: int  # index of the dirfd the path is relative to, -1 if none
    fd: int  # index of the descriptor argument the syscall uses, -1 if none


def plan(sc: Syscall) -> Plan:
    conv = tuple(None if k in ("path", "str") else SIMPLE.get(k, _ident) for k in sc.args)
    path = sc.args.index("path") if "path" in sc.args else -1
    dirfd = path - 1 if path > 0 and sc.args[path - 1] == "dirfd" else -1
    fd = 4 if sc.name == "mmap" else 0 if sc.args and sc.args[0] == "fd" and path < 0 else -1
    return Plan(conv, path, dirfd, fd)


def fd_path(pid: int, fd: int | None) -> str | None:
    """The file a tracee's descriptor names now (None: none, or gone)."""
    if fd is None or fd < 0:
        return None
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return None


def target(pid: int, pl: Plan, args: list[Any]) -> tuple[int | None, str | None]:
    """The descriptor and the file a syscall's decoded arguments name: its path argument made
    absolute, or its descriptor's file."""
    if pl.path >= 0:
        p = args[pl.path]
        dirfd = args[pl.dirfd] if pl.dirfd >= 0 else AT_FDCWD
        if isinstance(p, str):
            return None, abs_path(p, dirfd if isinstance(dirfd, int) else AT_FDCWD, pid)
        return None, None
    if pl.fd >= 0 and isinstance(args[pl.fd], int):
        return args[pl.fd], fd_path(pid, args[pl.fd])
    return None, None
