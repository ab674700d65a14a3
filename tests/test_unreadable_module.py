"""A module of the job the reporting user cannot read (a binary of mode 0711) is said unreadable,
not rebuilt since the run (its build-id could not be read)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from iotrace.run import launcher

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def test_an_unreadable_module_is_not_said_rebuilt() -> None:
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv")
    d = Path(tempfile.mkdtemp(prefix="iotrace-unreadable-"))
    try:
        shutil.chown(d, "nobody")
        prog = d / "myecho"
        shutil.copy("/bin/echo", prog)
        prog.chmod(0o755)
        run = subprocess.run([*NOBODY, launcher(), "run", "-o", str(d / "t"), "--", str(prog),
                              "hi"], capture_output=True, text=True, timeout=120)  # fmt: skip
        assert run.returncode == 0, run.stderr
        prog.chmod(0o711)
        r = subprocess.run([*NOBODY, launcher(), "report", str(d / "t")], capture_output=True,
                           text=True, timeout=120)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert f"{prog} cannot be read (Permission denied)" in r.stderr, r.stderr
        assert "build-id differs" not in r.stderr, r.stderr
    finally:
        shutil.rmtree(d)
