"""The memory backend's offset-indexed log: offsets stay addressable after the oldest are dropped."""

from __future__ import annotations

import pytest

from sluice.storage.memory.log import OffsetLog


def test_an_offset_log_addresses_events_by_offset_after_a_drop() -> None:
    log: OffsetLog[str] = OffsetLog()
    for offset in range(10):
        log.append(f"e{offset}")
    assert log.drop_before(4) == ["e0", "e1", "e2", "e3"]
    assert (log.first_offset, len(log), log.retained) == (4, 10, 6)
    assert log[4] == "e4"
    assert log[9] == "e9"
    assert log[0:6] == ["e4", "e5"]
    assert log[8:] == ["e8", "e9"]
    assert list(log) == [f"e{offset}" for offset in range(4, 10)]
    with pytest.raises(IndexError):
        log[3]
    with pytest.raises(IndexError):
        log[10]
    log.append("e10")
    assert log[10] == "e10"
    assert log.drop_before(100) == [f"e{offset}" for offset in range(4, 11)]
    assert (log.first_offset, len(log), log.retained, log[0:20]) == (11, 11, 0, [])
    assert log.drop_before(5) == []
    assert log.first_offset == 11
