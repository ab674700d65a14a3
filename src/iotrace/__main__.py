"""`python -m iotrace`: the `iotrace` command.  `-m` put the working directory first on
sys.path, where another user may have planted `argparse.py` or `msgpack.py` for root to import:
it is taken off before anything else is imported.  Then the launcher installed with this package
runs the command, as `iotrace` does, after its check that no other user could change the code
iotrace runs (launcher/install.c), with the signals Python set (SIGPIPE, SIGXFSZ) as given.
Without a launcher, the command line here.  (What ran before this file -- the interpreter,
iotrace/__init__.py -- is no part of that check: give root the `iotrace` command.)"""

import os
import sys

try:
    _cwd = os.getcwd()
except OSError:  # removed: -m put none there
    _cwd = ""
if not sys.flags.safe_path and sys.path and sys.path[0] in ("", _cwd):
    del sys.path[0]

from iotrace.run import launcher
from iotrace.signals import SignalState

exe = launcher()
if exe is not None:
    SignalState.at_start().restore()
    try:
        os.execv(exe, [exe, *sys.argv[1:]])
    except OSError as exc:
        print(f"iotrace: {exe}: {exc.strerror}", file=sys.stderr)
        sys.exit(127)

from iotrace.cli import entry  # noqa: E402

entry()
