"""NATS JetStream beside Sluice: nats-server built from its Go module (scripts/peers/build-nats-server.sh), one
server per durability setting started on loopback with a throwaway file store, and the workload run through nats-py
(a file-backed stream per run; every publish waits for JetStream's ack, which comes once the message is stored)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import tempfile
from collections.abc import AsyncGenerator, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.peers import workload
from bench.peers.kafka_config import REPOSITORY_ROOT
from bench.peers.nats_config import NATS_SETTINGS, NatsServerConfig, NatsSetting
from bench.peers.processes import PeerServerError, ServerProcess, build_tool, free_loopback_port

BUILD_SCRIPT = REPOSITORY_ROOT / "scripts" / "peers" / "build-nats-server.sh"
PENDING_MESSAGES_LIMIT = 1_000_000  # the callback only queues; nothing is dropped as a slow consumer


def build_server() -> Path:
    """The path of nats-server, built on first use."""
    try:
        return build_tool(BUILD_SCRIPT) / "nats-server"
    except RuntimeError as error:
        raise PeerServerError(f"nats-server could not be built: {error} (its output is above)") from error


@contextmanager
def running_server(binary: Path, setting: NatsSetting) -> Iterator[str]:
    """A started nats-server with JetStream in a throwaway folder; yields its URL, stops it by PID."""
    work = Path(tempfile.mkdtemp(prefix="sluice-bench-nats-"))
    try:
        config = NatsServerConfig(
            port=free_loopback_port(), store_directory=work / "jetstream", sync_interval=setting.sync_interval
        )
        config_path = work / "nats-server.conf"
        config_path.write_text(config.text())
        command = [str(binary), "--config", str(config_path)]
        with ServerProcess("nats-server", command, work / "nats-server.log", config.port) as server:
            server.start()
            yield f"nats://127.0.0.1:{config.port}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


class NatsClients:
    """One nats-py connection and its JetStream context."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.jetstream = connection.jetstream()
        self.streams = 0

    @classmethod
    async def connect(cls, url: str) -> NatsClients:
        import nats  # noqa: PLC0415  (the bench-peers group, only when this suite runs)

        return cls(await nats.connect(url))

    async def close(self) -> None:
        await self.connection.close()

    async def new_stream(self) -> tuple[str, str]:
        """A new file-backed stream of one subject; returns (stream name, subject)."""
        from nats.js.api import StorageType  # noqa: PLC0415

        self.streams += 1
        name, subject = f"BENCH{self.streams}", f"bench.{self.streams}"
        await self.jetstream.add_stream(name=name, subjects=[subject], storage=StorageType.FILE)
        return name, subject

    def sender(self, stream: str, subject: str) -> workload.SendBatch:
        """Publishes a batch without waiting between messages, then waits for every message's ack."""

        async def send(events: list[dict[str, Any]]) -> None:
            acks = [
                await self.jetstream.publish_async(subject, workload.encode(data), stream=stream) for data in events
            ]
            await asyncio.gather(*acks)

        return send

    async def read_all(self, stream: str, subject: str, expected: int) -> int:
        """Reads the stream from the start (each event decoded) until ``expected`` were seen."""
        seen = 0
        async with contextlib.aclosing(self.deliveries(stream, subject)) as deliveries:
            async for _ in deliveries:
                seen += 1
                if seen >= expected:
                    break
        return seen

    async def deliveries(self, stream: str, subject: str) -> AsyncGenerator[int, None]:
        """Every message of the stream from the start, through an ephemeral push consumer that needs no acks,
        handled by a callback (nats-py's fastest way in: 30,000 messages/s here against 3,500 for pull
        fetches of 1,000 and 7,600 for iterating a subscription, measured while writing this)."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy  # noqa: PLC0415

        received: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_message(message: Any) -> None:
            received.put_nowait(message.data)

        config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL)
        subscription = await self.jetstream.subscribe(
            subject, stream=stream, config=config, cb=on_message, pending_msgs_limit=PENDING_MESSAGES_LIMIT
        )
        try:
            while True:
                yield workload.decode_number(await received.get())
        finally:
            await subscription.unsubscribe()


class NatsTarget:
    """NATS JetStream under one setting (its own server): each channel is a new file-backed stream."""

    system = "NATS JetStream"

    def __init__(self, clients: NatsClients, setting: NatsSetting) -> None:
        self.clients = clients
        self.setting = setting.label
        self.fsync_per_write = setting.sync_interval == "always"

    async def new_channel(self) -> workload.Channel:
        stream, subject = await self.clients.new_stream()
        return workload.Channel(
            send=self.clients.sender(stream, subject),
            read_all=functools.partial(self.clients.read_all, stream, subject),
            deliveries=functools.partial(self.clients.deliveries, stream, subject),
        )


async def open_targets(stack: AsyncExitStack) -> list[workload.Target]:
    """Builds nats-server, starts one per setting (stopped by ``stack``) and returns a target for each."""
    binary = build_server()
    targets: list[workload.Target] = []
    for setting in NATS_SETTINGS:
        url = stack.enter_context(running_server(binary, setting))
        clients = await NatsClients.connect(url)
        stack.push_async_callback(clients.close)
        targets.append(NatsTarget(clients, setting))
    return targets
