"""The one table of what iotrace traces, and the constants of the log format.

The shim's C header (function ids and names, record types, field positions) is generated from
this module at build time (`python calls.py --c-header OUT`), the log reader and the analyzer
import it, and every log's header carries the function names too, so a log stays readable by a
plain msgpack reader.  Ids are list positions: only ever append to FUNCTIONS.

This module must import nothing outside the standard library: CMake runs it as a script.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from enum import Enum

FORMAT_NAME = "iotrace"
FORMAT_VERSION = 1


class Rec(int, Enum):
    """Record types: the first element of every record array inside a chunk."""

    EVENT = 0  # [0, fn, t_start, dur, fd, path, req, ret, errno, offset, flags, mode, stack, aux]
    STRING = 1  # [1, id, text]
    STACK = 2  # [2, id, [return addresses...]]
    THREAD = 3  # [3, tid] -- first record of every chunk
    MODULE = 4  # [4, base, lo, hi, path]
    EXIT = 5  # [5, t, status]  -- exit()/_exit() called with status


# Positions inside an EVENT record.
EVENT_FIELDS = (
    "rec",
    "fn",
    "t_start",
    "dur",
    "fd",
    "path",
    "req",
    "ret",
    "errno",
    "offset",
    "flags",
    "mode",
    "stack",
    "aux",
)

CHUNK_SIZE = 32 * 1024  # per-thread chunk of the log file
PAD_EXT_TYPE = 127  # ext type of padding objects between chunks


class Op(str, Enum):
    """What a call does, for summaries: the analyzer aggregates by this."""

    OPEN = "open"
    CLOSE = "close"
    READ = "read"
    WRITE = "write"
    SEEK = "seek"
    SYNC = "sync"
    META = "meta"
    DUP = "dup"
    MMAP = "mmap"
    PROC = "proc"
    OTHER = "other"


@dataclass(frozen=True)
class Func:
    """A wrapped function.

    `shows` names the event fields `iotrace show` prints as arguments, in order: fd, path, path2
    (aux as an interned path), fd2 (aux as a descriptor), req, off, flags, mode, whence (aux),
    addr (ret shown in hex).
    """

    name: str
    family: str
    op: Op
    shows: tuple[str, ...]


def _f(name: str, family: str, op: Op, shows: str = "") -> Func:
    return Func(name, family, op, tuple(shows.split()))


O, C, R, W, S = Op.OPEN, Op.CLOSE, Op.READ, Op.WRITE, Op.SEEK
Y, M, D, P, X = Op.SYNC, Op.META, Op.DUP, Op.PROC, Op.OTHER

# fmt: off
FUNCTIONS: tuple[Func, ...] = (
    # descriptors
    _f("open", "fd", O, "path flags mode"),
    _f("openat", "fd", O, "path flags mode"),
    _f("creat", "fd", O, "path mode"),
    _f("close", "fd", C, "fd"),
    _f("read", "fd", R, "fd req"),
    _f("write", "fd", W, "fd req"),
    _f("pread", "fd", R, "fd req off"),
    _f("pwrite", "fd", W, "fd req off"),
    _f("readv", "fd", R, "fd req"),
    _f("writev", "fd", W, "fd req"),
    _f("preadv", "fd", R, "fd req off"),
    _f("pwritev", "fd", W, "fd req off"),
    _f("preadv2", "fd", R, "fd req off flags"),
    _f("pwritev2", "fd", W, "fd req off flags"),
    _f("lseek", "fd", S, "fd off whence"),
    _f("dup", "fd", D, "fd"),
    _f("dup2", "fd", D, "fd fd2"),
    _f("dup3", "fd", D, "fd fd2 flags"),
    _f("fcntl", "fd", X, "fd flags mode"),
    _f("fsync", "fd", Y, "fd"),
    _f("fdatasync", "fd", Y, "fd"),
    _f("ftruncate", "fd", M, "fd off"),
    _f("fallocate", "fd", M, "fd mode off req"),
    _f("posix_fadvise", "fd", X, "fd off req flags"),
    _f("sendfile", "fd", W, "fd fd2 off req"),
    _f("copy_file_range", "fd", W, "fd fd2 off req"),
    _f("pipe", "fd", O, ""),
    _f("pipe2", "fd", O, "flags"),
    _f("socket", "fd", O, "flags mode"),
    _f("accept", "fd", O, "fd"),
    _f("accept4", "fd", O, "fd flags"),
    _f("connect", "fd", X, "fd path"),
    _f("close_range", "fd", C, "fd fd2 flags"),
    # metadata
    _f("stat", "meta", M, "path"),
    _f("lstat", "meta", M, "path"),
    _f("fstat", "meta", M, "fd"),
    _f("fstatat", "meta", M, "path flags"),
    _f("statx", "meta", M, "path flags mode"),
    _f("access", "meta", M, "path mode"),
    _f("faccessat", "meta", M, "path mode flags"),
    _f("unlink", "meta", M, "path"),
    _f("unlinkat", "meta", M, "path flags"),
    _f("rename", "meta", M, "path path2"),
    _f("renameat", "meta", M, "path path2"),
    _f("renameat2", "meta", M, "path path2 flags"),
    _f("mkdir", "meta", M, "path mode"),
    _f("mkdirat", "meta", M, "path mode"),
    _f("rmdir", "meta", M, "path"),
    _f("truncate", "meta", M, "path off"),
    _f("opendir", "meta", O, "path"),
    _f("fdopendir", "meta", O, "fd"),
    _f("readdir", "meta", R, "fd"),
    _f("closedir", "meta", C, "fd"),
    _f("chdir", "meta", M, "path"),
    _f("fchdir", "meta", M, "fd"),
    # stdio
    _f("fopen", "stdio", O, "path flags"),
    _f("fdopen", "stdio", O, "fd flags"),
    _f("freopen", "stdio", O, "path flags fd"),
    _f("fclose", "stdio", C, "fd"),
    _f("fread", "stdio", R, "fd req"),
    _f("fwrite", "stdio", W, "fd req"),
    _f("fgets", "stdio", R, "fd req"),
    _f("fputs", "stdio", W, "fd req"),
    _f("fputc", "stdio", W, "fd"),
    _f("fgetc", "stdio", R, "fd"),
    _f("fprintf", "stdio", W, "fd"),
    _f("fscanf", "stdio", R, "fd"),
    _f("fseek", "stdio", S, "fd off whence"),
    _f("ftell", "stdio", S, "fd"),
    _f("rewind", "stdio", S, "fd"),
    _f("fflush", "stdio", Y, "fd"),
    _f("getline", "stdio", R, "fd"),
    _f("getdelim", "stdio", R, "fd"),
    _f("printf", "stdio", W, "fd"),
    _f("puts", "stdio", W, "fd req"),
    _f("putchar", "stdio", W, "fd"),
    _f("getchar", "stdio", R, "fd"),
    # memory
    _f("mmap", "mmap", Op.MMAP, "fd req off flags mode addr"),
    _f("munmap", "mmap", Op.MMAP, "req"),
    _f("msync", "mmap", Y, "req flags"),
    # process
    _f("fork", "proc", P, ""),
    _f("execve", "proc", P, "path"),
    _f("execv", "proc", P, "path"),
    _f("execvp", "proc", P, "path"),
    _f("execvpe", "proc", P, "path"),
    _f("execl", "proc", P, "path"),
    _f("execlp", "proc", P, "path"),
    _f("execle", "proc", P, "path"),
    _f("fexecve", "proc", P, "fd"),
    _f("posix_spawn", "proc", P, "path"),
    _f("posix_spawnp", "proc", P, "path"),
    _f("pthread_create", "proc", P, ""),
    _f("exit", "proc", P, "req"),
    _f("_exit", "proc", P, "req"),
    _f("dlopen", "proc", P, "path flags"),
)
# fmt: on

FUNC_IDS: dict[str, int] = {f.name: i for i, f in enumerate(FUNCTIONS)}


def func(name: str) -> Func:
    return FUNCTIONS[FUNC_IDS[name]]


def c_header() -> str:
    """The C declarations the shim compiles against."""
    out = [
        "/* Generated from src/iotrace/calls.py -- do not edit. */",
        "#ifndef IOT_CALLS_H",
        "#define IOT_CALLS_H",
        f'#define IOT_FORMAT_NAME "{FORMAT_NAME}"',
        f"#define IOT_FORMAT_VERSION {FORMAT_VERSION}",
        f"#define IOT_CHUNK_SIZE {CHUNK_SIZE}",
        f"#define IOT_PAD_EXT_TYPE {PAD_EXT_TYPE}",
        f"#define IOT_EVENT_NFIELDS {len(EVENT_FIELDS)}",
    ]
    out += [f"#define IOT_REC_{r.name} {r.value}" for r in Rec]
    out.append("enum iot_fn {")
    out += [f"    IOT_FN_{f.name} = {i}," for i, f in enumerate(FUNCTIONS)]
    out += [f"    IOT_FN_COUNT = {len(FUNCTIONS)}", "};"]
    out.append("static const char *const iot_fn_names[IOT_FN_COUNT] = {")
    out += [f'    "{f.name}",' for f in FUNCTIONS]
    out += ["};", "#endif", ""]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description="emit the shim's generated C header")
    ap.add_argument("--c-header", required=True, help="output path")
    args = ap.parse_args()
    text = c_header()
    with open(args.c_header, "w", encoding="ascii") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
