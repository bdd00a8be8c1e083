"""Which partition an event goes to: a stable hash of its partition key, or spread when it has none."""

from __future__ import annotations

import itertools
import zlib


def partition_for_key(partition_key: str, partitions: int) -> int:
    """Stable across processes, machines and Python versions (CRC-32 of the UTF-8 key)."""
    return zlib.crc32(partition_key.encode()) % partitions


class PartitionSpreader:
    """Round-robin over partitions for events appended without a key (a whole batch goes to one)."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def next_partition(self, partitions: int) -> int:
        return next(self._counter) % partitions if partitions > 1 else 0
