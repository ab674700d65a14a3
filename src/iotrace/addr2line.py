"""Symbols from binutils' addr2line: function, file and line of addresses in an ELF file.

Why addr2line and not pyelftools: it is C and reads DWARF 2-5, compressed debug sections, split
debug files (.gnu_debuglink, /usr/lib/debug/.build-id) and demangles C++/Rust; loading libc's
debug file takes it ~70 ms where a pure-Python line-table walk takes seconds.  Two ways to run
it, one parser:

- `resolve(module, offsets)`: one run with every address on stdin (the analyzer, after the run);
- `Server(module)`: one process kept running per module (the stracer, a few addresses per new
  call site while the job runs).  addr2line flushes its answer to each address it reads, so
  the module's debug info is loaded once, not once per call site (an MPI job's start-up spent
  ~3 s in addr2line before).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Collection, Iterable, Iterator

from iotrace.elf import debuglink, ids_of, open_regular

Symbol = tuple[str | None, str | None, int | None]  # function, file, line

_DISCRIMINATOR = re.compile(r"\s*\(discriminator \d+\)$")


DEBUG_DIR = "/usr/lib/debug"  # addr2line's global directory of separate debug files


def _command(module: str, inline: bool = False) -> list[str] | None:
    tool = shutil.which("addr2line")
    if tool is None:
        return None
    # -a: each answer starts with the address asked, which keeps reader and tool in step
    return [tool, "-e", module, "-f", "-C", "-a", *(["-i"] if inline else [])]


@contextlib.contextmanager
def _private_dir() -> Iterator[int]:
    """A new directory of ours (0700, a random name in tracedir.private_tmp()) as a descriptor:
    the tool is given names through it (/proc/self/fd/D/...), never through a path another
    user could rename."""
    from iotrace.tracedir import private_tmp

    path = f"{private_tmp()}/.iotrace-addr2line-{os.urandom(8).hex()}"
    os.mkdir(path, 0o700)
    try:
        dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        with contextlib.suppress(OSError):
            os.rmdir(path)
        raise
    try:
        yield dfd
    finally:
        for name in os.listdir(dfd):
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dfd)
        os.close(dfd)
        with contextlib.suppress(OSError):
            os.rmdir(path)


@contextlib.contextmanager
def _opened(
    module: str, ids: Collection[bytes] = ()
) -> Iterator[tuple[str, tuple[int, ...]] | None]:
    """The module, and its separate debug file (.gnu_debuglink: next to it, in .debug/ or under
    /usr/lib/debug, where addr2line looks), each opened here with elf.open_regular, and the
    name to give the tool: a link, in a private directory, to the module's descriptor (the
    debug file's beside it), with the descriptors to pass.  The tool opens only these: it read
    whatever the module's owner swapped in after the module was checked (a FIFO: no symbols,
    or, between the tool's own check and open, a wait for a writer until the timeout); None if
    the module cannot be opened so, or if what was opened has not one of `ids` (the build-ids
    the job ran, when known: the shim's modules' or, in the stracer, those of the process's
    mapping, elf.mapped_ids): checked on the descriptor the tool reads, not on the path
    earlier (the module's owner swapped another file in after the report's check and its
    symbols named the job's frames)."""
    with contextlib.ExitStack() as stack:
        try:
            files = [stack.enter_context(open_regular(module))]
            if ids and not ids_of(f"/proc/self/fd/{files[0].fileno()}") & set(ids):
                raise OSError("not the file the job ran")
            name = debuglink(files[0].fileno())
            parent = os.path.dirname(module)
            for d in (parent, f"{parent}/.debug", f"{DEBUG_DIR}{parent}") if name else ():
                with contextlib.suppress(OSError):
                    files.append(stack.enter_context(open_regular(f"{d}/{name}")))
                    break
            dfd = stack.enter_context(_private_dir())
            base = os.path.basename(module) or "module"
            os.symlink(f"/proc/self/fd/{files[0].fileno()}", base, dir_fd=dfd)
            if name and len(files) > 1 and name != base:
                os.symlink(f"/proc/self/fd/{files[1].fileno()}", name, dir_fd=dfd)
        except OSError:
            opened = None
        else:
            opened = f"/proc/self/fd/{dfd}/{base}", (dfd, *(f.fileno() for f in files))
        yield opened


def _parse_inline(lines: list[str]) -> dict[int, Symbol]:
    """Answers of `addr2line -f -C -a -i`: the address, then (function, file:line) per level of
    inlining, innermost first; the outermost is kept: the function the address is in and the
    line of the call the inlined code came from (Go inlines small callers' callees: os.Create
    into main.main gives main.main at the line of the os.Create call)."""
    out: dict[int, Symbol] = {}
    start = [i for i, ln in enumerate(lines) if ln.startswith("0x")]
    for k, i in enumerate(start):
        end = start[k + 1] if k + 1 < len(start) else len(lines)
        if end - i >= 3:
            out.update(_parse([lines[i], *lines[end - 2 : end]]))
    return out


def _parse(lines: list[str]) -> dict[int, Symbol]:
    """Answers of `addr2line -f -C -a`: three lines per address (0xADDR, function, file:line)."""
    out: dict[int, Symbol] = {}
    for i in range(0, len(lines) - 2, 3):
        try:
            off = int(lines[i], 16)
        except ValueError:
            break  # not the shape asked for: give up on the rest
        func = lines[i + 1].strip()
        loc = _DISCRIMINATOR.sub("", lines[i + 2].strip())
        file, _, line = loc.rpartition(":")
        out[off] = (
            None if func in ("", "??") else func,
            None if file in ("", "??") else file,
            int(line) if line.isdigit() and line != "0" else None,
        )
    return out


def resolve(
    module: str, offsets: Iterable[int], timeout: float = 120, ids: Collection[bytes] = ()
) -> dict[int, Symbol]:
    """offset -> (function, file, line) for addresses in `module`; {} where it cannot run, or
    where the file is not one of `ids` (the build-ids the job ran) when they are known."""
    offs = sorted(set(offsets))
    if not offs:
        return {}
    with _opened(module, ids) as opened:
        cmd = None if opened is None else _command(opened[0])
        if opened is None or cmd is None:
            return {}
        try:
            proc = subprocess.run(
                cmd,
                input="".join(f"{o:#x}\n" for o in offs),
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                pass_fds=opened[1],
            )
        except (OSError, subprocess.SubprocessError):
            return {}
    return _parse(proc.stdout.splitlines())


class Server:
    """`addr2line` for one module, kept running; `lookup` answers within `timeout` or gives up
    on the module (a stracer must never wait on a tool that does not answer).  `ids`: the ids
    of the file the process maps (_opened); nothing is answered from another."""

    def __init__(self, module: str, inline: bool = False, ids: Collection[bytes] = ()) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.inline = inline  # the outermost of the inlined levels (_parse_inline)
        # open until the first answer: the tool opens the debug file at its first lookup; not
        # for the stracer's life (a stracer killed would leave the links' directory behind)
        self._files: contextlib.AbstractContextManager[tuple[str, tuple[int, ...]] | None] | None
        self._files = _opened(module, ids)
        opened = self._files.__enter__()
        cmd = None if opened is None else _command(opened[0], inline)
        if opened is None or cmd is None:
            self._release()
            return
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                pass_fds=opened[1],
            )
        except OSError:
            self.proc = None
            self._release()

    def _release(self) -> None:
        files, self._files = self._files, None
        if files is not None:
            files.__exit__(None, None, None)

    def lookup(self, offsets: Iterable[int], timeout: float = 10) -> dict[int, Symbol]:
        offs = sorted(set(offsets))
        proc = self.proc
        if not offs or proc is None or proc.stdin is None or proc.stdout is None:
            return {}
        # with -i an answer has 1 + 2n lines: address 0 (never a frame's) follows the real ones
        # and its answer, 3 lines, ends the reply
        ask = [*offs, 0] if self.inline else offs
        try:  # a few addresses: their answers fit the pipe, so write all, then read
            proc.stdin.write("".join(f"{o:#x}\n" for o in ask).encode())
            proc.stdin.flush()
        except OSError:
            self.close()
            return {}
        fd, buf, want = proc.stdout.fileno(), b"", 3 * len(offs)
        deadline = time.monotonic() + timeout
        while not self._complete(buf, want):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.close(kill=True)  # not waited for again
                return {}
            chunk = os.read(fd, 65536)
            if not chunk:
                self.close()
                return {}
            buf += chunk
        self._release()  # the tool has opened the module and its debug file by now
        lines = buf.decode(errors="replace").splitlines()
        if self.inline:
            got = _parse_inline(lines)
            got.pop(0, None)
            return got
        return _parse(lines)

    def _complete(self, buf: bytes, want: int) -> bool:
        if not self.inline:
            return buf.count(b"\n") >= want
        lines = buf.split(b"\n")
        return any(ln.startswith(b"0x") and int(ln, 16) == 0 and len(lines) - i > 3
                   for i, ln in enumerate(lines))  # fmt: skip

    def close(self, kill: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        self._release()  # the tool has its own descriptors; the links' directory goes
        if kill:
            proc.kill()
        for f in (proc.stdin, proc.stdout):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
