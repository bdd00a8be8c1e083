"""The opt-in `./dev bench peers` suite (issue 18): Sluice beside Apache Kafka (KRaft, one broker) and NATS
JetStream (file store), each run on this machine in the same run with its durability settings stated, and the
same three figures for each: produce throughput in batches, consume throughput, end-to-end latency at a fixed rate.

The peers' Python clients (aiokafka, nats-py; the ``bench-peers`` dependency group) are imported only when the suite
runs, so the other suites never need them."""

from bench.peers.suite import run

__all__ = ["run"]
