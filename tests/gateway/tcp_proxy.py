"""A loopback TCP proxy in front of PostgreSQL that a test can freeze: connections stay open and nothing
is relayed any more, which is what a hung database looks like from the client (no answer, no error).
Frozen from the start, it is a "database" that accepts connections and never answers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from urllib.parse import urlsplit, urlunsplit


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dsn_via(dsn: str, port: int) -> str:
    """``dsn`` with its host and port replaced by 127.0.0.1:``port``."""
    parts = urlsplit(dsn)
    user = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"))


class TcpProxy:
    def __init__(self, target_dsn: str | None, *, port: int = 0, frozen: bool = False) -> None:
        target = urlsplit(target_dsn) if target_dsn is not None else None
        self._target = (target.hostname or "127.0.0.1", target.port or 5432) if target is not None else None
        self._port = port
        self._flowing = asyncio.Event()
        if not frozen:
            self._flowing.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self._port, reuse_address=True)

    def freeze(self) -> None:
        self._flowing.clear()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self._target is None:
            with contextlib.suppress(OSError):
                while await reader.read(65536):
                    pass  # never answers; ends when close() closes the connection
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers.add(upstream_writer)
        relays = [
            asyncio.create_task(self._relay(reader, upstream_writer)),
            asyncio.create_task(self._relay(upstream_reader, writer)),
        ]
        self._tasks.update(relays)
        await asyncio.gather(*relays, return_exceptions=True)

    async def _relay(self, source: asyncio.StreamReader, destination: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                await self._flowing.wait()
                destination.write(data)
                await destination.drain()
        with contextlib.suppress(OSError):
            destination.close()
