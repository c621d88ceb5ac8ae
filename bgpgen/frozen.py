"""Pickling frozen, slotted dataclasses quickly (the model kept by :mod:`bgpgen.model_cache`).

The standard library pickles them through ``__getstate__`` / ``__setstate__`` functions that call
``dataclasses.fields()`` for every object: 60% of the time to read back a 10,000-node model.
Here an object is pickled as its class and its field values (all of them, ``init=False`` ones
too) and rebuilt by setting its slots directly: no ``__init__``, no ``__post_init__``, the same
object. Reading back a 10,000-node model: 0.25 s -> 0.15 s.
"""

from __future__ import annotations

import dataclasses
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T")
_SLOTS: dict[type, list[Any]] = {}


def _restore(cls: type, values: tuple[Any, ...]) -> Any:
    obj: Any = object.__new__(cls)
    for slot, value in zip(_SLOTS[cls], values):
        slot.__set__(obj, value)
    return obj


def quick_pickle(cls: type[T]) -> type[T]:
    """Give a frozen, slotted dataclass the quick pickling above (a class decorator)."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    slots = []
    for name in names:
        slot = next(k.__dict__[name] for k in cls.__mro__ if name in k.__dict__)
        assert hasattr(slot, "__set__"), f"{cls.__name__}.{name} is not a slot"
        slots.append(slot)
    _SLOTS[cls] = slots
    get = attrgetter(*names)
    if len(names) == 1:
        cls.__reduce__ = lambda self: (_restore, (cls, (get(self),)))  # type: ignore[method-assign]
    else:
        cls.__reduce__ = lambda self: (_restore, (cls, get(self)))  # type: ignore[method-assign]
    return cls


__all__ = ["quick_pickle"]
