"""What a ConsumerGroup means: the ``sluice consume`` command its pods run, its Deployment, and its status
(replicas for /scale, lag, positions, members, idle replicas)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sluice.core.streams import DeliverySemantics
from sluice.store.values.consumer_groups import GroupDescription
from sluice_operator.errors import UnsupportedSpecError
from sluice_operator.models.common import ConditionStatus, parse_duration
from sluice_operator.models.consumer_groups import CommitStrategy, ConsumerGroup, StartFrom
from sluice_operator.models.event_streams import EventStream
from sluice_operator.reconcile.conditions import DesiredCondition, format_time
from sluice_operator.reconcile.ownership import Owner
from sluice_operator.reconcile.workloads import ContainerSpec, deployment_manifest

__all__ = [
    "COMMIT_STRATEGY_ARGUMENTS",
    "IDLE_REPLICAS",
    "consume_arguments",
    "consumer_deployment",
    "idle_replicas",
    "idle_replicas_condition",
    "lag_changed",
    "lag_status_fields",
]

IDLE_REPLICAS = "ReplicasIdle"
COMMIT_STRATEGY_ARGUMENTS = {
    CommitStrategy.MANUAL: "manual",
    CommitStrategy.AFTER_EACH: "after_each",
    CommitStrategy.AFTER_BATCH: "after_batch",
    CommitStrategy.PERIODIC: "periodic",
}
"""The CRD's camelCase commit strategies → the ``sluice consume --commit-strategy`` values."""


def _seconds(duration: str) -> str:
    seconds = parse_duration(duration).total_seconds()
    return str(int(seconds)) if seconds.is_integer() else str(seconds)


def consume_arguments(group: ConsumerGroup, stream: EventStream) -> list[str]:
    """The arguments after ``sluice``: ``consume --stream ... --group ...``, per the consume contract.

    Raises UnsupportedSpecError when the spec cannot be expressed (a group without a name).
    """
    spec = group.spec
    group_name = group.metadata.name
    if group_name is None:
        raise UnsupportedSpecError("a ConsumerGroup needs metadata.name")
    arguments = ["consume", "--stream", stream.stream_name, "--group", group_name]
    if spec.handler.sink is not None:
        arguments += ["--sink", spec.handler.sink.url]
        batch_size = spec.handler.sink.batch_size or spec.batch_size
    elif spec.handler.entrypoint is not None:
        arguments += ["--handler", spec.handler.entrypoint.function]
        batch_size = spec.batch_size
    else:  # the CRD's CEL rule and the model refuse this; kept for the type checker
        raise UnsupportedSpecError("handler needs exactly one of sink or entrypoint")
    arguments += ["--commit-strategy", COMMIT_STRATEGY_ARGUMENTS[spec.commit_strategy]]
    if spec.commit_strategy is CommitStrategy.PERIODIC and spec.commit_interval is not None:
        arguments += ["--commit-interval", _seconds(spec.commit_interval)]
    arguments += [
        "--batch-size",
        str(batch_size),
        "--session-timeout",
        _seconds(spec.session_timeout),
        "--start-from",
        spec.start_position.from_.value,
        "--max-attempts",
        str(stream.spec.dead_letter.max_attempts),
        "--retry-backoff",
        stream.spec.dead_letter.backoff.type.value,
        "--retry-delay",
        _seconds(stream.spec.dead_letter.backoff.initial),
        "--retry-max-delay",
        _seconds(stream.spec.dead_letter.backoff.maximum),
    ]
    if spec.start_position.from_ is StartFrom.OFFSET and spec.start_position.offset is not None:
        arguments += ["--start-offset", str(spec.start_position.offset)]
    if spec.start_position.from_ is StartFrom.TIME and spec.start_position.time is not None:
        arguments += ["--start-time", spec.start_position.time.isoformat()]
    if spec.handler.sink is not None:
        arguments += ["--sink-timeout", _seconds(spec.handler.sink.timeout)]
    # The health and metrics port is the command's default, HTTP_PORT (8080), which the probes use.
    return arguments


def consumer_deployment(
    group: ConsumerGroup,
    stream: EventStream,
    *,
    namespace: str,
    owner: Owner,
    default_image: str,
    database_environment: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The Deployment of a ConsumerGroup: ``spec.replicas`` pods running ``sluice consume``."""
    spec = group.spec
    image = spec.handler.entrypoint.image if spec.handler.entrypoint is not None else default_image
    environment = [
        {"name": "SLUICE_CONSUMER_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        *database_environment,
    ]
    resources = spec.resources.to_manifest() if spec.resources is not None else None
    container = ContainerSpec(
        image=image,
        arguments=consume_arguments(group, stream),
        environment=environment,
        resources=resources,
    )
    return deployment_manifest(
        owner,
        namespace,
        replicas=spec.replicas,
        container=container,
        pod_template_overrides=spec.pod_template,
    )


def idle_replicas(replicas: int, partitions: int, delivery: DeliverySemantics) -> int:
    """Replicas that own no partition: those beyond the partition count, with broadcast delivery. With queue
    delivery members share every partition, so none is idle."""
    if delivery is DeliverySemantics.QUEUE:
        return 0
    return max(replicas - partitions, 0)


def idle_replicas_condition(idle: int, partitions: int) -> DesiredCondition:
    """ReplicasIdle: True when some replicas stand by because there are more replicas than partitions."""
    if idle == 0:
        return DesiredCondition(IDLE_REPLICAS, ConditionStatus.FALSE, "AllReplicasAssigned", "")
    return DesiredCondition(
        IDLE_REPLICAS,
        ConditionStatus.TRUE,
        "MoreReplicasThanPartitions",
        f"{idle} replica(s) stand by idle: the stream has {partitions} partition(s); add partitions to use them",
    )


def lag_status_fields(description: GroupDescription, *, observed_at: datetime) -> dict[str, Any]:
    """Lag, positions and members as the status holds them. Seconds are rounded to whole seconds, so
    a status is rewritten when the lag changes, not on every poll."""
    return {
        "lag": {
            "events": description.lag_events,
            "seconds": float(round(description.lag_seconds)),
            "observedAt": format_time(observed_at),
        },
        "positions": [
            {"partition": partition.partition, "committed": partition.committed_offset, "head": partition.head}
            for partition in sorted(description.partitions, key=lambda partition: partition.partition)
        ],
        "members": [
            {"consumerId": member.consumer_id, "partitions": sorted(member.partitions)}
            for member in sorted(description.active_members, key=lambda member: member.consumer_id)
        ],
    }


def lag_changed(previous: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether lag, positions or members differ (observedAt alone does not count)."""
    previous_lag = dict(previous.get("lag") or {})
    current_lag = dict(current.get("lag") or {})
    previous_lag.pop("observedAt", None)
    current_lag.pop("observedAt", None)
    return (
        previous_lag != current_lag
        or list(previous.get("positions") or []) != list(current.get("positions") or [])
        or list(previous.get("members") or []) != list(current.get("members") or [])
    )
