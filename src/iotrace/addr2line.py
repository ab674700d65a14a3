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

import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from iotrace.elf import open_regular

Symbol = tuple[str | None, str | None, int | None]  # function, file, line

_DISCRIMINATOR = re.compile(r"\s*\(discriminator \d+\)$")


def _command(module: str, inline: bool = False) -> list[str] | None:
    tool = shutil.which("addr2line")
    if tool is None or not Path(module).is_file():
        return None
    # -a: each answer starts with the address asked, which keeps reader and tool in step
    return [tool, "-e", module, "-f", "-C", "-a", *(["-i"] if inline else [])]


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


def resolve(module: str, offsets: Iterable[int], timeout: float = 120) -> dict[int, Symbol]:
    """offset -> (function, file, line) for addresses in `module`; {} where it cannot run."""
    offs = sorted(set(offsets))
    cmd = _command(module)
    if not offs or cmd is None:
        return {}
    try:
        proc = subprocess.run(
            cmd,
            input="".join(f"{o:#x}\n" for o in offs),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    return _parse(proc.stdout.splitlines())


class Server:
    """`addr2line` for one module, kept running; `lookup` answers within `timeout` or gives up
    on the module (a stracer must never wait on a tool that does not answer)."""

    def __init__(self, module: str, inline: bool = False) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.inline = inline  # the outermost of the inlined levels (_parse_inline)
        try:  # the tool reads the file opened here (elf.open_regular), never a FIFO or device
            f = open_regular(module)
        except OSError:
            return
        with f:
            cmd = _command(f"/proc/self/fd/{f.fileno()}", inline)
            if cmd is None:
                return
            try:
                self.proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    pass_fds=(f.fileno(),),
                )
            except OSError:
                self.proc = None

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
