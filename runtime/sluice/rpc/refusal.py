"""Refusing a call only once its first request has arrived, so that the client sees the refusal's status.

A client that streams requests writes its first one as the call opens. When the server ends the call before
that request arrives, the client's write can lose the race to the status, and grpc's asyncio client then
reports INTERNAL "Internal error from Core" instead of the server's status (grpc/grpc#36066): an unauthenticated
consumer would not learn why, and a consumer meeting a gateway that waits for its database would not see the
UNAVAILABLE it retries on. Reading the first request before refusing closes the race for every call shape
(unary calls send their one request at once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

FIRST_REQUEST_SECONDS = 5.0
"""How long a refusal waits for the call's first request before it refuses anyway."""


async def await_first_request(requests: AsyncIterator[Any]) -> None:
    """Until the call's first request has arrived, the client half-closed or went away, or
    ``FIRST_REQUEST_SECONDS`` passed."""
    with contextlib.suppress(TimeoutError, grpc.RpcError, asyncio.InvalidStateError):
        async with asyncio.timeout(FIRST_REQUEST_SECONDS):
            await anext(aiter(requests), None)
