"""One writer per bidirectional call: several tasks send on the same stream, one message at a time."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from google.protobuf.message import Message


class SerializedWriter:
    """``context.write`` must not run concurrently; this takes turns."""

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._context = context
        self._lock = asyncio.Lock()

    async def write(self, message: Message) -> None:
        async with self._lock:
            await self._context.write(message)
