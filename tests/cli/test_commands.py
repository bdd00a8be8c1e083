"""The management commands against PostgreSQL: streams, append, read, tail, enqueue, dequeue, groups
and lag, with table and JSON output and clear errors. They run in the test process (tests/cli/in_process.py),
except ``tail``, which runs as real processes to be stopped by a signal."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import sluice
from sluice import ConsumerGroupOptions, EventData, OffsetCommitStrategy
from tests.cli.conftest import run_cli, start_cli

pytestmark = pytest.mark.slow


def json_output(*arguments: str, dsn: str, stdin: str | None = None) -> Any:
    result = run_cli(*arguments, "--output", "json", dsn=dsn, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def json_lines(*arguments: str, dsn: str) -> list[dict[str, Any]]:
    result = run_cli(*arguments, "--output", "json", dsn=dsn)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_streams_create_list_describe_delete(postgres_dsn: str) -> None:
    dsn = postgres_dsn
    created = json_output("streams", "create", "orders", "--partitions", "2", dsn=dsn)
    assert (created["name"], created["type"], created["partitions"]) == ("orders", "persistent", 2)
    queue = run_cli("streams", "create", "jobs", "--type", "queue", dsn=dsn)
    assert queue.returncode == 0, queue.stderr
    assert "type          queue" in queue.stdout  # table output: key and value
    assert [s["name"] for s in json_output("streams", "list", dsn=dsn)] == ["jobs", "orders"]
    conflict = run_cli("streams", "create", "orders", "--partitions", "3", dsn=dsn)
    assert conflict.returncode == 1
    assert "already exists" in conflict.stderr

    described = json_output("streams", "describe", "orders", dsn=dsn)
    assert [p["head"] for p in described["partition_heads"]] == [0, 0]
    assert described["consumer_groups"] == []

    missing = run_cli("streams", "describe", "nowhere", dsn=dsn)
    assert (missing.returncode, missing.stderr.strip()) == (1, "Error: stream 'nowhere' does not exist")
    no_dsn = run_cli("streams", "list")
    assert no_dsn.returncode == 2
    assert "give --dsn or set SLUICE_DSN" in no_dsn.stderr
    unreachable = run_cli("streams", "list", dsn="postgresql://nobody@127.0.0.1:1/none")
    assert unreachable.returncode == 1
    assert "the database connection failed" in unreachable.stderr
    bad_partitions = run_cli("streams", "create", "more", "--partitions", "0", dsn=dsn)
    assert bad_partitions.returncode == 2

    unconfirmed = run_cli("streams", "delete", "jobs", dsn=dsn, stdin="n\n")
    assert unconfirmed.returncode == 1
    assert run_cli("streams", "delete", "jobs", "--yes", dsn=dsn).returncode == 0
    assert [s["name"] for s in json_output("streams", "list", dsn=dsn)] == ["orders"]


async def test_append_and_read(postgres_dsn: str, tmp_path: Path) -> None:
    dsn = postgres_dsn
    async with await sluice.connect(dsn) as store:
        await store.create_stream(sluice.StreamConfig(name="orders", partitions=2))
    envelope = '{"type": "OrderPlaced", "data": {"n": 0}}'
    one = json_output("append", "orders", "--partition", "0", "--data", envelope, dsn=dsn)
    assert (one["appended"], one["first_offset"], one["partitions"]) == (1, 0, [0])
    plain = json_output(
        "append", "orders", "--type", "OrderPaid", "--partition", "1", dsn=dsn, stdin='{"n": 1}\n\n{"n": 2}\n"three"\n'
    )
    assert (plain["appended"], plain["first_offset"], plain["last_offset"]) == (3, 0, 2)

    lines = [
        json.dumps({"type": "OrderShipped", "data": {"n": n}, "metadata": {"batch": "b1"}, "id": str(uuid.uuid4())})
        for n in range(25)
    ]
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("\n".join(lines) + "\n")
    arguments = ["append", "orders", "--file", str(events_file), "--partition", "0", "--append-batch-size", "10"]
    from_file = json_output(*arguments, dsn=dsn)
    assert (from_file["appended"], from_file["first_offset"], from_file["last_offset"]) == (25, 1, 25)
    again = json_output(*arguments, dsn=dsn)  # the ids make a re-run a no-op
    assert (again["appended"], again["deduplicated"], again["last_offset"]) == (0, 25, 25)

    partition_one = json_lines("read", "orders", "--partition", "1", dsn=dsn)
    assert [(e["offset"], e["event_type"], e["data"]) for e in partition_one] == [
        (0, "OrderPaid", {"n": 1}),
        (1, "OrderPaid", {"n": 2}),
        (2, "OrderPaid", "three"),
    ]
    newest = json_lines("read", "orders", "--backwards", "--limit", "2", dsn=dsn)
    assert [(e["offset"], e["data"], e["metadata"]) for e in newest] == [
        (25, {"n": 24}, {"batch": "b1"}),
        (24, {"n": 23}, {"batch": "b1"}),
    ]
    later = json_lines("read", "orders", "--from-time", newest[0]["timestamp"], dsn=dsn)
    assert later[-1]["offset"] == 25
    assert all(event["timestamp"] >= newest[0]["timestamp"] for event in later)
    table = run_cli("read", "orders", "--from-offset", "24", dsn=dsn)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["PARTITION", "OFFSET", "TIMESTAMP", "EVENT_TYPE", "DATA"]
    assert [row.split()[1] for row in rows] == ["24", "25"]

    bad_file = tmp_path / "bad.jsonl"
    bad_file.write_text('{"type": "A", "data": 1}\n{"type": "A", "data": \n')
    bad = run_cli("append", "orders", "--file", str(bad_file), dsn=dsn)
    assert bad.returncode == 2  # invalid input
    assert "line 2: not valid JSON" in bad.stderr
    no_envelope = run_cli("append", "orders", "--data", '{"n": 1}', dsn=dsn)
    assert no_envelope.returncode == 2
    assert "expected an envelope" in no_envelope.stderr
    assert json_output("streams", "describe", "orders", dsn=dsn)["events"] == 29  # nothing half-appended
    missing = run_cli("read", "nowhere", dsn=dsn)
    assert (missing.returncode, missing.stderr.strip()) == (1, "Error: stream 'nowhere' does not exist")


async def test_enqueue_and_dequeue(postgres_dsn: str) -> None:
    dsn = postgres_dsn
    first = json_output("enqueue", "emails", "--data", '{"to": "ada"}', "--dedupe-key", "ada", dsn=dsn)
    duplicate = json_output("enqueue", "emails", "--data", '{"to": "ada"}', "--dedupe-key", "ada", dsn=dsn)
    assert duplicate[0]["deduplicated"]
    assert duplicate[0]["message_id"] == first[0]["message_id"]
    many = json_output("enqueue", "emails", "--type", "Email", dsn=dsn, stdin='{"to": "bob"}\n{"to": "cy"}\n')
    assert len(many) == 2

    leased = json_output("dequeue", "emails", "--max-messages", "2", "--visibility-timeout", "60", dsn=dsn)
    assert [(m["data"], m["attempt"]) for m in leased] == [({"to": "ada"}, 1), ({"to": "bob"}, 1)]
    assert leased[0]["receipt"] == f"{first[0]['message_id']}.1"
    acknowledged = run_cli("dequeue", "emails", "--max-messages", "5", "--ack", "--output", "json", dsn=dsn)
    assert acknowledged.returncode == 0, acknowledged.stderr
    assert [m["data"] for m in json.loads(acknowledged.stdout)] == [{"to": "cy"}]
    assert "acknowledged 1 message(s)" in acknowledged.stderr
    async with await sluice.connect(dsn) as store:
        assert await store.dequeue("emails") is None  # two still leased, one acknowledged
    empty = run_cli("dequeue", "emails", dsn=dsn)
    assert (empty.returncode, empty.stdout.strip()) == (0, "(none)")


async def test_dead_letters_list_redrive_and_purge(postgres_dsn: str) -> None:
    dsn = postgres_dsn
    async with await sluice.connect(dsn) as store:
        await store.create_stream(sluice.StreamConfig(name="jobs", type=sluice.StreamType.EPHEMERAL, max_attempts=1))
        await store.enqueue_many("jobs", [EventData("Job", {"n": n}) for n in range(3)])
        for message in await store.dequeue_many("jobs", max_messages=3):
            await store.nack("jobs", message.receipt, reason=f"failed {message.data['n']}")
    listed = json_output("dead-letters", "list", "jobs", dsn=dsn)
    assert [letter["last_failure"] for letter in listed] == ["failed 0", "failed 1", "failed 2"]
    neither = run_cli("dead-letters", "redrive", "jobs", dsn=dsn)
    assert neither.returncode == 2
    assert "--id" in neither.stderr
    redriven = json_output("dead-letters", "redrive", "jobs", "--id", str(listed[0]["dead_letter_id"]), dsn=dsn)
    assert redriven["redriven"] == 1
    purged = json_output("dead-letters", "purge", "jobs", "--all", "--yes", dsn=dsn)
    assert purged == {"queue": "jobs", "purged": 2}
    async with await sluice.connect(dsn) as store:
        again = await store.dequeue("jobs")
        assert again is not None
        assert (again.message_id, again.data) == (redriven["message_ids"][0], {"n": 0})
        assert await store.dead_letters("jobs") == []


async def test_groups_lag_and_reset(postgres_dsn: str) -> None:
    dsn = postgres_dsn
    async with await sluice.connect(dsn) as store:
        await store.create_stream(sluice.StreamConfig(name="orders", partitions=2))
        await store.append("orders", [EventData("OrderPlaced", {"n": n}) for n in range(6)], partition=0)
        await store.append("orders", [EventData("OrderPlaced", {"n": n}) for n in range(4)], partition=1)
        options = ConsumerGroupOptions(commit_strategy=OffsetCommitStrategy.AFTER_EACH)
        consumed = 0
        async with store.consumer_groups().consume(
            "orders", group_id="billing", consumer_id="c1", options=options
        ) as events:
            async for _ in events:
                consumed += 1
                if consumed == 3:
                    break

    listed = json_output("groups", "list", dsn=dsn)
    assert listed == [{"stream": "orders", "group": "billing", "members": 0, "lag_events": 7}]  # c1 left
    assert json_output("groups", "list", "--stream", "other", dsn=dsn) == []
    lag_rows = json_output("lag", "orders", dsn=dsn)
    assert [(r["group"], r["partition"], r["head"]) for r in lag_rows] == [("billing", 0, 6), ("billing", 1, 4)]
    assert sum(r["lag_events"] for r in lag_rows) == 7
    assert sum(r["committed_offset"] for r in lag_rows) == 3
    lag_table = run_cli("lag", "orders", "--group", "billing", dsn=dsn)
    assert lag_table.stdout.splitlines()[0].split()[:4] == ["GROUP", "PARTITION", "COMMITTED_OFFSET", "HEAD"]

    described = json_output("groups", "describe", "orders", "billing", dsn=dsn)
    assert described["lag_events"] == 7
    assert not [m for m in described["members"] if m["active"]]  # c1 left

    latest = json_output("groups", "reset", "orders", "billing", "--to", "latest", dsn=dsn)
    assert latest["lag_events"] == 0
    offset = json_output("groups", "reset", "orders", "billing", "--to", "offset:2", dsn=dsn)
    assert [p["committed_offset"] for p in offset["partitions"]] == [2, 2]
    assert offset["lag_events"] == 6

    bad_target = run_cli("groups", "reset", "orders", "billing", "--to", "nowhere", dsn=dsn)
    assert bad_target.returncode == 2
    assert "use earliest, latest, offset:N or time:ISO-8601" in bad_target.stderr
    unknown = run_cli("groups", "describe", "orders", "nope", dsn=dsn)
    assert (unknown.returncode, unknown.stderr.strip()) == (
        1,
        "Error: consumer group 'nope' of stream 'orders' does not exist",
    )
    unknown_stream = run_cli("lag", "nowhere", dsn=dsn)
    assert unknown_stream.returncode == 1


async def test_tail_follows_new_events_and_stops_cleanly(postgres_dsn: str) -> None:
    async with await sluice.connect(postgres_dsn, poll_interval=timedelta(milliseconds=100)) as store:
        await store.create_stream(sluice.StreamConfig(name="orders", partitions=2))
        await store.append("orders", [EventData("OrderPlaced", {"n": 0})], partition=0)
        limited = start_cli("tail", "orders", "--from-beginning", "--limit", "3", "--output", "json", dsn=postgres_dsn)
        follower = start_cli("tail", "orders", "--output", "json", dsn=postgres_dsn)
        assert limited.stdout is not None
        assert follower.stdout is not None
        assert follower.stderr is not None
        first = await asyncio.wait_for(asyncio.to_thread(limited.stdout.readline), timeout=20)
        assert json.loads(first)["data"] == {"n": 0}
        banner = await asyncio.wait_for(asyncio.to_thread(follower.stderr.readline), timeout=20)
        assert "following 'orders' partition(s) [0, 1] from the end" in banner
        await store.append("orders", [EventData("OrderPlaced", {"n": 1})], partition=1)
        await store.append("orders", [EventData("OrderPlaced", {"n": 2})], partition=0)
        rest, errors = await asyncio.to_thread(limited.communicate, timeout=20)
        followed = [
            json.loads(await asyncio.wait_for(asyncio.to_thread(follower.stdout.readline), timeout=20))
            for _ in range(2)
        ]
    assert limited.returncode == 0, errors
    events = [json.loads(line) for line in rest.splitlines()]
    assert sorted((e["partition"], e["offset"], e["data"]["n"]) for e in events) == [(0, 1, 2), (1, 0, 1)]
    # the follower started at the end: the event appended before it started is not shown
    assert sorted(e["data"]["n"] for e in followed) == [1, 2]
    follower.send_signal(signal.SIGINT)
    output, errors = await asyncio.to_thread(follower.communicate, timeout=20)
    assert follower.returncode == 0, errors
    assert output == ""
