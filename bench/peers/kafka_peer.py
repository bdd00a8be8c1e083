"""Apache Kafka beside Sluice: the broker jars fetched from Maven Central (scripts/peers/fetch-kafka.sh), one KRaft
broker+controller started on loopback with a throwaway log folder, and the workload run through aiokafka under each
durability setting (a topic per run, acks=all)."""

from __future__ import annotations

import asyncio
import functools
import shutil
import tempfile
import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.peers import workload
from bench.peers.kafka_config import KAFKA_SETTINGS, REPOSITORY_ROOT, KafkaBrokerConfig, KafkaSetting, new_cluster_id
from bench.peers.processes import PeerServerError, ServerProcess, build_tool, free_loopback_port, run_tool

FETCH_SCRIPT = REPOSITORY_ROOT / "scripts" / "peers" / "fetch-kafka.sh"
LEADER_TIMEOUT_SECONDS = 30
# log4j2's default configuration (no file): warnings and errors to standard output, which is the broker's log file.
JVM_OPTIONS = ["-Xms512m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true", "-Dlog4j2.level=WARN"]
MAX_BATCH_BYTES = 1 << 20  # room for a batch of 100 events of 200 bytes in one record batch (default 16 KiB)


def fetch_libs() -> Path:
    """The folder of the broker's jars, fetched on first use."""
    try:
        return build_tool(FETCH_SCRIPT)
    except RuntimeError as error:
        raise PeerServerError(f"Kafka's jars could not be fetched: {error} (its output is above)") from error


@contextmanager
def running_broker(libs: Path) -> Iterator[str]:
    """A formatted and started broker in a throwaway folder; yields its bootstrap address, stops it by PID."""
    work = Path(tempfile.mkdtemp(prefix="sluice-bench-kafka-"))
    try:
        config = KafkaBrokerConfig(
            broker_port=free_loopback_port(), controller_port=free_loopback_port(), log_directory=work / "logs"
        )
        properties = work / "server.properties"
        properties.write_text(config.server_properties())
        log_path = work / "broker.log"
        java = ["java", *JVM_OPTIONS, "-cp", f"{libs}/*"]
        format_command = ["kafka.tools.StorageTool", "format", "-t", new_cluster_id(), "-c", str(properties)]
        run_tool([*java, *format_command], "formatting the Kafka log folder", log_path)
        with ServerProcess(
            "kafka broker", [*java, "kafka.Kafka", str(properties)], log_path, config.broker_port
        ) as broker:
            broker.start()
            yield f"127.0.0.1:{config.broker_port}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


class KafkaClients:
    """aiokafka's admin client and an acks=all producer on one broker."""

    def __init__(self, bootstrap: str) -> None:
        from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]  # noqa: PLC0415  (only when this suite runs)
        from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]  # noqa: PLC0415

        self.bootstrap = bootstrap
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=0, max_batch_size=MAX_BATCH_BYTES,
            max_request_size=MAX_BATCH_BYTES,
        )  # fmt: skip
        self.topics = 0

    async def start(self) -> None:
        await self.admin.start()
        await self.producer.start()

    async def close(self) -> None:
        await self.producer.stop()
        await self.admin.close()

    async def new_topic(self, setting: KafkaSetting) -> str:
        from aiokafka.admin import NewTopic  # noqa: PLC0415

        self.topics += 1
        name = f"bench-{self.topics}"
        topic = NewTopic(name, num_partitions=1, replication_factor=1, topic_configs=setting.topic_configs)
        await self.admin.create_topics([topic])
        await self._wait_for_leader(name)
        # The broker may still answer NotLeaderForPartition (then the producer retries after a back-off) for a
        # moment after its metadata names the leader: one acknowledged record (number -1, which readers skip)
        # makes the topic ready before a run is timed.
        await self.producer.send_and_wait(name, workload.encode(workload.event(-1)), partition=0)
        return name

    async def _wait_for_leader(self, topic: str) -> None:
        """Waits until the producer's metadata names partition 0's leader, so that the first send of a run is
        not answered NotLeaderForPartition (then retried) while the new topic's leader is being elected."""
        from aiokafka import TopicPartition  # noqa: PLC0415

        partition = TopicPartition(topic, 0)
        deadline = time.monotonic() + LEADER_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            await self.producer.client.force_metadata_update()
            leader = self.producer.client.cluster.leader_for_partition(partition)
            if leader is not None and leader >= 0:
                return
            await asyncio.sleep(0.1)
        raise PeerServerError(f"topic {topic} had no leader within {LEADER_TIMEOUT_SECONDS} s")

    def sender(self, topic: str) -> workload.SendBatch:
        """Hands a batch's events to the producer (which packs them into record batches for partition 0), then
        waits for the broker's acks=all answer for every one. (aiokafka's send_batch is not used: concurrent
        callers of it on one partition time out in its accumulator, as the latency run's overlapping batches did.)"""

        async def send(events: list[dict[str, Any]]) -> None:
            deliveries = [await self.producer.send(topic, workload.encode(data), partition=0) for data in events]
            await asyncio.gather(*deliveries)

        return send

    async def read_all(self, topic: str, expected: int) -> int:
        """Reads the topic's partition from the start (each event decoded) until ``expected`` were seen."""
        consumer = await self._consumer(topic)
        try:
            seen = 0
            while seen < expected:
                batches = await consumer.getmany(timeout_ms=5000, max_records=1000)
                if not batches:
                    break
                for records in batches.values():
                    for record in records:
                        assert record.value is not None
                        seen += workload.decode_number(record.value) >= 0
            return seen
        finally:
            await consumer.stop()

    async def deliveries(self, topic: str) -> AsyncGenerator[int, None]:
        consumer = await self._consumer(topic)
        try:
            async for record in consumer:
                assert record.value is not None
                yield workload.decode_number(record.value)
        finally:
            await consumer.stop()

    async def _consumer(self, topic: str) -> Any:
        from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: PLC0415

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.start()
        await consumer.seek_to_beginning()
        return consumer


class KafkaTarget:
    """Kafka under one setting: each channel is a new one-partition topic with the setting's topic configs."""

    system = "Kafka"

    def __init__(self, clients: KafkaClients, setting: KafkaSetting) -> None:
        self.clients = clients
        self.setting = setting.label
        self.fsync_per_write = setting.fsync_per_write
        self._kafka_setting = setting

    async def new_channel(self) -> workload.Channel:
        topic = await self.clients.new_topic(self._kafka_setting)
        return workload.Channel(
            send=self.clients.sender(topic),
            read_all=functools.partial(self.clients.read_all, topic),
            deliveries=functools.partial(self.clients.deliveries, topic),
        )


async def open_targets(stack: AsyncExitStack) -> list[workload.Target]:
    """Fetches the jars, starts one broker (stopped by ``stack``) and returns a target per setting."""
    libs = fetch_libs()
    bootstrap = stack.enter_context(running_broker(libs))
    clients = KafkaClients(bootstrap)
    await clients.start()
    stack.push_async_callback(clients.close)
    return [KafkaTarget(clients, setting) for setting in KAFKA_SETTINGS]
