"""The parent's records (the request, the policy, the settings, the engine options) without :mod:`dataclasses`,
whose import (``inspect``, ``ast``, ``dis``, ``tokenize``) and class making cost ``workbench inspect FILE`` ~8 ms
before it can send its child the request: :class:`~workbench.engine.record.Record` subclasses, copied by
:func:`replace`."""

from __future__ import annotations

from .engine.record import Record as Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    R = TypeVar("R", bound=Record)


def replace(record: R, **changes: Any) -> R:
    """A shallow copy of ``record`` with ``changes``, as ``dataclasses.replace`` made one; TypeError for a name
    that is not one of its fields."""
    unknown = set(changes) - set(record.__slots__)
    if unknown:
        raise TypeError(f"{type(record).__name__} has no field {', '.join(sorted(unknown))}")
    copy = object.__new__(type(record))
    for name in record.__slots__:
        setattr(copy, name, changes[name] if name in changes else getattr(record, name))
    return copy
