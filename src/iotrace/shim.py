"""Where the preload shim is: built by CMake and installed inside this package."""

from __future__ import annotations

import os
from pathlib import Path

SHIM_NAME = "libiotrace.so"


class ShimNotFound(Exception):
    pass


def shim_path(mpi: str | None = None) -> Path:
    """The shim's absolute path: the one whose MPI-IO wrappers serve the MPI family `mpi`
    (iotrace.mpi.FAMILIES) when one was built for it, else the default (built for the MPI the
    build found first).  IOTRACE_SHIM overrides it (for a build tree)."""
    override = os.environ.get("IOTRACE_SHIM")
    if override:
        p = Path(override).resolve()
    else:
        # installed next to this module; an editable install keeps it in site-packages
        p = Path(__file__).with_name(SHIM_NAME).resolve()
        if not p.is_file():
            from importlib import resources  # ~40 ms of imports: only when needed

            p = Path(str(resources.files("iotrace").joinpath(SHIM_NAME))).resolve()
        variant = p.with_name(f"libiotrace-{mpi}.so") if mpi else None
        if variant and variant.is_file():
            p = variant
    if not p.is_file():
        raise ShimNotFound(f"the preload shim {p} is missing: reinstall iotrace (pip install .)")
    return p
