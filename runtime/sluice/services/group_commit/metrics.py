"""Prometheus instruments of append batching: flushes, their sizes, and batches split after an error.

The default instruments are registered in the runtime's registry (``sluice.observability.metrics``),
so ``/metrics`` serves them beside the others; tests pass their own ``GroupCommitMetrics``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from sluice.observability.metrics import LATENCY_BUCKETS, default_metrics

BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000)
"""Events per flush: one event means no company came within the linger time."""


class GroupCommitMetrics:
    """The batcher's instruments, in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        stream = ("stream",)
        self.flushes = Counter(
            "sluice_group_commit_flushes",
            "Shared appends (one transaction each) made by append batchers.",
            stream,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "sluice_group_commit_batch_size",
            "Events written by one shared append.",
            stream,
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.wait = Histogram(
            "sluice_group_commit_wait_seconds",
            "Time a caller's events waited in a batcher before their shared append started.",
            stream,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.splits = Counter(
            "sluice_group_commit_splits",
            "Shared appends that failed with an error one event could have caused, and were split in two "
            "so that only the guilty caller fails.",
            stream,
            registry=self.registry,
        )

    def flushed(self, stream_name: str, events: int, waited_seconds: float) -> None:
        """A shared append of ``events`` events started; its oldest caller had waited ``waited_seconds``."""
        self.flushes.labels(stream_name).inc()
        self.batch_size.labels(stream_name).observe(events)
        self.wait.labels(stream_name).observe(max(waited_seconds, 0.0))

    def split(self, stream_name: str) -> None:
        self.splits.labels(stream_name).inc()


default_group_commit_metrics = GroupCommitMetrics(default_metrics.registry)
"""The process's batching instruments, served by ``/metrics`` with the rest of Sluice's."""
