"""The project's small C helpers loaded with cffi in ABI mode (the analyzer's decoder, the
stracer's loop): the library CMake built at install time, else (an editable install whose C
source was edited since) one compiled from the source into the user's private cache, else None:
the caller cannot do without it (the analyzer, the stracer), and one line says why.

Native code runs with the caller's privileges (often root): it is loaded only from the package
itself or from a cache directory that is the caller's alone (owned by them, mode 0700, no other
writer), never from a shared place such as /tmp.  The cache is opened once and every file in it
made, checked and loaded through that descriptor, never by its path again: a user who may
rename a directory on the way to it (root's HOME or IOTRACE_CACHE under theirs: a sudo that
kept HOME) cannot swap one of theirs in between the check and the load."""

from __future__ import annotations

import contextlib
import importlib
import os
import stat
import sys
from pathlib import Path

from iotrace.format import c_header as format_c_header
from iotrace.tracedir import TraceDirError, open_dir

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: ~2 ms of the stracer's start (issue 19)
    from typing import Any

# why a library is not available, by stem: said once on stderr, or by the caller (say=False)
WHY_NOT: dict[str, str] = {}


def cache_dir() -> Path:
    env = os.environ.get("IOTRACE_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "iotrace" if xdg else Path.home() / ".cache" / "iotrace"


_CACHE_FDS: dict[Path, tuple[int, int, int]] = {}  # cache -> its descriptor, device, inode


def _cache_fd(cache: Path) -> int:
    """The cache directory, created 0700 or checked (ours, no symlink, no other writer: the
    trace directory's rules), as a descriptor kept for the process (made again if closed
    since); TraceDirError, OSError."""
    kept = _CACHE_FDS.get(cache)
    if kept is not None:
        with contextlib.suppress(OSError):
            st = os.fstat(kept[0])
            if (st.st_dev, st.st_ino) == kept[1:]:
                return kept[0]
    fd = open_dir(cache).fd
    st = os.fstat(fd)
    _CACHE_FDS[cache] = (fd, st.st_dev, st.st_ino)
    return fd


def _in(dfd: int, name: str) -> str:
    """A path to `name` in the directory of `dfd` that goes through the descriptor itself."""
    return f"/proc/self/fd/{dfd}/{name}"


def _ours(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022 and stat.S_ISREG(st.st_mode)


def compiler() -> str | None:
    import shutil  # this and subprocess only when a library must be built

    cc = os.environ.get("CC")
    if cc and shutil.which(cc):
        return cc
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return found
    return None


def library(package: str, stem: str, cache_name: str, say: bool = True) -> Path | None:
    """See _library; when it gives None, one line says why (`say`: here, on stderr; else the
    caller says it, from WHY_NOT)."""
    lib = _library(package, stem, cache_name)
    if lib is None and say and stem in WHY_NOT:
        print(f"iotrace: {WHY_NOT.pop(stem)}", file=sys.stderr)
    return lib


def _say(stem: str, why: str) -> None:
    WHY_NOT[stem] = f"{stem}.so {why}"


def generated_headers() -> dict[str, bytes]:
    """The generated headers a C source may include, by name: iot_format.h (format.py) and
    iot_kio.h (calls.py), as the build writes them (calls.main)."""
    from iotrace.calls import kio_c_header  # only when a library must be built

    return {"iot_format.h": format_c_header().encode(), "iot_kio.h": kio_c_header().encode()}


def source_tag(src: Path) -> str:
    """The cache name's hash of a C source: its text, the generated headers it may include, the
    machine."""
    import hashlib  # OpenSSL's libcrypto: loaded only when a library must be built

    data = src.read_bytes() + b"".join(generated_headers().values()) + os.uname().machine.encode()
    return hashlib.sha256(data).hexdigest()[:16]


def _library(package: str, stem: str, cache_name: str) -> Path | None:
    """`stem`.so of `package`, else one built from its `stem`.c in the private cache, else None.

    The installed library wins unless the source was edited since (an editable install keeps the
    library in site-packages and the source in the tree: both are on the package's __path__); a
    compiled one is cached by the hash of its source."""
    dirs = [Path(d) for d in importlib.import_module(package).__path__]
    prebuilt = next((d / f"{stem}.so" for d in dirs if (d / f"{stem}.so").exists()), None)
    src = next((d / f"{stem}.c" for d in dirs if (d / f"{stem}.c").exists()), None)
    if prebuilt and (src is None or prebuilt.stat().st_mtime >= src.stat().st_mtime):
        return prebuilt
    if src is None:
        _say(stem, "is missing (reinstall iotrace)")
        return None
    headers = generated_headers()
    tag = source_tag(src)
    what = "is older than its source" if prebuilt else "is missing"
    cache = cache_dir()
    try:
        dfd = _cache_fd(cache)
    except (TraceDirError, OSError) as exc:
        why = exc if isinstance(exc, TraceDirError) else f"{cache}: {exc.strerror}"
        _say(stem, f"{what} and the cache is unusable ({why})")
        return None
    name = f"{cache_name}-{tag}.so"
    lib = Path(_in(dfd, name))  # loaded through the checked directory
    try:
        if _ours(os.stat(name, dir_fd=dfd, follow_symlinks=False)):
            return lib
        _say(stem, f"{what} and {cache / name} is not yours alone")
        return None
    except FileNotFoundError:
        pass
    cc = compiler()
    if cc is None:
        _say(stem, f"{what} and there is no C compiler to build it")
        return None
    import shutil
    import subprocess

    tmp = f"{cache_name}-{tag}.{os.getpid()}.tmp.so"
    inc = f"{cache_name}-{tag}.{os.getpid()}.include"
    try:
        os.mkdir(inc, 0o700, dir_fd=dfd)
        for hname, text in headers.items():
            fd = os.open(f"{inc}/{hname}", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o600, dir_fd=dfd)  # fmt: skip
            with os.fdopen(fd, "wb") as f:
                f.write(text)
        # the compiler and the tools it runs reach the directory by the same descriptor
        subprocess.run([cc, "-O2", "-fPIC", "-shared", "-I", _in(dfd, inc), "-o", _in(dfd, tmp),
                        str(src)], check=True, capture_output=True, timeout=120,
                       pass_fds=(dfd,))  # fmt: skip
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)  # atomic: concurrent builders agree
        return lib
    except (OSError, subprocess.SubprocessError) as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dfd)
        _say(stem, f"{what} and building it failed ({exc})")
        return None
    finally:
        shutil.rmtree(inc, dir_fd=dfd, ignore_errors=True)


def ffi(name: str, cdef: str) -> Any:
    """A cffi FFI for `cdef` (ABI mode).  Parsing a cdef runs pycparser: ~50 ms of CPU in every
    process that does it (the stracer parsed three at each `iotrace run`, per rank under
    mpirun).  So the first parse emits cffi's out-of-line ABI module (pure Python: the parsed
    types as data) into the private cache, under the libraries' rules above, compiled, and later
    processes run that code (~0.06 M instructions; its source ~1.1 M, and the builtin compile()'s
    first call in a process ~7.8 M more, setting up the ast module's types: ~3 ms of a stracer's
    start, per rank under mpirun; issue 19).  Without a usable cache: parsed every time."""
    import marshal
    import zlib

    import _cffi_backend  # cffi itself (and pycparser) only when a cdef must be parsed

    # the name tells versions apart (marshal's code is the interpreter's own); the module holds
    # its key, compared before it is used
    key = "\0".join((_cffi_backend.__version__, sys.version, str(marshal.version), cdef))
    mod = f"_iotrace_ffi_{name}_{zlib.crc32(key.encode()):08x}"
    cache = cache_dir()
    name = f"{mod}.code"
    try:
        dfd: int | None = _cache_fd(cache)
    except (TraceDirError, OSError):
        dfd = None
    try:
        if dfd is not None:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            with os.fdopen(fd, "rb") as src:
                if _ours(os.fstat(src.fileno())):
                    import types

                    m = types.ModuleType(mod)
                    m.__file__ = str(cache / name)
                    exec(marshal.loads(src.read()), m.__dict__)
                    if getattr(m, "IOTRACE_KEY", None) == key:
                        return m.ffi
    except Exception:  # none there, not ours, unreadable: parse it
        pass
    from cffi import FFI

    f = FFI()
    f.cdef(cdef)
    if dfd is None:
        return f
    tmp = f"{mod}.{os.getpid()}.tmp"
    try:
        from cffi.recompiler import make_py_source  # emit_python_code prints a line

        make_py_source(f, mod, _in(dfd, tmp))
        fd = os.open(tmp, os.O_RDWR | os.O_NOFOLLOW, dir_fd=dfd)
        with os.fdopen(fd, "r+b") as out:
            code = compile(out.read() + f"\nIOTRACE_KEY = {key!r}\n".encode(), str(cache / name),
                           "exec")  # fmt: skip
            out.seek(0)
            out.truncate()
            out.write(marshal.dumps(code))
        os.chmod(tmp, 0o600, dir_fd=dfd)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)  # atomic: concurrent writers agree
    except Exception:  # the cache is an optimisation, never a failure
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dfd)
    return f
