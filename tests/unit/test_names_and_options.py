"""Name validation and store options: typed errors for bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest

import sluice
from sluice import InvalidArgumentError, InvalidNameError, StoreOptions, StreamConfig
from sluice.core.names import quote_identifier, validate_schema_name, validate_stream_name


@pytest.mark.parametrize("name", ["orders", "email-queue", "order:1f3a", "a.b_c-d", "A" * 200, "0day"])
def test_valid_stream_names(name: str) -> None:
    assert validate_stream_name(name) == name


@pytest.mark.parametrize("name", ["public; drop", 'x"', "Upper", "1abc", "a" * 49, ""])
def test_schema_names_are_validated_before_quoting(name: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_schema_name(name)
    with pytest.raises(InvalidNameError):
        quote_identifier(name)


def test_options_and_configs_raise_sluice_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="partitions"):
        StreamConfig(name="orders", partitions=0)
    with pytest.raises(InvalidNameError, match="schema_name"):
        StoreOptions(schema_name="Bad-Name")
    with pytest.raises(InvalidArgumentError, match="poll_interval must be positive"):
        StoreOptions(poll_interval=timedelta(0))
    with pytest.raises(InvalidArgumentError, match="unknown_option"):
        StoreOptions(unknown_option=1)  # type: ignore[call-arg]
    assert issubclass(InvalidNameError, sluice.SluiceError)


async def test_connect_rejects_unknown_urls_and_options() -> None:
    with pytest.raises(InvalidArgumentError, match="unsupported store URL"):
        await sluice.connect("mysql://localhost/db")
    with pytest.raises(InvalidArgumentError, match="max_payload_bytes"):
        await sluice.connect("memory://", max_payload_bytes=0)


async def test_a_closed_store_refuses_work_and_ends_subscriptions() -> None:
    store = await sluice.connect("memory://", poll_interval=timedelta(milliseconds=50))
    await store.append("s", sluice.EventData("E", {}))
    received = [event async for event in _until_closed(store)]
    assert [event.offset for event in received] == [0]
    with pytest.raises(sluice.StoreClosedError):
        await store.append("s", sluice.EventData("E", {}))
    await store.close()  # twice is fine


async def _until_closed(store: sluice.EventStore):  # type: ignore[no-untyped-def]
    async for event in store.subscribe("s"):
        yield event
        await store.close()
