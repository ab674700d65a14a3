"""Texts sorted by an integer key in bounded memory (`iotrace show`'s time merge): held until
their memory reaches a budget, then sorted and written to a temporary file (a run); at the end
the runs and what is still held are merged k ways.  Ties keep the order the texts were added.

A run is an unnamed temporary file (tempfile.TemporaryFile: O_TMPFILE on Linux, else a name
unlinked at once): nothing is left behind whatever ends the process (an error, `| head`'s
SIGPIPE, SIGKILL), and no other user can reach it by a name.  A run holds blocks of
(keys, texts) written with marshal: read back in C, a block at a time."""

from __future__ import annotations

import heapq
import marshal
import sys
import tempfile
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import IO, Any

import numpy as np

BLOCK = 1 << 14  # entries per block of a run (a run's reader holds one: ~1.5 MB of text)
FAN_IN = 64  # runs at most: that many are merged into one longer run
ENTRY = 56  # bytes per entry beside its text: its key and end held, 5 arrays at the sort


class Sorter:
    """add() batches of (key, text); iterate for every text in key order, ties in the order
    added.  `budget`: bytes the held texts may take; `where`: the directory of the runs (None:
    tempfile's, i.e. TMPDIR)."""

    def __init__(self, budget: int, where: str | None = None) -> None:
        self.budget, self.where = budget, where
        self.batches: list[tuple[str, np.ndarray, np.ndarray]] = []  # (texts joined, keys, ends)
        self.held = 0
        self.runs: list[IO[bytes]] = []

    def add(self, keys: list[int], texts: list[str]) -> None:
        if not texts:
            return
        blob = "".join(texts)
        ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
        self.batches.append((blob, np.array(keys, dtype=np.int64), ends))
        self.held += sys.getsizeof(blob) + ENTRY * len(texts)
        if self.held > self.budget:
            self.runs.append(self._write(self._held()))
            if len(self.runs) >= FAN_IN:  # fewer files open than a process may open
                runs, self.runs = self.runs, []
                self.runs.append(self._write(_blocks(_merge([_entries(f) for f in runs]))))
                for f in runs:
                    f.close()

    def _held(self) -> Iterator[tuple[list[int], list[str]]]:
        """What is held, sorted, in blocks of (keys, texts); releases it."""
        batches, self.batches, self.held = self.batches, [], 0
        if not batches:
            return
        keys = np.concatenate([b[1] for b in batches])
        which = np.concatenate([np.full(len(b[1]), i, dtype=np.int32)
                                for i, b in enumerate(batches)])  # fmt: skip
        ends = np.concatenate([b[2] for b in batches])
        starts = np.concatenate([np.concatenate(([0], b[2][:-1])) for b in batches])
        order = np.argsort(keys, kind="stable")
        blobs = [b[0] for b in batches]
        del batches
        for k in range(0, len(order), BLOCK):
            o = order[k : k + BLOCK]
            texts = [blobs[b][s:e] for b, s, e in zip(which[o].tolist(), starts[o].tolist(),
                                                       ends[o].tolist(), strict=True)]  # fmt: skip
            yield keys[o].tolist(), texts

    def _write(self, blocks: Iterable[tuple[list[int], list[str]]]) -> IO[bytes]:
        f = tempfile.TemporaryFile(prefix="iotrace-show-", dir=self.where)
        try:
            for block in blocks:
                marshal.dump(block, f)
            f.seek(0)
        except BaseException:
            f.close()
            raise
        return f

    def __iter__(self) -> Iterator[str]:
        """Every text added, in key order (the runs closed as they are read)."""
        held = ((k, t) for keys, texts in self._held() for k, t in zip(keys, texts, strict=True))
        if not self.runs:
            for _k, text in held:
                yield text
            return
        for _k, text in _merge([*(_entries(f) for f in self.runs), held]):
            yield text
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


def _entries(f: IO[bytes]) -> Iterator[tuple[int, str]]:
    """A run's (key, text) entries, a block read at a time."""
    while True:
        try:
            keys, texts = marshal.load(f)
        except EOFError:
            return
        yield from zip(keys, texts, strict=True)


def _merge(runs: list[Iterator[tuple[int, str]]]) -> Iterator[tuple[int, str]]:
    """The runs' entries by key; ties in the runs' order (heapq.merge breaks them by input)."""
    return heapq.merge(*runs, key=itemgetter(0))


def _blocks(entries: Iterator[tuple[int, str]]) -> Iterator[tuple[list[int], list[str]]]:
    keys: list[int] = []
    texts: list[str] = []
    for k, t in entries:
        keys.append(k)
        texts.append(t)
        if len(keys) >= BLOCK:
            yield keys, texts
            keys, texts = [], []
    if keys:
        yield keys, texts
