"""Frozen slotted dataclasses built fast, for the hot paths (the device table, decoding).

A frozen dataclass's `__init__` stores every field through `object.__setattr__`, because its
own `__setattr__` refuses; calling each slot descriptor's `__set__` is not much cheaper (one
wrapper call per field, issue 12's profile). The builders here give the object `cls(...)`
would build (these classes have no `__post_init__`: same class, same slot values, frozen from
then on) the cheapest way this interpreter allows, chosen once per class:
1. the optional compiled helper (accel.py) fills the slots without running Python code;
2. else a plain slotted *twin* with the same slots is filled, one specialised bytecode per
   store, and then given the real class — `__class__` assignment between classes of the same
   layout, which CPython allows for heap types;
3. else, where the interpreter refuses that assignment, the slot descriptors fill it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .accel import HELPER

T = TypeVar("T")


def frozen_builder(
    cls: type[T], params: Sequence[str], fixed: Mapping[str, object] | None = None
) -> Callable[..., T]:
    """`build(*params)` → `cls(**params, **fixed)` with every other field at its default.

    Every field of `cls` is set: the ones named in `params` from the arguments, in that order,
    then `fixed`, then the field's plain default (a field with neither is a `TypeError` here,
    at import, not a half-built object later)."""
    fixed = dict(fixed or {})
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = (set(params) | set(fixed)) - set(names)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    values: dict[str, str] = {}
    namespace: dict[str, Any] = {}
    for i, f in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
        if f.name in params:
            values[f.name] = f.name
            continue
        if f.name in fixed:
            namespace[f"_v{i}"] = fixed[f.name]
        elif f.default is not dataclasses.MISSING:
            namespace[f"_v{i}"] = f.default
        else:
            raise TypeError(f"{cls.__name__}.{f.name} has no plain default: pass it")
        values[f.name] = f"_v{i}"
    constants = [name for name in values if name not in params]
    spec = slot_spec(cls, [*constants, *params])
    if spec is not None and HELPER is not None:
        # The compiled helper fills the slots, constants first: no Python code runs at all.
        return functools.partial(HELPER.build, spec, *(namespace[values[n]] for n in constants))
    lines = [f"def build({', '.join(params)}):", *fill_statements(cls, values, namespace)]
    # Field names of our own classes, never input data, go into this source text.
    source = "\n".join(lines)
    exec(compile(source, f"<{cls.__name__} builder>", "exec"), namespace)  # noqa: S102
    build: Callable[..., T] = namespace["build"]
    return build


def fill_statements(cls: type, values: Mapping[str, str], namespace: dict[str, Any]) -> list[str]:
    """The body of a generated function that builds and returns a `cls` whose fields get these
    value expressions (every field, in any order); what it refers to goes into `namespace`."""
    spec = slot_spec(cls, list(values))
    if spec is not None and HELPER is not None:
        namespace["_build"], namespace["_spec"] = HELPER.build, spec
        return [f"    return _build(_spec, {', '.join(values.values())})"]
    twin = mutable_twin(cls)
    namespace["_new"], namespace["_cls"], namespace["_twin"] = object.__new__, cls, twin
    if twin is not None:
        lines = ["    o = _new(_twin)"]
        lines.extend(f"    o.{name} = {value}" for name, value in values.items())
        return [*lines, "    o.__class__ = _cls", "    return o"]
    lines = ["    o = _new(_cls)"]
    for name, value in values.items():
        namespace[f"_set_{name}"] = getattr(cls, name).__set__
        lines.append(f"    _set_{name}(o, {value})")
    return [*lines, "    return o"]


def acyclic(cls: type[T]) -> type[T]:
    """Class decorator (outermost, after `@dataclass`): objects of `cls` and its subclasses
    hold only values that never refer back to them (numbers, text, bytes, enums, tuples, other
    acyclic objects), so the compiled helper leaves the ones it builds out of cycle collection
    (`gc.is_tracked` is False), as CPython does for tuples of atomic values. A device table holds
    hundreds of thousands of readings and records; collections no longer walk them all.
    (A cycle made through one on purpose would never be collected; no code here makes one.)"""
    _ACYCLIC.add(cls)
    return cls


_ACYCLIC: set[type] = set()


def slot_spec(cls: type, names: Sequence[str]) -> object | None:
    """What the compiled helper's `build(spec, *values)` needs to fill a `cls` with the values
    of `names` in that order (made from the slot descriptors). None without the helper, or
    when `names` are not exactly the class's fields, all plain object slots, and the class
    has no `__post_init__` (then `build` would not give what `cls(...)` gives)."""
    if HELPER is None or hasattr(cls, "__post_init__") or not dataclasses.is_dataclass(cls):
        return None
    fields = {f.name for f in dataclasses.fields(cls)}
    slots = {n for k in cls.__mro__ for n in k.__dict__.get("__slots__", ())}
    if len(names) != len(fields) or set(names) != fields or fields != slots - {"__weakref__"}:
        return None
    try:
        descriptors = tuple(getattr(cls, name) for name in names)
        spec: object = HELPER.make_spec(cls, descriptors, not _ACYCLIC.isdisjoint(cls.__mro__))
    except (TypeError, AttributeError):  # not plain object slots (checked in _accel.c)
        return None
    return spec


def mutable_twin(cls: type) -> type | None:
    """A mutable class with `cls`'s layout (same bases, same slots), whose objects may be given
    `cls` as their class once filled; None where the interpreter refuses that assignment
    (another implementation, a class with a `__dict__` …). Made once per class and cached."""
    if cls in _TWINS:
        return _TWINS[cls]
    slots = cls.__dict__.get("__slots__")
    twin: type | None = None
    if isinstance(slots, tuple) and "__dict__" not in slots:
        # A frozen base's __setattr__ refuses every store: the twin uses object's own, so a
        # store is one specialised bytecode (STORE_ATTR_SLOT).
        namespace = {
            "__slots__": slots,
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
        }
        candidate = type(f"_{cls.__name__}Twin", cls.__bases__, namespace)
        probe: Any = object.__new__(candidate)
        try:
            probe.__class__ = cls
        except TypeError:
            pass
        else:
            twin = candidate if type(probe) is cls else None
    _TWINS[cls] = twin
    return twin


_TWINS: dict[type, type | None] = {}


def builder_parts(build: Callable[..., object]) -> tuple[object, tuple[object, ...]] | None:
    """`(spec, constants)` of a builder that the compiled helper fills (`frozen_builder`'s
    partial): for compiled code that builds the same objects (sources/_accept.c), constants
    first, then the builder's parameters. None for a builder in Python."""
    if (
        HELPER is not None
        and isinstance(build, functools.partial)
        and build.func is HELPER.build
        and not build.keywords
    ):
        return build.args[0], build.args[1:]
    return None
