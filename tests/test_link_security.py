"""The shim <-> stracer link is a trust boundary (docs/stracer.md, "fd news").

Another user (`nobody`) must find nothing to connect to, inject into, read from or squat while a
root job is traced; malformed messages on the link (oversize, truncated, garbage), delivered by a
stracer patched to send them, are dropped and counted and leave the app's results and the trace
intact."""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Traced, build
from iotrace.stracer.slog import log_files
from iotrace.stracer.slog import read as read_slog

try:  # the attacker's ZeroMQ peer, as a local user would write one (imported before it forks)
    import zmq
except ImportError:
    zmq = None

NOBODY = 65534
FORGED = "/forged-by-nobody"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody")


def _tree(root: int) -> list[int]:
    """root and its descendants, from /proc."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _unix_names(pids: list[int]) -> list[tuple[str, int]]:
    """(name, owner pid) of every named unix socket these processes hold (as root sees them)."""
    inodes: dict[int, int] = {}
    for pid in pids:  # every thread: one may have a descriptor table of its own
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                fds = f"/proc/{pid}/task/{tid}/fd"
                for fd in os.listdir(fds):
                    target = os.readlink(f"{fds}/{fd}")
                    if target.startswith("socket:["):
                        inodes[int(target[8:-1])] = pid
        except OSError:
            continue
    names = []
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 8 and int(cols[6]) in inodes and cols[7] not in dict(names):
            names.append((cols[7], inodes[int(cols[6])]))
    return names


def _sockaddr(name: str) -> str | bytes:
    return b"\0" + name[1:].encode() if name.startswith("@") else name


def _attacker(names: list[tuple[str, int]], app: int, link_addr: int, ready: int, go: int) -> dict:
    """As nobody: try every way in; returns what worked and what it read."""
    import socket

    out: dict[str, Any] = {"connected": [], "received": [], "squatted": []}
    ctx = zmq.Context() if zmq else None
    for name, owner in names:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(_sockaddr(name))
            out["connected"].append(name)
        except OSError:
            continue
        finally:
            s.close()
        if ctx is not None:  # inject: forged "open" news for the descriptors the app may use
            push = ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 1000)
            push.connect(f"ipc://{name}")
            for fd in range(3, 10):
                push.send(struct.pack("<iiii", 1, fd, 0, 0) + f"{FORGED}/{fd}".encode())
            push.close()
        # squat: the same name for the next pids, which the app's children will get
        base = name.rsplit("-", 1)
        if ctx is not None and len(base) == 2 and base[1] == str(owner):
            for pid in range(owner + 1, owner + 300):
                pull = ctx.socket(zmq.PULL)
                try:
                    pull.bind(f"ipc://{base[0]}-{pid}")
                    out["squatted"].append(pull)
                except zmq.ZMQError:
                    pull.close()
    # the process's memory: where the stracer writes the news in this design
    libc = ctypes.CDLL(None, use_errno=True)

    class IoVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

    buf = ctypes.create_string_buffer(b"\xff" * 8)
    local, remote = IoVec(ctypes.addressof(buf), 8), IoVec(link_addr, 8)
    libc.process_vm_writev.restype = ctypes.c_ssize_t
    r = libc.process_vm_writev(app, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    out["vm_write"] = 0 if r >= 0 else ctypes.get_errno()
    try:
        with open(f"/proc/{app}/mem", "rb"):
            out["mem_open"] = 0
    except OSError as exc:
        out["mem_open"] = exc.errno
    os.write(ready, b"r")
    os.read(go, 1)  # the app has run its child and finished
    deadline = time.monotonic() + 1.0
    for pull in out["squatted"]:
        while pull.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            out["received"].append(pull.recv()[16:].decode(errors="replace"))
    out["squatted"] = len(out["squatted"])
    return out


def _as_nobody(fn: Any, *args: Any) -> tuple[int, int, int, int]:
    """Fork; the child becomes nobody and runs fn(*args, ready, go); returns its pid, and the
    pipes: its ready signal, our go signal, its JSON result."""
    rr, rw = os.pipe()
    gr, gw = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            result = fn(*args, rw, gr)
            os.write(res_w, json.dumps(result).encode())
            code = 0
        except BaseException as exc:
            os.write(res_w, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(code)
    for fd in (rw, gr, res_w):
        os.close(fd)
    return pid, rr, gw, res_r


def _link_addr(pid: int) -> int:
    """Where the shim's iot_link is in the app (found as root: its magic and version in the
    shim's writable data); 0 if not found."""
    with open(f"/proc/{pid}/mem", "rb") as mem:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            cols = line.split()
            if len(cols) >= 6 and cols[5].endswith("libiotrace.so") and cols[1].startswith("rw"):
                lo, hi = (int(x, 16) for x in cols[0].split("-"))
                mem.seek(lo)
                m = re.search(rb"iotl[\x01-\x09]\x00\x00\x00", mem.read(hi - lo))
                if m:
                    return lo + m.start()
    return 0


def _paths(t: Traced) -> list[str]:
    return sorted({s for log in t.logs for s in log.strings.values()})


def _counts(t: Traced) -> dict[str, int]:
    total: dict[str, int] = {}
    for f in log_files(t.dir):
        for c in read_slog(f).counts.values():
            for k, v in c.items():
                total[k] = total.get(k, 0) + v
    return total


class Victim:
    """tests/progs/link_victim.c under `iotrace run`, stopped at its first read of stdin: its
    raw openat's news applied (and, before this design, its shim's endpoint bound)."""

    def __init__(self, tmp_path: Path) -> None:
        prog = build("link_victim")
        work = tmp_path / "work"
        work.mkdir()
        self.out = tmp_path / "trace"
        self.files = [work / f"{x}.out" for x in ("a", "secret", "c")]
        self.run = subprocess.Popen(
            [sys.executable, "-m", "iotrace", "run", "-o", str(self.out), "--", str(prog),
             *self.files],
            cwd=work, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,  # kill() ends the stracer and the app too
        )  # fmt: skip
        a = self.files[0]
        deadline = time.monotonic() + 60
        while not (a.exists() and a.read_bytes() == b"first\n"):
            if time.monotonic() > deadline or self.run.poll() is not None:
                self.kill()
                pytest.fail(self.run.stderr.read().decode())
            time.sleep(0.05)
        self.tree = _tree(self.run.pid)
        self.app = next(p for p in self.tree if os.path.realpath(f"/proc/{p}/exe") == str(prog))

    def finish(self) -> str:
        """Let it go on; check its results and the paths of its writes; its stderr."""
        stdout, stderr = self.run.communicate(b"\n", timeout=60)
        assert self.run.returncode == 0 and stdout == b"done\n", stderr
        a, secret, c = self.files
        assert a.read_bytes() == b"first\nsecond\n" and secret.read_bytes() == b"child\n"
        assert c.read_bytes() == b"third\n"
        t = self.traced()
        writes = sorted(e["path"] for e in t.events("write") if e["fd"] not in (1, 2))
        assert writes == sorted(map(str, (a, a, secret, c)))
        return stderr.decode()

    def traced(self) -> Traced:
        return Traced(subprocess.CompletedProcess([], 0, "", ""), self.out)

    def kill(self) -> None:
        if self.run.poll() is None:
            os.killpg(self.run.pid, signal.SIGKILL)
            self.run.wait()


def test_another_user_cannot_connect_inject_read_or_squat(tmp_path: Path):
    """A traced root job: nobody looks for the link's endpoints (every named unix socket the
    job's processes hold, as /proc/net/unix shows them to anyone), connects and sends forged
    "open" news, squats the names the job's next children would bind, and tries to write
    the shim's link in memory.  Nothing may get in or out."""
    v = Victim(tmp_path)
    try:
        names = _unix_names(v.tree)
        link = _link_addr(v.app)
        assert link
        pid, ready, go, res = _as_nobody(_attacker, names, v.app, link)
        assert os.read(ready, 1) == b"r"
        v.finish()
        os.write(go, b"g")
        result = json.loads(os.read(res, 1 << 20) or b"{}")
        os.waitpid(pid, 0)
    finally:
        v.kill()
    assert "error" not in result, result
    assert result["connected"] == [], f"nobody connected to {result['connected']}"
    assert result["received"] == [], f"nobody read {result['received']}"
    assert result["squatted"] == 0, "nobody bound the names of the job's children"
    assert result["vm_write"] != 0 and result["mem_open"] != 0  # EPERM / EACCES
    assert not [p for p in _paths(v.traced()) if FORGED in p]


def test_root_raising_the_news_counter_cannot_hang_or_corrupt(tmp_path: Path):
    """An attacker that can reach the link (root: it may write the app's memory) raises
    iot_link.posted far past what the stracer posted, as if news were waiting: the shim's next
    lookups fetch, get nothing of the kind, resynchronise and count it; the app finishes with
    its results, every write keeps its path (before: the shim waited forever for a message)."""
    v = Victim(tmp_path)
    try:
        link = _link_addr(v.app)
        assert link
        with open(f"/proc/{v.app}/mem", "r+b", buffering=0) as mem:
            mem.seek(link + 16)  # iot_link.posted
            mem.write(struct.pack("<Q", 1 << 62))
        stderr = v.finish()
    finally:
        v.kill()
    assert _counts(v.traced()).get("link_bad", 0) >= 1
    assert "malformed" in stderr


# ---- malformed messages, from a stracer patched to send them ---------------------------------

# Each is posted before every real message: the real ones must still be applied.
BAD = {
    "oversize_1MiB": struct.pack("<iiii", 1, 3, 0, 0) + b"A" * (1 << 20),
    "oversize_8KiB": struct.pack("<iiii", 1, 3, 0, 0) + b"B" * 8192,
    "truncated": b"\x01\x00\x00",
    "garbage": bytes(range(7, 7 + 64)),
    "nul_in_path": struct.pack("<iiii", 1, 3, 0, 0) + b"/tmp/x\0/etc/shadow",
}

# The stracer is its own process (iotrace-stracer, started by the launcher): patched at its
# start, through a sitecustomize first on its path.
PATCH = """
import os
from iotrace.stracer import tracer

with open(os.environ["IOTRACE_TEST_BAD"], "rb") as f:
    bad = f.read()
post = tracer.Tracer._post

def _post(self, th, m):
    post(self, th, bad)
    post(self, th, m)

tracer.Tracer._post = _post
"""


@pytest.mark.parametrize("kind", list(BAD))
def test_malformed_news_dropped_and_counted(tmp_path: Path, kind: str):
    """A raw openat, raw dup, and a number reused behind the shim's back (st_fdpath), with a
    malformed message before every real one: the app's output is unchanged, every wrapped
    write carries the right path, no stray bytes become a string of the log, and the drops
    are counted in the stracer log (COUNTS link_bad) and its summary."""
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "trace"
    argv = ["run", "-o", str(out), "--", str(build("st_fdpath")), str(work)]
    (tmp_path / "bad").write_bytes(BAD[kind])
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(PATCH)
    env = dict(os.environ, PYTHONPATH=str(site), IOTRACE_TEST_BAD=str(tmp_path / "bad"))
    proc = subprocess.run(
        [sys.executable, "-m", "iotrace", *argv],
        cwd=work, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    a, b, c = (str(work / f"{x}.out") for x in "abc")
    assert (work / "a.out").read_text() == "a\na2\na3\n" and (work / "c.out").read_text() == "c\n"
    t = Traced(proc, out)
    writes = [(e["fd"], e["path"]) for e in t.events("write") if e["fd"] not in (1, 2)]
    assert writes == [(3, a), (4, a), (5, a), (6, b), (6, c)]
    junk = [p for p in _paths(t) if any(x in p for x in ("AAAA", "BBBB", "shadow", "\x07\x08"))]
    assert junk == []
    n = _counts(t).get("link_bad", 0)
    assert n == 4, f"{n} malformed messages counted, 4 posted"  # raw openat, dup, close, openat
    assert "malformed" in proc.stderr


def test_forged_link_requests_from_the_app_are_dropped(trace):
    """The other direction: the stracer believes one hello per process image and fetches that
    name its shim's iot_link; a second hello that would make the app's raw I/O look like the
    shim's own, and a fetch for another address, are dropped and counted."""
    t = trace(build("link_forge"))
    assert t.proc.returncode == 0 and t.proc.stdout == "raw\n", t.proc.stderr
    missed = [r[4] for f in log_files(t.dir) for r in read_slog(f).missed]
    assert missed == ["write"]
    assert _counts(t).get("link_bad") == 2


def test_news_waiting_at_a_fork_reach_the_child(trace):
    """The child of a fork has its parent's counters in its memory: it fetches the news its
    parent had not applied from the stracer's copy of the parent's queue."""
    t = trace(build("link_fork"), trace.work)
    assert t.proc.returncode == 0, t.proc.stderr
    c = str(trace.work / "c.out")
    assert (trace.work / "d.out").read_text() == "child\nparent\n"
    writes = [(e["pid"], e["path"]) for e in t.events("write") if e["fd"] not in (1, 2)]
    assert len({pid for pid, _ in writes}) == 2 and [p for _, p in writes] == [c, c]


# ---- a real second process at the box -------------------------------------------------------

BOX_APP_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
/* rounds of a raw openat (fd news for the shim) and a wrapped write on it (which fetches the
 * news into the box): one, then after a byte on stdin (the attacker's turn) argv[2] more */
static int round_(const char *dir, int i)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/f%d", dir, i % 4);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    return fd >= 0 && write(fd, "x\n", 2) == 2 && close(fd) == 0;
}

int main(int argc, char **argv)
{
    char c;
    if (argc < 3 || !round_(argv[1], 0) || read(0, &c, 1) != 1)
        return 2;
    for (int i = 1; i <= atoi(argv[2]); i++)
        if (!round_(argv[1], i))
            return 3;
    puts("done");
    return 0;
}
"""


def _box_addr(pid: int) -> int:
    """The shim's fetch box in the app (as root: the stracer's last answer's magic "iotb" in
    the shim's data or the bss after it); 0 if not found."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    with open(f"/proc/{pid}/mem", "rb") as mem:
        for i, line in enumerate(maps):
            cols = line.split()
            if len(cols) < 6 or not cols[5].endswith("libiotrace.so") or cols[1][:2] != "rw":
                continue
            for ln in maps[i : i + 2]:  # the data, and the bss's own mapping past it
                lo, hi = (int(x, 16) for x in ln.split()[0].split("-"))
                mem.seek(lo)
                m = re.search(rb"iotb", mem.read(hi - lo))
                if m:
                    return lo + m.start()
    return 0


def _scribbler(app: int, link: int, box: int, ready: int, go: int) -> dict:
    """As the app's own user, another process, over and over until the app is gone (or 30 s):
    a forged answer (the box's magic, news up to a `posted` it raises too, sizes past the box),
    random bytes into the box, a random `posted`."""
    import random

    libc = ctypes.CDLL(None, use_errno=True)
    libc.process_vm_writev.restype = ctypes.c_ssize_t

    class IoVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

    rng = random.Random(7)
    buf = ctypes.create_string_buffer(64)

    def put(where: int, data: bytes) -> bool:
        ctypes.memmove(buf, data, len(data))
        local, remote = IoVec(ctypes.addressof(buf), len(data)), IoVec(where, len(data))
        return libc.process_vm_writev(app, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) > 0

    os.write(ready, b"r")
    writes = failed = 0
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{app}") and time.monotonic() < deadline:
        kind = writes % 3
        if kind == 0:  # box_head: magic, count, upto, bytes, pad
            posted = rng.randrange(1 << 40, 1 << 41)
            ok = put(link + 16, struct.pack("<Q", posted)) and put(
                box, struct.pack("<IIQII", 0x62746F69, 1000, posted, 0x7FFFFFF0, 0)
            )
        elif kind == 1:
            ok = put(box + rng.randrange(0, 4096 - 64, 4), rng.randbytes(64))
        else:
            ok = put(link + 16, rng.randbytes(8))
        writes += 1
        failed += not ok
        if writes - failed == 101:
            os.write(ready, b"h")  # 101 reached the app's memory: the test lets the app go on
    return {"writes": writes, "failed": failed}


def test_another_process_scribbling_on_the_box_costs_the_app_nothing(public_dir: Path):
    """The fetch box attacked by a real second process: one of the app's own user (who may
    write its memory: the link guards other users, not the app from itself) writes random bytes
    into the box and random `posted` counters while the app fetches its fd news round after
    round.  Every box is read through copies checked against its bounds: the app's results
    are unchanged, no process or the stracer fails, and every wrapped write still carries its
    file's path (news that did not arrive whole are learnt from /proc/self/fd)."""
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv")
    src, exe = public_dir / "box_app.c", public_dir / "box_app"
    src.write_text(BOX_APP_C)
    subprocess.run(["gcc", "-O", "-o", str(exe), str(src)], check=True)
    work = public_dir / "work"
    work.mkdir()
    os.chown(work, NOBODY, NOBODY)
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": ":".join(site)}
    run = subprocess.Popen(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
         "-m", "iotrace", "run", "-o", "t", "--", str(exe), str(work), "400"],
        cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (work / "f0").exists() or not (work / "f0").read_bytes():
            assert time.monotonic() < deadline and run.poll() is None, run.stderr.read()
            time.sleep(0.05)
        app = next(p for p in _tree(run.pid) if os.path.realpath(f"/proc/{p}/exe") == str(exe))
        link, box = _link_addr(app), _box_addr(app)
        assert link and box
        pid, ready, _go, res = _as_nobody(_scribbler, app, link, box)
        assert os.read(ready, 1) == b"r"
        assert os.read(ready, 1) == b"h"  # it scribbled 101 times before the app goes on
        out, err = run.communicate(b"\n", timeout=120)
        result = json.loads(os.read(res, 1 << 20) or b"{}")
        os.waitpid(pid, 0)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    # all of them reached the app's memory but those after its exit
    assert "error" not in result and result["writes"] - result["failed"] > 100, result
    assert (run.returncode, out) == (0, b"done\n"), err
    assert b"internal error" not in err and b"killed" not in err and b"Traceback" not in err
    counts = {f"f{i}": 0 for i in range(4)}
    for i in range(401):
        counts[f"f{i % 4}"] += 1
    assert {f.name: f.read_bytes().count(b"x\n") for f in work.glob("f?")} == counts
    t = Traced(subprocess.CompletedProcess([], 0, "", ""), work / "t")
    writes = [e["path"] for e in t.events("write") if e["fd"] not in (1, 2)]
    assert len(writes) == 401 and set(writes) == {str(work / f) for f in counts}, writes[:8]
