"""The client side of a bidirectional call: one background task reads every response and routes it
(items to a local queue, results to the futures of the requests that await them), so that a
consumer can await a commit or an ack while it iterates; writes take turns."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.message import Message

from sluice.client.remote_errors import error_from_rpc
from sluice.errors import RemoteCallError, SluiceError

ItemT = TypeVar("ItemT")

_END = object()
CLOSE_TIMEOUT_SECONDS = 5.0


class BidirectionalCall(Generic[ItemT]):
    """Wraps a ``grpc.aio.StreamStreamCall``. ``route(response)`` returns an item for the local
    queue, or None after handling the response itself (usually by ``resolve``-ing a request)."""

    def __init__(self, call: Any, route: Callable[[Any], ItemT | None], name: str) -> None:
        self._call = call
        self._route = route
        self._items: asyncio.Queue[Any] = asyncio.Queue()
        self._results: dict[int, asyncio.Future[Any]] = {}
        self._request_ids = itertools.count(1)
        self._write_lock = asyncio.Lock()
        self._failure: SluiceError | None = None
        self._reader = asyncio.create_task(self._read_responses(), name=name)

    async def write(self, request: Message) -> None:
        async with self._write_lock:
            try:
                await self._call.write(request)
            except grpc.aio.AioRpcError as error:
                raise error_from_rpc(error) from error
            except asyncio.InvalidStateError as error:  # the call already ended
                raise self._failure or error_from_rpc_closed() from error

    def next_request_id(self) -> tuple[int, asyncio.Future[Any]]:
        """A request id and the future its result will resolve."""
        request_id = next(self._request_ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._results[request_id] = future
        return request_id, future

    def resolve(self, request_id: int, result: Any) -> None:
        future = self._results.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(result)

    async def next_item(self) -> ItemT:
        """The next routed item; raises the call's error (or StopAsyncIteration) once it has ended."""
        item = await self._items.get()
        if item is _END:
            self._items.put_nowait(_END)  # every later call ends too
            if self._failure is not None:
                raise self._failure
            raise StopAsyncIteration
        routed: ItemT = item
        return routed

    async def _read_responses(self) -> None:
        try:
            while True:
                response = await self._call.read()
                if response is grpc.aio.EOF:
                    break
                item = self._route(response)
                if item is not None:
                    self._items.put_nowait(item)  # bounded by the server: credits, max in flight
        except grpc.aio.AioRpcError as error:
            self._failure = error_from_rpc(error)
        finally:
            self._items.put_nowait(_END)
            for future in self._results.values():
                if not future.done():
                    future.set_exception(self._failure or error_from_rpc_closed())
            self._results.clear()

    async def close(self, timeout_seconds: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Half-close (the server then ends the call cleanly: a group member leaves its group), wait
        a little for that, then cancel the call and stop the reader."""
        with contextlib.suppress(Exception):
            async with self._write_lock:
                await self._call.done_writing()
        await asyncio.wait({self._reader}, timeout=timeout_seconds)
        self._call.cancel()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def error_from_rpc_closed() -> SluiceError:
    return RemoteCallError("the call has ended", status="CANCELLED")
