"""The GNU build-id of an ELF file on disk, to tell whether a module the shim saw loaded (its
MODULE record carries the id read from memory) is still the file at that path."""

from __future__ import annotations

import functools
import os
import struct

PT_NOTE = 4
NT_GNU_BUILD_ID = 3


NT_GO_BUILDID = 4  # the Go linker's note ("Go\0\0"): every Go executable has it


def build_id(path: str) -> bytes | None:
    """The id of a 64-bit little-endian ELF file (x86_64), None if it has none or is not one."""
    return _note_of(path, b"GNU\0", NT_GNU_BUILD_ID)


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
        with open(path, "rb") as f:
            ident = f.read(64)
            if len(ident) < 64 or ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
                return None
            phoff, phentsize, phnum = (
                struct.unpack_from("<Q", ident, 32)[0],
                *struct.unpack_from("<HH", ident, 54),
            )
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
