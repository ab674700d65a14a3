"""Texts (bytes) sorted by an integer key in bounded memory (`iotrace show`'s time merge): held
until their memory reaches a budget, then sorted and written to a temporary file (a run); at the
end the runs and what is still held are merged k ways.  Ties keep the order the texts were added.

Texts travel in blocks, never one Python object each: a block is (keys, ends, blob), text k
being blob[ends[k - 1]:ends[k]] (from 0 for the first); the sort's gather and the merge copy
the bytes in C (analyzer/_decode.c iot_gather, iot_merge_step).

A run is an unnamed temporary file (tempfile.TemporaryFile: O_TMPFILE on Linux, else a name
unlinked at once): nothing is left behind whatever ends the process (an error, `| head`'s
SIGPIPE, SIGKILL), and no other user can reach it by a name.  A run holds blocks written with
marshal, read back a block at a time."""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

import numpy as np

BLOCK = 1 << 14  # texts per block of a run (a run's reader holds one: ~1.5 MB of text)
BLOCK_BYTES = 2 << 20  # bytes of text per merged block (more for one longer text)
FAN_IN = 64  # runs at most: that many are merged into one longer run
ENTRY = 56  # bytes per entry beside its text: its key and end held, 5 arrays at the sort

Block = tuple[np.ndarray, np.ndarray, bytes | bytearray]  # keys, ends, blob


class Sorter:
    """add() or add_blob() batches of (key, text); iterate for every text in key order, ties in
    the order added, in blocks.  `budget`: bytes the held texts may
    take; `where`: the directory of the runs (None: tempfile's, i.e. TMPDIR)."""

    def __init__(self, budget: int, where: str | None = None) -> None:
        self.budget, self.where = budget, where
        self.batches: list[Block] = []
        self.held = 0
        self.runs: list[IO[bytes]] = []

    def add(self, keys: list[int], texts: list[bytes]) -> None:
        if not texts:
            return
        ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
        self.add_blob(b"".join(texts), np.array(keys, dtype=np.int64), ends)

    def add_blob(self, blob: bytes, keys: np.ndarray, ends: np.ndarray) -> None:
        """Texts given joined: text k is blob[ends[k - 1]:ends[k]] (from 0 for the first)."""
        if not len(keys):
            return
        self.batches.append((keys, ends, blob))
        self.held += sys.getsizeof(blob) + ENTRY * len(keys)
        if self.held > self.budget:
            self.runs.append(self._write(self._held()))
            if len(self.runs) >= FAN_IN:  # fewer files open than a process may open
                runs, self.runs = self.runs, []
                self.runs.append(self._write(_merge([_blocks(f) for f in runs])))
                for f in runs:
                    f.close()

    def _held(self) -> Iterator[Block]:
        """What is held, sorted, in blocks; releases it."""
        batches, self.batches, self.held = self.batches, [], 0
        if not batches:
            return
        keys = np.concatenate([b[0] for b in batches])
        which = np.concatenate([np.full(len(b[0]), i, dtype=np.int32)
                                for i, b in enumerate(batches)])  # fmt: skip
        ends = np.concatenate([b[1] for b in batches])
        starts = np.concatenate([np.concatenate(([0], b[1][:-1])) for b in batches])
        order = np.argsort(keys, kind="stable")
        nat = _native()
        ffi = nat.ffi
        blobs = [ffi.from_buffer("char[]", b[2]) for b in batches]
        ptrs = ffi.new("char *[]", blobs)
        del batches
        for k in range(0, len(order), BLOCK):
            o = np.ascontiguousarray(order[k : k + BLOCK])
            size = int((ends[o] - starts[o]).sum())
            out = bytearray(size)
            out_ends = np.empty(len(o), dtype=np.int64)
            nat.lib.iot_gather(len(o), nat.ptr("int64_t *", o), nat.ptr("int32_t *", which),
                               nat.ptr("int64_t *", starts), nat.ptr("int64_t *", ends), ptrs,
                               ffi.from_buffer(out), nat.ptr("int64_t *", out_ends))  # fmt: skip
            yield keys[o], out_ends, out

    def _write(self, blocks: Iterable[Block]) -> IO[bytes]:
        try:
            f = tempfile.TemporaryFile(prefix="iotrace-show-", dir=self.where)
        except OSError as exc:
            raise self._error(exc) from None
        try:
            for keys, ends, blob in blocks:
                marshal.dump((keys.tobytes(), ends.tobytes(), blob), f)
            f.seek(0)
        except OSError as exc:
            with contextlib.suppress(OSError):  # its buffer's flush fails again; it is closed
                f.close()
            raise self._error(exc) from None
        except BaseException:
            f.close()
            raise
        return f

    def _error(self, exc: OSError) -> OSError:
        """A run not written (a full disk, no usable TMPDIR), named by where the runs go: an
        unnamed file's error names none (the command line's would be said of its stdout)."""
        where = self.where or tempfile.tempdir or os.environ.get("TMPDIR") or "/tmp"
        return OSError(exc.errno, f"{exc.strerror} (writing a sorted run of lines there)", where)

    def __iter__(self) -> Iterator[Block]:
        """Every text added, in key order, in blocks (the runs closed as they are read)."""
        held = self._held()
        if not self.runs:
            yield from held
            return
        yield from _merge([*(_blocks(f) for f in self.runs), held])
        self.close()

    def close(self) -> None:
        for f in self.runs:
            f.close()
        self.runs = []
        self.batches, self.held = [], 0

    def __enter__(self) -> Sorter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _native() -> Any:
    from iotrace.analyzer.event_columns import require_native

    return require_native()


def _blocks(f: IO[bytes]) -> Iterator[Block]:
    """A run's blocks, read one at a time."""
    while True:
        try:
            keys, ends, blob = marshal.load(f)
        except EOFError:
            return
        yield np.frombuffer(keys, dtype=np.int64), np.frombuffer(ends, dtype=np.int64), blob


def _merge(runs: list[Iterator[Block]]) -> Iterator[Block]:
    """The runs' texts by key, in blocks; ties in the runs' order."""
    nat = _native()
    ffi, lib = nat.ffi, nat.lib
    k = len(runs)
    cur: list[Block | None] = [None] * k
    keys_p, ends_p, blobs_p = ffi.new("int64_t *[]", k), ffi.new("int64_t *[]", k), ffi.new(
        "char *[]", k)  # fmt: skip
    pos, length = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
    done = np.zeros(k, dtype=np.uint8)
    keep: list[Any] = [None] * k  # the buffers behind the pointers

    def load(r: int) -> None:
        got = next(runs[r], None)
        pos[r] = 0
        if got is None:
            cur[r], length[r], done[r] = None, 0, 1
            return
        cur[r] = got
        keys, ends, blob = got
        keep[r] = (ffi.from_buffer("int64_t[]", keys), ffi.from_buffer("int64_t[]", ends),
                   ffi.from_buffer("char[]", blob))  # fmt: skip
        keys_p[r], ends_p[r], blobs_p[r] = keep[r]
        length[r] = len(keys)

    for r in range(k):
        load(r)
    cap = BLOCK_BYTES
    n = ffi.new("int64_t *")
    while True:
        out = bytearray(cap)
        out_keys, out_ends = np.empty(BLOCK, dtype=np.int64), np.empty(BLOCK, dtype=np.int64)
        n[0] = 0
        while True:
            r = lib.iot_merge_step(k, keys_p, ends_p, blobs_p, nat.ptr("int64_t *", pos),
                                   nat.ptr("int64_t *", length), nat.ptr("uint8_t *", done),
                                   ffi.from_buffer(out), cap, BLOCK,
                                   nat.ptr("int64_t *", out_keys), nat.ptr("int64_t *", out_ends),
                                   n)  # fmt: skip
            if r >= 0:
                load(r)
                continue
            break
        m = int(n[0])
        if m:
            del out[out_ends[m - 1] :]  # in place: no copy
            yield out_keys[:m], out_ends[:m], out
        if r == -2:
            return
        if not m:
            cap *= 2  # one text longer than a block
