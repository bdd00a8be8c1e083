"""Runs the peers suite: Sluice on the bench's PostgreSQL, one Kafka broker and a nats-server per setting, all
started here and stopped by their process ids when the suite ends. The rounds alternate between every system and
setting (round 1 of each, then round 2 of each, ...), so that drift in the machine (other load, fsync latency) hits
all alike: a produce-and-consume run of each, then a latency run of each. Prints the peers table and returns
Sluice's ratios for the common report. A peer that cannot be fetched, built or started is reported with the reason
and left out; the others still run."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from bench.harness import Comparison, Databases
from bench.peers import kafka_peer, nats_peer, report, sluice_peer, workload
from bench.peers.processes import PeerServerError


def describe_workload() -> str:
    return (
        f"peers workload: produce up to {workload.PRODUCE_TOTAL:,} events of ~{workload.EVENT_BYTES} bytes (at most "
        f"{workload.PRODUCE_SECONDS:.0f} s) in batches of {workload.PRODUCE_BATCH}, each acknowledged before the next; "
        f"consume them from the start; medians of {workload.ROUNDS} alternating rounds. End-to-end latency at "
        f"{workload.LATENCY_RATE:,} events/s in batches of {workload.LATENCY_BATCH} for {workload.LATENCY_TOTAL:,} "
        f"events per round, percentiles over all rounds. One Python asyncio client per system, in this process."
    )


async def run(databases: Databases) -> list[Comparison]:
    print("\n" + describe_workload())
    async with AsyncExitStack() as stack:
        openers: list[tuple[str, Callable[[], Awaitable[list[workload.Target]]]]] = [
            ("Sluice", lambda: sluice_peer.open_targets(stack, databases)),
            ("Kafka", lambda: kafka_peer.open_targets(stack)),
            ("NATS JetStream", lambda: nats_peer.open_targets(stack)),
        ]
        targets: list[workload.Target] = []
        for name, open_targets in openers:
            started = time.perf_counter()
            try:
                targets += await open_targets()
            except PeerServerError as error:
                print(f"{name}: left out: {error}")
                continue
            print(f"{name}: ready in {time.perf_counter() - started:.1f} s")
        measurements = [workload.Measurements() for _ in targets]
        for round_number in range(1, workload.ROUNDS + 1):
            started = time.perf_counter()
            for target, collected in zip(targets, measurements, strict=True):
                await workload.produce_and_consume_round(target, collected)
            for target, collected in zip(targets, measurements, strict=True):
                await workload.latency_round(target, collected)
            print(f"round {round_number} of {workload.ROUNDS}: {time.perf_counter() - started:.0f} s")
        figures = [collected.figures(target) for target, collected in zip(targets, measurements, strict=True)]
    print()
    print(report.format_table(figures))
    return report.comparisons(figures)
