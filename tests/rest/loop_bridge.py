"""An ASGI app that runs another ASGI app on a different event loop (in another thread).

Schemathesis calls ASGI apps from its own event-loop thread, but a PostgreSQL store belongs to
the loop that opened it. The bridge forwards each call to the store's loop and relays ``receive``
and ``send`` back, so the app under test runs where its store lives. Lifespan events are answered
here (the tests manage the store themselves).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

T = TypeVar("T")


class LoopBridge:
    def __init__(self, app: ASGIApp, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._answer_lifespan(receive, send)
            return
        caller = asyncio.get_running_loop()

        async def on_caller(awaitable: Awaitable[T]) -> T:
            async def wrapped() -> T:
                return await awaitable

            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(wrapped(), caller))

        async def bridged_receive() -> Message:
            return await on_caller(receive())

        async def bridged_send(message: Message) -> None:
            await on_caller(send(message))

        await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(self.app(scope, bridged_receive, bridged_send), self.loop)
        )

    @staticmethod
    async def _answer_lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
