"""``sluice enqueue`` and ``sluice dequeue``: put messages on a queue, lease (and optionally ack) them."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import click

from sluice.cli.durations import Seconds
from sluice.cli.input_events import parse_event, parse_lines
from sluice.cli.output import emit_rows, to_json
from sluice.cli.running import InvalidInput, open_store, run
from sluice.cli.settings import output_setting, require_dsn, store_settings
from sluice.core.errors import InvalidArgumentError
from sluice.core.messages import QueueMessage


@click.command()
@click.argument("queue")
@click.option("--data", help="The message as JSON (stdin JSON lines, one message each, if omitted).")
@click.option("--type", "event_type", default="message", show_default=True, help="Message type.")
@click.option("--delay", type=Seconds(), help="Seconds before its first delivery.")
@click.option("--dedupe-key", help="Skip it while a pending message has the same key (single message only).")
@click.option("--correlation-id")
@store_settings
@output_setting
def enqueue(
    *,
    queue: str,
    data: str | None,
    event_type: str,
    delay: float | None,
    dedupe_key: str | None,
    correlation_id: str | None,
    dsn: str | None,
    schema_name: str,
    output: str,
) -> None:
    """Put one message (--data) or many (JSON lines on stdin) on QUEUE, in one transaction."""
    database = require_dsn(dsn)
    try:
        if data is not None:
            messages = [parse_event(data, event_type=event_type, where="--data")]
        else:
            messages = parse_lines(sys.stdin, event_type=event_type, source="stdin")
    except InvalidArgumentError as error:
        raise InvalidInput(str(error)) from error
    if dedupe_key is not None and len(messages) != 1:
        raise click.UsageError("--dedupe-key applies to a single message (--data)")

    async def body() -> None:
        async with open_store(database, schema_name) as store:
            results = await store.enqueue_many(
                queue,
                messages,
                delay=timedelta(seconds=delay) if delay else None,
                correlation_id=correlation_id,
                dedupe_keys=[dedupe_key] if dedupe_key is not None else None,
            )
        rows = [
            {"queue": result.queue_name, "message_id": result.message_id, "deduplicated": result.deduplicated}
            for result in results
        ]
        emit_rows(rows, ["queue", "message_id", "deduplicated"], output)

    run(body())


def message_record(message: QueueMessage) -> dict[str, Any]:
    return {
        "queue": message.queue_name,
        "receipt": str(message.receipt),
        "message_id": message.message_id,
        "attempt": message.attempt,
        "event_type": message.event_type,
        "enqueued_at": message.enqueued_at,
        "visible_at": message.visible_at,
        "correlation_id": message.correlation_id,
        "metadata": dict(message.metadata),
        "data": message.data,
    }


@click.command()
@click.argument("queue")
@click.option("--max-messages", type=click.IntRange(1, 1000), default=1, show_default=True)
@click.option("--visibility-timeout", type=Seconds(0.001), default=30.0, show_default=True, help="Seconds.")
@click.option("--ack", is_flag=True, help="Acknowledge the messages once printed (they are then gone).")
@store_settings
@output_setting
def dequeue(
    *,
    queue: str,
    max_messages: int,
    visibility_timeout: float,
    ack: bool,
    dsn: str | None,
    schema_name: str,
    output: str,
) -> None:
    """Lease up to --max-messages visible messages of QUEUE and print them with their receipts.

    Without --ack they become visible again after --visibility-timeout (another delivery attempt)."""
    database = require_dsn(dsn)

    async def body() -> None:
        async with open_store(database, schema_name) as store:
            messages = await store.dequeue_many(
                queue, max_messages=max_messages, visibility_timeout=timedelta(seconds=visibility_timeout)
            )
            rows = [message_record(message) for message in messages]
            emit_rows(rows, ["receipt", "attempt", "event_type", "enqueued_at", "data"], output)
            if ack and messages:
                stale = await store.acknowledge_many(queue, [message.receipt for message in messages])
                if stale:
                    raise click.ClickException(
                        f"receipts {to_json([str(receipt) for receipt in stale])} went stale before the ack"
                    )
                click.echo(f"acknowledged {len(messages)} message(s)", err=True)

    run(body())
