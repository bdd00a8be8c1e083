"""The scaling benchmark's pure helpers (where streams go, which worker drives them, the CPU a server spent as
/proc gives it) and the manifests of examples/scaling/ that docs/scaling.md shows, read as the operator's models
(no servers, no cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from bench.scaling import (
    ProcessTimes,
    ServerUsage,
    paired_ratios,
    parse_process_stat,
    place_streams,
    server_cpu_ticks,
    worker_shares,
)

from sluice_operator.models import ConsumerGroup, EventStream
from sluice_operator.reconcile.databases import DatabaseTarget, database_url_from_secret

SCALING_EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scaling"

# A /proc/<pid>/stat line shaped like a PostgreSQL backend's (fields 1-17 matter here),
# with a command name holding a space and a parenthesis, as /proc allows.
BACKEND_STAT = (
    "4242 (postgres: s) x) S 4100 4100 4100 0 -1 4194560 1520 0 0 0 37 12 5 3 20 0 1 0 123456 "
    "228409344 4096 18446744073709551615 1 1 0 0 0 0 4194304 19935232 536890887 0 0 0 17 1 0 0 0 0 0"
)


def test_streams_alternate_between_servers() -> None:
    assert place_streams(8, 2) == [0, 1, 0, 1, 0, 1, 0, 1]
    assert place_streams(5, 1) == [0, 0, 0, 0, 0]
    assert place_streams(3, 2).count(0) == 2


@pytest.mark.parametrize(("streams", "servers"), [(0, 1), (4, 0)])
def test_placing_needs_streams_and_servers(streams: int, servers: int) -> None:
    with pytest.raises(ValueError, match="at least one stream and one server"):
        place_streams(streams, servers)


def test_workers_get_consecutive_even_shares() -> None:
    assert worker_shares(8, 2) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert worker_shares(7, 3) == [[0, 1, 2], [3, 4], [5, 6]]
    shares = worker_shares(8, 2)
    # With streams alternating over two servers, each worker drives streams of both.
    assert [{place_streams(8, 2)[stream] for stream in share} for share in shares] == [{0, 1}, {0, 1}]


def test_a_worker_without_streams_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot share 1 stream"):
        worker_shares(1, 2)


def test_process_stat_fields_are_counted_after_the_command_name() -> None:
    assert parse_process_stat(BACKEND_STAT) == ProcessTimes(
        pid=4242, parent_pid=4100, own_ticks=49, reaped_children_ticks=8
    )


def test_a_truncated_stat_line_is_refused() -> None:
    with pytest.raises(ValueError, match="not a /proc"):
        parse_process_stat("1 (init) S 0 1 1")


def test_server_cpu_counts_the_postmaster_its_reaped_and_its_live_children_only() -> None:
    processes = [
        ProcessTimes(pid=100, parent_pid=1, own_ticks=10, reaped_children_ticks=200),  # postmaster
        ProcessTimes(pid=101, parent_pid=100, own_ticks=30, reaped_children_ticks=0),  # a backend
        ProcessTimes(pid=102, parent_pid=100, own_ticks=5, reaped_children_ticks=0),  # the checkpointer
        ProcessTimes(pid=300, parent_pid=1, own_ticks=999, reaped_children_ticks=999),  # another server
        ProcessTimes(pid=301, parent_pid=300, own_ticks=999, reaped_children_ticks=0),
    ]
    assert server_cpu_ticks(processes, 100) == 245


def test_usage_of_a_round_is_the_difference_of_two_readings() -> None:
    assert ServerUsage(5.5, 1300, 90) - ServerUsage(1.5, 300, 40) == ServerUsage(4.0, 1000, 50)


def scaling_example_documents() -> list[dict[str, Any]]:
    return [
        document
        for path in sorted(SCALING_EXAMPLES.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
    ]


def test_the_scaling_example_spreads_streams_over_two_database_secrets() -> None:
    documents = scaling_example_documents()
    secrets = {
        document["metadata"]["name"]: DatabaseTarget(
            database_url_from_secret(document["metadata"]["name"], document["stringData"]), "sluice"
        ).display_name
        for document in documents
        if document["kind"] == "Secret"
    }
    streams = [EventStream.model_validate(document) for document in documents if document["kind"] == "EventStream"]
    groups = [ConsumerGroup.model_validate(document) for document in documents if document["kind"] == "ConsumerGroup"]
    assert secrets == {
        "events-a-app": "postgresql://events-a-rw:5432/app (schema sluice)",
        "events-b-app": "postgresql://events-b-rw:5432/app (schema sluice)",
    }
    databases = {stream.stream_name: stream.spec.database for stream in streams}
    assert all(database is not None and database.secret_ref.name in secrets for database in databases.values())
    placed = [database.secret_ref.name for database in databases.values() if database is not None]
    assert sorted(placed) == ["events-a-app"] * 2 + ["events-b-app"] * 2
    assert {group.spec.stream_ref.name for group in groups} <= set(databases)
    assert {document["kind"] for document in documents} == {"Secret", "EventStream", "ConsumerGroup"}


def test_ratios_are_taken_round_by_round() -> None:
    assert paired_ratios([100.0, 200.0], [150.0, 100.0]) == [1.5, 0.5]
    with pytest.raises(ValueError, match="shorter"):
        paired_ratios([100.0], [])
