"""The GNU build-id of an ELF file on disk, to tell whether a module the shim saw loaded (its
MODULE record carries the id read from memory) is still the file at that path."""

from __future__ import annotations

import bisect
import errno
import functools
import os
import stat
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: the stracer's start imports none (issue 19)
    from collections.abc import Callable
    from typing import BinaryIO

PT_LOAD, PT_NOTE = 1, 4
NT_GNU_BUILD_ID = 3


NT_GO_BUILDID = 4  # the Go linker's note ("Go\0\0"): every Go executable has it
ID_NOTES = ((b"GNU\0", NT_GNU_BUILD_ID), (b"Go\0\0", NT_GO_BUILDID))


def open_regular(path: str) -> BinaryIO:
    """`path` opened for reading only if it is a regular file: looked at first with O_PATH, which
    opens nothing, then opened through that descriptor.  The stracer and the analyzer (root,
    often) open the modules a traced process's maps name, in directories their owner controls:
    a FIFO put there (`x (deleted)` for a mapped file x unlinked, or swapped in later) held the
    stracer in open(2) for good, and every process of the job with it; a device would be opened
    with its driver's effects.  OSError (EINVAL) for anything else."""
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return open(f"/proc/self/fd/{fd}", "rb")
    finally:
        os.close(fd)


def build_id(path: str) -> bytes | None:
    """The id of a 64-bit little-endian ELF file (x86_64), None if it has none or is not one."""
    return _note_of(path, b"GNU\0", NT_GNU_BUILD_ID)


def ids_of(path: str) -> frozenset[bytes]:
    """The ids of an ELF file, GNU's build-id and the Go linker's (mapped_ids's)."""
    return frozenset(i for n in ID_NOTES if (i := _note_of(path, *n)) is not None)


def mapped_ids(read: Callable[[int, int], bytes | None], base: int) -> frozenset[bytes]:
    """The ids (GNU's build-id, the Go linker's) of the ELF file a process has mapped at `base`
    (its offset-0 mapping), read from the process's memory by `read(address, size)`: those of
    the file it runs, whatever its path holds now; none if they cannot be read."""
    head = read(base, 64) or b""
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        return frozenset()
    phoff = struct.unpack_from("<Q", head, 32)[0]
    phentsize, phnum = struct.unpack_from("<HH", head, 54)
    table = read(base + phoff, phentsize * phnum) if phentsize == 56 and phnum < 256 else None
    if not table or len(table) < phentsize * phnum:
        return frozenset()
    segs = [struct.unpack_from("<IIQQQQ", table, i * phentsize) for i in range(phnum)]
    first = next((s for s in segs if s[0] == PT_LOAD and s[2] == 0), None)
    if first is None:
        return frozenset()
    bias = base - first[3]  # where the file's addresses are (0 for a fixed-address executable)
    out = set()
    for p_type, _, _, vaddr, _, size in segs:
        if p_type == PT_NOTE and size <= 4096:
            notes = read(bias + vaddr, size) or b""
            out.update(i for n in ID_NOTES if (i := _find(notes, *n)) is not None)
    return frozenset(out)


def is_go(path: str) -> bool:
    """A Go executable (its syscalls never go through libc; frame pointers on amd64)."""
    return _note_of(path, b"Go\0\0", NT_GO_BUILDID) is not None


def _note_of(path: str, name: bytes, ntype: int) -> bytes | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _note(path, st.st_ino, st.st_mtime_ns, st.st_size, name, ntype)


@functools.lru_cache(maxsize=1024)
def _note(path: str, _ino: int, _mtime: int, _size: int, name: bytes, ntype: int) -> bytes | None:
    """Read once per version of the file (its inode, mtime and size are in the key)."""
    try:
        with open_regular(path) as f:
            ident = f.read(64)
            if len(ident) < 64 or ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
                return None
            phoff, phentsize, phnum = (
                struct.unpack_from("<Q", ident, 32)[0],
                *struct.unpack_from("<HH", ident, 54),
            )
            if phentsize != 56 or phoff + phentsize * phnum > _size:  # past the file's end
                return None
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            for i in range(phnum):
                p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
                    "<IIQQQQ", table, i * phentsize
                )
                if p_type != PT_NOTE or p_filesz > 1 << 20:
                    continue
                f.seek(p_offset)
                found = _find(f.read(p_filesz), name, ntype)
                if found is not None:
                    return found
    except (OSError, struct.error):
        return None
    return None


def _find(notes: bytes, want: bytes, want_type: int) -> bytes | None:
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
        name = pos + 12
        desc = name + ((namesz + 3) & ~3)
        if desc + descsz > len(notes):
            return None
        if ntype == want_type and notes[name : name + namesz] == want:
            return notes[desc : desc + descsz]
        pos = desc + ((descsz + 3) & ~3)
    return None


SHT_SYMTAB, SHT_STRTAB, SHT_DYNSYM = 2, 3, 11
STT_FUNC = 2
SECTION_MAX = 1 << 28  # bytes: past any symbol or string table; a longer one reads as empty


def function_at(path: str, offset: int) -> str | None:
    """The name libunwind's unw_get_proc_name gives an address of a module: the nearest
    function symbol at or below `offset` (an address of the file's own layout), the first of
    the symbol tables' order where several share an address; None if there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    addrs, names = _functions(path, st.st_ino, st.st_mtime_ns, st.st_size)
    i = bisect.bisect_right(addrs, offset) - 1
    return names[i] if i >= 0 else None


def _sections(fd: int) -> list[tuple[int, ...]] | None:
    """The section headers of a 64-bit little-endian ELF file, read (pread) rather than mapped:
    a file its owner truncates while the stracer reads it would kill the stracer, and the job
    with it, by SIGBUS through a mapping; a read just comes back short.  A section said to lie
    past the file's end reads as empty (size 0): a file of another user's whose symbol table
    claimed 2^62 bytes made the stracer allocate them (MemoryError: the site's syscall went
    unrecorded)."""
    size = os.fstat(fd).st_size
    head = os.pread(fd, 64, 0)
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        return None
    shoff = struct.unpack_from("<Q", head, 40)[0]
    shentsize, shnum = struct.unpack_from("<HH", head, 58)
    if shentsize != 64 or shoff + shentsize * shnum > size:
        return None
    table = os.pread(fd, shentsize * shnum, shoff)
    out = []
    for i in range(shnum):
        sh = struct.unpack_from("<IIQQQQII", table, i * shentsize)
        # within the file's size is not enough: a sparse file's size costs its owner nothing
        ok = sh[4] + sh[5] <= size and sh[5] <= SECTION_MAX
        out.append(sh if ok else (*sh[:5], 0, *sh[6:]))
    return out


def debuglink(fd: int) -> str | None:
    """The file name a module's .gnu_debuglink section gives its separate debug file, None if
    it has none (or not a plain name)."""
    try:
        sections = _sections(fd)
        shstrndx = struct.unpack_from("<H", os.pread(fd, 64, 0), 62)[0]
        if sections is None or shstrndx >= len(sections):
            return None
        names = os.pread(fd, sections[shstrndx][5], sections[shstrndx][4])
        for sh_name, _, _, _, off, size, _, _ in sections:
            if names[sh_name : names.find(b"\0", sh_name)] == b".gnu_debuglink":
                name = os.pread(fd, min(size, 4096), off).split(b"\0", 1)[0].decode()
                return name if name and "/" not in name and name not in (".", "..") else None
    except (OSError, ValueError, struct.error, IndexError):
        pass
    return None


@functools.lru_cache(maxsize=64)
def _functions(path: str, _ino: int, _mtime: int, _size: int) -> tuple[list[int], list[str]]:
    """The function symbols of a 64-bit little-endian ELF file's .symtab and .dynsym, by
    address: read once per version of the file (libunwind-ptrace maps the whole file again for
    every name it looks up, ~0.4 ms a frame in libc)."""
    names: dict[int, str] = {}
    try:
        with open_regular(path) as f:
            fd = f.fileno()
            sections = _sections(fd)
            if sections is None:
                return [], []
            strtabs: dict[int, bytes] = {}
            for _name, sh_type, _, _, off, size, link, _ in sections:
                if sh_type not in (SHT_SYMTAB, SHT_DYNSYM) or link >= len(sections):
                    continue
                if link not in strtabs:
                    strtabs[link] = os.pread(fd, sections[link][5], sections[link][4])
                strtab = strtabs[link]
                syms = os.pread(fd, size - size % 24, off)
                for st_name, st_info, _, st_shndx, st_value, _ in struct.iter_unpack(
                    "<IBBHQQ", syms[: len(syms) - len(syms) % 24]
                ):
                    if st_info & 0xF == STT_FUNC and st_shndx != 0 and st_value not in names:
                        end = strtab.find(b"\0", st_name)
                        names[st_value] = strtab[st_name:end].decode("utf-8", "replace")
    except (OSError, ValueError, struct.error, IndexError):
        return [], []
    addrs = sorted(names)
    return addrs, [names[a] for a in addrs]


def names_liburing(path: str) -> bool:
    """Whether an executable names liburing's io_uring_queue_init in its string tables: linked
    statically (.strtab, unless stripped), against liburing.so (.dynstr), or looked up by name.
    Once per version of the file; only the string tables are read (a whole 6.8 MB python3 took
    23 ms to search)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return _names_liburing(path, st.st_ino, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _names_liburing(path: str, _ino: int, _mtime: int, _size: int) -> bool:
    try:
        with open_regular(path) as f:
            fd = f.fileno()
            for _, sh_type, _, _, off, size, _, _ in _sections(fd) or ():
                if sh_type == SHT_STRTAB and b"\0io_uring_queue_init" in os.pread(fd, size, off):
                    return True
    except (OSError, ValueError, struct.error):
        pass
    return False
