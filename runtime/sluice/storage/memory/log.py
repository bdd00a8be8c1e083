"""One partition's events in the in-memory backend: a list indexed by offset whose oldest entries
retention can drop.

``log[offset]`` and ``log[start:stop]`` address events by offset, and ``len(log)`` is the head (the
next offset to assign), exactly as for a plain list that was never pruned; offsets below
``first_offset`` are gone (a slice starts at the first retained one; indexing one raises
IndexError). So the code that appends (``log.append``, ``len(log)`` as the next offset) does not
need to know about retention.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar, overload

Item = TypeVar("Item")


class OffsetLog(Generic[Item]):
    """A list of events addressed by offset, with a movable start (see the module docstring)."""

    __slots__ = ("_items", "first_offset")

    def __init__(self) -> None:
        self._items: list[Item] = []
        self.first_offset = 0
        """The oldest offset still held (the head when the log is empty)."""

    def __len__(self) -> int:
        return self.first_offset + len(self._items)

    @property
    def retained(self) -> int:
        """How many events are still held."""
        return len(self._items)

    def append(self, item: Item) -> None:
        self._items.append(item)

    @overload
    def __getitem__(self, index: int) -> Item: ...

    @overload
    def __getitem__(self, index: slice) -> list[Item]: ...

    def __getitem__(self, index: int | slice) -> Item | list[Item]:
        base = self.first_offset
        if isinstance(index, slice):
            if index.step not in (None, 1):
                raise ValueError("an offset log is sliced forwards only")
            start = 0 if index.start is None else index.start
            stop = len(self) if index.stop is None else index.stop
            if start < 0 or stop < 0:
                raise IndexError("offsets are never negative")
            return self._items[max(start - base, 0) : max(stop - base, 0)]
        if index < base or index >= len(self):
            raise IndexError(f"offset {index} is not held (first {base}, head {len(self)})")
        return self._items[index - base]

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def drop_before(self, offset: int) -> list[Item]:
        """Drop the events below ``offset`` (at most up to the head) and return them, oldest first."""
        count = min(max(offset - self.first_offset, 0), len(self._items))
        dropped = self._items[:count]
        del self._items[:count]
        self.first_offset += count
        return dropped
