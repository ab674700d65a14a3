"""Names of flag and enum values (open flags, lseek whence), for `iotrace show` and the
stracer's decoding alike."""

from __future__ import annotations

import os
import platform


def flag_names(
    value: int, table: list[tuple[int, str]], zero: str = "", exact: bool = False
) -> list[str]:
    """Names of the bits of `value` as `table` names them, the bits no name took in hex.
    `exact`: a name of several bits (STATX_ALL) takes them first, a later name only the bits
    left; otherwise each name whose bits are all set (O_SYNC and the O_DSYNC inside it)."""
    names, rest = [], value
    for bit, name in table:
        if bit and (rest if exact else value) & bit == bit:
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
# the kernel's O_LARGEFILE, set in every 64-bit process's F_GETFL result (a 64-bit glibc
# defines it 0)
_OFLAGS.append((os.O_LARGEFILE or {"aarch64": 0o400000}.get(platform.machine(), 0o100000),
                "O_LARGEFILE"))  # fmt: skip
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


def mremap_flags(v: int) -> list[str]:
    return flag_names(v, [(1, "MREMAP_MAYMOVE"), (2, "MREMAP_FIXED"), (4, "MREMAP_DONTUNMAP")], "0")


def mpi_amode(v: int) -> list[str]:
    return flag_names(v, _AMODE, "0")


def _exact(value: int, table: list[tuple[int, str]], zero: str = "0") -> list[str]:
    return flag_names(value, table, zero, exact=True)


# the names below are strace's, in the order strace prints them
FCNTL_CMD = {0: "F_DUPFD", 1: "F_GETFD", 2: "F_SETFD", 3: "F_GETFL", 4: "F_SETFL", 5: "F_GETLK",
             6: "F_SETLK", 7: "F_SETLKW", 8: "F_SETOWN", 9: "F_GETOWN", 10: "F_SETSIG",
             11: "F_GETSIG", 36: "F_OFD_GETLK", 37: "F_OFD_SETLK", 38: "F_OFD_SETLKW",
             1024: "F_SETLEASE", 1025: "F_GETLEASE", 1026: "F_NOTIFY", 1030: "F_DUPFD_CLOEXEC",
             1031: "F_SETPIPE_SZ", 1032: "F_GETPIPE_SZ", 1033: "F_ADD_SEALS",
             1034: "F_GET_SEALS"}  # fmt: skip
DOMAIN = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET"}
# a socket's protocol per domain (strace names AF_INET's and AF_INET6's 0 IPPROTO_IP)
_IPPROTO = {0: "IPPROTO_IP", 1: "IPPROTO_ICMP", 6: "IPPROTO_TCP", 17: "IPPROTO_UDP",
            41: "IPPROTO_IPV6", 58: "IPPROTO_ICMPV6", 132: "IPPROTO_SCTP", 136: "IPPROTO_UDPLITE",
            255: "IPPROTO_RAW", 262: "IPPROTO_MPTCP"}  # fmt: skip
_PROTOCOL = {2: _IPPROTO, 10: _IPPROTO,
             16: {0: "NETLINK_ROUTE", 4: "NETLINK_SOCK_DIAG", 9: "NETLINK_AUDIT",
                  15: "NETLINK_KOBJECT_UEVENT", 16: "NETLINK_GENERIC"}}  # fmt: skip
_SOCKTYPE = {1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 5: "SOCK_SEQPACKET"}
_FALLOC = [(1, "FALLOC_FL_KEEP_SIZE"), (2, "FALLOC_FL_PUNCH_HOLE"), (4, "FALLOC_FL_NO_HIDE_STALE"),
           (8, "FALLOC_FL_COLLAPSE_RANGE"), (0x10, "FALLOC_FL_ZERO_RANGE"),
           (0x20, "FALLOC_FL_INSERT_RANGE"), (0x40, "FALLOC_FL_UNSHARE_RANGE")]  # fmt: skip
_EFD = [(1, "EFD_SEMAPHORE"), (0o2000000, "EFD_CLOEXEC"), (0o4000, "EFD_NONBLOCK")]
_RENAME = [(1, "RENAME_NOREPLACE"), (2, "RENAME_EXCHANGE"), (4, "RENAME_WHITEOUT")]
_UNLINK = [(0x200, "AT_REMOVEDIR")]
_STATX_SYNC = {0: "AT_STATX_SYNC_AS_STAT", 0x2000: "AT_STATX_FORCE_SYNC",
               0x4000: "AT_STATX_DONT_SYNC"}  # fmt: skip
_STATX_AT = [(0x100, "AT_SYMLINK_NOFOLLOW"), (0x800, "AT_NO_AUTOMOUNT"), (0x1000, "AT_EMPTY_PATH")]
_STATX_MASK = [(0xFFF, "STATX_ALL"), (0x7FF, "STATX_BASIC_STATS"),
               *((1 << i, "STATX_" + n) for i, n in enumerate(
                   "TYPE MODE NLINK UID GID ATIME MTIME CTIME INO SIZE BLOCKS BTIME MNT_ID "
                   "DIOALIGN".split()))]  # fmt: skip


def umode(v: int) -> str:
    """A file mode as strace prints it (C's %#03o: 0644, 04755, 000)."""
    return f"0{v:o}".rjust(3, "0")


def fcntl_cmd(v: int) -> list[str]:
    return [FCNTL_CMD.get(v, str(v))]


def fcntl_arg(cmd: int, v: int) -> list[str]:
    """fcntl's third argument as strace prints it for its command."""
    if cmd == 4:  # F_SETFL
        return oflags(v)
    if cmd == 2:  # F_SETFD
        return _exact(v, [(1, "FD_CLOEXEC")])
    return [str(v)]


def fcntl_result(cmd: int, v: int) -> str | None:
    """fcntl's result as strace prints it for its command (None: the number)."""
    if cmd == 3:  # F_GETFL
        return f"{hex(v) if v else 0} (flags {'|'.join(oflags(v))})"
    if cmd == 1 and v:  # F_GETFD
        return f"{hex(v)} (flags {'|'.join(_exact(v, [(1, 'FD_CLOEXEC')]))})"
    return None


def memfd_flags(v: int) -> list[str]:
    return _exact(v, [(1, "MFD_CLOEXEC"), (2, "MFD_ALLOW_SEALING"), (4, "MFD_HUGETLB"),
                      (8, "MFD_NOEXEC_SEAL"), (0x10, "MFD_EXEC")])  # fmt: skip


def socket_domain(v: int) -> list[str]:
    return [DOMAIN.get(v, str(v))]


def socket_protocol(domain: int, v: int) -> str:
    """socket's third argument as strace prints it for its domain."""
    return _PROTOCOL.get(domain, {}).get(v, str(v))


def socket_type(v: int) -> list[str]:
    flags = [(os.O_CLOEXEC, "SOCK_CLOEXEC"), (os.O_NONBLOCK, "SOCK_NONBLOCK")]
    return [_SOCKTYPE.get(v & 0xF, str(v & 0xF)), *flag_names(v & ~0xF, flags)]


def fallocate_mode(v: int) -> list[str]:
    return _exact(v, _FALLOC)


def eventfd_flags(v: int) -> list[str]:
    return _exact(v, _EFD)


def rename_flags(v: int) -> list[str]:
    return _exact(v, _RENAME)


def unlink_flags(v: int) -> list[str]:
    return _exact(v, _UNLINK)


def statx_flags(v: int) -> list[str]:
    sync = v & 0x6000
    rest = _exact(v & ~0x6000, _STATX_AT, "")
    return [_STATX_SYNC.get(sync, hex(sync)), *(n for n in rest if n)]


def statx_mask(v: int) -> list[str]:
    return _exact(v, _STATX_MASK)
