"""The project's small C helpers loaded with cffi in ABI mode (the analyzer's decoder, the
stracer's loop): the library CMake built at install time, else one compiled from the source into
a cache directory, else None (the caller falls back to Python)."""

from __future__ import annotations

import hashlib
import importlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    env = os.environ.get("IOTRACE_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "iotrace" if xdg else Path.home() / ".cache" / "iotrace"


def compiler() -> str | None:
    cc = os.environ.get("CC")
    if cc and shutil.which(cc):
        return cc
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return found
    return None


def library(package: str, stem: str, cache_name: str) -> Path | None:
    """`stem`.so of `package`, else one built from its `stem`.c, else None.

    The installed library wins unless the source was edited since (an editable install keeps the
    library in site-packages and the source in the tree: both are on the package's __path__); a
    compiled one is cached by the hash of its source."""
    dirs = [Path(d) for d in importlib.import_module(package).__path__]
    prebuilt = next((d / f"{stem}.so" for d in dirs if (d / f"{stem}.so").exists()), None)
    src = next((d / f"{stem}.c" for d in dirs if (d / f"{stem}.c").exists()), None)
    if prebuilt and (src is None or prebuilt.stat().st_mtime >= src.stat().st_mtime):
        return prebuilt
    if src is None:
        return None
    tag = hashlib.sha256(src.read_bytes() + platform.machine().encode()).hexdigest()[:16]
    cc = compiler()
    for cache in (cache_dir(), Path(tempfile.gettempdir()) / f"iotrace-{os.getuid()}"):
        lib = cache / f"{cache_name}-{tag}.so"
        if lib.exists():
            return lib
        if cc is None:
            continue
        try:
            cache.mkdir(parents=True, exist_ok=True)
            tmp = cache / f"{cache_name}-{tag}.{os.getpid()}.tmp.so"
            subprocess.run([cc, "-O2", "-fPIC", "-shared", "-o", str(tmp), str(src)],
                           check=True, capture_output=True, timeout=120)  # fmt: skip
            os.replace(tmp, lib)  # atomic: concurrent builders agree
            return lib
        except (OSError, subprocess.SubprocessError):
            continue
    return None
