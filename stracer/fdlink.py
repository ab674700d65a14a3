"""fd mappings to the shims over ZeroMQ: one PUSH socket per traced process, connected to the
endpoint its shim binds on its first message (preload/stracer_link.c).  A connecting PUSH
queues messages before the peer exists, so the stracer never waits for a shim."""

from __future__ import annotations

from typing import Any


class FdLink:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.ctx: Any = None
        self.socks: dict[int, Any] = {}

    def _sock(self, pid: int) -> Any:
        s = self.socks.get(pid)
        if s is None:
            import zmq  # only a run that posts a mapping pays for libzmq and its thread

            if self.ctx is None:
                self.ctx = zmq.Context()
            s = self.ctx.socket(zmq.PUSH)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDHWM, 0)
            s.setsockopt(zmq.RECONNECT_IVL, 1)  # the shim binds when it first needs us
            s.setsockopt(zmq.RECONNECT_IVL_MAX, 10)
            s.connect(f"ipc://@iotrace-{self.run_id}-{pid}")
            self.socks[pid] = s
        return s

    def send(self, pid: int, msg: bytes) -> bool:
        try:
            import zmq

            self._sock(pid).send(msg, zmq.NOBLOCK)
        except Exception:
            return False
        return True

    def forget(self, pid: int) -> None:
        s = self.socks.pop(pid, None)
        if s is not None:
            s.close(0)

    def close(self) -> None:
        for pid in list(self.socks):
            self.forget(pid)
        if self.ctx is not None:
            self.ctx.term()
            self.ctx = None
