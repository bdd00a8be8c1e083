"""Correlation ids: the context variable, JSON logs that carry it, and appends that store it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from sluice import EventData, EventStore, InvalidArgumentError
from sluice.observability.correlation import correlation_context, current_correlation_id
from sluice.observability.logging import configure_logging


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    output = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("INFO", stream=output)
    yield output
    root.removeHandler(handler)
    root.setLevel(level)


def records(output: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.getvalue().splitlines()]


def test_contexts_nest_and_restore() -> None:
    assert current_correlation_id() is None
    with correlation_context("outer"):
        with correlation_context("inner"):
            assert current_correlation_id() == "inner"
        assert current_correlation_id() == "outer"
    assert current_correlation_id() is None


@pytest.mark.parametrize("bad", ["", "x" * 201])
def test_a_malformed_correlation_id_is_refused(bad: str) -> None:
    with pytest.raises(InvalidArgumentError, match="correlation id"), correlation_context(bad):
        pass


async def test_tasks_started_inside_a_context_keep_its_id() -> None:
    async def read_later() -> str | None:
        await asyncio.sleep(0)
        return current_correlation_id()

    with correlation_context("request-7"):
        task = asyncio.create_task(read_later())
    assert await task == "request-7"


def test_json_logs_carry_the_correlation_id_and_extra_fields(captured_logs: io.StringIO) -> None:
    logger = logging.getLogger("sluice.test")
    logger.info("outside")
    with correlation_context("request-42"):
        logger.info("appended %d events", 3, extra={"stream": "orders"})
    first, second = records(captured_logs)
    assert first["message"] == "outside"
    assert first["correlation_id"] is None
    assert second["message"] == "appended 3 events"
    assert second["correlation_id"] == "request-42"
    assert second["stream"] == "orders"
    assert second["level"] == "INFO"
    assert second["logger"] == "sluice.test"
    assert "timestamp" in second


def test_configuring_twice_does_not_duplicate_lines(captured_logs: io.StringIO) -> None:
    second_output = io.StringIO()
    handler = configure_logging("WARNING", stream=second_output)
    try:
        logging.getLogger("sluice.test").warning("once")
        assert captured_logs.getvalue() == ""  # the first handler was replaced
        assert [record["message"] for record in records(second_output)] == ["once"]
    finally:
        logging.getLogger().removeHandler(handler)


def test_text_logs_show_the_correlation_id(captured_logs: io.StringIO) -> None:
    output = io.StringIO()
    handler = configure_logging("INFO", json=False, stream=output)
    try:
        with correlation_context("abc"):
            logging.getLogger("sluice.test").info("hello")
        assert "[abc] hello" in output.getvalue()
    finally:
        logging.getLogger().removeHandler(handler)


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="log level"):
        configure_logging("LOUD")


async def test_appends_store_the_context_correlation_id_in_each_event(store: EventStore) -> None:
    with correlation_context("request-42"):
        await store.append(
            "orders",
            [
                EventData("Placed", {"n": 1}),
                EventData("Placed", {"n": 2}, metadata={"source": "web"}),
                EventData("Placed", {"n": 3}, metadata={"correlation_id": "own"}),
            ],
        )
    await store.append("orders", EventData("Placed", {"n": 4}))
    events = [event async for event in store.read_stream("orders")]
    assert [dict(event.metadata) for event in events] == [
        {"correlation_id": "request-42"},
        {"source": "web", "correlation_id": "request-42"},
        {"correlation_id": "own"},  # an event's own correlation id wins
        {},  # outside a context nothing is added
    ]


async def test_queue_messages_carry_the_context_correlation_id(store: EventStore) -> None:
    with correlation_context("job-9"):
        await store.enqueue("jobs", EventData("Job", {"n": 1}))
    message = await store.dequeue("jobs")
    assert message is not None
    assert message.metadata["correlation_id"] == "job-9"
