"""The peers bench's report and workload without servers: Sluice's ratios are taken at the same durability, the
events are about 200 bytes and carry their number, produce runs are bounded in time, and the latency measurement
pairs every sent event with its delivery (through an in-memory channel)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from bench.peers import report, workload
from bench.peers.workload import PeerFigures


def figures(system: str, *, fsync_per_write: bool, produce: float, consume: float, p99: float) -> PeerFigures:
    return PeerFigures(
        system=system,
        setting=f"{system} {'fsync' if fsync_per_write else 'default'}",
        fsync_per_write=fsync_per_write,
        produce_rate=produce,
        consume_rate=consume,
        latency_p50=p99 / 2,
        latency_p99=p99,
        latency_rate=1000,
    )


MEASURED = [
    figures("Sluice", fsync_per_write=True, produce=8000, consume=30000, p99=40),
    figures("Sluice", fsync_per_write=False, produce=12000, consume=30000, p99=20),
    figures("Kafka", fsync_per_write=False, produce=6000, consume=60000, p99=10),
    figures("Kafka", fsync_per_write=True, produce=4000, consume=60000, p99=80),
]


def test_sluice_is_compared_with_each_peer_at_the_same_durability() -> None:
    rows = {row.scenario: row for row in report.comparisons(MEASURED)}
    assert set(rows) == {
        "produce vs Kafka default",
        "consume vs Kafka default",
        "e2e p99 vs Kafka default",
        "produce vs Kafka fsync",
        "consume vs Kafka fsync",
        "e2e p99 vs Kafka fsync",
    }
    assert rows["produce vs Kafka default"].ratio == pytest.approx(2.0)  # 12,000 (sync off) / 6,000
    assert rows["produce vs Kafka fsync"].ratio == pytest.approx(2.0)  # 8,000 (sync on) / 4,000
    assert rows["e2e p99 vs Kafka fsync"].ratio == pytest.approx(0.5)
    assert rows["consume vs Kafka fsync"].unit == "ev/s"


def test_the_table_has_a_line_per_system_and_setting_with_ratios_on_the_peers() -> None:
    lines = report.format_table(MEASURED).splitlines()
    assert len(lines) == 2 + len(MEASURED)
    assert lines[2].startswith("Sluice")
    assert lines[2].endswith("40.0")  # no ratio of Sluice to itself
    # Kafka default beside Sluice with synchronous_commit off: 12,000/6,000, 30,000/60,000, p99 20/10.
    assert lines[4].startswith("Kafka")
    assert lines[4].endswith("2.00x, 0.50x, 2.00x")
    # Kafka fsync beside Sluice with synchronous_commit on: 8,000/4,000, 30,000/60,000, p99 40/80.
    assert lines[5].endswith("2.00x, 0.50x, 0.50x")


def test_a_peer_without_sluice_at_its_durability_has_no_ratio() -> None:
    peer_only = [MEASURED[0], MEASURED[2]]
    assert report.format_table(peer_only).splitlines()[-1].endswith("-")
    assert report.comparisons(peer_only) == []


def test_events_are_about_200_bytes_of_json_and_carry_their_number() -> None:
    for number in (0, 7, -1, 123_456):
        payload = workload.encode(workload.event(number))
        assert workload.EVENT_BYTES <= len(payload) <= workload.EVENT_BYTES + 2
        assert workload.decode_number(payload) == number


async def test_a_produce_run_stops_after_its_time_budget() -> None:
    batches: list[int] = []

    async def slow_send(events: list[dict[str, Any]]) -> None:
        batches.append(len(events))
        await asyncio.sleep(0.02)

    sent, rate = await workload.measure_produce(slow_send, total=10_000, batch=10, seconds=0.1)
    assert sent == sum(batches) == 10 * len(batches)
    assert 1 <= len(batches) <= 6  # 0.1 s of 0.02 s sends, the one crossing the budget included
    assert 0 < rate < 10 * len(batches) / 0.1


async def test_latency_pairs_every_sent_event_with_its_delivery() -> None:
    delivered: asyncio.Queue[int] = asyncio.Queue()

    async def send(events: list[dict[str, Any]]) -> None:
        await asyncio.sleep(0.002)
        for data in events:
            delivered.put_nowait(workload.decode_number(workload.encode(data)))

    async def deliveries() -> AsyncGenerator[int, None]:
        while True:
            yield await delivered.get()

    achieved, latencies = await workload.measure_latency(
        send, deliveries(), total=200, batch=10, events_per_second=2000
    )
    assert len(latencies) == 200
    assert all(latency >= 2 for latency in latencies)
    assert 0 < achieved < 2200  # the schedule's 2,000 events/s, never faster
