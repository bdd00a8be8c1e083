"""The REST API fuzzed from its own OpenAPI document with schemathesis, against a real PostgreSQL
store: valid and invalid requests to every operation, and no answer may be a 5xx or break the
documented schema, status codes or content types."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import sluice
from sluice import ConsumerGroupOptions, EventData, EventStore, StreamConfig, StreamType
from sluice.observability.metrics import SluiceMetrics
from sluice.rest import create_app
from sluice.security import BearerTokens
from tests.rest.conftest import AUTHORIZATION, TOKEN
from tests.rest.loop_bridge import LoopBridge

T = TypeVar("T")
EXAMPLES_PER_OPERATION = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 10}
CHECKS = {
    GenerationMode.POSITIVE: [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ],
    GenerationMode.NEGATIVE: [not_a_server_error, content_type_conformance],
}


@pytest.fixture
def store_loop() -> Iterator[Callable[[Coroutine[Any, Any, Any]], Any]]:
    """A runner of coroutines on an event loop in its own thread (where the store lives)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="store-loop", daemon=True)
    thread.start()

    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(60)

    run.loop = loop  # type: ignore[attr-defined]
    yield run
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


async def seed(store: EventStore) -> None:
    """Data for generated requests to find: the OpenAPI examples name 'orders', 'email' and 'worker-1'."""
    await store.create_stream(StreamConfig(name="orders", partitions=2))
    await store.append("orders", [EventData("E", {"n": n}) for n in range(10)])
    options = ConsumerGroupOptions(session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200))
    async with store.consumer_groups().consume("orders", group_id="email", consumer_id="w", options=options) as events:
        async for _event in events:
            break
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL, max_attempts=1))


def fuzz(operation: Any, mode: GenerationMode, examples: int) -> None:
    """Send ``examples`` generated requests to one operation and check every answer."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=AUTHORIZATION, checks=CHECKS[mode])

    call()


@pytest.mark.postgres
@pytest.mark.slow
def test_generated_requests_never_get_a_server_error(
    postgres_dsn: str, store_loop: Callable[[Coroutine[Any, Any, Any]], Any]
) -> None:
    store: EventStore = store_loop(sluice.connect(postgres_dsn))
    try:
        store_loop(seed(store))
        app = create_app(
            store, tokens=BearerTokens({TOKEN: "fuzzer"}), metrics=SluiceMetrics(), lag_refresh_interval=None
        )
        bridged = LoopBridge(app, store_loop.loop)  # type: ignore[attr-defined]
        schema = schemathesis.openapi.from_asgi("/openapi.json", bridged)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 12
        for mode, examples in EXAMPLES_PER_OPERATION.items():
            for operation in operations:
                takes_input = any(
                    len(inputs) for inputs in (operation.path_parameters, operation.query, operation.body)
                )
                if mode is GenerationMode.POSITIVE or takes_input:  # nothing to make invalid otherwise
                    fuzz(operation, mode, examples)
    finally:
        schemathesis_asgi.shutdown_lifespans()
        store_loop(store.close())
