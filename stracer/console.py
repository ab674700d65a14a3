"""Missed-I/O messages on stderr: grouped by call site, the first occurrence at once, then
counts at most every few seconds, and a summary at the end.  Never one line per syscall.

Only a bypass is missed I/O (docs/stracer.md, "Classification"); libc-internal syscalls (inside
a libc function the shim does not wrap) are recorded, and counted in the summary's last line.

Libraries do I/O of their own that no wrapper sees (hwloc reading /sys, libevent's eventfds,
glibc's NSS reading /etc/hosts, PMIx's sockets): an MPI job's start-up has ~300 such syscalls
at ~50 call sites.  They are logged like any missed syscall, but a call site whose syscalls
all touch system files (/proc, /sys, /dev, /etc, /run, libc's time zone, locale and message
catalog files) or only create and close sockets,
eventfds and pipes is not announced: the summary counts those sites in one line.  The first
syscall of a site that touches anything else (a file of the job, /dev/null, data through a
pipe or socket) announces the site.

Each line is one write(2) (iotrace.say).  A missed write to the file the console writes to (the
command's stderr is often iotrace's) may be the start of a line the command finishes next
(glibc's error() writes `prog: `, the message, `: strerror` and `\n` apart): what it would
announce waits for the next line iotrace prints, the end, or HOLD seconds (checked at the next
missed syscall), so it lands after the command's line rather than inside it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from iotrace.stracer.unwind import Frame, syscall_stub

from iotrace.calls import SYSCALL_BY_NAME, Op, syscall_op
from iotrace.record import field, record
from iotrace.say import console_fd, say
from iotrace.text import escape

EVERY = 5.0  # seconds between count updates of one group
HOLD = 1.0  # seconds a line may wait for the command to end its own line
MAX_SUMMARY = 10
# and libc's own data: time zones, locales, message catalogs, iconv modules
SYSTEM_DIRS = (
    "/proc", "/sys", "/dev", "/etc", "/run", "/var/run",
    "/usr/share/zoneinfo", "/usr/share/locale", "/usr/lib/locale",
    "/usr/lib/x86_64-linux-gnu/gconv",
)  # fmt: skip
DATA_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/pts/", "/dev/std")


def is_system(syscall: str, path: str | None) -> bool:
    """A system file, or a socket/eventfd/pipe made or closed (not data through it)."""
    if not path:
        return False
    if not path.startswith("/"):  # socket:[N], pipe:[N], anon_inode:[eventfd]
        sc = SYSCALL_BY_NAME.get(syscall)
        return sc is None or syscall_op(sc) not in (Op.READ, Op.WRITE)
    if path.startswith(DATA_DEVICES):
        return False
    return any(path == d or path.startswith(d + "/") for d in SYSTEM_DIRS)


def site_label(frames: list[Frame], depth: int = 3) -> str:
    """`raw_open (app.c:12) <- main (app.c:40)`: libc's and Go's syscall stubs are skipped."""
    app = [f for f in frames if not syscall_stub(f.module, f.function)]
    shown = (app or frames)[:depth]
    return " <- ".join(f.label() for f in shown) if shown else "an unknown call site"


def _group_key(frames: list[Frame]) -> tuple[str | None, ...]:
    app = [f for f in frames if not syscall_stub(f.module, f.function)]
    return tuple(f.function or hex(f.pc) for f in (app or frames)[:3])


@record
class Group:
    pid: int
    label: str
    shown: bool = False  # announced: it touched more than system files
    count: int = 0
    reported: int = 1
    last: float = 0.0
    syscalls: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    nbytes: int = 0  # read or written by the group's syscalls

    def what(self) -> str:
        s = ", ".join(self.syscalls)
        if self.paths:
            more = f" and {len(self.paths) - 1} more" if len(self.paths) > 1 else ""
            s += f" on {self.paths[0]}{more}"
        return s

    def moved(self) -> str:
        """What the group read and wrote, after its line: `; 1.0 MiB moved (1048576 B)`."""
        return f"; {_size(self.nbytes)} moved" if self.nbytes else ""


def _size(n: int) -> str:
    """1234567 -> '1.2 MiB (1234567 B)': the exact figure, to compare with the program's own."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n} B)"
    return f"{n} B"


def _console_path() -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{console_fd()}")
    except OSError:
        return None


class Console:
    def __init__(self, write: Callable[[str], None] = say, path: str | None = None) -> None:
        self.write = write
        self.path = path if path is not None else _console_path()  # where the lines go
        self.held: list[str] = []  # lines waiting for the command to end its line
        self.held_since = 0.0
        self.groups: dict[tuple[object, ...], Group] = {}
        self.by_site: dict[tuple[int, int], Group] = {}
        self.batch = 64
        self.noted: set[tuple[str, str]] = set()  # (what, exe) said once

    def _say(self, line: str, hold: bool = False) -> None:
        line = escape(line, quote=False)  # names from the app: no controls
        if hold:
            if not self.held:
                self.held_since = time.monotonic()
            self.held.append(line)
            return
        self._release()
        self.write(line)

    def _release(self) -> None:
        for h in self.held:
            self.write(h)
        self.held.clear()

    def _on_console(self, syscall: str, path: str | None) -> bool:
        """A write to the console's own file (its bytes may have begun a line)."""
        if path is None or path != self.path:
            return False
        sc = SYSCALL_BY_NAME.get(syscall)
        return sc is not None and syscall_op(sc) == Op.WRITE

    def missed(
        self, pid: int, site: int, frames: list[Frame], syscall: str, path: str | None,
        n: int = 1, cls: str = "bypass", nbytes: int = 0, via: str = "",
    ) -> None:  # fmt: skip
        """n syscalls (n > 1: a batch from the C loop) of one call site the shim did not
        cover, moving nbytes (reads and writes); only a bypass is said.  via: the asynchronous
        engine that carried them (io_uring, aio)."""
        if cls != "bypass":
            return
        hold = self._on_console(syscall, path)
        if self.held and time.monotonic() - self.held_since > HOLD:
            self._release()
        g = self.by_site.get((pid, site))
        if g is None:
            g = self._group(pid, frames)
            self.by_site[(pid, site)] = g
        name = f"{syscall} via {via}" if via else syscall
        if not g.shown and not is_system(syscall, path):
            g.shown, g.last, g.reported = True, time.monotonic(), g.count + 1
            where = f" on {path}" if path else ""
            moved = f"; {_size(nbytes)} moved" if nbytes else ""
            self._say(f"iotrace: missed I/O: {name}{where} at {g.label} [pid {pid}]{moved}", hold)
        g.count += n
        g.nbytes += nbytes
        if name not in g.syscalls:
            g.syscalls.append(name)
        if path and len(g.paths) < 100 and path not in g.paths:
            g.paths.append(path)
        if g.shown and g.count - g.reported >= self.batch:  # a hot loop: look now and then
            now = time.monotonic()
            if now - g.last >= EVERY:
                self._say(
                    f"iotrace: missed I/O: {g.count - g.reported} more ({g.count} in all) "
                    f"at {g.label} [pid {pid}]",
                    hold,
                )
                g.reported, g.last = g.count, now

    def _group(self, pid: int, frames: list[Frame]) -> Group:
        key = (pid, *_group_key(frames))
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = Group(pid, site_label(frames))
        return g

    def ptrace_used(self, pid: int, exe: str) -> None:
        self._say(
            f"iotrace: {exe or 'a process'} [pid {pid}] uses ptrace (a debugger or tracer "
            "inside the job): it cannot, the stracer holds every process's ptrace slot; run "
            "with --no-stracer"
        )

    def untraced(self, pid: int, exe: str, abi: str) -> None:
        if ("abi", exe) not in self.noted:
            self.noted.add(("abi", exe))
            self._say(
                f"iotrace: {exe or 'a program'} [pid {pid}] runs {abi} code: its I/O is not "
                "traced (neither the shim nor the stracer sees other ABIs than x86_64)"
            )

    def shim_unloaded(self, pid: int, exe: str, secure: bool = False) -> None:
        if ("unloaded", exe) not in self.noted:
            self.noted.add(("unloaded", exe))
            why = (
                "it is set-user-ID or set-group-ID, run in secure mode, where the loader "
                "ignores LD_PRELOAD"
                if secure
                else "the loader could not load it (its file not reachable there: a container, "
                "a chroot, another mount namespace)"
            )
            self._say(
                f"iotrace: {exe or 'a program'} [pid {pid}] runs without the shim: LD_PRELOAD "
                f"names it, but {why}; its I/O is missed I/O"
            )

    def setid_lost(self, pid: int, exe: str, who: str) -> None:
        if ("setid", exe) not in self.noted:
            self.noted.add(("setid", exe))
            self._say(
                f"iotrace: {exe or 'a program'} [pid {pid}] is set-{who}-ID: traced by a "
                "non-root user (ptrace) it runs without its privileges; --no-stracer keeps them"
            )

    def left_behind(self, exe: str, rc: int, rest: list[tuple[int, str]], ender: str) -> None:
        """The command exited; traced processes it started still run (one line).  ender: what
        ends them ("Ctrl-C", "SIGTERM to iotrace run (pid N)"; "": nothing iotrace was not
        started ignoring)."""
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
        shown = ", ".join(f"{pid} ({cmd})" for pid, cmd in rest[:5])
        more = f" and {len(rest) - 5} more" if len(rest) > 5 else ""
        if len(rest) == 1:
            what, them = f"1 traced process it started still runs: pid {shown}", "it"
        else:
            what, them = f"{len(rest)} traced processes it started still run: pids {shown}", "them"
        if ender:
            again = ender.split()[0]
            end = f"{ender} ends {them} (SIGTERM, a second {again} SIGKILL)"
        else:
            end = f"iotrace run was started with SIGINT and SIGTERM ignored: kill {them} to end it"
        self._say(
            f"iotrace: {exe} {how}; {what}{more}. iotrace waits for {them} (a traced process "
            f"cannot be let go: its I/O would fail); {end}"
        )

    def note(self, what: str) -> None:
        self._say(f"iotrace: {what}")

    def internal(self, what: str) -> None:
        self._say(f"iotrace: stracer: internal error ({what}); the command goes on, some "
                  "missed I/O may be unrecorded")  # fmt: skip

    def summary(self, counts: dict[str, int]) -> None:
        shown = [g for g in self.groups.values() if g.shown]
        quiet = [g for g in self.groups.values() if not g.shown]
        if shown:
            groups = sorted(shown, key=lambda g: -g.count)
            for g in groups[:MAX_SUMMARY]:
                n = "1 syscall" if g.count == 1 else f"{g.count} syscalls"
                self._say(
                    f"iotrace: missed I/O: {n} not seen by the shim — {g.what()} "
                    f"at {g.label} [pid {g.pid}]{g.moved()}"
                )
            if len(groups) > MAX_SUMMARY:
                self._say(
                    f"iotrace: missed I/O: {len(groups) - MAX_SUMMARY} more call sites "
                    "(iotrace missed DIR lists them all)"
                )
        if quiet:
            n = sum(g.count for g in quiet)
            sites = "1 call site" if len(quiet) == 1 else f"{len(quiet)} call sites"
            self._say(
                f"iotrace: missed I/O: {n} more syscall{'s' if n > 1 else ''} on system files, "
                f"sockets and eventfds (/proc, /sys, /dev, /etc, /run, time zones, locales) at "
                f"{sites}, libraries' own work (iotrace missed DIR lists them)"
            )
        checked = syscalls_checked(counts)
        self._say(
            f"iotrace: stracer: {checked} I/O syscalls checked: {counts.get('covered', 0)} "
            f"covered by the shim, {counts.get('loader', 0)} by the loader before the shim, "
            f"{counts.get('shim', 0)} by the shim itself, {counts.get('bypass', 0)} missed, "
            f"{counts.get('libc', 0)} inside libc functions the shim does not wrap (recorded)"
        )
        if counts.get("link_bad"):
            self._say(
                f"iotrace: stracer: {counts['link_bad']} malformed shim-stracer link messages "
                "dropped (fd news or hellos that were not well-formed)"
            )


def syscalls_checked(counts: dict[str, int]) -> int:
    """The stops a COUNTS record's classes sum to ("python": how many of them Python handled,
    and "link_bad": malformed link messages, are no classes of their own)."""
    return sum(n for k, n in counts.items() if k not in ("link_bad", "python"))
