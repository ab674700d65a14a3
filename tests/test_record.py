"""iotrace.record does what iotrace used dataclasses for (issue 19: dataclasses cost every
`iotrace run` ~13 ms to import and ~1 ms per class): the same class written both ways behaves
the same."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from iotrace import record as rec


def _both(frozen: bool) -> tuple[type, type]:
    out = []
    for deco, field in ((dataclasses.dataclass, dataclasses.field), (rec.record, rec.field)):

        class C:
            a: int
            b: str = "b"
            c: list[int] = field(default_factory=list)
            d: int = field(default=-1)
            e: dict[str, int] = field(default_factory=dict, repr=False)
            f: int = field(default=0, compare=False)

        out.append(deco(frozen=frozen)(C))
    return out[0], out[1]


@pytest.mark.parametrize("frozen", [False, True])
def test_a_record_behaves_as_the_same_dataclass(frozen: bool) -> None:
    dc, rc = _both(frozen)
    replace = {dc: dataclasses.replace, rc: rec.replace}
    asdict = {dc: dataclasses.asdict, rc: rec.asdict}
    seen = []
    for cls in (dc, rc):
        x, y = cls(1), cls(1, "z", [2], d=3, f=9)
        assert x.c is not cls(1).c  # a new list each
        got = [
            repr(x).split("C(", 1)[1], repr(y).split("C(", 1)[1], x == cls(1), x == y,
            x == cls(1, f=5), cls.b, cls.d, hasattr(cls, "c"), asdict[cls](y),
            repr(replace[cls](y, a=5))[-30:], copy.deepcopy(y) == y, cls.__match_args__,
        ]  # fmt: skip
        if frozen:
            same = [replace[cls](v, c=(), e=()) for v in (x, cls(1))]  # hashable fields
            got.append(hash(same[0]) == hash(same[1]))
            with pytest.raises(AttributeError):
                x.a = 2
        else:
            x.a = 2
            got += [x.a, cls.__hash__]
        for bad in ((), (1, "b", [], 0, {}, 6, 7)):
            with pytest.raises(TypeError):
                cls(*bad)
        with pytest.raises(TypeError):
            cls(1, a=1)
        seen.append(got)
    assert seen[0] == seen[1]
