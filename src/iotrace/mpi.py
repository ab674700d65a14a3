"""Which MPI a command runs with, so that `iotrace run` preloads the shim whose MPI-IO wrappers
were compiled against that MPI's mpi.h (Open MPI's handles are pointers, MPICH's ints: one shim
per family, docs/mpi.md).  Read from the ELF files alone: the program's DT_NEEDED libraries and
theirs, resolved the way the dynamic loader does (RUNPATH, LD_LIBRARY_PATH, ld.so.conf)."""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping

from iotrace import elf

FAMILIES = ("openmpi", "mpich")
# launchers that link no libmpi, by the name of the file they are
LAUNCHERS = {"mpiexec.hydra": "mpich", "hydra_pmi_proxy": "mpich", "orterun": "openmpi",
             "prterun": "openmpi"}  # fmt: skip
_MAX_OBJECTS = 64  # libraries looked at per program: an app's closure is far smaller
_MAX_ARGS = 32  # command words looked at (mpirun's options, then the rank's program)


def which(name: str, path: str | None = None) -> str | None:
    """The first executable file `name` on PATH (`path`), as shutil.which finds it: `iotrace
    run` does without shutil's imports (compression modules, threading)."""
    for d in (os.environ.get("PATH", os.defpath) if path is None else path).split(os.pathsep):
        f = os.path.join(d, name)
        if os.access(f, os.X_OK) and not os.path.isdir(f):
            return f
    return None


def soname_family(soname: str) -> str | None:
    """libmpich.so.N is MPICH; libmpi.so.12 is the MPICH ABI (MPICH, Intel MPI); any other
    libmpi.so.N is Open MPI's (40 since 3.0)."""
    if soname.startswith("libmpich.so") or soname == "libmpi.so.12":
        return "mpich"
    if soname.startswith("libmpi.so"):
        return "openmpi"
    return None


def _conf_dirs(path: str, depth: int = 0) -> list[str]:
    out: list[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line.startswith("include ") and depth < 4:
            for inc in sorted(glob.glob(line.split(None, 1)[1].strip())):
                out += _conf_dirs(inc, depth + 1)
        elif line.startswith("/"):
            out.append(line)
    return out


def search_dirs(env: Mapping[str, str]) -> list[str]:
    """Where a library without a RUNPATH is looked for, in the loader's order."""
    dirs = [d for d in env.get("LD_LIBRARY_PATH", "").split(":") if d]
    dirs += _conf_dirs("/etc/ld.so.conf")
    dirs += ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64",
             "/lib", "/usr/lib"]  # fmt: skip
    return dirs


def linked_family(path: str, env: Mapping[str, str]) -> str | None:
    """The MPI family an ELF program or library links, directly or through its libraries."""
    dirs = search_dirs(env)
    todo, seen = [path], {os.path.realpath(path)}
    while todo and len(seen) <= _MAX_OBJECTS:
        needed, runpath = elf.dynamic(todo.pop(0))
        for soname in needed:
            fam = soname_family(soname)
            if fam:
                return fam
            for d in [*runpath, *dirs]:
                lib = os.path.join(d, soname)
                if os.path.isfile(lib):
                    real = os.path.realpath(lib)
                    if real not in seen:
                        seen.add(real)
                        todo.append(lib)
                    break
    return None


def command_family(command: list[str], env: Mapping[str, str]) -> str | None:
    """The family of the first word of the command that is a program linking an MPI: the
    command itself, or the program a launcher starts (`mpirun -np 4 ./app`); else that of a
    launcher known by name; None: no MPI found."""
    path = env.get("PATH", os.defpath)
    launcher = None
    for word in command[:_MAX_ARGS]:
        exe = word if "/" in word else which(word, path)
        if not exe or not os.path.isfile(exe):
            continue
        fam = linked_family(exe, env)
        if fam:
            return fam
        launcher = launcher or LAUNCHERS.get(os.path.basename(os.path.realpath(exe)))
    return launcher
