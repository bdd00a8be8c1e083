"""The gRPC Append of a caller whose deadline passed before the handler started stores nothing and ends with
DEADLINE_EXCEEDED. A real client cannot be made to reach the server exactly then (its own timer usually ends
the call first; under load the answer sometimes won that race, and a 1 µs deadline append was stored and
answered OK), so the servicer gets a stand-in context for that instant, over the real in-memory store."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

import sluice
from sluice.rpc.call_context import Draining
from sluice.rpc.streams_service import StreamsService
from sluice.rpc.v1 import sluice_pb2


class ExpiredContext:
    """The parts of a servicer context Append uses, at the instant its deadline has passed."""

    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def time_remaining(self) -> float:
        return -0.001

    def invocation_metadata(self) -> tuple[Any, ...]:
        return ()

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError()


async def test_an_append_past_its_deadline_stores_nothing() -> None:
    async with await sluice.connect("memory://") as store:
        service = StreamsService(store, Draining())
        request = sluice_pb2.AppendRequest(
            stream_name="ticks", events=[sluice_pb2.EventToWrite(event_type="Tick", data=b"{}")]
        )
        context = ExpiredContext()
        with pytest.raises(grpc.aio.AbortError):
            await service.Append(request, context)  # type: ignore[arg-type]
        assert context.aborted is not None
        assert context.aborted[0] == grpc.StatusCode.DEADLINE_EXCEEDED
        assert [info.name for info in await store.list_streams()] == []
