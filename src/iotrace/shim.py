"""Where the preload shim is: built by CMake and installed inside this package."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

SHIM_NAME = "libiotrace.so"


class ShimNotFound(Exception):
    pass


def shim_path() -> Path:
    """The shim's absolute path.  IOTRACE_SHIM overrides it (for a build tree)."""
    override = os.environ.get("IOTRACE_SHIM")
    if override:
        p = Path(override).resolve()
    else:
        # installed next to this module; an editable install keeps it in site-packages
        p = Path(str(resources.files("iotrace").joinpath(SHIM_NAME))).resolve()
    if not p.is_file():
        raise ShimNotFound(f"the preload shim {p} is missing: reinstall iotrace (pip install .)")
    return p
