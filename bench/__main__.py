"""Runs every benchmark on one durable throwaway PostgreSQL (fsync and synchronous_commit on)."""

from __future__ import annotations

import argparse
import asyncio
import platform
import time

from bench import (
    consumer_groups,
    group_commit,
    grpc_api,
    idle_subscriptions,
    projections,
    retention,
    runtime_core,
    scaling,
)
from bench.harness import Comparison, Databases, print_report
from sluice.embedded_postgres import EmbeddedPostgres, ServerSettings

SUITES = {
    "runtime-core": runtime_core.run,
    "consumer-groups": consumer_groups.run,
    "grpc": grpc_api.run,
    "projections": projections.run,
    "group-commit": group_commit.run,
    "retention": retention.run,
    "idle-subscriptions": idle_subscriptions.run,
    "scaling": scaling.run,
}


async def run_peers(databases: Databases) -> list[Comparison]:
    """Kafka and NATS JetStream beside Sluice; imported here so that the other suites never load their clients."""
    from bench import peers  # noqa: PLC0415

    return await peers.run(databases)


# Opt-in suites: run only when named (never by default); they start servers of other systems.
OPT_IN_SUITES = {"peers": run_peers}


async def main(selected: list[str]) -> None:
    with EmbeddedPostgres(ServerSettings(durable=True)) as server:
        print(f"PostgreSQL at {server.dsn()} (fsync=on, synchronous_commit=on); {platform.processor() or 'cpu'}")
        databases = Databases(server.dsn())
        for name in selected:
            started = time.perf_counter()
            rows = await (SUITES | OPT_IN_SUITES)[name](databases)
            print_report(f"== {name} (medians of alternating runs; {time.perf_counter() - started:.0f} s)", rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="./dev bench", description=__doc__)
    parser.add_argument(
        "suites",
        nargs="*",
        metavar="suite",
        help=f"any of {', '.join(SUITES)} (default: all of these), or the opt-in {', '.join(OPT_IN_SUITES)}",
    )
    arguments = parser.parse_args()
    unknown = set(arguments.suites) - set(SUITES) - set(OPT_IN_SUITES)
    if unknown:
        parser.error(f"unknown suite(s): {', '.join(sorted(unknown))}")
    asyncio.run(main(arguments.suites or list(SUITES)))
