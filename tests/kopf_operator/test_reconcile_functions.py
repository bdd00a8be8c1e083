"""Unit tests of the pure reconcile functions: no Kubernetes, no PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sluice.cli.consume import consume as consume_command
from sluice.core.streams import DeliverySemantics, PartitionInfo, StreamConfig, StreamInfo, StreamType
from sluice.store.values.consumer_groups import GroupDescription, MemberDescription, PartitionLag
from sluice_operator.errors import DatabaseSecretError
from sluice_operator.models import ConsumerGroup, EventStream, Projection, Replay
from sluice_operator.models.common import ConditionStatus, DatabaseReference, JobPhase, SecretReference
from sluice_operator.models.retention_policies import StreamSelector
from sluice_operator.reconcile.conditions import DesiredCondition, merge_conditions, roll_up
from sluice_operator.reconcile.consumer_groups import (
    consume_arguments,
    consumer_deployment,
    idle_replicas,
    lag_changed,
    lag_status_fields,
)
from sluice_operator.reconcile.databases import DatabaseTarget, database_url_from_secret, pod_database_environment
from sluice_operator.reconcile.event_streams import desired_stream_config, plan_stream_change, stream_status_fields
from sluice_operator.reconcile.ownership import Owner, selector_string
from sluice_operator.reconcile.projections import sources_ready
from sluice_operator.reconcile.replays import job_state, replay_arguments
from sluice_operator.reconcile.retention_policies import matched_stream_names
from sluice_operator.reconcile.workloads import deployment_state, merge_pod_template, workload_available
from tests.custom_resources.manifests import load_example

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OWNER = Owner(kind="ConsumerGroup", name="email-notifications", uid="0000-1111")


def example_stream(**spec_changes: Any) -> EventStream:
    manifest = load_example("event-stream.yaml")
    manifest["spec"].update(spec_changes)
    return EventStream.model_validate(manifest)


def example_group(**spec_changes: Any) -> ConsumerGroup:
    manifest = load_example("consumer-group.yaml")
    manifest["metadata"]["uid"] = OWNER.uid
    manifest["spec"].update(spec_changes)
    return ConsumerGroup.model_validate(manifest)


# Conditions ------------------------------------------------------------------------------------------------


def test_roll_up_is_ready_only_when_every_specific_condition_holds() -> None:
    holding = DesiredCondition("SchemaReady", ConditionStatus.TRUE, "SchemaMigrated")
    waiting = DesiredCondition("WorkloadAvailable", ConditionStatus.FALSE, "ReplicasNotReady", "0 of 2 ready")
    ready = {condition.type: condition for condition in roll_up([holding])}
    assert ready["Ready"].status is ConditionStatus.TRUE
    assert ready["Reconciling"].status is ConditionStatus.FALSE
    assert ready["Stalled"].status is ConditionStatus.FALSE

    not_ready = {condition.type: condition for condition in roll_up([holding, waiting])}
    assert not_ready["Ready"].status is ConditionStatus.FALSE
    assert not_ready["Ready"].reason == "ReplicasNotReady"
    assert not_ready["Ready"].message == "0 of 2 ready"
    assert not_ready["Reconciling"].status is ConditionStatus.TRUE
    assert not_ready["WorkloadAvailable"] == waiting


def test_roll_up_with_a_stalled_cause_is_stalled_and_not_ready() -> None:
    cause = DesiredCondition("StreamReady", ConditionStatus.FALSE, "StreamConflict", "type cannot change")
    rolled = {condition.type: condition for condition in roll_up([cause], stalled=cause)}
    assert rolled["Stalled"].status is ConditionStatus.TRUE
    assert rolled["Ready"].status is ConditionStatus.FALSE
    assert rolled["Ready"].reason == "StreamConflict"
    assert rolled["Reconciling"].status is ConditionStatus.FALSE


def test_merge_keeps_the_transition_time_while_the_status_is_unchanged() -> None:
    desired = [DesiredCondition("Ready", ConditionStatus.TRUE, "Reconciled")]
    first = merge_conditions([], desired, generation=1, now=NOW)
    assert first == [
        {
            "type": "Ready",
            "status": "True",
            "observedGeneration": 1,
            "lastTransitionTime": "2026-11-26T12:00:00Z",
            "reason": "Reconciled",
            "message": "",
        }
    ]
    later = NOW + timedelta(minutes=5)
    assert merge_conditions(first, desired, generation=1, now=later) == first
    flipped = merge_conditions(
        first, [DesiredCondition("Ready", ConditionStatus.FALSE, "DatabaseUnreachable")], generation=2, now=later
    )
    assert flipped[0]["lastTransitionTime"] == "2026-11-26T12:05:00Z"
    assert flipped[0]["observedGeneration"] == 2


# Databases -------------------------------------------------------------------------------------------------


def test_database_url_from_a_uri_key_or_from_cloudnativepg_style_keys() -> None:
    assert database_url_from_secret("s", {"uri": "postgresql://a:b@h:5/d"}) == "postgresql://a:b@h:5/d"
    url = database_url_from_secret(
        "s", {"host": "db.example", "port": "5433", "dbname": "app", "user": "app", "password": "p@ss:/word"}
    )
    assert url == "postgresql://app:p%40ss%3A%2Fword@db.example:5433/app"
    assert database_url_from_secret("s", {"host": "h", "dbname": "d", "user": "u", "password": "p"}).endswith(":5432/d")


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"uri": "mysql://x"},
        {"host": "h", "dbname": "d", "user": "u"},
        {"host": "h", "dbname": "d", "user": "u", "password": "p", "port": "x"},
    ],
)
def test_a_secret_without_a_usable_database_is_refused(data: dict[str, str]) -> None:
    with pytest.raises(DatabaseSecretError, match="Secret 'db'"):
        database_url_from_secret("db", data)


def test_pods_read_credentials_from_the_secret_never_from_their_spec() -> None:
    reference = DatabaseReference(secret_ref=SecretReference(name="db"), schema_name="events")
    with_uri = pod_database_environment(
        reference, {"uri": "postgresql://u:secret@h/d"}, default_url=None, default_schema_name="sluice"
    )
    assert with_uri == [
        {"name": "SLUICE_DSN", "valueFrom": {"secretKeyRef": {"name": "db", "key": "uri"}}},
        {"name": "SLUICE_SCHEMA", "value": "events"},
    ]
    parts = {"host": "h", "dbname": "d", "user": "u", "password": "hunter2-xyz"}
    with_parts = pod_database_environment(reference, parts, default_url=None, default_schema_name="sluice")
    names = {variable["name"]: variable for variable in with_parts}
    assert names["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "password"}
    assert names["SLUICE_DSN"] == {"name": "SLUICE_DSN", "value": "postgresql://"}
    assert "hunter2-xyz" not in repr(with_parts)


def test_database_target_display_name_hides_credentials() -> None:
    target = DatabaseTarget("postgresql://user:hunter2@db:5432/app", "sluice")
    assert "hunter2" not in target.display_name
    assert target.display_name == "postgresql://db:5432/app (schema sluice)"


# EventStreams ----------------------------------------------------------------------------------------------


def test_stream_config_follows_the_spec() -> None:
    config = desired_stream_config(example_stream(deliverySemantics="queue", streamName="orders.v2"))
    assert config == StreamConfig(
        name="orders.v2", type=StreamType.PERSISTENT, partitions=4, max_attempts=5, delivery=DeliverySemantics.QUEUE
    )


def _info(partitions: int, *, type_: StreamType = StreamType.PERSISTENT) -> StreamInfo:
    return StreamInfo(name="orders", type=type_, partitions=partitions, max_attempts=5, created_at=NOW)


def test_stream_changes_create_grow_or_refuse() -> None:
    config = StreamConfig(name="orders", partitions=4)
    assert plan_stream_change(config, None).create
    assert plan_stream_change(config, _info(2)).increase_partitions_to == 4
    unchanged = plan_stream_change(config, _info(4))
    assert not unchanged.create
    assert unchanged.increase_partitions_to is None
    assert unchanged.conflict is None
    assert "only grow" in (plan_stream_change(config, _info(8)).conflict or "")
    assert "cannot change" in (plan_stream_change(config, _info(4, type_=StreamType.EPHEMERAL)).conflict or "")


def test_stream_status_sums_heads_less_pruned_events_and_takes_the_newest_append() -> None:
    info = _info(2).model_copy(
        update={
            "partition_heads": (
                PartitionInfo(partition=1, head=7, first_offset=4, last_appended_at=NOW),
                PartitionInfo(partition=0, head=3, last_appended_at=NOW - timedelta(hours=1)),
            )
        }
    )
    assert stream_status_fields(info) == {
        "headOffsets": [{"partition": 0, "head": 3, "first": 0}, {"partition": 1, "head": 7, "first": 4}],
        "appendedEventCount": 10,
        "approximateEventCount": 6,
        "lastEventTime": "2026-11-26T12:00:00Z",
    }


# ConsumerGroups --------------------------------------------------------------------------------------------


def test_consume_arguments_follow_the_contract() -> None:
    arguments = consume_arguments(example_group(commitStrategy="afterEach"), example_stream(streamName="shop.orders"))
    assert arguments == [
        "consume", "--stream", "shop.orders", "--group", "email-notifications",
        "--sink", "http://email-service.shop.svc.cluster.local:8080/events",
        "--commit-strategy", "after_each",
        "--batch-size", "50",  # the sink's batch size wins over the group's
        "--session-timeout", "30",
        "--start-from", "latest",
        "--max-attempts", "5",
        "--retry-backoff", "exponential", "--retry-delay", "1", "--retry-max-delay", "300",  # the stream's backoff
        "--sink-timeout", "10",
    ]  # fmt: skip
    context = consume_command.make_context("sluice consume", arguments[1:], resilient_parsing=False)
    assert (context.params["max_attempts"], context.params["sink_timeout"]) == (5, 10)
    periodic = consume_arguments(
        example_group(
            commitStrategy="periodic",
            commitInterval="1m30s",
            handler={"entrypoint": {"function": "shop.handlers:on_order", "image": "registry.example/shop:1"}},
        ),
        example_stream(),
    )
    assert periodic[periodic.index("--commit-strategy") + 1 :][:3] == ["periodic", "--commit-interval", "90"]
    assert periodic[periodic.index("--handler") + 1] == "shop.handlers:on_order"
    assert periodic[periodic.index("--batch-size") + 1] == "100"


def test_start_offsets_and_times_become_arguments_the_command_accepts() -> None:
    by_offset = consume_arguments(example_group(startPosition={"from": "offset", "offset": 10}), example_stream())
    assert by_offset[by_offset.index("--start-from") + 1 :][:1] == ["offset"]
    assert by_offset[by_offset.index("--start-offset") + 1] == "10"
    by_time = consume_arguments(
        example_group(startPosition={"from": "time", "time": "2026-11-26T07:00:00Z"}), example_stream()
    )
    assert by_time[by_time.index("--start-time") + 1] == "2026-11-26T07:00:00+00:00"
    for arguments in (by_offset, by_time):
        # The real command line parses them (click's parser, without running the command).
        context = consume_command.make_context("sluice consume", arguments[1:], resilient_parsing=False)
        assert context.params["start_from"] in ("offset", "time")


def test_consumer_deployment_is_owned_labelled_and_selects_its_pods() -> None:
    environment = [{"name": "SLUICE_DSN", "valueFrom": {"secretKeyRef": {"name": "db", "key": "uri"}}}]
    group = example_group(
        podTemplate={
            "metadata": {"annotations": {"team": "shop"}},
            "spec": {"containers": [{"name": "sluice", "imagePullPolicy": "Always"}]},
        }
    )
    deployment = consumer_deployment(
        group,
        example_stream(),
        namespace="shop",
        owner=OWNER,
        default_image="sluice:test",
        database_environment=environment,
    )
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    assert deployment["metadata"]["ownerReferences"][0]["controller"] is True
    assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "sluice-operator"
    assert deployment["spec"]["replicas"] == 2
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert selector_string(OWNER) == ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "sluice:test"
    assert container["command"] == ["sluice"]
    assert container["args"][:3] == ["consume", "--stream", "orders"]
    assert container["imagePullPolicy"] == "Always"
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    assert container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert container["env"][1:] == environment
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {"team": "shop"}


def test_pod_template_overrides_cannot_remove_the_selector_labels() -> None:
    group = example_group(podTemplate={"metadata": {"labels": {"sluice.dev/owner-name": "other", "tier": "x"}}})
    deployment = consumer_deployment(
        group, example_stream(), namespace="shop", owner=OWNER, default_image="sluice:test", database_environment=[]
    )
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["sluice.dev/owner-name"] == "email-notifications"
    assert labels["tier"] == "x"


def test_merge_pod_template_merges_maps_and_containers_by_name() -> None:
    generated = {"spec": {"containers": [{"name": "a", "image": "x", "env": [1]}], "tolerations": [1]}}
    merged = merge_pod_template(
        generated, {"spec": {"containers": [{"name": "a", "env": [2]}, {"name": "b"}], "tolerations": [3]}}
    )
    assert merged == {
        "spec": {"containers": [{"name": "a", "image": "x", "env": [2]}, {"name": "b"}], "tolerations": [3]}
    }
    assert generated["spec"]["containers"][0]["env"] == [1]  # the input is not changed


def test_idle_replicas_only_beyond_the_partitions_with_broadcast_delivery() -> None:
    assert idle_replicas(6, 4, DeliverySemantics.BROADCAST) == 2
    assert idle_replicas(3, 4, DeliverySemantics.BROADCAST) == 0
    assert idle_replicas(6, 4, DeliverySemantics.QUEUE) == 0


def test_workload_availability_from_the_deployment_status() -> None:
    assert not deployment_state(None).exists
    pending = deployment_state({"spec": {"replicas": 2}, "status": {"replicas": 2}})
    assert workload_available(pending, 2).status is ConditionStatus.FALSE
    available = deployment_state(
        {
            "spec": {"replicas": 2},
            "status": {"replicas": 2, "readyReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]},
        }
    )
    assert (available.replicas, available.ready_replicas, available.available) == (2, 1, True)
    assert workload_available(available, 2).status is ConditionStatus.TRUE
    assert workload_available(pending, 0).status is ConditionStatus.TRUE


def _description(committed: int, head: int) -> GroupDescription:
    member = MemberDescription(consumer_id="pod-a", joined_at=NOW, last_heartbeat_at=NOW, partitions=(0,), active=True)
    partition = PartitionLag(
        partition=0,
        committed_offset=committed,
        head=head,
        owner="pod-a",
        epoch=1,
        oldest_unconsumed_at=NOW - timedelta(seconds=12.4),
        observed_at=NOW,
    )
    return GroupDescription(
        stream_name="orders", group_id="g", generation=1, created_at=NOW, members=(member,), partitions=(partition,)
    )


def test_lag_fields_change_with_the_lag_not_with_the_clock() -> None:
    fields = lag_status_fields(_description(3, 10), observed_at=NOW)
    assert fields["lag"] == {"events": 7, "seconds": 12.0, "observedAt": "2026-11-26T12:00:00Z"}
    assert fields["positions"] == [{"partition": 0, "committed": 3, "head": 10}]
    assert fields["members"] == [{"consumerId": "pod-a", "partitions": [0]}]
    later = lag_status_fields(_description(3, 10), observed_at=NOW + timedelta(minutes=1))
    assert not lag_changed(fields, later)
    assert lag_changed(fields, lag_status_fields(_description(10, 10), observed_at=NOW))


# Projections, Replays, RetentionPolicies ------------------------------------------------------------------


def test_replay_arguments_and_job_phases() -> None:
    manifest = load_example("replay.yaml")
    manifest["metadata"] |= {"namespace": "shop", "uid": "6f1c2a9e-0000-4000-8000-000000000000"}
    replay = Replay.model_validate(manifest)
    assert replay_arguments(replay, "orders", "email-notifications") == [
        "replay", "--name", "shop.orders-to-email-notifications.6f1c2a9e", "--stream", "orders",
        "--from-offset", "0", "--to-consumer-group", "email-notifications",
        "--rate-limit", "200", "--batch-size", "500",
    ]  # fmt: skip
    assert job_state(None).phase is JobPhase.PENDING
    assert job_state({"status": {"active": 1}}).phase is JobPhase.PENDING  # created, not running yet
    assert job_state({"status": {"active": 1, "ready": 1}}).phase is JobPhase.RUNNING
    assert job_state({"status": {"succeeded": 1}}).phase is JobPhase.SUCCEEDED
    assert job_state({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}).phase is JobPhase.FAILED


def test_projection_example_parses() -> None:
    assert Projection.model_validate(load_example("projection.yaml")).spec.sources == ["orders"]


def test_retention_selector_matches_wildcards_or_labels() -> None:
    streams = [
        {"metadata": {"name": name, "labels": labels}}
        for name, labels in (("orders", {}), ("orders.eu", {}), ("payments", {"tier": "bulk"}), ("audit", {}))
    ]
    assert matched_stream_names(StreamSelector(names=["orders*"]), streams) == ["orders", "orders.eu"]
    assert matched_stream_names(StreamSelector(match_labels={"tier": "bulk"}), streams) == ["payments"]
    assert matched_stream_names(StreamSelector(names=["a.d*t"]), streams) == []  # '.' is literal
    assert matched_stream_names(StreamSelector(names=["*"]), streams) == ["audit", "orders", "orders.eu", "payments"]


def test_sources_ready_names_missing_sources_first_then_sources_on_other_databases() -> None:
    assert sources_ready([]).status == ConditionStatus.TRUE
    missing = sources_ready(["a"], ["b"], "postgresql://db:5432/x (schema sluice)")
    assert (missing.status, missing.reason) == (ConditionStatus.FALSE, "SourceNotFound")
    elsewhere = sources_ready([], ["b", "c"], "postgresql://db:5432/x (schema sluice)")
    assert (elsewhere.status, elsewhere.reason) == (ConditionStatus.FALSE, "SourcesOnOtherDatabases")
    assert "(postgresql://db:5432/x (schema sluice)); EventStream(s) b, c live in another" in elsewhere.message
