"""Which module file a return address is in, and whether that file is still the one the job
ran: the shim's MODULE records (docs/format.md) as every symboliser reads them (the analyzer's
stacks, `iotrace show --stacks`).  No pandas: `show` imports it."""

from __future__ import annotations

import warnings
from pathlib import Path

from iotrace.elf import build_id, open_regular


def module_of(mods: list[tuple], pc: int) -> tuple | None:
    """(base, lo, hi, path[, build_id]) of the module holding pc: the last one recorded."""
    for m in reversed(mods):
        if m[1] <= pc < m[2]:
            return m
    return None


def same_file(module: str, ran: dict[str, set[bytes]]) -> bool:
    """The file at `module` is what the job ran: same build-id (or nothing to compare)."""
    ids = ran.get(module)
    if not ids or not Path(module).is_file() or build_id(module) in ids:
        return True  # the same file, or nothing to compare (no file: no symbols either)
    why = _unreadable(module)
    warnings.warn(
        f"{module} cannot be read ({why}): its frames are left as module+offset"
        if why
        else f"{module} is not the file the job ran (its build-id differs: rebuilt or replaced "
        "since): its frames are left as module+offset",
        stacklevel=2,
    )
    return False


def _unreadable(path: str) -> str | None:
    """Why the file cannot be read by this user (a binary of mode 0711), None if it can: its
    build-id unread is not a rebuilt file."""
    try:  # a regular file only (elf.open_regular): a device swapped in since the build-id was
        # read (a link on the way to it) is never opened, nor a FIFO's writer let go
        open_regular(path).close()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
