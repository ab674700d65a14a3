"""The one table of what iotrace traces: the shim's functions, the stracer's syscalls.

The shim's C header (function ids and names, kernel counting, cookie slots) is generated from
this module at build time (`python -m iotrace.calls --c-header OUT --format-header OUT2
--kio-header OUT3`, which also writes format.py's record layouts and the kernel's counting rule
that the shim and the stracer's loop share), the log reader and the analyzer import it, and every
log's header carries the function names too, so a log stays readable by a plain msgpack reader.
Ids are list positions: only ever append to FUNCTIONS.  Every record's fields: format.py.

This module must import nothing outside the standard library and iotrace.format: CMake runs it
at build time.
"""

from __future__ import annotations

import errno
import re
import sys
from collections.abc import Callable
from enum import Enum

# Layouts of records (the shim's, the stracer's, the link's) live in format.py, the one table
# of fields; re-exported here for the readers that import them from calls.
from iotrace.format import (  # noqa: F401
    CHUNK_SIZE,
    EVENT_BASE_FIELDS,
    EVENT_FIELDS,
    FORMAT_NAME,
    FORMAT_VERSION,
    KIO_FIELDS,
    KIO_OWN_FIELDS,
    KIO_WHEN,
    SEAL_EXT_TYPE,
    SEAL_SIZE,
    Rec,
)
from iotrace.format import c_header as format_c_header
from iotrace.record import record

DATA_MAX = 4096  # `-s N` bytes of a call's buffer at most (a DATA record must fit in a chunk)
# the calls whose buffer `-s N` keeps: the bytes read or written, in order (preload/record.c)
DATA_FUNCS = frozenset({
    "read", "write", "pread", "pwrite", "readv", "writev", "preadv", "pwritev", "preadv2",
    "pwritev2", "fread", "fwrite", "fgets", "fputs", "puts",
})  # fmt: skip
# Under a stracer the shim gives each stdio stream a buffer inside this 4 GiB-aligned window of
# address space (preload/stdio_arena.c), and the seccomp filter lets read and write whose buffer
# lies in it through without a stop: they are stdio's own flushes and refills, made inside libc
# where no cookie can be added.  Chosen between the usual PIE/heap (0x55..-0x56..) and mmap
# (0x7f..) ranges, far from both.
STDIO_ARENA = 0x6B7A_0000_0000


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


@record(frozen=True)
class Func:
    """A wrapped function.

    `shows` names the event fields `iotrace show` prints as arguments, in order: fd, path, path2
    (aux as an interned path), fd2 (aux as a descriptor), req, off, flags, mode, whence (aux),
    hexoff (off in hex, as strace prints mmap's), addr (no argument: the result, an address,
    shown in hex), end2 (fd2, path2, offset2: the
    end read of a call with two ends), fds (fd and aux as the int[2] a pipe filled: "[3, 4]",
    as strace prints it), newfd (no argument: the result, a new descriptor of the file `path`
    names, "3</path>" as strace -y prints it), entry (no argument: readdir's result, "{...}" or
    NULL), hint (aux as an address argument, NULL for 0), mapped (aux as an address in a
    mapping of `path`'s file: "0x7f...</path>"), aux (aux as a number, named where show names
    it: socket's protocol).
    """

    name: str
    family: str
    op: Op
    shows: tuple[str, ...]


def _f(name: str, family: str, op: Op, shows: str = "") -> Func:
    return Func(name, family, op, tuple(shows.split()))


OPN, CLS, RD, WR, SK = Op.OPEN, Op.CLOSE, Op.READ, Op.WRITE, Op.SEEK
SYN, MET, DUP, PRC, OTH = Op.SYNC, Op.META, Op.DUP, Op.PROC, Op.OTHER

# fmt: off
FUNCTIONS: tuple[Func, ...] = (
    # descriptors
    _f("open", "fd", OPN, "path flags mode newfd"),
    _f("openat", "fd", OPN, "path flags mode newfd"),
    _f("creat", "fd", OPN, "path mode newfd"),
    _f("close", "fd", CLS, "fd"),
    _f("read", "fd", RD, "fd req"),
    _f("write", "fd", WR, "fd req"),
    _f("pread", "fd", RD, "fd req off"),
    _f("pwrite", "fd", WR, "fd req off"),
    _f("readv", "fd", RD, "fd req"),
    _f("writev", "fd", WR, "fd req"),
    _f("preadv", "fd", RD, "fd req off"),
    _f("pwritev", "fd", WR, "fd req off"),
    _f("preadv2", "fd", RD, "fd req off flags"),
    _f("pwritev2", "fd", WR, "fd req off flags"),
    _f("lseek", "fd", SK, "fd off whence"),
    _f("dup", "fd", DUP, "fd newfd"),
    _f("dup2", "fd", DUP, "fd fd2 newfd"),
    _f("dup3", "fd", DUP, "fd fd2 flags newfd"),
    _f("fcntl", "fd", OTH, "fd flags mode"),
    _f("fsync", "fd", SYN, "fd"),
    _f("fdatasync", "fd", SYN, "fd"),
    _f("ftruncate", "fd", MET, "fd off"),
    _f("fallocate", "fd", MET, "fd mode off req"),
    _f("posix_fadvise", "fd", OTH, "fd off req flags"),
    _f("sendfile", "fd", WR, "fd off end2 req"),
    _f("copy_file_range", "fd", WR, "fd off end2 req flags"),
    _f("pipe", "fd", OPN, "fds"),
    _f("pipe2", "fd", OPN, "fds flags"),
    _f("socket", "fd", OPN, "flags mode aux newfd"),
    _f("accept", "fd", OPN, "fd newfd"),
    _f("accept4", "fd", OPN, "fd flags newfd"),
    _f("connect", "fd", OTH, "fd path"),
    _f("close_range", "fd", CLS, "fd fd2 flags"),
    # metadata
    _f("stat", "meta", MET, "path"),
    _f("lstat", "meta", MET, "path"),
    _f("fstat", "meta", MET, "fd"),
    _f("fstatat", "meta", MET, "path flags"),
    _f("statx", "meta", MET, "path flags mode"),
    _f("access", "meta", MET, "path mode"),
    _f("faccessat", "meta", MET, "path mode flags"),
    _f("unlink", "meta", MET, "path"),
    _f("unlinkat", "meta", MET, "path flags"),
    _f("remove", "meta", MET, "path"),
    _f("rename", "meta", MET, "path path2"),
    _f("renameat", "meta", MET, "path path2"),
    _f("renameat2", "meta", MET, "path path2 flags"),
    _f("mkdir", "meta", MET, "path mode"),
    _f("mkdirat", "meta", MET, "path mode"),
    _f("rmdir", "meta", MET, "path"),
    _f("truncate", "meta", MET, "path off"),
    _f("opendir", "meta", OPN, "path"),
    _f("fdopendir", "meta", OPN, "fd"),
    _f("readdir", "meta", RD, "fd entry"),
    _f("closedir", "meta", CLS, "fd"),
    _f("chdir", "meta", MET, "path"),
    _f("fchdir", "meta", MET, "fd"),
    # stdio
    _f("fopen", "stdio", OPN, "path flags"),
    _f("fdopen", "stdio", OPN, "fd flags"),
    _f("freopen", "stdio", OPN, "path flags fd"),
    _f("fclose", "stdio", CLS, "fd"),
    _f("fread", "stdio", RD, "fd req"),
    _f("fwrite", "stdio", WR, "fd req"),
    _f("fgets", "stdio", RD, "fd req"),
    _f("fputs", "stdio", WR, "fd req"),
    _f("fputc", "stdio", WR, "fd"),
    _f("fgetc", "stdio", RD, "fd"),
    _f("fprintf", "stdio", WR, "fd"),
    _f("fscanf", "stdio", RD, "fd"),
    _f("fseek", "stdio", SK, "fd off whence"),
    _f("ftell", "stdio", SK, "fd"),
    _f("rewind", "stdio", SK, "fd"),
    _f("fflush", "stdio", SYN, "fd"),
    _f("getline", "stdio", RD, "fd"),
    _f("getdelim", "stdio", RD, "fd"),
    _f("printf", "stdio", WR, "fd"),
    _f("puts", "stdio", WR, "fd req"),
    _f("putchar", "stdio", WR, "fd"),
    _f("getchar", "stdio", RD, "fd"),
    # memory
    _f("mmap", "mmap", Op.MMAP, "hint req mode flags fd hexoff addr"),  # strace's order
    _f("munmap", "mmap", Op.MMAP, "mapped req"),
    _f("msync", "mmap", SYN, "mapped req flags"),
    # process
    _f("fork", "proc", PRC, ""),
    _f("execve", "proc", PRC, "path"),
    _f("execv", "proc", PRC, "path"),
    _f("execvp", "proc", PRC, "path"),
    _f("execvpe", "proc", PRC, "path"),
    _f("execl", "proc", PRC, "path"),
    _f("execlp", "proc", PRC, "path"),
    _f("execle", "proc", PRC, "path"),
    _f("fexecve", "proc", PRC, "fd"),
    _f("posix_spawn", "proc", PRC, "path"),
    _f("posix_spawnp", "proc", PRC, "path"),
    _f("pthread_create", "proc", PRC, ""),
    _f("exit", "proc", PRC, "req"),
    _f("_exit", "proc", PRC, "req"),
    _f("dlopen", "proc", PRC, "path flags"),
    _f("euidaccess", "meta", MET, "path mode"),
    _f("mremap", "mmap", Op.MMAP, "mapped mode req flags addr"),  # strace's, no new_address
    _f("fgetpos", "stdio", SK, "fd off"),
    _f("fsetpos", "stdio", SK, "fd off"),
    # MPI-IO (preload/wrap_mpi.c, built when an MPI is found; docs/format.md, docs/mpi.md)
    _f("MPI_File_open", "mpi", OPN, "path flags"),
    _f("MPI_File_close", "mpi", CLS, "path"),
    _f("MPI_File_read", "mpi", RD, "path req off"),
    _f("MPI_File_write", "mpi", WR, "path req off"),
    _f("MPI_File_read_at", "mpi", RD, "path req off"),
    _f("MPI_File_write_at", "mpi", WR, "path req off"),
    _f("MPI_File_read_all", "mpi", RD, "path req off"),
    _f("MPI_File_write_all", "mpi", WR, "path req off"),
    _f("MPI_File_read_at_all", "mpi", RD, "path req off"),
    _f("MPI_File_write_at_all", "mpi", WR, "path req off"),
    _f("MPI_File_read_shared", "mpi", RD, "path req"),
    _f("MPI_File_write_shared", "mpi", WR, "path req"),
    _f("MPI_File_read_ordered", "mpi", RD, "path req"),
    _f("MPI_File_write_ordered", "mpi", WR, "path req"),
    _f("MPI_File_iread", "mpi", OTH, "path req off"),
    _f("MPI_File_iwrite", "mpi", OTH, "path req off"),
    _f("MPI_File_iread_at", "mpi", OTH, "path req off"),
    _f("MPI_File_iwrite_at", "mpi", OTH, "path req off"),
    _f("MPI_File_iread_all", "mpi", OTH, "path req off"),
    _f("MPI_File_iwrite_all", "mpi", OTH, "path req off"),
    _f("MPI_File_iread_at_all", "mpi", OTH, "path req off"),
    _f("MPI_File_iwrite_at_all", "mpi", OTH, "path req off"),
    _f("MPI_File_iread_done", "mpi", RD, "path req off flags"),
    _f("MPI_File_iwrite_done", "mpi", WR, "path req off flags"),
    _f("MPI_File_seek", "mpi", SK, "path off whence"),
    _f("MPI_File_set_view", "mpi", OTH, "path off"),
    _f("MPI_File_sync", "mpi", SYN, "path"),
    _f("MPI_File_set_size", "mpi", MET, "path off"),
    _f("MPI_File_delete", "mpi", MET, "path"),
    # locales (preload/wrap_locale.c): glibc reads the locale files inside; path = the name
    _f("setlocale", "other", OTH, "path"),
    _f("newlocale", "other", OTH, "path"),
    # the inline getc/putc of glibc's headers reach the shim only here (wrap_stdio.c)
    _f("__overflow", "stdio", WR, "fd req"),
    _f("__uflow", "stdio", RD, "fd"),
    # POSIX AIO (preload/wrap_aio.c): posted, then completed in aio_return
    _f("aio_read", "fd", OTH, "fd req off"),
    _f("aio_write", "fd", OTH, "fd req off"),
    _f("lio_listio", "fd", OTH, "fd req off flags"),
    _f("aio_read_done", "fd", RD, "fd req off"),
    _f("aio_write_done", "fd", WR, "fd req off"),
    _f("readlink", "meta", MET, "path req"),
    _f("readlinkat", "meta", MET, "path req"),
    _f("posix_fallocate", "fd", MET, "fd off req"),
    # what real programs call next (issue 13): permissions, owners, links, times (wrap_meta.c)
    _f("chmod", "meta", MET, "path mode"),
    _f("fchmod", "meta", MET, "fd mode"),
    _f("fchmodat", "meta", MET, "path mode flags"),
    _f("chown", "meta", MET, "path"),
    _f("lchown", "meta", MET, "path"),
    _f("fchown", "meta", MET, "fd"),
    _f("fchownat", "meta", MET, "path flags"),
    _f("link", "meta", MET, "path path2"),
    _f("linkat", "meta", MET, "path path2 flags"),
    _f("symlink", "meta", MET, "path path2"),
    _f("symlinkat", "meta", MET, "path path2"),
    _f("utimensat", "meta", MET, "path flags"),
    _f("futimens", "meta", MET, "fd"),
    _f("utimes", "meta", MET, "path"),
    _f("realpath", "meta", MET, "path"),
    # temporary files (wrap_tmp.c): path = the name made; mkstemp also for mkostemp/mkstemps
    _f("mkstemp", "fd", OPN, "path flags newfd"),
    _f("mkdtemp", "meta", MET, "path"),
    _f("tmpfile", "stdio", OPN, ""),  # its stream: the result (show.STREAMS)
    _f("eventfd", "fd", OPN, "aux flags newfd"),
    # popen: fd = the stream's pipe; pclose: ret = the command's wait status (wrap_proc.c)
    _f("popen", "proc", OPN, "flags"),
    _f("pclose", "proc", CLS, "fd"),
    _f("splice", "fd", WR, "fd off end2 req flags"),
    _f("tee", "fd", WR, "fd end2 req flags"),
    # Linux AIO through libaio (preload/wrap_libaio.c): io_submit posts one event per iocb,
    # io_getevents completes them as aio_read_done / aio_write_done (aux: io_submit's id)
    _f("io_setup", "fd", OTH, "req"),
    _f("io_submit", "fd", OTH, "fd req off flags"),
    _f("io_cancel", "fd", OTH, "fd req off flags"),
    _f("io_destroy", "fd", OTH, ""),
    # what moved underneath a stream in a stdio call: its refills and flushes (wrap_stdio.c)
    _f("stdio_refill", "stdio", RD, "fd off"),
    _f("stdio_flush", "stdio", WR, "fd off"),
    # POSIX semaphores and shared memory by name (wrap_shm.c): path = the file under /dev/shm
    _f("sem_open", "meta", MET, "path flags mode"),
    _f("sem_unlink", "meta", MET, "path"),
    _f("shm_open", "fd", OPN, "path flags mode newfd"),
    _f("shm_unlink", "meta", MET, "path"),
    # HDF5 (preload/wrap_hdf5.c, built when HDF5's headers are found; docs/hdf5.md): path = the
    # file, for a dataset "FILE:NAME"; mode = the datatype's size
    _f("H5Fcreate", "hdf5", OPN, "path flags"),
    _f("H5Fopen", "hdf5", OPN, "path flags"),
    _f("H5Fflush", "hdf5", SYN, "path"),
    _f("H5Fclose", "hdf5", CLS, "path"),
    _f("H5Dcreate2", "hdf5", OTH, "path req"),
    _f("H5Dopen2", "hdf5", OTH, "path req"),
    _f("H5Dclose", "hdf5", OTH, "path"),
    _f("H5Oopen", "hdf5", OTH, "path req"),  # any object; a dataset's event is H5Dopen2's
    _f("H5Oclose", "hdf5", OTH, "path"),
    _f("H5Dread", "hdf5", RD, "path req off flags"),
    _f("H5Dwrite", "hdf5", WR, "path req off flags"),
    _f("H5Pset_dxpl_mpio", "hdf5", OTH, "flags"),
    _f("H5Pset_fapl_mpio", "hdf5", OTH, ""),
    # PnetCDF (preload/wrap_pnetcdf.c, built when pnetcdf.h is found; docs/hdf5.md): path = the
    # file, for a variable "FILE:NAME"; mode = the element size; flags 1 = collective (_all)
    _f("ncmpi_create", "pnetcdf", OPN, "path flags"),
    _f("ncmpi_open", "pnetcdf", OPN, "path flags"),
    _f("ncmpi_close", "pnetcdf", CLS, "path"),
    *(_f(f"ncmpi_{rw}_vara{t}{a}", "pnetcdf", RD if rw == "get" else WR, "path req off flags")
      for t in ("", "_double", "_float", "_int") for rw in ("put", "get")
      for a in ("_all", "")),
    # one element, a strided subarray, one mapped in memory: flexible (buftype) calls only
    *(_f(f"ncmpi_{rw}_{k}{a}", "pnetcdf", RD if rw == "get" else WR, "path req off flags")
      for k in ("var1", "vars", "varm") for rw in ("put", "get") for a in ("_all", "")),
    # nonblocking posts (their data moves under the waits), and the waits
    _f("ncmpi_iput_vara", "pnetcdf", WR, "path req off"),
    _f("ncmpi_iget_vara", "pnetcdf", RD, "path req off"),
    _f("ncmpi_bput_vara", "pnetcdf", WR, "path req off"),
    _f("ncmpi_wait_all", "pnetcdf", OTH, "path req flags"),
    _f("ncmpi_wait", "pnetcdf", OTH, "path req flags"),
    _f("ncmpi_enddef", "pnetcdf", OTH, "path"),
    _f("ncmpi_begin_indep_data", "pnetcdf", OTH, "path"),
    _f("ncmpi_end_indep_data", "pnetcdf", OTH, "path"),
    # libc reading the file system for the app (preload/wrap_scan.c): glob's path is the
    # pattern (glob64 is recorded as glob); the mount table's stream (getmntent_r as getmntent)
    _f("glob", "meta", MET, "path flags"),
    _f("setmntent", "meta", OPN, "path fd"),
    _f("getmntent", "meta", OTH, "fd"),
    _f("endmntent", "meta", CLS, "fd"),
    # a name lookup (preload/wrap_nss.c): path is the node name as given, not a file
    _f("getaddrinfo", "other", OTH, "path"),
    # the messages of glibc's error() and err()/warn() families (preload/wrap_msg.c), written to
    # stderr inside libc (their I/O measured around them): flags = the exit status asked for
    # (the err and error calls), path = error_at_line's file name
    _f("error", "other", OTH, "flags"),
    _f("error_at_line", "other", OTH, "path flags"),
    _f("warn", "other", OTH),
    _f("warnx", "other", OTH),
    _f("vwarn", "other", OTH),
    _f("vwarnx", "other", OTH),
    _f("err", "other", OTH, "flags"),
    _f("errx", "other", OTH, "flags"),
    _f("verr", "other", OTH, "flags"),
    _f("verrx", "other", OTH, "flags"),
    # the user and group database (wrap_nss.c; the _r forms as these): path is the name looked
    # up (none for an id), not a file
    _f("getpwnam", "other", OTH, "path"),
    _f("getpwuid", "other", OTH, ""),
    _f("getgrnam", "other", OTH, "path"),
    _f("getgrgid", "other", OTH, ""),
    _f("getgrouplist", "other", OTH, "path"),
    # the hosts, services and protocols databases (wrap_nss.c; by address, port or number and
    # the _r forms as these): path is the name looked up, not a file; getnameinfo
    _f("gethostbyname", "other", OTH, "path"),
    _f("getservbyname", "other", OTH, "path"),
    _f("getprotobyname", "other", OTH, "path"),
    _f("getnameinfo", "other", OTH),
    # walking the user, group, hosts, services and protocols databases (the _r forms as these)
    *(_f(f, "other", OTH) for f in ("getpwent", "getgrent", "gethostent", "getservent",
                                     "getprotoent")),
    # glibc's time-zone load inside tzset, localtime... (preload/wrap_time.c: recorded only when
    # it loads): path is TZ as it was, not a file; sysconf's names that read /sys or /proc
    # (get_nprocs and get_nprocs_conf as these): flags is the _SC_ name
    _f("tzset", "other", OTH, "path"),
    _f("sysconf", "other", OTH, "flags"),
    # the initial thread's attributes: glibc reads /proc/self/maps for its stack (wrap_time.c)
    _f("pthread_getattr_np", "other", OTH),
    # perror's message, psignal's (psiginfo recorded as it: flags = the signal), as error()'s
    _f("perror", "other", OTH),
    _f("psignal", "other", OTH, "flags"),
    # formatted output to a descriptor (vdprintf and the fortified forms as it; preload/
    # wrap_fd.c), written inside libc (its I/O measured around it): ret the bytes printed
    _f("dprintf", "fd", WR, "fd"),
    # wide-character stdio (preload/wrap_wstdio.c; the _unlocked and fortified forms, getwc and
    # putwc as these, wscanf as fwscanf on stdin): ret bytes, req characters (docs/format.md)
    _f("fgetwc", "stdio", RD, "fd"),
    _f("getwchar", "stdio", RD, "fd"),
    _f("fgetws", "stdio", RD, "fd req"),
    _f("ungetwc", "stdio", OTH, "fd"),
    _f("fputwc", "stdio", WR, "fd"),
    _f("putwchar", "stdio", WR, "fd"),
    _f("fputws", "stdio", WR, "fd req"),
    _f("fwprintf", "stdio", WR, "fd"),
    _f("wprintf", "stdio", WR, "fd"),
    _f("fwscanf", "stdio", RD, "fd"),
    _f("fwide", "stdio", OTH, "fd flags"),
)
# the stdio calls of the app, whose bytes are counted in totals by the two above instead
STDIO_UNDER = frozenset({"stdio_refill", "stdio_flush"})
# fmt: on

FUNC_IDS: dict[str, int] = {f.name: i for i, f in enumerate(FUNCTIONS)}

# Calls with two ends: bytes read from one descriptor and written to another in the kernel.  The
# event's fd/path/offset are the end written (op WRITE), fd2/path2/offset2 the end read; `ret`
# bytes moved is both the bytes read and the bytes written.  The analyzer counts the read end
# as a row of its own, function name + END2_SUFFIX (op READ): docs/format.md, docs/analyzer.md.
EVENT_ENDS = frozenset({"sendfile", "copy_file_range", "splice", "tee"})
END2_SUFFIX = ":in"

# ---- the kernel's I/O accounting (/proc/PID/io) ----------------------------------------------
#
# KIO records (the shim's and the stracer's) carry KIO_FIELDS (format.py) in this order.
# How the kernel counts a call in rchar/wchar/syscr/syscw (fs/read_write.c, measured on this
# kernel by tests/test_completeness.py): a read-type (r) or write-type (w) syscall adds one to
# syscr (syscw) once past its own checks (KERNEL_IO_UNCOUNTED: the failures it does not count)
# and its bytes when it moved any; sendfile and copy_file_range count on both sides (rw, rwm);
# splice, tee, mmap, Linux AIO and io_uring not at all.  The app's stdio calls move bytes
# through a buffer: what reaches the kernel is stdio's own reads and writes under them, its
# refills and flushes (sr, sw: one event per syscall, docs/format.md).  The shim sums its
# events by these rules too (KIO records).
# "in": a call whose own reads and writes inside libc (the libraries dlopen loads) are no event
# of their own: the shim measures them with the thread's counters around the call.  "in-shim":
# the same with the shim alone; under the stracer they are libc-internal events of their own
# (setlocale's locale files: docs/stracer.md, "Classification"), or (sem_open) the shim's own
# raw syscalls, which it counts itself.
# "rwm": both sides, and only a call that moved bytes (copy_file_range: one with nothing to copy
# -- its offset at or past the end -- returns before the kernel counts it).
KERNEL_IO_MODES = ("", "r", "w", "rw", "sr", "sw", "in", "in-shim", "rwm")  # the shim's codes
KERNEL_IO_FUNCS: dict[str, str] = {
    "read": "r", "pread": "r", "readv": "r", "preadv": "r", "preadv2": "r",
    "aio_read_done": "r",  # glibc's AIO threads: one pread each
    "write": "w", "pwrite": "w", "writev": "w", "pwritev": "w", "pwritev2": "w",
    "aio_write_done": "w",
    "sendfile": "rw", "copy_file_range": "rwm",
    "stdio_refill": "sr", "stdio_flush": "sw",
    "setlocale": "in-shim", "newlocale": "in-shim", "dlopen": "in", "sem_open": "in-shim",
    "getmntent": "in", "getaddrinfo": "in", "getpwnam": "in-shim", "getpwuid": "in-shim",
    "getgrnam": "in-shim", "getgrgid": "in-shim", "getgrouplist": "in-shim",
    "tzset": "in-shim", "sysconf": "in-shim", "pthread_getattr_np": "in-shim",
    "gethostbyname": "in-shim",
    "getservbyname": "in-shim", "getprotobyname": "in-shim", "getnameinfo": "in-shim",
    **{f"get{db}ent": "in-shim" for db in ("pw", "gr", "host", "serv", "proto")},
    **{f: "in" for f in ("error", "error_at_line", "warn", "warnx", "vwarn", "vwarnx", "err",
                              "errx", "verr", "verrx", "perror", "psignal", "dprintf")},
}  # fmt: skip
KERNEL_IO_SYSCALLS: dict[str, str] = {
    "read": "r", "pread64": "r", "readv": "r", "preadv": "r", "preadv2": "r",
    "write": "w", "pwrite64": "w", "writev": "w", "pwritev": "w", "pwritev2": "w",
    "sendfile": "rw", "copy_file_range": "rwm",
}  # fmt: skip


# The failures the kernel does not count, by each call's checks (fs/read_write.c: what a call
# checks before its inc_syscr/inc_syscw; measured by tests/progs/kio_rules.c, raw and through
# libc): (errno, condition), condition "" any such failure, "count" a count past the user address
# space (access_ok's EFAULT, not the copy's), "off<0" / "off<-1" an offset argument below 0 / -1.
# "rw" (read, write): the descriptor's lookup and mode (EBADF), access_ok; "rwat" (pread64,
# pwrite64) also a negative offset and a descriptor that cannot seek (ESPIPE), checked first;
# "vec" (readv, writev): none, every failure counts (EBADF, a bad iovec array, iovcnt past
# IOV_MAX); "vecat" (preadv, pwritev): a negative offset; "vecat2" (preadv2, pwritev2): an offset
# below -1 (-1: the descriptor's position); "fd" (sendfile, glibc's AIO, stdio's refills and
# flushes): EBADF.  One rule from this data: kio.counted, and in C iot_kio_counted of the
# generated iot_kio.h (kio_c_header), which the shim and the stracer's loop both include.
KERNEL_IO_UNCOUNTED: dict[str, tuple[tuple[int, str], ...]] = {
    "rw": ((errno.EBADF, ""), (errno.EFAULT, "count")),
    "rwat": ((errno.EBADF, ""), (errno.EFAULT, "count"), (errno.EINVAL, "off<0"),
             (errno.ESPIPE, "")),
    "vec": (),
    "vecat": ((errno.EINVAL, "off<0"),),
    "vecat2": ((errno.EINVAL, "off<-1"),),
    "fd": ((errno.EBADF, ""),),
}  # fmt: skip
# x86-64's user address space (4-level page tables): a count past it fits no buffer
KERNEL_USER_END = 0x7FFFFFFFF000
# Each condition as (the argument it tests, its bound): "count" past the bound (unsigned),
# "off" below it (signed); "" tests none (any failure of that errno).
KERNEL_IO_ARGS = ("", "count", "off")  # the C code of each tested argument: its index
KERNEL_IO_CONDS: dict[str, tuple[str, int]] = {
    "": ("", 0), "count": ("count", KERNEL_USER_END), "off<0": ("off", 0), "off<-1": ("off", -1),
}  # fmt: skip
KERNEL_IO_CHECKS: dict[str, str] = {
    "read": "rw", "write": "rw", "pread": "rwat", "pwrite": "rwat", "pread64": "rwat",
    "pwrite64": "rwat", "readv": "vec", "writev": "vec", "preadv": "vecat", "pwritev": "vecat",
    "preadv2": "vecat2", "pwritev2": "vecat2",
}  # fmt: skip  # the rest of KERNEL_IO_FUNCS and KERNEL_IO_SYSCALLS: "fd"


def kernel_io_checks(name: str) -> str:
    """The checks (KERNEL_IO_UNCOUNTED) of a function or syscall of KERNEL_IO_FUNCS/_SYSCALLS."""
    return KERNEL_IO_CHECKS.get(name, "fd")


def kernel_io_args(sc: Syscall) -> tuple[int, int]:
    """The positions of a syscall's offset and count arguments (-1: none), which the conditions
    of KERNEL_IO_UNCOUNTED test."""
    off, count = (sc.args.index(a) if a in sc.args else -1 for a in ("off", "size"))
    return off, count


def kio_c_header() -> str:
    """iot_kio.h: how the kernel counts a read/write call (KERNEL_IO_MODES' codes, and which
    failures it does not count: KERNEL_IO_UNCOUNTED as a table and iot_kio_counted, the one rule
    in C), included by the shim (calls.h) and the stracer's loop (stracer/_loop.c)."""
    width = max(len(u) for u in KERNEL_IO_UNCOUNTED.values()) + 1  # an errno 0 ends each row

    def mode(m: str) -> str:
        return f"IOT_KIO_MODE_{m.upper().replace('-', '_') or 'NONE'}"

    def any_of(modes: list[str]) -> str:
        return " || ".join(f"mode == {mode(m)}" for m in modes)

    inner = [m for m in KERNEL_IO_MODES if m.startswith("in")]
    syscall = [m for m in KERNEL_IO_MODES if m in KERNEL_IO_SYSCALLS.values()]
    out = [
        "/* Generated from src/iotrace/calls.py -- do not edit. */",
        "#ifndef IOT_KIO_H",
        "#define IOT_KIO_H",
        "#include <stdint.h>",
        "#include <sys/syscall.h>",
        "/* how the kernel counts a call in /proc/PID/io (calls.KERNEL_IO_MODES) */",
        "enum iot_kio_mode {",
        *(f"    {mode(m)} = {i}," for i, m in enumerate(KERNEL_IO_MODES)),
        "};",
        "/* a mode whose call's inner I/O is measured around it (in, in-shim): no sums */",
        "static inline int iot_kio_mode_in(unsigned mode)",
        "{",
        f"    return {any_of(inner)};",
        "}",
        "/* a mode of a read/write syscall (KERNEL_IO_SYSCALLS' modes): its own sums */",
        "static inline int iot_kio_mode_syscall(unsigned mode)",
        "{",
        f"    return {any_of(syscall)};",
        "}",
        "/* a read- or write-type syscall by its number (KERNEL_IO_SYSCALLS' r and w): its",
        " * mode, else NONE (wrap_signal.c: the syscall a handler interrupted) */",
        "static inline unsigned iot_kio_syscall_mode(long nr)",
        "{",
        "    switch (nr) {",
        *(
            f"    case SYS_{n}: return {mode(m)};"
            for n, m in KERNEL_IO_SYSCALLS.items()
            if m in ("r", "w")
        ),
        "    default: return IOT_KIO_MODE_NONE;",
        "    }",
        "}",
        "/* the argument a condition of KERNEL_IO_UNCOUNTED tests (KERNEL_IO_CONDS) */",
        "enum iot_kio_arg {",
        *(f"    IOT_KIO_ARG_{a.upper() or 'NONE'} = {i}," for i, a in enumerate(KERNEL_IO_ARGS)),
        "};",
        "/* each call's checks (calls.KERNEL_IO_CHECKS) */",
        "enum iot_kio_checks {",
        *(f"    IOT_KIO_CHECKS_{k.upper()} = {i}," for i, k in enumerate(KERNEL_IO_UNCOUNTED)),
        f"    IOT_KIO_CHECKS_COUNT = {len(KERNEL_IO_UNCOUNTED)}",
        "};",
        f"#define IOT_KIO_UNCOUNTED_WIDTH {width}",
        "/* the failures the kernel does not count: errno, the argument tested and its bound */",
        "struct iot_kio_uncounted {",
        "    int16_t err;",
        "    uint8_t arg;",
        "    int64_t bound;",
        "};",
        "static const struct iot_kio_uncounted",
        "    iot_kio_uncounted[IOT_KIO_CHECKS_COUNT][IOT_KIO_UNCOUNTED_WIDTH] = {",
    ]
    for k, u in KERNEL_IO_UNCOUNTED.items():
        cells = [f"{{{e}, {KERNEL_IO_ARGS.index(arg)}, {bound}LL}}"
                 for e, (arg, bound) in ((e, KERNEL_IO_CONDS[c]) for e, c in u)]  # fmt: skip
        out.append(f"    {{{', '.join(cells) or '{0, 0, 0}'}}}, /* {k} */")
    out += [
        "};",
        "/* Whether the kernel counts (in syscr/syscw) a call of these checks that failed with",
        " * err, given its offset and count arguments (0: none): the rule kio.counted applies. */",
        "static inline int iot_kio_counted(unsigned checks, int64_t err, int64_t off,"
        " uint64_t count)",
        "{",
        "    if (!err)",
        "        return 1;",
        "    const struct iot_kio_uncounted *u = iot_kio_uncounted[checks];",
        "    for (int i = 0; i < IOT_KIO_UNCOUNTED_WIDTH && u[i].err; i++)",
        "        if (u[i].err == err &&",
        "            (u[i].arg == IOT_KIO_ARG_NONE ||",
        "             (u[i].arg == IOT_KIO_ARG_COUNT && count > (uint64_t)u[i].bound) ||",
        "             (u[i].arg == IOT_KIO_ARG_OFF && off < u[i].bound)))",
        "            return 0;",
        "    return 1;",
        "}",
        "#endif",
        "",
    ]
    return "\n".join(out)


# ---- `-e trace=SET`: strace-like classes of functions ----------------------------------------
#
# Derived from each function's row (family, op, arguments), so a function appended to FUNCTIONS
# is classed with no other edit.  %file: takes a file name (strace's %file; of the I/O libraries'
# calls, those that open a file and MPI_File_delete, not the calls on an open file); %desc:
# works on a descriptor or stream, or makes one.
_AIO = ("aio_", "lio_", "io_")
_LIBRARIES = ("mpi", "hdf5", "pnetcdf")  # I/O libraries: their calls name files, not descriptors
CLASSES: dict[str, Callable[[Func], bool]] = {
    "file": lambda f: (
        ("path" in f.shows and f.family in ("fd", "meta", "stdio", "proc") and f.name != "connect")
        or (f.family in _LIBRARIES and f.op is Op.OPEN)
        or f.name == "MPI_File_delete"
    ),
    "desc": lambda f: f.family not in _LIBRARIES and ("fd" in f.shows or f.op is Op.OPEN),
    "read": lambda f: f.op is Op.READ,
    "write": lambda f: f.op is Op.WRITE,
    "meta": lambda f: f.op is Op.META,
    "stdio": lambda f: f.family == "stdio",
    "mpi": lambda f: f.family == "mpi",
    "hdf5": lambda f: f.family == "hdf5",
    "pnetcdf": lambda f: f.family == "pnetcdf",
    "aio": lambda f: f.name.startswith(_AIO),
    "memory": lambda f: f.family == "mmap",
    "process": lambda f: f.family == "proc",
    "network": lambda f: f.name in ("socket", "connect", "accept", "accept4"),
}
# strace's other class names, as a strace user types them: its stat groups over the calls the
# shim wraps, `%net`, and the old spelling without `%` (`trace=file`).  strace's classes of no
# I/O call (%signal, %ipc, %creds, %clock, %pure, %statfs ...) stay unknown: iotrace records none.
_STAT = ("stat", "lstat", "fstat", "fstatat", "statx")
STRACE_CLASSES: dict[str, tuple[str, ...]] = {
    "%stat": ("stat",),
    "%lstat": ("lstat",),
    "%fstat": ("fstat", "fstatat", "statx"),
    "%%stat": _STAT,
    "%net": (),  # = %network
    **{c: () for c in ("file", "desc", "network", "process", "memory")},
}


def call_classes(f: Func) -> list[str]:
    return [name for name, test in CLASSES.items() if test(f)]


def _trace_item(item: str) -> set[str]:
    """One item of a -e list: a name, %CLASS, /REGEX, all, none; `?` before it: nothing if
    nothing matches, as strace's `?` (no error)."""
    if item.startswith("?"):
        try:
            return _trace_item(item[1:])
        except ValueError:
            return set()
    if item == "all":
        return _every_name()
    if item == "none":
        return set()
    if item.startswith("/"):  # strace: a regular expression over the names
        try:
            rx = re.compile(item[1:])
        except re.error as exc:
            raise ValueError(f"bad regular expression {item!r}: {exc}") from None
        names = {f.name for f in FUNCTIONS if rx.search(f.name)}
        names |= {n for s in SYSCALLS if rx.search(s.name) for n in _libc_names(s.name)}
        names &= FUNC_IDS.keys() | SYSCALL_BY_NAME.keys()
        if not names:
            raise ValueError(f"{item!r} matches no traced function (prefix ? to allow)")
        return names
    if item in STRACE_CLASSES:
        alias = STRACE_CLASSES[item]
        return set(alias) if alias else _trace_item("%" + {"%net": "network"}.get(item, item))
    if item.startswith("%"):
        if item[1:] not in CLASSES:
            known = ", ".join("%" + c for c in CLASSES)
            raise ValueError(f"unknown class {item!r} (known: {known})")
        return {f.name for f in FUNCTIONS if CLASSES[item[1:]](f)}
    if "=" in item:  # strace's -e read=, write=, signal=, status=, fault=, ...
        raise ValueError(
            f"{item!r}: only strace's trace= is taken (buffers: -s N; failed calls: the readers' "
            "--failed)"
        )
    name = next((x for x in _libc_names(item) if x in FUNC_IDS), None)
    if name is None and item in SYSCALL_BY_NAME:  # no shim function: the stracer's records
        return {item}  # (getdents64, io_uring_enter) by their syscall name
    if name is None:
        raise ValueError(
            f"unknown function {item!r} (none of that name is traced; ?{item}: skip it)"
        )
    return {name}


def trace_set(specs: list[str]) -> frozenset[str]:
    """The functions `-e trace=SPEC` options select, applied in order (strace's syntax): a
    comma-separated list of function names (libc's, or the syscall's: pread64, newfstatat),
    %CLASS, `all` or `none`, each taken out of the list if it starts with `!` (`%desc,!read`); a
    leading `!` takes the list's complement (`!%stdio`).  The first option starts from nothing
    (or, negated, from everything); each later one adds (or, negated, removes) its functions.
    ValueError: one line naming what is not known."""
    chosen: set[str] = set()
    for n, spec in enumerate(specs):
        spec = spec.removeprefix("trace=")
        neg = spec.startswith("!")
        names: set[str] = set()
        for item in filter(None, spec.removeprefix("!").split(",")):
            if item.startswith("!"):  # within a list: take these out of it
                names -= _trace_item(item[1:])
            else:
                names |= _trace_item(item)
        if neg:
            chosen = (chosen if n else _every_name()) - names
        else:
            chosen |= names
    return frozenset(chosen)


def _every_name() -> set[str]:
    """The shim's functions and the stracer's syscalls (those no function covers, as getdents64,
    are recorded by the stracer alone: `show -e '!write'` keeps them)."""
    return set(FUNC_IDS) | set(SYSCALL_BY_NAME)


def trace_mask(names: frozenset[str]) -> str:
    """IOTRACE_CALLS for the shim (preload/filter.c): bit i set = function id i recorded."""
    return f"{sum(1 << FUNC_IDS[n] for n in names if n in FUNC_IDS):x}" if names else "0"


# ---- batch and MPI jobs --------------------------------------------------------------------
#
# Environment variables naming the job a process belongs to, first set wins: the ranks of one
# job see the same value, two jobs never do.  (name, short prefix for directory names.)  Used by
# `iotrace run` (launcher/dir.c) and by the shim under a central IOTRACE_DIR (preload/jobdir.c).
JOB_VARS: tuple[tuple[str, str], ...] = (
    ("SLURM_JOB_ID", "slurm"),  # + "." + SLURM_STEP_ID when set: one directory per job step
    ("PBS_JOBID", "pbs"),
    ("LSB_JOBID", "lsf"),
    ("FLUX_JOB_ID", "flux"),
    ("PMIX_NAMESPACE", "pmix"),
    ("OMPI_MCA_ess_base_jobid", "ompi"),
)


def func(name: str) -> Func:
    return FUNCTIONS[FUNC_IDS[name]]


def c_header() -> str:
    """The C declarations the shim compiles against."""
    out = [
        "/* Generated from src/iotrace/calls.py -- do not edit. */",
        "#ifndef IOT_CALLS_H",
        "#define IOT_CALLS_H",
        '#include "iot_format.h" /* every record\'s layout: src/iotrace/format.py */',
        '#include "iot_kio.h" /* how the kernel counts a call: KERNEL_IO_* */',
        f"#define IOT_STDIO_ARENA {STDIO_ARENA:#x}ULL",
        f"#define IOT_DATA_MAX {DATA_MAX}",
    ]
    out.append("enum iot_fn {")
    out += [f"    IOT_FN_{f.name} = {i}," for i, f in enumerate(FUNCTIONS)]
    out += [f"    IOT_FN_COUNT = {len(FUNCTIONS)}", "};"]
    out.append("static const char *const iot_fn_names[IOT_FN_COUNT] = {")
    out += [f'    "{f.name}",' for f in FUNCTIONS]
    out += ["};"]
    # how the kernel counts each function's calls (KERNEL_IO_FUNCS), for the shim's KIO sums
    out.append("static const unsigned char iot_kernel_io[IOT_FN_COUNT] = {")
    out += [f"    {KERNEL_IO_MODES.index(KERNEL_IO_FUNCS.get(f.name, ''))}, /* {f.name} */"
            for f in FUNCTIONS]  # fmt: skip
    out += ["};"]
    # each function's checks: which of its failures the kernel counts (iot_kio.h)
    out.append("static const unsigned char iot_kernel_io_checks[IOT_FN_COUNT] = {")
    out += [f"    IOT_KIO_CHECKS_{kernel_io_checks(f.name).upper()}, /* {f.name} */"
            for f in FUNCTIONS]  # fmt: skip
    out += ["};"]
    # the cookie slot of each stracer syscall (preload/sysraw.h)
    out += [f"#define IOT_SYSRAW_SLOT_{s.name} {s.cookie_slot}" for s in SYSCALLS
            if s.cookie_slot is not None]  # fmt: skip
    # 1: the syscall changes the descriptor table (sysraw.h raises iot_link.fdgen before it)
    out += [f"#define IOT_SYSRAW_FDOP_{s.name} {int(bool(s.fdop))}" for s in SYSCALLS
            if s.cookie_slot is not None]  # fmt: skip
    # 1: aux is a second path's string id (rename, link...): --path matches it too (filter.c)
    out.append("static const unsigned char iot_aux_path[IOT_FN_COUNT] = {")
    out += [f"    {int('path2' in f.shows)}, /* {f.name} */" for f in FUNCTIONS]
    out += ["};"]
    out.append("static const struct { const char *var, *prefix; } iot_job_vars[] = {")
    out += [f'    {{"{v}", "{p}"}},' for v, p in JOB_VARS]
    out += ["    {0, 0},", "};"]
    out += ["#endif", ""]
    return "\n".join(out)


# ---- the stracer's syscall table (x86_64) --------------------------------------------------
#
# The stracer decodes, and its seccomp-bpf filter stops, exactly these syscalls: nothing about
# a syscall is kept anywhere else.  Argument kinds (decoding in iotrace.stracer.syscall_args):
#   fd dirfd path str buf size off whence oflags mode amode atflags fcntlcmd int ptr iov iovcnt
#   prot mflags domain socktype fdflags (pipe2/dup3: O_CLOEXEC...) mfdflags fds2 (int[2] out:
#   the two descriptors at the exit)
# `fdop` says how a successful call changes the descriptor table (the stracer tracks it and
# tells the shim): open (result is a new fd), dup (args[0] -> result), dup2 (args[0] ->
# args[1]), close, close_range, pipe (two fds written to args[0]).
# `engine`: an asynchronous I/O interface whose operations are in the tracee's memory, not in
# the syscall's arguments: "aio" (Linux AIO: iocbs, io_events) and "io_uring" (the SQ/CQ
# rings); the stracer decodes each operation (stracer/engines.py) and never takes these on
# the C loop's fast path.
# `trap` narrows when the filter stops: "always", "file" (mmap: not MAP_ANONYMOUS), "dupfd"
# (fcntl: F_DUPFD / F_DUPFD_CLOEXEC only), "stdio" (read/write: not on a buffer in the
# STDIO_ARENA window).
# The shim's cookie (see preload/sysraw.h) goes into the first unused argument slot,
# len(args); a syscall with six arguments has none and always stops.


@record(frozen=True)
class Syscall:
    name: str
    nr: int
    args: tuple[str, ...]
    fdop: str = ""
    trap: str = "always"
    # a call with two ends (EVENT_ENDS): argument positions of (the descriptor written, the
    # pointer to its offset, the descriptor read, the pointer to its offset); -1: none
    ends: tuple[int, int, int, int] | None = None
    engine: str = ""

    @property
    def cookie_slot(self) -> int | None:
        return len(self.args) if len(self.args) < 6 else None


def _s(
    name: str,
    nr: int,
    args: str,
    fdop: str = "",
    trap: str = "always",
    ends: tuple[int, int, int, int] | None = None,
    engine: str = "",
) -> Syscall:
    return Syscall(name, nr, tuple(args.split()), fdop, trap, ends, engine)


# fmt: off
SYSCALLS: tuple[Syscall, ...] = (
    _s("read", 0, "fd buf size", trap="stdio"),
    _s("write", 1, "fd buf size", trap="stdio"),
    _s("open", 2, "path oflags mode", "open"),
    _s("close", 3, "fd", "close"),
    _s("stat", 4, "path ptr"),
    _s("fstat", 5, "fd ptr"),
    _s("lstat", 6, "path ptr"),
    _s("lseek", 8, "fd off whence"),
    _s("mmap", 9, "ptr size prot mflags fd off", trap="file"),
    _s("pread64", 17, "fd buf size off"),
    _s("pwrite64", 18, "fd buf size off"),
    _s("readv", 19, "fd iov iovcnt"),
    _s("writev", 20, "fd iov iovcnt"),
    _s("access", 21, "path amode"),
    _s("pipe", 22, "fds2", "pipe"),
    _s("dup", 32, "fd", "dup"),
    _s("dup2", 33, "fd fd", "dup2"),
    _s("sendfile", 40, "fd fd ptr size", ends=(0, -1, 1, 2)),
    _s("socket", 41, "domain socktype int", "open"),
    _s("connect", 42, "fd ptr size"),
    _s("accept", 43, "fd ptr ptr", "open"),
    _s("fcntl", 72, "fd fcntlcmd int", "dup", trap="dupfd"),
    _s("fsync", 74, "fd"),
    _s("fdatasync", 75, "fd"),
    _s("truncate", 76, "path off"),
    _s("ftruncate", 77, "fd off"),
    _s("rename", 82, "path path"),
    _s("mkdir", 83, "path mode"),
    _s("rmdir", 84, "path"),
    _s("creat", 85, "path mode", "open"),
    _s("link", 86, "path path"),
    _s("unlink", 87, "path"),
    _s("symlink", 88, "str path"),
    _s("readlink", 89, "path buf size"),
    _s("chmod", 90, "path mode"),
    _s("fchmod", 91, "fd mode"),
    _s("chown", 92, "path int int"),
    _s("fchown", 93, "fd int int"),
    _s("lchown", 94, "path int int"),
    _s("utime", 132, "path ptr"),
    _s("io_setup", 206, "int ptr", engine="aio"),
    _s("io_destroy", 207, "int", engine="aio"),
    _s("io_getevents", 208, "int int int ptr ptr", engine="aio"),
    _s("io_submit", 209, "int int ptr", engine="aio"),
    _s("io_cancel", 210, "int ptr ptr", engine="aio"),
    _s("getdents64", 217, "fd buf size"),
    _s("utimes", 235, "path ptr"),
    _s("openat", 257, "dirfd path oflags mode", "open"),
    _s("mkdirat", 258, "dirfd path mode"),
    _s("fchownat", 260, "dirfd path int int atflags"),
    _s("futimesat", 261, "dirfd path ptr"),
    _s("newfstatat", 262, "dirfd path ptr atflags"),
    _s("unlinkat", 263, "dirfd path atflags"),
    _s("renameat", 264, "dirfd path dirfd path"),
    _s("linkat", 265, "dirfd path dirfd path atflags"),
    _s("symlinkat", 266, "str dirfd path"),
    _s("readlinkat", 267, "dirfd path buf size"),
    _s("fchmodat", 268, "dirfd path mode"),
    _s("faccessat", 269, "dirfd path amode"),
    _s("splice", 275, "fd ptr fd ptr size int", ends=(2, 3, 0, 1)),
    _s("tee", 276, "fd fd size int", ends=(1, -1, 0, -1)),
    _s("utimensat", 280, "dirfd path ptr atflags"),
    _s("eventfd", 284, "int", "open"),
    _s("fallocate", 285, "fd int off size"),
    _s("accept4", 288, "fd ptr ptr int", "open"),
    _s("eventfd2", 290, "int int", "open"),
    _s("dup3", 292, "fd fd fdflags", "dup2"),
    _s("pipe2", 293, "fds2 fdflags", "pipe"),
    _s("preadv", 295, "fd iov iovcnt off int"),
    _s("pwritev", 296, "fd iov iovcnt off int"),
    _s("renameat2", 316, "dirfd path dirfd path int"),
    _s("memfd_create", 319, "str mfdflags", "open"),
    _s("copy_file_range", 326, "fd ptr fd ptr size int", ends=(2, 3, 0, 1)),
    _s("preadv2", 327, "fd iov iovcnt off int int"),
    _s("pwritev2", 328, "fd iov iovcnt off int int"),
    _s("statx", 332, "dirfd path atflags int ptr"),
    _s("io_pgetevents", 333, "int int int ptr ptr ptr", engine="aio"),
    _s("io_uring_setup", 425, "int ptr", "open", engine="io_uring"),
    _s("io_uring_enter", 426, "fd int int int ptr size", engine="io_uring"),
    _s("io_uring_register", 427, "fd int ptr int", engine="io_uring"),
    _s("close_range", 436, "fd fd int", "close_range"),
    _s("openat2", 437, "dirfd path ptr size", "open"),
    _s("faccessat2", 439, "dirfd path amode atflags"),
)
# fmt: on

SYSCALL_BY_NR: dict[int, Syscall] = {s.nr: s for s in SYSCALLS}
SYSCALL_BY_NAME: dict[str, Syscall] = {s.name: s for s in SYSCALLS}


def _libc_names(name: str) -> list[str]:
    """A syscall's name, then the libc function names it goes by: pread64 -> pread,
    newfstatat -> fstatat, faccessat2 -> faccessat, openat2 -> openat."""
    out = [name]
    base = name.removeprefix("new")
    out += [base, re.sub(r"(64|2)$", "", base)]
    return out


def syscall_op(sc: Syscall) -> Op:
    """A syscall's kind, derived from the one table (calls.py) and nothing kept here: the op of
    the shim function it is (under libc's name), else by what it does to the descriptor table
    (`fdop`), else metadata if it takes a path, else other."""
    for n in _libc_names(sc.name):
        if n in FUNC_IDS:
            return FUNCTIONS[FUNC_IDS[n]].op
    if sc.fdop in ("open", "pipe"):
        return Op.OPEN
    if sc.fdop in ("close", "close_range"):
        return Op.CLOSE
    if sc.fdop in ("dup", "dup2"):
        return Op.DUP
    if "path" in sc.args:
        return Op.META
    return Op.OTHER


def main() -> int:
    import argparse  # the build's only: the stracer imports this table at each run

    ap = argparse.ArgumentParser(description="emit the generated C headers")
    ap.add_argument("--c-header", required=True, help="calls.h: the shim's tables")
    ap.add_argument("--format-header", required=True, help="iot_format.h: format.py's layouts")
    ap.add_argument("--kio-header", required=True, help="iot_kio.h: the kernel's counting")
    args = ap.parse_args()
    for path, text in ((args.c_header, c_header()), (args.format_header, format_c_header()),
                       (args.kio_header, kio_c_header())):  # fmt: skip
        with open(path, "w", encoding="ascii") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
