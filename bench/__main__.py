"""Runs every benchmark on one durable throwaway PostgreSQL (fsync and synchronous_commit on)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import shlex
import sys
import time
from datetime import UTC, datetime

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
from bench.readme_table import RunDescription, check_markers, machine_description, write_readme_table
from sluice.storage.postgres.embedded import EmbeddedPostgres, ServerSettings

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


def _load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{value:.2f}" for value in load)


async def main(selected: list[str], *, write_readme: bool) -> None:
    if write_readme:
        check_markers()  # before the run, not after it
    load_before = os.getloadavg()
    printed: list[tuple[str, list[Comparison]]] = []
    with EmbeddedPostgres(ServerSettings(durable=True)) as server:
        print(f"PostgreSQL at {server.dsn()} (fsync=on, synchronous_commit=on); {platform.processor() or 'cpu'}")
        databases = Databases(server.dsn())
        for name in selected:
            # Each suite starts as if alone: what the earlier ones left alive (their metrics' label children,
            # caches) is frozen out of the collector's way. Otherwise it grew every full collection in this
            # process, where idle-subscriptions' 500 clients time their receipts: its p99 after the idle
            # window was 110.8-128.9 ms after the other six suites, 30-42 ms alone (docs/performance.md).
            gc.collect()
            gc.freeze()
            started = time.perf_counter()
            rows = await (SUITES | OPT_IN_SUITES)[name](databases)
            print_report(f"== {name} (medians of alternating runs; {time.perf_counter() - started:.0f} s)", rows)
            printed.append((name, rows))
    load_after = os.getloadavg()
    print(f"\nload average (1/5/15 min): {_load(load_before)} at the start, {_load(load_after)} at the end")
    if write_readme:
        run = RunDescription(
            command=shlex.join(["./dev", "bench", *sys.argv[1:]]),
            finished=datetime.now(UTC),
            machine=machine_description(),
            load_before=load_before,
            load_after=load_after,
        )
        write_readme_table(printed, run)
        print("README.md: the benchmark table is rewritten from these rows")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="./dev bench", description=__doc__)
    parser.add_argument(
        "suites",
        nargs="*",
        metavar="suite",
        help=f"any of {', '.join(SUITES)} (default: all of these), or the opt-in {', '.join(OPT_IN_SUITES)}",
    )
    parser.add_argument(
        "--write-readme",
        action="store_true",
        help="rewrite README.md's benchmark table (between <!-- bench:begin --> and <!-- bench:end -->) from this run",
    )
    arguments = parser.parse_args()
    unknown = set(arguments.suites) - set(SUITES) - set(OPT_IN_SUITES)
    if unknown:
        parser.error(f"unknown suite(s): {', '.join(sorted(unknown))}")
    asyncio.run(main(arguments.suites or list(SUITES), write_readme=arguments.write_readme))
