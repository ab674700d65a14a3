"""Asynchronous I/O engines: the operations behind io_uring_enter and Linux AIO's io_submit,
decoded from the tracee's memory (docs/stracer.md, "Asynchronous engines").

The kernel moves the bytes of these operations with no syscall of the app's: a missed
io_uring_enter or io_submit says nothing of which file, offset or size.  So each operation is
recorded as a MISSED record of the syscall it stands for (an io_uring WRITE is a `pwrite64`,
an IOCB_CMD_PREAD a `pread64`), with the argument kinds of that syscall, `ret` its completion's
result, `t` its submission and `t_exit` when its completion was seen, and `via` = "io_uring"
or "aio".

io_uring: at the exit of io_uring_setup the stracer takes a copy of the ring's descriptor
(pidfd_getfd) and maps the SQ and CQ rings and the SQE array into its own memory, so it can
read them at any stop, and after the app has unmapped them (fio reaps its last completions
from the ring with no syscall, then unmaps and closes it).  At io_uring_enter's entry, the SQEs
the call submits (SQ head .. head + to_submit) are decoded; at every look (entry, exit, the
process's end) the CQEs posted since the last look are matched to them by user_data.
Registered files (io_uring_register FILES, FILES2, FILES_UPDATE, FILES_UPDATE2) are followed.
SQPOLL rings take submissions without a syscall: named on the console, not decoded.

Linux AIO without libaio's wrappers (raw syscalls, or libaio in a process without the shim):
io_submit's iocbs are read at its entry, io_getevents' and io_pgetevents' events at their
exit, matched by the iocb's address.
"""

from __future__ import annotations

import collections
import os
import struct
import time

from iotrace.stracer import _ffi as F
from iotrace.stracer.slog import SRec
from iotrace.stracer.syscall_args import fd_path, plan, target

from iotrace.calls import SYSCALL_BY_NAME, Op, syscall_op
from iotrace.record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: ~2 ms of the stracer's start (issue 19)
    from typing import Any

    from iotrace.stracer.tracer import Thread, Tracer

SYS_PIDFD_GETFD = 438
PARAMS = struct.Struct("<10I8IQ8IQ")  # struct io_uring_params (120 bytes)
SQE = struct.Struct("<BBHiQQIIQ")  # opcode flags ioprio fd off addr len rw_flags user_data
CQE = struct.Struct("<QiI")  # user_data res flags
IOCB = struct.Struct("<QIiHhIQQqQII")  # struct iocb (linux/aio_abi.h)
IO_EVENT = struct.Struct("<QQqq")  # data obj res res2
SETUP_SQPOLL, SETUP_SQE128, SETUP_CQE32 = 1 << 1, 1 << 10, 1 << 11
SETUP_NO_MMAP, SETUP_REGISTERED_FD_ONLY, SETUP_NO_SQARRAY = 1 << 14, 1 << 15, 1 << 16
FEAT_SINGLE_MMAP = 1
ENTER_REGISTERED_RING = 1 << 4
SQE_FIXED_FILE = 1
CQE_F_MORE = 1 << 1
OFF_SQ_RING, OFF_CQ_RING, OFF_SQES = 0, 0x8000000, 0x10000000
NO_OFFSET = (1 << 64) - 1
MAX_BATCH = 4096  # SQEs or iocbs decoded per call at most
PROT_READ, MAP_SHARED = 1, 1


@record
class AsyncOp:
    """One submitted operation, until its completion is seen."""

    t: int
    pid: int
    tid: int
    name: str  # the syscall it stands for
    args: list[Any]
    fd: int | None
    path: str | None
    site: int
    via: str


@record
class Ring:
    pid: int
    fd: int
    own: int  # the stracer's copy of the ring's descriptor
    maps: list[tuple[Any, int]]  # (address, length) of the stracer's mappings
    sq: Any  # buffers over the mappings
    cq: Any
    sqes: Any
    sq_off: tuple[int, ...]
    cq_off: tuple[int, ...]
    sq_entries: int
    cq_entries: int
    sqe_size: int
    cqe_size: int
    no_sqarray: bool
    cq_seen: int = 0
    ops: dict[int, collections.deque[AsyncOp]] = field(default_factory=dict)
    files: dict[int, int] = field(default_factory=dict)  # registered index -> the app's fd
    paths: dict[int, str | None] = field(default_factory=dict)  # ... -> its path then
    lost: int = 0  # completions overwritten before a look
    sqpoll: bool = False  # the kernel takes submissions by itself: decoded at each look
    sq_seen: int = 0  # SQPOLL: the SQ tail at the last look
    sq_lost: int = 0  # SQPOLL: submissions overwritten before a look
    site: int = 0  # io_uring_setup's call site (SQPOLL operations have no call of their own)
    tid: int = 0  # the thread that set it up
    fdpaths: dict[int, str | None] = field(default_factory=dict)  # fds its OPENATs opened


def _u32(buf: Any, off: int) -> int:
    return struct.unpack_from("<I", buf, off)[0]


class Engines:
    def __init__(self, tracer: Tracer) -> None:
        self.t = tracer
        self.rings: dict[tuple[int, int], Ring] = {}
        self.aio: dict[tuple[int, int], AsyncOp] = {}  # (pid, iocb address) -> its request
        self.stash: dict[int, tuple[Ring | None, list[tuple[int, AsyncOp]]]] = {}  # by tid
        self.said: set[tuple[int, int]] = set()
        self.sqpoll: set[int] = set()  # processes with a SQPOLL ring

    # ---- the tracer's hooks ------------------------------------------------------------------

    def entry(self, th: Thread, name: str, raw: tuple[int, ...], site: int, t: int) -> None:
        if name == "io_uring_enter":
            self._enter(th, raw, site, t)
        elif name == "io_submit":
            self._submit(th, raw, site, t)

    def exit(
        self, th: Thread, name: str, raw: tuple[int, ...], ret: int | None, site: int
    ) -> str | None:
        """At the syscall's exit (ret None: it never returned); a `via` note for its own
        record, or None."""
        pid = th.proc.pid
        stash = self.stash.pop(th.tid, None)
        if stash is not None:  # io_uring_enter / io_submit: what was not taken was not queued
            ring, ops = stash
            n = ret if ret is not None and ret >= 0 else 0
            for key, op in ops[n:]:
                if ring is not None:
                    q = ring.ops.get(key)
                    if q is not None and op in q:
                        q.remove(op)
                else:
                    self.aio.pop((pid, key), None)
        if ret is None or ret < 0:
            return None
        if name == "io_uring_setup":
            return self._setup(th, raw, ret, site)
        if name == "io_uring_enter":
            ring = self.rings.get((pid, _fd(raw[0])))
            if ring is not None:
                self._harvest(ring)
        elif name == "io_uring_register":
            self._register(th, raw)
        elif name in ("io_getevents", "io_pgetevents"):
            self._events(th, raw[3], ret)
        return None

    def look(self, pid: int, tid: int, every: bool = False) -> None:
        """A stop of the process: what its SQPOLL rings took since the last look, and their
        completions; every ring's completions with `every` (a thread's exit stop: its memory
        and descriptors are still there)."""
        if pid not in self.sqpoll and not every:
            return
        for (p, _fd), ring in list(self.rings.items()):
            if p == pid and (ring.sqpoll or every):
                if ring.sqpoll:
                    self._sq_poll(ring, tid)
                self._harvest(ring)

    def gone(self, pid: int) -> None:
        """The process exited or exec'd: last completions, then what never completed."""
        self.sqpoll.discard(pid)
        for key in [k for k in self.rings if k[0] == pid]:
            self._retire(self.rings.pop(key))
        for key in [k for k in self.aio if k[0] == pid]:
            self._emit(self.aio.pop(key), None, None)

    def close(self) -> None:
        for pid in {k[0] for k in self.rings} | {k[0] for k in self.aio}:
            self.gone(pid)

    # ---- records ----------------------------------------------------------------------------

    def _op(
        self, pid: int, tid: int, name: str, vals: list[Any], site: int, t: int, via: str
    ) -> AsyncOp:
        """vals: raw integers, or strings for path arguments, in the syscall's order."""
        sc = SYSCALL_BY_NAME[name]
        pl = plan(sc)
        args = [v if f is None or isinstance(v, str) else f(v)
                for f, v in zip(pl.convert, vals, strict=False)]  # fmt: skip
        fd, path = target(pid, pl, args)
        return AsyncOp(t, pid, tid, name, args, fd, path, site, via)

    def _emit(self, op: AsyncOp, ret: int | None, t_exit: int | None) -> None:
        err = 0
        if ret is not None and ret < 0:
            err, ret = -ret, -1
        fd, path = op.fd, op.path
        if op.name == "openat" and ret is not None and ret >= 0:
            fd = ret
        rec = (op.t, op.pid, op.tid, op.name, op.args, ret, err, op.site, fd, path, t_exit)
        kinds = SYSCALL_BY_NAME[op.name].args
        off = op.args[kinds.index("off")] if "off" in kinds else None
        # a bypass (no wrapper could cover it); the two ends' places: its offset, no other end
        self.t.log.rec(SRec.MISSED, *rec, "bypass", off, None, None, None, op.via)
        sc = SYSCALL_BY_NAME[op.name]
        moved = ret if ret and ret > 0 and syscall_op(sc) in (Op.READ, Op.WRITE) else 0
        frames = self.t.site_frames.get(op.site, [])
        self.t.console.missed(op.pid, op.site, frames, op.name, path, 1, "bypass", moved, op.via)

    # ---- io_uring ---------------------------------------------------------------------------

    def _setup(self, th: Thread, raw: tuple[int, ...], fd: int, site: int) -> str | None:
        pid = th.proc.pid
        p = self.t.mem.read(th.tid, raw[1], PARAMS.size)
        if p is None or len(p) < PARAMS.size:
            return None
        v = PARAMS.unpack(p)
        sq_entries, cq_entries, flags, _cpu, _idle, features = v[:6]
        sq_off, cq_off = v[10:19], v[19:28]
        if flags & (SETUP_NO_MMAP | SETUP_REGISTERED_FD_ONLY):
            return "io_uring: ring memory of the app's own: operations not decoded"
        if any(n <= 0 or n & (n - 1) for n in (sq_entries, cq_entries)):  # the kernel's: 2^k
            return "io_uring: ring sizes that are not the kernel's: operations not decoded"
        self._closed_rings(pid)
        own = _getfd(pid, fd)
        if own < 0:
            self.t.console.note(
                f"io_uring ring (fd {fd}) [pid {pid}]: the stracer cannot take a copy of its "
                "descriptor (pidfd_getfd, Linux 5.6): its operations are not decoded"
            )
            return "io_uring: operations not decoded (no pidfd_getfd)"
        sqe_size = 128 if flags & SETUP_SQE128 else 64
        cqe_size = 32 if flags & SETUP_CQE32 else 16
        no_sqarray = bool(flags & SETUP_NO_SQARRAY)
        sq_len = (sq_off[6] + sq_entries * 4) if not no_sqarray else sq_off[1] + 64
        cq_len = cq_off[5] + cq_entries * cqe_size
        maps: list[tuple[Any, int]] = []
        if features & FEAT_SINGLE_MMAP:
            sq_len = cq_len = max(sq_len, cq_len)
            sq = cq = _map(own, sq_len, OFF_SQ_RING, maps)
        else:
            sq = _map(own, sq_len, OFF_SQ_RING, maps)
            cq = _map(own, cq_len, OFF_CQ_RING, maps)
        sqes = _map(own, sq_entries * sqe_size, OFF_SQES, maps)
        if sq is None or cq is None or sqes is None:
            for addr, n in maps:
                F.libc.munmap(addr, n)
            os.close(own)
            return None
        ring = Ring(pid, fd, own, maps, sq, cq, sqes, sq_off, cq_off, sq_entries, cq_entries,
                    sqe_size, cqe_size, no_sqarray)  # fmt: skip
        ring.cq_seen = _u32(cq, cq_off[1])
        ring.sq_seen = _u32(sq, sq_off[1])
        ring.site, ring.tid = site, th.tid
        old = self.rings.pop((pid, fd), None)
        if old is not None:  # the number was closed and reused: the old ring is done
            self._retire(old)
        self.rings[(pid, fd)] = ring
        if flags & SETUP_SQPOLL:
            ring.sqpoll = True
            self.sqpoll.add(pid)
            self.t.console.note(
                f"io_uring ring (fd {fd}) [pid {pid}] polls its submission queue in the kernel "
                "(SQPOLL): its operations need no syscall; they are decoded when the stracer "
                f"next stops the process (the last {sq_entries} at most)"
            )
            return "io_uring SQPOLL"
        return None

    def _closed_rings(self, pid: int) -> None:
        """Rings the app has closed since: done with (the stracer's copy would keep each alive,
        one descriptor of its own per ring ever made)."""
        for key, ring in list(self.rings.items()):
            if key[0] != pid:
                continue
            try:
                alive = os.stat(f"/proc/{pid}/fd/{ring.fd}").st_ino == os.fstat(ring.own).st_ino
            except OSError:
                alive = False
            if not alive:
                self._retire(self.rings.pop(key))

    def _retire(self, ring: Ring) -> None:
        if ring.sqpoll:
            self._sq_poll(ring, ring.tid)
        self._harvest(ring)
        for q in ring.ops.values():
            for op in q:
                self._emit(op, None, None)  # never seen completing
        ring.ops.clear()
        if ring.lost or ring.sq_lost:
            self.t.console.note(
                f"io_uring ring (fd {ring.fd}) [pid {ring.pid}]: {ring.sq_lost} submissions "
                f"and {ring.lost} completions were overwritten before the stracer saw them"
            )
        self._unmap(ring)

    def _unmap(self, ring: Ring) -> None:
        ring.sq = ring.cq = ring.sqes = None
        for addr, n in ring.maps:
            F.libc.munmap(addr, n)
        ring.maps = []
        try:
            os.close(ring.own)
        except OSError:
            pass

    def _enter(self, th: Thread, raw: tuple[int, ...], site: int, t: int) -> None:
        pid, fd = th.proc.pid, _fd(raw[0])
        if raw[3] & ENTER_REGISTERED_RING:
            if (pid, -1) not in self.said:
                self.said.add((pid, -1))
                self.t.console.note(
                    f"io_uring_enter on a registered ring descriptor [pid {pid}]: its "
                    "operations are not decoded"
                )
            return
        ring = self.rings.get((pid, fd))
        if ring is None:
            return
        self._harvest(ring)
        head, tail = _u32(ring.sq, ring.sq_off[0]), _u32(ring.sq, ring.sq_off[1])
        n = min(raw[1] & 0xFFFFFFFF, (tail - head) & 0xFFFFFFFF, MAX_BATCH)
        # the sizes the kernel gave at setup, not the rings' ring_mask fields: the app may
        # write those (the rings are its memory): a mask of ~0 read past the rings' end
        mask = ring.sq_entries - 1
        ops: list[tuple[int, AsyncOp]] = []
        for i in range(n):
            pos = (head + i) & mask
            idx = pos if ring.no_sqarray else _u32(ring.sq, ring.sq_off[6] + 4 * pos)
            if idx >= ring.sq_entries:
                continue
            got = self._sqe(pid, th.tid, ring, idx * ring.sqe_size, site, t)
            if got is not None:
                key, op = got
                ring.ops.setdefault(key, collections.deque()).append(op)
                ops.append((key, op))
        self.stash[th.tid] = (ring, ops)

    def _sq_poll(self, ring: Ring, tid: int) -> None:
        """A SQPOLL ring's submissions since the last look, as far as the ring still holds
        them: the app reuses a slot once the kernel has taken its SQE."""
        if ring.sq is None:
            return
        tail = _u32(ring.sq, ring.sq_off[1])
        n = (tail - ring.sq_seen) & 0xFFFFFFFF
        if n > ring.sq_entries - 1:  # the slot past the tail may hold one being prepared
            ring.sq_lost += n - (ring.sq_entries - 1)
            n = ring.sq_entries - 1
        start = (tail - n) & 0xFFFFFFFF
        mask = ring.sq_entries - 1
        t = time.monotonic_ns()
        for i in range(n):
            pos = (start + i) & mask
            idx = pos if ring.no_sqarray else _u32(ring.sq, ring.sq_off[6] + 4 * pos)
            if idx < ring.sq_entries:
                got = self._sqe(ring.pid, tid, ring, idx * ring.sqe_size, ring.site, t)
                if got is not None:
                    ring.ops.setdefault(got[0], collections.deque()).append(got[1])
        ring.sq_seen = tail

    def _sqe(
        self, pid: int, tid: int, ring: Ring, base: int, site: int, t: int
    ) -> tuple[int, AsyncOp] | None:
        opc, flags, _prio, fd, off, addr, ln, rwf, key = SQE.unpack_from(ring.sqes, base)
        fixed = -1
        if flags & SQE_FIXED_FILE and opc not in (18, 19, 21, 36, 37):
            fixed, fd = fd, ring.files.get(fd, -1)  # a registered file: its index
        name: str
        vals: list[Any]
        if opc in (22, 4, 23, 5):  # READ, READ_FIXED, WRITE, WRITE_FIXED
            rd = opc in (22, 4)
            if off == NO_OFFSET:
                name, vals = ("read" if rd else "write"), [fd, addr, ln]
            else:
                name, vals = ("pread64" if rd else "pwrite64"), [fd, addr, ln, off]
        elif opc in (1, 2):  # READV, WRITEV
            if off == NO_OFFSET:
                name, vals = ("readv" if opc == 1 else "writev"), [fd, addr, ln]
            else:
                name, vals = ("preadv" if opc == 1 else "pwritev"), [fd, addr, ln, off, 0]
        elif opc == 3:  # FSYNC
            name, vals = ("fdatasync" if rwf & 1 else "fsync"), [fd]
        elif opc == 17:  # FALLOCATE: mode in len, length in addr
            name, vals = "fallocate", [fd, ln, off, addr]
        elif opc == 55:  # FTRUNCATE
            name, vals = "ftruncate", [fd, off]
        elif opc in (18, 21, 36, 37):  # OPENAT, STATX, UNLINKAT, MKDIRAT: a path at addr
            path = self.t.mem.read_str(tid, addr) or ""
            name, vals = {
                18: ("openat", [fd, path, rwf, ln]),
                21: ("statx", [fd, path, rwf, ln, off]),
                36: ("unlinkat", [fd, path, rwf]),
                37: ("mkdirat", [fd, path, ln]),
            }[opc]
        elif opc == 19:  # CLOSE
            name, vals = "close", [fd]
        else:  # no file I/O of its own (NOP, POLL, TIMEOUT, CANCEL...) or not decoded
            return None
        op = self._op(pid, tid, name, vals, site, t, "io_uring")
        if fixed >= 0:  # the file it was when registered (the app may have closed its fd)
            op.path = ring.paths.get(fixed, op.path)
        return key, op

    def _harvest(self, ring: Ring) -> None:
        if ring.cq is None:
            return
        tail = _u32(ring.cq, ring.cq_off[1])
        start = ring.cq_seen
        if (tail - start) & 0xFFFFFFFF > ring.cq_entries:  # overwritten before this look
            ring.lost += ((tail - start) & 0xFFFFFFFF) - ring.cq_entries
            start = (tail - ring.cq_entries) & 0xFFFFFFFF
        mask = ring.cq_entries - 1
        now = time.monotonic_ns()
        pos = start
        while pos != tail:
            at = ring.cq_off[5] + (pos & mask) * ring.cqe_size
            key, res, flags = CQE.unpack_from(ring.cq, at)
            q = ring.ops.get(key)
            if q:
                op = q[0] if flags & CQE_F_MORE else q.popleft()
                if not q:
                    del ring.ops[key]
                # an fd the ring's own OPENAT gave: that file (a SQPOLL ring's SQE may be
                # decoded after the app closed the fd and the number was reused)
                if op.fd is not None and op.fd in ring.fdpaths and (ring.sqpoll or not op.path):
                    op.path = ring.fdpaths[op.fd]
                if op.name == "openat" and res >= 0:
                    ring.fdpaths[res] = op.path
                self._emit(op, res, now)
                if op.name == "close" and op.fd is not None:
                    ring.fdpaths.pop(op.fd, None)
            pos = (pos + 1) & 0xFFFFFFFF
        ring.cq_seen = tail

    def _register(self, th: Thread, raw: tuple[int, ...]) -> None:
        ring = self.rings.get((th.proc.pid, _fd(raw[0])))
        if ring is None:
            return
        opcode, arg, nr = raw[1] & 0x7FFFFFFF, raw[2], raw[3] & 0xFFFFFFFF
        read = self.t.mem.read
        if opcode == 2:  # REGISTER_FILES: int fds[nr]
            self._files(th, ring, 0, arg, nr, reset=True)
        elif opcode == 3:  # UNREGISTER_FILES
            ring.files.clear()
            ring.paths.clear()
        elif opcode == 13:  # REGISTER_FILES2: struct io_uring_rsrc_register
            b = read(th.tid, arg, 32)
            if b and len(b) == 32:
                n, _fl, _r, data, _tags = struct.unpack("<IIQQQ", b)
                self._files(th, ring, 0, data, n, reset=True)
        elif opcode in (6, 14):  # FILES_UPDATE(2): offset, resv, data[, tags, nr]
            b = read(th.tid, arg, 32 if opcode == 14 else 16)
            if b and len(b) >= 16:
                off, _r, data = struct.unpack_from("<IIQ", b)
                if opcode == 14 and len(b) == 32:
                    nr = struct.unpack_from("<I", b, 24)[0]
                self._files(th, ring, off, data, nr, reset=False)

    def _files(self, th: Thread, ring: Ring, first: int, addr: int, n: int, reset: bool) -> None:
        n = min(n, 1 << 16)
        b = self.t.mem.read(th.tid, addr, 4 * n) if n else b""
        if b is None or len(b) < 4 * n:
            return
        if reset:
            ring.files.clear()
            ring.paths.clear()
        for i, fd in enumerate(struct.unpack(f"<{n}i", b)):
            if fd >= 0:
                ring.files[first + i] = fd
                ring.paths[first + i] = fd_path(th.proc.pid, fd)
            else:
                ring.files.pop(first + i, None)
                ring.paths.pop(first + i, None)

    # ---- Linux AIO (raw) --------------------------------------------------------------------

    def _submit(self, th: Thread, raw: tuple[int, ...], site: int, t: int) -> None:
        n = min(max(_signed(raw[1]), 0), MAX_BATCH)
        b = self.t.mem.read(th.tid, raw[2], 8 * n) if n else None
        if not b or len(b) < 8 * n:
            return
        ops: list[tuple[int, AsyncOp]] = []
        for addr in struct.unpack(f"<{n}Q", b):
            cb = self.t.mem.read(th.tid, addr, IOCB.size)
            if cb is None or len(cb) < IOCB.size:
                continue
            _d, _k, _rwf, opc, _prio, fd, buf, nbytes, off = IOCB.unpack(cb)[:9]
            if opc in (0, 1):  # PREAD, PWRITE
                name, vals = ("pread64" if opc == 0 else "pwrite64"), [fd, buf, nbytes, off]
            elif opc in (7, 8):  # PREADV, PWRITEV: iovecs at buf, their count in nbytes
                name, vals = ("preadv" if opc == 7 else "pwritev"), [fd, buf, nbytes, off, 0]
            elif opc in (2, 3):  # FSYNC, FDSYNC
                name, vals = ("fsync" if opc == 2 else "fdatasync"), [fd]
            else:
                continue
            op = self._op(th.proc.pid, th.tid, name, vals, site, t, "aio")
            self.aio[(th.proc.pid, addr)] = op
            ops.append((addr, op))
        self.stash[th.tid] = (None, ops)

    def _events(self, th: Thread, addr: int, n: int) -> None:
        n = min(n, MAX_BATCH)
        b = self.t.mem.read(th.tid, addr, IO_EVENT.size * n) if n else None
        if not b or len(b) < IO_EVENT.size * n:
            return
        now = time.monotonic_ns()
        for i in range(n):
            _data, obj, res, _res2 = IO_EVENT.unpack_from(b, i * IO_EVENT.size)
            op = self.aio.pop((th.proc.pid, obj), None)
            if op is not None:
                self._emit(op, res, now)


def _fd(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def _signed(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def _getfd(pid: int, fd: int) -> int:
    """A copy of the tracee's descriptor in this process (pidfd_getfd: the tracer may)."""
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        return -1
    try:
        return int(F.libc.syscall(F.ffi.cast("long", SYS_PIDFD_GETFD), F.ffi.cast("int", pidfd),
                                  F.ffi.cast("int", fd), F.ffi.cast("int", 0)))  # fmt: skip
    finally:
        os.close(pidfd)


def _map(fd: int, n: int, off: int, maps: list[tuple[Any, int]]) -> Any:
    addr = F.libc.mmap(F.ffi.NULL, n, PROT_READ, MAP_SHARED, fd, off)
    if int(F.ffi.cast("intptr_t", addr)) == -1:
        return None
    maps.append((addr, n))
    return F.ffi.buffer(addr, n)
