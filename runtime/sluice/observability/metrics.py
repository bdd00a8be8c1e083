"""Prometheus instruments of Sluice in a dedicated registry, and typed functions that record into them.

The runtime calls the ``record_*`` functions where things happen (append, delivery, ack, ...);
``/metrics`` serves ``render()`` of the same registry. A dedicated ``CollectorRegistry`` keeps
Sluice's series apart from whatever else the process registers in prometheus-client's global one.

Gauges that need the database (lag, active members) are set by ``LagRefresher`` (see
``lag_refresher.py``), because prometheus collectors run synchronously during a scrape.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Seconds: appends take about a millisecond, deliveries a few; the tail covers consumers that fall behind."""

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


class SluiceMetrics:
    """Every instrument, registered in one registry (a fresh one per instance, so tests can isolate)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        stream = ("stream",)
        stream_group = ("stream", "group")
        stream_partition = ("stream", "partition")
        stream_group_partition = ("stream", "group", "partition")
        queue = ("queue",)
        self.appended = Counter(
            "sluice_events_appended", "Events appended to persistent streams.", stream, registry=self.registry
        )
        self.append_latency = Histogram(
            "sluice_append_duration_seconds",
            "Time an append call took, from the caller's side.",
            stream,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.consumed = Counter(
            "sluice_events_consumed",
            "Events delivered to consumer-group members.",
            stream_group,
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            "sluice_delivery_latency_seconds",
            "Time from an event's append to its delivery to a consumer.",
            stream_group,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.enqueued = Counter("sluice_messages_enqueued", "Messages put on queues.", queue, registry=self.registry)
        self.dequeued = Counter(
            "sluice_messages_dequeued", "Messages leased to queue consumers.", queue, registry=self.registry
        )
        self.acknowledged = Counter(
            "sluice_messages_acknowledged", "Queue messages acknowledged.", queue, registry=self.registry
        )
        self.nacked = Counter(
            "sluice_messages_nacked", "Queue messages given back for redelivery.", queue, registry=self.registry
        )
        self.dead_lettered = Counter(
            "sluice_messages_dead_lettered",
            "Queue messages moved to the dead-letter queue after their last attempt.",
            queue,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "sluice_queue_depth", "Messages waiting on a queue (visible or delayed).", queue, registry=self.registry
        )
        self.queue_in_flight = Gauge(
            "sluice_queue_in_flight", "Queue messages leased and not yet acknowledged.", queue, registry=self.registry
        )
        self.lag_events = Gauge(
            "sluice_consumer_lag_events",
            "Events appended but not yet committed by a consumer group (sum over partitions).",
            stream_group,
            registry=self.registry,
        )
        self.lag_seconds = Gauge(
            "sluice_consumer_lag_seconds",
            "Age of the oldest event a consumer group has not committed (max over partitions).",
            stream_group,
            registry=self.registry,
        )
        self.active_members = Gauge(
            "sluice_consumer_group_active_members",
            "Members of a consumer group whose session is alive.",
            stream_group,
            registry=self.registry,
        )
        self.rebalances = Counter(
            "sluice_consumer_group_rebalances",
            "Assignment changes seen by consumer-group members in this process.",
            stream_group,
            registry=self.registry,
        )

        self.partition_lag_events = Gauge(
            "sluice_consumer_partition_lag_events",
            "Events appended to one partition but not yet committed by a consumer group.",
            stream_group_partition,
            registry=self.registry,
        )
        self.partition_lag_seconds = Gauge(
            "sluice_consumer_partition_lag_seconds",
            "Age of the oldest event of one partition a consumer group has not committed.",
            stream_group_partition,
            registry=self.registry,
        )
        self.stream_head = Gauge(
            "sluice_stream_head_offset",
            "The next offset a partition will assign (its log end offset).",
            stream_partition,
            registry=self.registry,
        )
        self.stream_retained_events = Gauge(
            "sluice_stream_retained_events",
            "Events a partition still stores (head minus the oldest retained offset).",
            stream_partition,
            registry=self.registry,
        )
        self.database_up = Gauge(
            "sluice_database_up",
            "1 when the last background refresh reached the database, 0 when it failed.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)


default_metrics = SluiceMetrics()
"""The process's instruments: what the runtime records into and ``/metrics`` serves."""


def seconds_since(moment: datetime) -> float:
    """How long ago ``moment`` (timezone-aware) was: an event's age when it is delivered."""
    return (datetime.now(UTC) - moment).total_seconds()


def _checked_count(count: int) -> int:
    return count if count > 0 else 0


def record_appended(stream: str, count: int, seconds: float, *, metrics: SluiceMetrics = default_metrics) -> None:
    """An append of ``count`` events to ``stream`` that took ``seconds``."""
    metrics.appended.labels(stream).inc(_checked_count(count))
    metrics.append_latency.labels(stream).observe(max(seconds, 0.0))


def record_consumed(
    stream: str,
    group: str,
    count: int,
    latency_seconds: float | None = None,
    *,
    metrics: SluiceMetrics = default_metrics,
) -> None:
    """``count`` events delivered to a member of ``group``; ``latency_seconds`` is append-to-delivery time."""
    metrics.consumed.labels(stream, group).inc(_checked_count(count))
    if latency_seconds is not None:
        metrics.delivery_latency.labels(stream, group).observe(max(latency_seconds, 0.0))


class GroupRecorder:
    """Recording for one member's hot path: the label children are looked up once, not per batch."""

    __slots__ = ("_consumed", "_latency", "_rebalances")

    def __init__(self, stream: str, group: str, metrics: SluiceMetrics = default_metrics) -> None:
        self._consumed = metrics.consumed.labels(stream, group)
        self._latency = metrics.delivery_latency.labels(stream, group)
        self._rebalances = metrics.rebalances.labels(stream, group)

    def consumed(self, count: int, latency_seconds: float | None = None) -> None:
        """``count`` events delivered; ``latency_seconds`` is append-to-delivery time of the first."""
        self._consumed.inc(_checked_count(count))
        if latency_seconds is not None:
            self._latency.observe(max(latency_seconds, 0.0))

    def rebalanced(self) -> None:
        self._rebalances.inc()


def record_enqueued(queue: str, count: int, *, metrics: SluiceMetrics = default_metrics) -> None:
    """``count`` messages put on ``queue``."""
    metrics.enqueued.labels(queue).inc(_checked_count(count))


def record_dequeued(
    queue: str, count: int, latency_seconds: float | None = None, *, metrics: SluiceMetrics = default_metrics
) -> None:
    """``count`` messages leased from ``queue``; ``latency_seconds`` is enqueue-to-delivery time of one."""
    metrics.dequeued.labels(queue).inc(_checked_count(count))
    if latency_seconds is not None:
        metrics.delivery_latency.labels(queue, "").observe(max(latency_seconds, 0.0))


def record_acknowledged(queue: str, count: int = 1, *, metrics: SluiceMetrics = default_metrics) -> None:
    metrics.acknowledged.labels(queue).inc(_checked_count(count))


def record_nacked(queue: str, count: int = 1, *, metrics: SluiceMetrics = default_metrics) -> None:
    metrics.nacked.labels(queue).inc(_checked_count(count))


def record_dead_lettered(queue: str, count: int = 1, *, metrics: SluiceMetrics = default_metrics) -> None:
    metrics.dead_lettered.labels(queue).inc(_checked_count(count))


def record_rebalance(stream: str, group: str, *, metrics: SluiceMetrics = default_metrics) -> None:
    """A member's assignment changed (partitions gained or lost)."""
    metrics.rebalances.labels(stream, group).inc()


def set_queue_depth(queue: str, *, depth: int, in_flight: int, metrics: SluiceMetrics = default_metrics) -> None:
    """The number of messages waiting on ``queue`` and leased from it."""
    metrics.queue_depth.labels(queue).set(max(depth, 0))
    metrics.queue_in_flight.labels(queue).set(max(in_flight, 0))


def set_group_state(
    stream: str,
    group: str,
    *,
    lag_events: int,
    lag_seconds: float,
    active_members: int,
    metrics: SluiceMetrics = default_metrics,
) -> None:
    """A consumer group's lag and live members, as the lag refresher last saw them."""
    metrics.lag_events.labels(stream, group).set(max(lag_events, 0))
    metrics.lag_seconds.labels(stream, group).set(max(lag_seconds, 0.0))
    metrics.active_members.labels(stream, group).set(max(active_members, 0))


def set_partition_lag(
    stream: str,
    group: str,
    partition: int,
    *,
    lag_events: int,
    lag_seconds: float,
    metrics: SluiceMetrics = default_metrics,
) -> None:
    """One partition's lag for a consumer group, as the lag refresher last saw it."""
    metrics.partition_lag_events.labels(stream, group, str(partition)).set(max(lag_events, 0))
    metrics.partition_lag_seconds.labels(stream, group, str(partition)).set(max(lag_seconds, 0.0))


def set_stream_partition(
    stream: str, partition: int, *, head: int, retained_events: int, metrics: SluiceMetrics = default_metrics
) -> None:
    """A partition's head (next offset) and how many events it still stores."""
    metrics.stream_head.labels(stream, str(partition)).set(max(head, 0))
    metrics.stream_retained_events.labels(stream, str(partition)).set(max(retained_events, 0))


def set_database_up(up: bool, *, metrics: SluiceMetrics = default_metrics) -> None:
    """Whether the last background refresh reached the database."""
    metrics.database_up.set(1 if up else 0)


def forget_group(stream: str, group: str, *, partitions: int = 0, metrics: SluiceMetrics = default_metrics) -> None:
    """Remove a deleted group's gauges (and those of its first ``partitions`` partitions)."""
    for gauge in (metrics.lag_events, metrics.lag_seconds, metrics.active_members):
        try:
            gauge.remove(stream, group)
        except KeyError:
            continue
    for partition in range(partitions):
        for partition_gauge in (metrics.partition_lag_events, metrics.partition_lag_seconds):
            try:
                partition_gauge.remove(stream, group, str(partition))
            except KeyError:
                continue


def forget_stream(stream: str, partitions: int, *, metrics: SluiceMetrics = default_metrics) -> None:
    """Remove a deleted stream's head and size gauges."""
    for partition in range(partitions):
        for gauge in (metrics.stream_head, metrics.stream_retained_events):
            try:
                gauge.remove(stream, str(partition))
            except KeyError:
                continue


def forget_queue(queue: str, *, metrics: SluiceMetrics = default_metrics) -> None:
    """Remove a deleted queue's depth gauges."""
    for gauge in (metrics.queue_depth, metrics.queue_in_flight):
        try:
            gauge.remove(queue)
        except KeyError:
            continue
