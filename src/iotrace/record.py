"""Record classes: what iotrace used @dataclass for, at a fraction of its cost per start.

`@record` gives a class an __init__ taking its annotated fields in order (defaults, and
`field(default_factory=...)` for one made per instance; __post_init__ if defined), __repr__ and
__eq__ over the fields, and with frozen=True instances that refuse assignment and hash by
their fields; `replace` and `asdict` work as dataclasses' do.  dataclasses did the same, but
`import dataclasses` imports inspect (ast, dis, tokenize: ~13 ms of CPU) and every class
compiled its generated methods (~1 ms each): with the ~25 classes `iotrace run` defines, that
was a third of the fixed cost of a traced run (issue 19, bench/cost_bench.py's fixed case).
Here __repr__, __eq__ and __hash__ are shared and read the class's fields, and __init__ is
compiled at a class's first construction (~50 us; then as fast as a dataclass's).  Type
checkers see a dataclass (dataclass_transform).  One way for every class of fields in iotrace.
"""

from __future__ import annotations

from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: ~2 ms of the stracer's start (issue 19)
    from typing import Any, TypeVar, dataclass_transform, overload

    T = TypeVar("T")
else:  # the decorator is for type checkers: a no-op at run time

    def dataclass_transform(**_: object) -> Callable[[object], object]:
        return lambda f: f


_NONE = object()


class _Field:
    __slots__ = ("compare", "default", "hash", "make", "repr")

    def __init__(
        self, default: Any, make: Callable[[], Any] | None, repr: bool, compare: bool, hash: bool
    ) -> None:
        self.default, self.make, self.repr = default, make, repr
        self.compare, self.hash = compare, hash


def field(
    *, default: Any = _NONE, default_factory: Callable[[], Any] | None = None, repr: bool = True,
    compare: bool = True, hash: bool | None = None,
) -> Any:  # fmt: skip
    """A field with a default made for each instance (a list, a dict...), or left out of repr,
    of ==, of the hash (hash None: as compare)."""
    return _Field(default, default_factory, repr, compare, compare if hash is None else hash)


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a frozen record."""


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    """A record's first construction: compiles the class's own __init__ (~50 us, only for
    classes that are constructed; then as fast as a dataclass's) and calls it."""
    cls = type(self)
    cls.__init__ = _compiled_init(cls)
    cls.__init__(self, *args, **kwargs)


def _compiled_init(cls: type) -> Callable[..., None]:
    names: tuple[str, ...] = cls.__record_fields__
    env: dict[str, Any] = {"_NONE": _NONE}
    params, body = [], []
    for k, name in enumerate(names):
        if name in cls.__record_makers__:
            env[f"_make{k}"] = cls.__record_makers__[name]
            params.append(f"{name}=_NONE")
            body.append(f"  if {name} is _NONE: {name} = _make{k}()")
        elif name in cls.__record_defaults__:
            env[f"_default{k}"] = cls.__record_defaults__[name]
            params.append(f"{name}=_default{k}")
        else:
            params.append(name)
    if cls.__setattr__ is _frozen_setattr:  # into the instance's dict, as object's would
        d = "_dict"
        while d in names:  # a local that is no field's name
            d += "_"
        body += [f"  {d} = self.__dict__", *(f"  {d}[{n!r}] = {n}" for n in names)]
    else:
        body += [f"  self.{n} = {n}" for n in names]
    if cls.__record_post__ is not None:
        body.append("  self.__post_init__()")
    src = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["  pass"])
    exec(src, env)  # field names: the class's own annotations
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _repr(self: Any) -> str:
    fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in type(self).__record_repr__)
    return f"{type(self).__qualname__}({fields})"


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = type(self).__record_compare__
    return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, n) for n in type(self).__record_hash__))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _make(cls: type[T], frozen: bool) -> type[T]:
    if any(hasattr(b, "__record_fields__") for b in cls.__mro__[1:]):
        raise TypeError(f"{cls.__name__}: a record does not extend a record (no class needs it)")
    # not inspect.get_annotations: inspect is the import this module spares
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    names = tuple(annotations)
    defaults: dict[str, Any] = {}
    makers: dict[str, Callable[[], Any]] = {}
    shown, compared, hashed = [], [], []
    for name in names:
        value = cls.__dict__.get(name, _NONE)
        if isinstance(value, _Field):
            if value.make is not None:
                makers[name] = value.make
            shown += [name] if value.repr else []
            compared += [name] if value.compare else []
            hashed += [name] if value.hash else []
            value = value.default
            if value is _NONE:
                delattr(cls, name)  # instances always have it
            else:
                setattr(cls, name, value)
        else:
            shown.append(name)
            compared.append(name)
            hashed.append(name)
        if value is not _NONE:
            defaults[name] = value
        elif name not in makers and (defaults or makers):
            raise TypeError(f"{cls.__name__}: field {name!r} without a default after one with")
    ns: dict[str, Any] = {
        "__record_fields__": names,
        "__record_repr__": tuple(shown),
        "__record_compare__": tuple(compared),
        "__record_hash__": tuple(hashed),
        "__record_defaults__": defaults,
        "__record_makers__": makers,
        "__record_post__": getattr(cls, "__post_init__", None),
        "__match_args__": names,
        "__init__": _init,
        "__repr__": _repr,
        "__eq__": _eq,
        # as dataclasses: equal records hash equal only when they cannot change
        "__hash__": _hash if frozen else None,
    }
    if frozen:
        ns |= {"__setattr__": _frozen_setattr, "__delattr__": _frozen_delattr}
    for k, v in ns.items():
        setattr(cls, k, v)
    return cls


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of a record with some fields changed (dataclasses.replace)."""
    return type(obj)(**{n: getattr(obj, n) for n in type(obj).__record_fields__} | changes)


def asdict(obj: Any) -> dict[str, Any]:
    """A record's fields as a dict, records inside it, and in lists, tuples and dicts, as dicts
    too (dataclasses.asdict; the other values are the record's own, not copies)."""
    return {n: _plain(getattr(obj, n)) for n in type(obj).__record_fields__}


def _plain(v: Any) -> Any:
    if hasattr(type(v), "__record_fields__"):
        return asdict(v)
    if isinstance(v, tuple) and hasattr(v, "_fields"):  # a namedtuple
        return type(v)(*(_plain(x) for x in v))
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(x) for x in v)
    if isinstance(v, dict):
        return {_plain(k): _plain(x) for k, x in v.items()}
    return v


if TYPE_CHECKING:

    @overload
    def record(cls: type[T], /) -> type[T]: ...
    @overload
    def record(*, frozen: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(field_specifiers=(field,))
def record(cls: type[T] | None = None, /, *, frozen: bool = False) -> Any:
    """@record or @record(frozen=True) on a class of annotated fields."""
    if cls is None:
        return lambda c: _make(c, frozen)
    return _make(cls, frozen)
