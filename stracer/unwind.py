"""Call sites of missed syscalls: unwound with libunwind-ptrace, symbolised with addr2line.

Unwinding is done once per call site.  A site inside libc is keyed by its chain: the return
addresses up to the first frame outside libc and the loader, which the C loop finds on the stack
with the frame sizes each unwind teaches it (_loop.c chain_of, docs/stracer.md "Call sites"), so
sysconf's and fts_read's reads through the same inner helper stay apart.  Outside libc (an
inline `syscall` instruction, a static binary) a site is keyed by the instruction pointer and
the word at the stack pointer (the word may vary, which only costs an extra unwind that finds
the same frames).
"""

from __future__ import annotations

import functools
import os
import time

from iotrace.stracer import _ffi

from iotrace import elf
from iotrace.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: ~2 ms of the stracer's start (issue 19)
    from iotrace.addr2line import Server, Symbol

MAX_FRAMES = 16
# frames while all so far are libc's or the loader's: a module libc loads (an NSS or iconv
# module, the loader's frames under getrpcbyname or iconv_open) is 14-20 frames deep, and the
# libc function that loaded it, which names the site (libc_entry), lies past them
MAX_LIBC_FRAMES = 32
# libc's own way to make any syscall: I/O through it bypasses every wrapper, like an inline
# `syscall` instruction
RAW_SYSCALL = frozenset({"syscall"})

# Go's syscall stubs (every Go syscall goes through them): left out of call-site labels as
# libc's own frames are
GO_STUBS = ("syscall.", "runtime/internal/syscall.", "internal/syscall/")


def syscall_stub(module: str | None, function: str | None) -> bool:
    """A frame of libc, of the loader (a module libc loads: NSS, iconv), of the shim (a wrapper
    that called libc: setlocale, tzset) or of Go's syscall package: where a syscall is made,
    not who made it."""
    if module and os.path.basename(module).startswith(("libc.", "libiotrace", "ld-linux", "ld-2.")):
        return True
    return bool(function) and function.startswith(GO_STUBS)  # type: ignore[union-attr]


@record(frozen=True)
class Frame:
    pc: int
    module: str | None
    offset: int | None  # address inside the module's ELF file (link-time vaddr)
    function: str | None
    file: str | None = None
    line: int | None = None

    def label(self) -> str:
        fn = self.function
        if not fn:
            known = self.module and self.offset is not None
            fn = (
                f"{os.path.basename(self.module or '')}+{self.offset:#x}" if known else hex(self.pc)
            )
        if self.file and self.line:
            return f"{fn} ({os.path.basename(self.file)}:{self.line})"
        return fn


class AddressSpace:
    """One process image: its libunwind address space and its module map."""

    def __init__(self, pid: int, helper: bool = True) -> None:
        """helper: unwind through stracer/_unwind.c, else not at all where it does not load
        (False: libunwind-ptrace's own accessors, the oracle of its tests: they map the
        tracee's module files, which their owners may truncate or forge: never the stracer's)."""
        self.pid = pid
        self.maps: list[tuple[int, int, int, str]] = []  # start, end, load bias, path
        self.bases: dict[str, int] = {}  # path -> its offset-0 mapping (its ELF header)
        libs = _ffi.unwind_libs()
        self.uas = None
        # stracer/_unwind.c: each module's unwind table kept, memory read by pages
        self.helper = _ffi.unwind_helper() if helper else None
        self.img = self.helper[0].iotu_image() if self.helper else None
        self.mod_ids: dict[str, int] = {}  # module path -> its number for _unwind.c
        self.maps_read = 0  # times the maps were read
        self._ids: dict[str, frozenset[bytes]] = {}  # module path -> its mapping's ids
        self._mem: _ffi.Mem | None = None
        self.sent: tuple[int, int] | None = None  # (pid, maps_read) _unwind.c has
        # the last unwind: its frames, and each one's stack pointer (the CFA of the one below)
        self.frames: list[Frame] = []
        self.sps: list[int] = []
        if libs and (self.img or not helper):
            upt, ux = libs
            acc = (
                self.helper[1] if self.helper and self.img
                else _ffi.uffi.cast("void *", _ffi.uffi.addressof(upt, "_UPT_accessors"))
            )  # fmt: skip
            self.uas = ux._Ux86_64_create_addr_space(acc, 0)
            ux._Ux86_64_set_caching_policy(self.uas, _ffi.UNW_CACHE_GLOBAL)

    def close(self) -> None:
        libs = _ffi.unwind_libs()
        if libs and self.uas:
            libs[1]._Ux86_64_destroy_addr_space(self.uas)
            self.uas = None
        if self.helper and self.img:
            self.helper[0].iotu_free(self.img)
            self.img = None

    def _send_maps(self) -> None:
        """The file mappings, numbered by module, to _unwind.c (when they or the pid changed)."""
        if not self.helper or not self.img or self.sent == (self.pid, self.maps_read):
            return
        segs = sorted((lo, hi, self.mod_ids.setdefault(path, len(self.mod_ids)))
                      for lo, hi, _, path in self.maps)  # fmt: skip
        ffi = _ffi.uffi
        self.helper[0].iotu_maps(
            self.img, self.pid,
            ffi.new("unw_word_t[]", [s[0] for s in segs]),
            ffi.new("unw_word_t[]", [s[1] for s in segs]),
            ffi.new("int[]", [s[2] for s in segs]),
            len(segs),
            ffi.new("unw_word_t[]", [self.bases.get(p, 0) for p in self.mod_ids]),
            len(self.mod_ids),
        )  # fmt: skip
        self.sent = (self.pid, self.maps_read)

    def _read_maps(self) -> None:
        maps, first = [], {}
        try:
            with open(f"/proc/{self.pid}/maps") as f:
                lines = f.read().splitlines()
        except OSError:
            return
        for ln in lines:
            parts = ln.split(maxsplit=5)
            if len(parts) < 6 or not parts[5].startswith("/"):
                continue
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            off, path = int(parts[2], 16), parts[5]
            if off == 0 and path not in first:
                first[path] = lo
            maps.append((lo, hi, path))
        bias = {path: _bias(path, lo) for path, lo in first.items()}  # one stat a file
        self.bases, self._ids = first, {}
        self.maps = [(lo, hi, bias[path] if path in bias else _bias(path, lo), path)
                     for lo, hi, path in maps]  # fmt: skip
        self.maps_read += 1

    def ids(self, path: str) -> frozenset[bytes]:
        """The ids of the file mapped as `path` (elf.mapped_ids, from the process's memory):
        what its addr2line must read, not whatever its owner put at the path since."""
        got = self._ids.get(path)
        if got is None:
            if self._mem is None:
                self._mem = _ffi.Mem()
            mem, pid = self._mem, self.pid
            base = self.bases.get(path)
            read = lambda a, n: mem.read(pid, a, n)  # noqa: E731
            got = self._ids[path] = frozenset() if base is None else elf.mapped_ids(read, base)
        return got

    def module_of(self, pc: int) -> tuple[str, int] | None:
        for attempt in range(2):
            for lo, hi, bias, path in self.maps:
                if lo <= pc < hi:
                    return path, pc - bias
            if attempt == 0:
                self._read_maps()
        return None

    def unwind(self, tid: int) -> list[Frame]:
        libs = _ffi.unwind_libs()
        if not libs or not self.uas:
            return []
        upt, ux = libs
        ffi = _ffi.uffi
        if self.helper and self.img:
            if not self.maps:
                self._read_maps()
            self._send_maps()
            ctx = self.helper[0].iotu_begin(self.img, tid)
        else:
            ctx = upt._UPT_create(tid)
        if ctx == ffi.NULL:
            return []
        frames: list[Frame] = []
        self.frames, self.sps = frames, []
        try:
            cur = ffi.new("unw_cursor_t *")
            if ux._Ux86_64_init_remote(cur, self.uas, ctx) < 0:
                return []
            ip = ffi.new("unw_word_t *")
            sp = ffi.new("unw_word_t *")
            off = ffi.new("unw_word_t *")
            name = ffi.new("char[]", 256)
            inner, limit = True, MAX_LIBC_FRAMES  # inner: every frame so far libc's or ld.so's
            while len(frames) < limit:
                if ux._Ux86_64_get_reg(cur, _ffi.UNW_REG_IP, ip) < 0 or ip[0] == 0:
                    break
                pc = int(ip[0])
                mod = self.module_of(pc if not frames else pc - 1)
                if frames and mod is None:  # outside every mapped file: unwinding went astray
                    break
                # only libc's frames are named here, which the classification needs
                # (libc_entry); addr2line names the others (symbolise, or analyzer/symbols.py
                # when the trace is read).  By the file's symbol tables, read once (elf.function_at
                # names an address as libunwind does): libunwind-ptrace maps the module's ELF
                # file again for every name it looks up (~0.4 ms a frame in libc)
                fn = elf.function_at(*mod) if mod and is_libc(mod[0]) else None
                if (not mod or (fn is None and is_libc(mod[0]))) and ux._Ux86_64_get_proc_name(
                    cur, name, 256, off
                ) == 0:
                    fn = ffi.string(name).decode(errors="replace")
                frames.append(Frame(pc, mod[0] if mod else None, mod[1] if mod else None, fn))
                if inner and not (mod and (is_libc(mod[0]) or is_loader(mod[0]))):
                    inner, limit = False, max(MAX_FRAMES, len(frames) - 1 + LIBC_SITE_CALLERS)
                ux._Ux86_64_get_reg(cur, _ffi.UNW_REG_SP, sp)
                self.sps.append(int(sp[0]))
                self._send_maps()  # module_of may have read them again
                if _enough(frames) or ux._Ux86_64_step(cur) <= 0:
                    break
        finally:
            if self.helper and self.img:
                self.helper[0].iotu_end()
            else:
                upt._UPT_destroy(ctx)
        return frames


# frames of the caller kept past libc's own at a libc-internal site (a site is not said on the
# console; the shim's stacks keep 8 by default): each step up a stack costs libunwind-ptrace a
# read of /proc/PID/maps and a mapping of the module's ELF file
LIBC_SITE_CALLERS = 8


def _enough(frames: list[Frame]) -> bool:
    """A libc-internal site (libc_entry) with LIBC_SITE_CALLERS frames past libc's."""
    ours = (is_libc(f.module) or is_loader(f.module) for f in frames)
    i = next((i for i, mine in enumerate(ours) if not mine), len(frames))
    return len(frames) - i >= LIBC_SITE_CALLERS and libc_entry(frames) is not None


@functools.lru_cache(maxsize=4096)
def is_libc(module: str | None) -> bool:
    """glibc's libc.so.6 (libc-2.xx.so before 2.34)."""
    name = os.path.basename(module or "")
    return name.startswith(("libc.so", "libc-"))


@functools.lru_cache(maxsize=4096)
def is_shim(module: str | None) -> bool:
    """iotrace's shim (libiotrace.so, or its MPI variant)."""
    return os.path.basename(module or "").startswith("libiotrace")


@functools.lru_cache(maxsize=4096)
def is_loader(module: str | None) -> bool:
    """glibc's dynamic loader, ld-linux-x86-64.so.2 (ld-2.xx.so before 2.34)."""
    name = os.path.basename(module or "")
    return name.startswith(("ld-linux", "ld-2."))


def libc_entry(frames: list[Frame]) -> str | None:
    """The libc function a missed syscall was issued inside (docs/stracer.md,
    "Classification"): the outermost libc.so frame of the innermost frames that are in libc.so
    or the loader, i.e. the function code outside libc called (the loader's frames among them:
    a dlopen libc made, of NSS modules or iconv's gconv modules).  None (a bypass) when the
    innermost frame is in neither (an inline `syscall`, a static or Go binary, liburing,
    libaio), no libc frame is among them, or the function is libc's syscall(2)."""
    i, entry = 0, None
    while i < len(frames) and (is_libc(frames[i].module) or is_loader(frames[i].module)):
        entry = frames[i] if is_libc(frames[i].module) else entry
        i += 1
    if entry is None or entry.function in RAW_SYSCALL:
        return None
    return entry.function or entry.label()


def _bias(path: str, first_map: int) -> int:
    """Load bias: 0 for a fixed-address executable (ET_EXEC), else where it was mapped."""
    try:
        st = os.stat(path)
    except OSError:
        return first_map
    return 0 if _fixed_address(path, st.st_dev, st.st_ino, st.st_mtime_ns) else first_map


@functools.cache
def _fixed_address(path: str, dev: int, ino: int, mtime: int) -> bool:
    """An ET_EXEC file: read once per file (every /proc/PID/maps read opened each module
    again, ~450 opens per process of an MPI rank)."""
    try:
        with elf.open_regular(path) as f:  # never a FIFO or device put at a module's path
            head = f.read(18)
        return head[:4] == b"\x7fELF" and int.from_bytes(head[16:18], "little") == 2
    except OSError:
        return False


# (module, its ids, offset, is a return address) -> (function, file, line): each address is
# looked up once (libc's frames are in every call site), by one addr2line kept running per
# module file (a path rebuilt during the job is another file: its own tool)
_SYMBOLS: dict[tuple[str, frozenset[bytes], int, bool], Symbol] = {}
_SERVERS: dict[tuple[str, frozenset[bytes]], Server] = {}
# The thread whose site is symbolised stays stopped meanwhile (and with it a process waiting on
# it): a lookup gets LOOKUP_WAIT seconds (libc's debug info loads in ~70 ms), and once SLOW_MAX
# have run out of time (an addr2line that cannot keep up: a huge or hostile module, a starved
# node) the stracer asks no more: sites keep module and offset, which the analyzer names after
# the run (analyzer/symbols.py).  Before, each module could hold the job 10 s and 2 s more.
LOOKUP_WAIT = 2.0
SLOW_MAX = 2
_slow = 0


def symbolise(frames: list[Frame], aspace: AddressSpace, inline: bool = False) -> list[Frame]:
    """file:line (and a function name where libunwind had none) from debug info; `inline`:
    the outermost of inlined functions (a Go program's frames, see addr2line.Server).  Only
    from the file the process maps (its ids, aspace.ids, checked on what addr2line reads): the
    module's owner swapped another build in and its names were given to the job's frames; a
    module whose ids cannot be read is left to the analyzer (module+offset)."""
    global _slow
    ids = {fr.module: aspace.ids(fr.module) for fr in frames if fr.module}
    by_mod: dict[str, list[int]] = {}
    for i, fr in enumerate(frames):
        if (fr.module and ids[fr.module] and fr.offset is not None
                and (fr.module, ids[fr.module], fr.offset, i > 0) not in _SYMBOLS):  # fmt: skip
            by_mod.setdefault(fr.module, []).append(i)
    for mod, idx in by_mod.items():
        if _slow >= SLOW_MAX:
            break
        # return addresses point after the call: ask for the call's own line
        want = {i: frames[i].offset - (1 if i else 0) for i in idx}  # type: ignore[operator]
        server = _SERVERS.get((mod, ids[mod]))
        if server is None:
            from iotrace.addr2line import Server

            server = _SERVERS[(mod, ids[mod])] = Server(mod, inline, ids[mod])
        asked = time.monotonic()
        got = server.lookup(want.values(), LOOKUP_WAIT)
        if time.monotonic() - asked >= LOOKUP_WAIT:
            _slow += 1
            continue  # its addresses may be asked again of no one: left for the analyzer
        for i, addr in want.items():
            key = (mod, ids[mod], frames[i].offset, i > 0)
            _SYMBOLS[key] = got.get(addr, (None, None, None))  # type: ignore[index]
    out = []
    for i, fr in enumerate(frames):
        hit = (
            _SYMBOLS.get((fr.module, ids[fr.module], fr.offset, i > 0))
            if fr.module and fr.offset is not None
            else None
        )
        if hit is None:
            out.append(fr)
        else:
            out.append(Frame(fr.pc, fr.module, fr.offset, fr.function or hit[0], hit[1], hit[2]))
    return out


def close_symbolisers() -> None:
    """The addr2line processes, at the stracer's end."""
    for server in _SERVERS.values():
        server.close()
    _SERVERS.clear()
