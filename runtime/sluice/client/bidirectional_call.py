"""The client side of a bidirectional call: one background task reads every response and routes it
(items to a local queue, results to the futures of the requests that await them), so that a
consumer can await a commit or an ack while it iterates; writes take turns.

When the call ends with UNAVAILABLE (the server restarts or drains, the network breaks, or the
server's database stayed away longer than the server waits), the reader opens a new call and sends
the opening message again, with backoff (0.1 s doubling to 2 s) for up to ``reconnect_for``.
Requests awaiting an answer at that moment fail with the call's error (their outcome is unknown).

A write that races the call's end can make gRPC report INTERNAL "Internal error from Core" instead of the
status the call ended with (grpc/grpc#36066): the write's send failed in gRPC Core, so nothing of it went
out, and the server's UNAVAILABLE is lost. Such a call is treated as ended by UNAVAILABLE: it is opened
again, and the request that found it ended is sent on the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.message import Message

from sluice.client.remote_errors import error_from_rpc
from sluice.core.errors import RemoteCallError, SluiceError

ItemT = TypeVar("ItemT")

_END = object()
CLOSE_TIMEOUT_SECONDS = 5.0
FIRST_RETRY_DELAY_SECONDS = 0.1
MAX_RETRY_DELAY_SECONDS = 2.0
RESEND_ATTEMPTS = 5


class _NotSent(Exception):  # noqa: N818 (a signal between write() and request(), never seen outside)
    """A write found its call already ended: nothing reached the server."""

    def __init__(self, call: Any) -> None:
        super().__init__("the call had ended before the write")
        self.call = call


@dataclasses.dataclass(frozen=True, slots=True)
class Reconnection:
    """How a call is opened again after UNAVAILABLE: ``opening()`` builds the first message of the new
    call (the owner resets its own state there); ``reconnect_for`` bounds the retrying (None: never
    reconnect); ``deliveries_end_with_the_call`` drops items received but not yet handed out (a
    group member's events are delivered again by the new call; a queue's leases outlive the call)."""

    opening: Callable[[], Message]
    reconnect_for: timedelta | None
    deliveries_end_with_the_call: bool


class BidirectionalCall(Generic[ItemT]):
    """Wraps a ``grpc.aio.StreamStreamCall``. ``route(response)`` returns an item for the local
    queue, or None after handling the response itself (usually by ``resolve``-ing a request)."""

    def __init__(
        self,
        open_call: Callable[[], Any],
        route: Callable[[Any], ItemT | None],
        name: str,
        *,
        reconnection: Reconnection | None = None,
    ) -> None:
        self._open_call = open_call
        self._call = open_call()
        self._route = route
        self._reconnection = reconnection
        self._items: asyncio.Queue[Any] = asyncio.Queue()
        self._results: dict[int, asyncio.Future[Any]] = {}
        self._request_ids = itertools.count(1)
        self._write_lock = asyncio.Lock()
        self._failure: SluiceError | None = None
        self._closing = False
        self._connected = asyncio.Event()
        self._connected.set()
        self._call_changed = asyncio.Event()
        """Set (and replaced) whenever the call is opened again, and when the reader ends."""
        self._interruption: SluiceError | None = None
        """Why the call was last opened again (what a write to the ended call raises)."""
        self._failing_since: float | None = None
        self._retry_delay = FIRST_RETRY_DELAY_SECONDS
        self.reconnects = 0
        """How many times the call was opened again after ending with UNAVAILABLE."""
        self._reader = asyncio.create_task(self._read_responses(), name=name)

    async def write(self, request: Message) -> None:
        await self._connected.wait()  # (while the call is being opened again, requests wait for the new one)
        async with self._write_lock:
            call = self._call
            try:
                await call.write(request)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as error:
                if isinstance(error, grpc.aio.AioRpcError) and not lost_its_status(error):
                    raise error_from_rpc(error) from error
                # The call had already ended ("RPC already finished", or the send failed in gRPC Core).
                if self._may_resend():
                    raise _NotSent(call) from error
                raise self._failure or self._interruption or error_from_rpc_closed() from error

    async def request(self, build: Callable[[int], Message]) -> Any:
        """Send the request ``build(request_id)`` and return the server's answer to it. A request that did not go
        out because the call had just ended (before the reader noticed) is sent again on the reopened call."""
        for _ in range(RESEND_ATTEMPTS):
            request_id, result = self._next_request_id()
            try:
                await self.write(build(request_id))
            except _NotSent as not_sent:
                self._results.pop(request_id, None)
                result.cancel()
                await self._wait_for_call_after(not_sent.call)
                continue
            return await result
        raise self._failure or self._interruption or error_from_rpc_closed()

    def _may_resend(self) -> bool:
        reconnection = self._reconnection
        return (
            reconnection is not None
            and reconnection.reconnect_for is not None
            and not self._closing
            and self._failure is None
            and not self._reader.done()
        )

    async def _wait_for_call_after(self, ended_call: Any) -> None:
        """Until the reader has opened a call after ``ended_call`` (or has ended for good)."""
        while True:
            changed = self._call_changed
            if self._call is not ended_call or self._reader.done():
                break
            await changed.wait()
        await self._connected.wait()

    def _next_request_id(self) -> tuple[int, asyncio.Future[Any]]:
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
                try:
                    await self._route_responses()
                    return
                except grpc.aio.AioRpcError as error:
                    failure = error_from_rpc(error)
                    now = asyncio.get_running_loop().time()
                    self._failing_since = now if self._failing_since is None else self._failing_since
                    if not self._may_reconnect(error, now - self._failing_since):
                        self._failure = failure
                        return
                self._connected.clear()
                self._interruption = failure
                if self._reconnection is not None and self._reconnection.deliveries_end_with_the_call:
                    self._drop_items()
                self._fail_waiting_requests(failure)
                await asyncio.sleep(self._retry_delay)
                self._retry_delay = min(self._retry_delay * 2, MAX_RETRY_DELAY_SECONDS)
                await self._reopen()
                self._connected.set()
        finally:
            self._connected.set()  # (writers waiting for a new call find this one ended)
            self._call_changed.set()
            self._items.put_nowait(_END)
            self._fail_waiting_requests(self._failure or error_from_rpc_closed())

    async def _route_responses(self) -> None:
        while True:
            response = await self._call.read()
            if response is grpc.aio.EOF:
                return
            self._failing_since, self._retry_delay = None, FIRST_RETRY_DELAY_SECONDS  # the call works
            item = self._route(response)
            if item is not None:
                self._items.put_nowait(item)  # bounded by the server: credits, max in flight

    def _may_reconnect(self, error: grpc.aio.AioRpcError, failing_for: float) -> bool:
        reconnection = self._reconnection
        if reconnection is None or reconnection.reconnect_for is None or self._closing:
            return False
        ended_by_the_server = error.code() == grpc.StatusCode.UNAVAILABLE or lost_its_status(error)
        return ended_by_the_server and failing_for <= reconnection.reconnect_for.total_seconds()

    async def _reopen(self) -> None:
        """A new call, opened with the opening message again (a failed write shows in the next read)."""
        assert self._reconnection is not None
        async with self._write_lock:
            self._call.cancel()
            self._call = self._open_call()
            self._call_changed.set()
            self._call_changed = asyncio.Event()
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                await self._call.write(self._reconnection.opening())
        self.reconnects += 1

    def _drop_items(self) -> None:
        while not self._items.empty():
            self._items.get_nowait()

    def _fail_waiting_requests(self, error: SluiceError) -> None:
        for future in self._results.values():
            if not future.done():
                future.set_exception(error)
        self._results.clear()

    async def close(self, timeout_seconds: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Half-close (the server then ends the call cleanly: a group member leaves its group), wait
        a little for that, then cancel the call and stop the reader."""
        self._closing = True
        with contextlib.suppress(Exception):
            async with self._write_lock:
                await self._call.done_writing()
        await asyncio.wait({self._reader}, timeout=timeout_seconds)
        self._call.cancel()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def lost_its_status(error: grpc.aio.AioRpcError) -> bool:
    """Whether ``error`` is gRPC Core's INTERNAL for a send that failed because the call had ended
    (grpc/grpc#36066), not a status the server sent."""
    return error.code() == grpc.StatusCode.INTERNAL and 'Failed "execute_batch"' in (error.debug_error_string() or "")


def error_from_rpc_closed() -> SluiceError:
    return RemoteCallError("the call has ended", status="CANCELLED")
