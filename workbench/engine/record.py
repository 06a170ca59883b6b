"""A plain record class: the engine child's start-up cannot afford :mod:`dataclasses` (its import brings
``inspect``, ``ast``, ``dis`` and ``tokenize``, ~6 ms, and each class it makes costs ~0.5 ms more)."""

from __future__ import annotations


class Record:
    """Equality and ``repr`` over the names in ``__slots__``, as a dataclass gives them; subclasses write
    their own ``__init__``."""

    __slots__: tuple[str, ...] = ()
    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass without frozen=True

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({shown})"
