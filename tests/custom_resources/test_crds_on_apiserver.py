"""The generated CRDs on a real API server: they install, the examples apply, invalid objects are refused
with readable messages, kubectl shows the printer columns, and /scale works for kubectl and the HPA."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.client import V2HorizontalPodAutoscalerCondition

from sluice_operator.models import CUSTOM_RESOURCES, ConsumerGroup, EventStream, Projection, Replay, RetentionPolicy
from sluice_operator.models.common import Condition, ConditionStatus, JobPhase, Lag, Progress
from sluice_operator.models.consumer_groups import ConsumerGroupStatus, GroupMember, PartitionPosition
from sluice_operator.models.event_streams import EventStreamStatus, PartitionHead
from sluice_operator.models.projections import ProjectionStatus, RebuildStatus
from sluice_operator.models.replays import ReplayStatus
from sluice_operator.models.retention_policies import RetentionPolicyStatus
from tests.custom_resources.cluster import KubernetesCluster, parse_table, rejection_message, wait_until
from tests.custom_resources.manifests import (
    CRDS_DIRECTORY,
    EXAMPLES_DIRECTORY,
    SLUICE_EXAMPLE_FILES,
    load_example,
    minimal_manifest,
)
from tests.custom_resources.specimens import INVALID_SPECS, InvalidSpec

pytestmark = pytest.mark.kubernetes

RESOURCES_BY_KIND = {resource.definition.kind: resource for resource in CUSTOM_RESOURCES}
KINDS = list(RESOURCES_BY_KIND)
HPA_TIMEOUT_SECONDS = 60
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def examples_namespace(kubernetes_cluster: KubernetesCluster, sluice_crds: list[str]) -> Iterator[str]:
    """A namespace holding the examples and nothing else (applied as ``kubectl apply -f examples/``)."""
    name = f"examples-{uuid.uuid4().hex[:6]}"
    kubernetes_cluster.create_namespace(name)
    kubernetes_cluster.kubectl("apply", "-f", str(EXAMPLES_DIRECTORY), namespace=name)
    yield name
    kubernetes_cluster.delete_namespace(name)


def contains(stored: object, written: object) -> bool:
    """Whether everything ``written`` says is in ``stored`` (which may have defaults added)."""
    if isinstance(written, dict):
        return isinstance(stored, dict) and all(
            key in stored and contains(stored[key], value) for key, value in written.items()
        )
    return stored == written


def ready_condition(*, generation: int = 1) -> Condition:
    return Condition(
        type="Ready",
        status=ConditionStatus.TRUE,
        observed_generation=generation,
        last_transition_time=NOW,
        reason="Reconciled",
        message="",
    )


# Installation and examples ---------------------------------------------------------------------------------


def test_crds_are_established_with_their_names_accepted(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str]
) -> None:
    assert sorted(sluice_crds) == sorted(resource.definition.name for resource in CUSTOM_RESOURCES)
    for name in sluice_crds:
        conditions = kubernetes_cluster.custom_resource_definition_conditions(name)
        assert conditions["Established"] == "True"
        assert conditions["NamesAccepted"] == "True"


def test_reapplying_the_crds_changes_nothing(kubernetes_cluster: KubernetesCluster, sluice_crds: list[str]) -> None:
    """What GitOps tools do on every sync: the stored CRDs (their generations) must not change."""
    generations = {name: kubernetes_cluster.custom_resource_definition_generation(name) for name in sluice_crds}
    kubernetes_cluster.kubectl("apply", "--server-side", "--field-manager=sluice-tests", "-f", str(CRDS_DIRECTORY))
    kubernetes_cluster.kubectl("diff", "--server-side", "--field-manager=sluice-tests", "-f", str(CRDS_DIRECTORY))
    assert {name: kubernetes_cluster.custom_resource_definition_generation(name) for name in sluice_crds} == generations


@pytest.mark.parametrize("file_name", SLUICE_EXAMPLE_FILES)
def test_every_example_is_stored_and_reads_back_as_its_model(
    kubernetes_cluster: KubernetesCluster, examples_namespace: str, file_name: str
) -> None:
    example = load_example(file_name)
    stored = kubernetes_cluster.get(examples_namespace, example["kind"], example["metadata"]["name"])
    resource = RESOURCES_BY_KIND[example["kind"]].model_validate(stored)
    assert resource.metadata.namespace == examples_namespace
    assert stored["spec"] == resource.spec.to_manifest()  # the API server's defaults are the model's
    assert contains(stored["spec"], example["spec"])


def test_examples_apply_with_strict_field_validation(
    kubernetes_cluster: KubernetesCluster, examples_namespace: str
) -> None:
    """kubectl validates fields strictly: an unknown field in an example would fail here."""
    applied = kubernetes_cluster.kubectl(
        "apply", "--validate=strict", "--dry-run=server", "-f", str(EXAMPLES_DIRECTORY), namespace=examples_namespace
    )
    assert applied.stdout.count("(server dry run)") == len(SLUICE_EXAMPLE_FILES) + 1


def test_kubectl_get_sluice_lists_every_example(kubernetes_cluster: KubernetesCluster, examples_namespace: str) -> None:
    names = kubernetes_cluster.kubectl("get", "sluice", "-o", "name", namespace=examples_namespace).stdout.split()
    assert sorted(names) == [
        "consumergroup.sluice.dev/email-notifications",
        "eventstream.sluice.dev/orders",
        "projection.sluice.dev/order-summary",
        "replay.sluice.dev/orders-to-email-notifications",
        "retentionpolicy.sluice.dev/orders-nightly",
    ]
    output = kubernetes_cluster.kubectl("get", "sluice", namespace=examples_namespace).stdout
    headers = [list(parse_table(block)[0]) for block in output.split("\n\n")]
    assert headers == [
        ["NAME", "STREAM", "DESIRED", "READY REPLICAS", "LAG", "LAG SECONDS", "READY", "AGE"],
        ["NAME", "READY", "TYPE", "PARTITIONS", "HEAD", "RETENTION", "AGE"],
        ["NAME", "SOURCES", "POSITION", "LAG", "READY", "AGE"],
        ["NAME", "SOURCE", "TARGET", "PHASE", "PROGRESS", "SUCCEEDED", "AGE"],
        ["NAME", "MATCHED", "LAST RUN", "PRUNED", "READY", "AGE"],
    ]
    wide = kubernetes_cluster.kubectl("get", "eventstreams", "-o", "wide", namespace=examples_namespace).stdout
    assert list(parse_table(wide)[0]) == [
        "NAME",
        "READY",
        "STREAM",
        "TYPE",
        "PARTITIONS",
        "HEAD",
        "RETENTION",
        "EVENTS",
        "DELIVERY",
        "AGE",
    ]


@pytest.mark.parametrize(
    ("short_name", "name"),
    [
        ("evs", "orders"),
        ("cg", "email-notifications"),
        ("retpol", "orders-nightly"),
        ("proj", "order-summary"),
        ("rpl", "orders-to-email-notifications"),
    ],
)
def test_short_names(
    kubernetes_cluster: KubernetesCluster, examples_namespace: str, short_name: str, name: str
) -> None:
    names = kubernetes_cluster.kubectl("get", short_name, "-o", "name", namespace=examples_namespace).stdout.split()
    assert [listed.split("/")[1] for listed in names] == [name]


@pytest.mark.parametrize("kind", KINDS)
def test_api_server_defaults_equal_the_model_defaults(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str], namespace: str, kind: str
) -> None:
    manifest = minimal_manifest(kind, f"defaults-{kind.lower()}")
    stored = kubernetes_cluster.create(namespace, manifest)
    assert stored["spec"] == RESOURCES_BY_KIND[kind].model_validate(manifest).spec.to_manifest()


# Refusals ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("invalid", INVALID_SPECS, ids=lambda invalid: invalid.identifier)
def test_invalid_specs_are_refused_with_a_readable_message(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str], namespace: str, invalid: InvalidSpec
) -> None:
    message = rejection_message(lambda: kubernetes_cluster.create(namespace, invalid.manifest(), dry_run=True))
    for part in invalid.server_message_parts:
        assert part in message


def test_unknown_fields_are_refused(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str], namespace: str
) -> None:
    manifest = minimal_manifest("EventStream", "unknown-field")
    manifest["spec"]["partitionCount"] = 4
    completed = kubernetes_cluster.kubectl(
        "create", "-f", "-", stdin=json.dumps(manifest), namespace=namespace, check=False
    )
    assert completed.returncode != 0
    assert 'unknown field "spec.partitionCount"' in completed.stderr


def test_a_long_object_name_needs_a_stream_name(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str], namespace: str
) -> None:
    manifest = minimal_manifest("EventStream", "o" * 201)
    message = rejection_message(lambda: kubernetes_cluster.create(namespace, manifest, dry_run=True))
    assert "metadata.name is longer than a stream name may be (200 characters): set spec.streamName" in message
    manifest["spec"]["streamName"] = "orders"
    kubernetes_cluster.create(namespace, manifest, dry_run=True)


def test_event_stream_type_is_immutable_and_partitions_only_grow(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str], namespace: str
) -> None:
    manifest = minimal_manifest("EventStream", "immutable-type")
    manifest["spec"]["partitions"] = 4
    kubernetes_cluster.create(namespace, manifest)

    def patch(spec: dict[str, Any]) -> object:
        return kubernetes_cluster.merge_patch(namespace, "EventStream", "immutable-type", {"spec": spec})

    message = rejection_message(lambda: patch({"type": "ephemeral"}))
    assert message.endswith(
        "spec.type: Forbidden: type is immutable: a persistent stream cannot become ephemeral or the reverse"
    )
    message = rejection_message(lambda: patch({"partitions": 2}))
    assert message.endswith("spec.partitions: Forbidden: partitions may be increased but never decreased")
    message = rejection_message(lambda: patch({"streamName": "renamed"}))
    assert message.endswith("spec: Forbidden: streamName is immutable: create a new EventStream to use another name")
    message = rejection_message(lambda: patch({"database": {"secretRef": {"name": "elsewhere"}}}))
    assert message.endswith(
        "spec: Forbidden: database is immutable: the stream's events stay in the database they were written to; "
        "create a new EventStream on the other database"
    )
    assert kubernetes_cluster.get(namespace, "EventStream", "immutable-type")["spec"]["partitions"] == 4
    patch({"partitions": 8, "deliverySemantics": "queue"})
    assert kubernetes_cluster.get(namespace, "EventStream", "immutable-type")["spec"]["partitions"] == 8


def test_consumer_group_stream_is_immutable(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str], namespace: str
) -> None:
    kubernetes_cluster.create(namespace, minimal_manifest("ConsumerGroup", "immutable-stream"))
    message = rejection_message(
        lambda: kubernetes_cluster.merge_patch(
            namespace, "ConsumerGroup", "immutable-stream", {"spec": {"streamRef": {"name": "payments"}}}
        )
    )
    assert "spec.streamRef: Forbidden: streamRef is immutable: a group's positions belong to one stream" in message


def test_projection_reset_generation_only_grows(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str], namespace: str
) -> None:
    manifest = minimal_manifest("Projection", "reset-generation")
    manifest["spec"]["resetGeneration"] = 2
    kubernetes_cluster.create(namespace, manifest)
    message = rejection_message(
        lambda: kubernetes_cluster.merge_patch(
            namespace, "Projection", "reset-generation", {"spec": {"resetGeneration": 1}}
        )
    )
    assert "resetGeneration may only increase: raise it to rebuild the projection" in message
    kubernetes_cluster.merge_patch(namespace, "Projection", "reset-generation", {"spec": {"resetGeneration": 3}})


def test_replay_spec_is_immutable(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str], namespace: str
) -> None:
    kubernetes_cluster.create(namespace, minimal_manifest("Replay", "immutable-replay"))
    message = rejection_message(
        lambda: kubernetes_cluster.merge_patch(namespace, "Replay", "immutable-replay", {"spec": {"batchSize": 10}})
    )
    assert message.endswith("spec: Forbidden: a Replay's spec is immutable: create a new Replay instead")


# Status written through the models ---------------------------------------------------------------------------

FULL_STATUSES: dict[str, Any] = {
    "EventStream": EventStreamStatus(
        observed_generation=1,
        conditions=[ready_condition()],
        head_offsets=[PartitionHead(partition=0, head=10), PartitionHead(partition=1, head=7)],
        appended_event_count=17,
        approximate_event_count=15,
        last_event_time=NOW,
    ),
    "ConsumerGroup": ConsumerGroupStatus(
        observed_generation=1,
        conditions=[ready_condition()],
        replicas=3,
        ready_replicas=2,
        selector="sluice.dev/consumer-group=full-status",
        lag=Lag(events=12, seconds=1.5, observed_at=NOW),
        positions=[
            PartitionPosition(partition=0, committed=4, head=10),
            PartitionPosition(partition=1, committed=1, head=7),
        ],
        members=[
            GroupMember(consumer_id="worker-0", partitions=[0]),
            GroupMember(consumer_id="worker-1", partitions=[1]),
        ],
        idle_replicas=1,
    ),
    "RetentionPolicy": RetentionPolicyStatus(
        observed_generation=1,
        conditions=[ready_condition()],
        matched_streams=["orders", "orders-eu"],
        last_run_time=NOW,
        pruned_events=420,
    ),
    "Projection": ProjectionStatus(
        observed_generation=1,
        conditions=[ready_condition()],
        position="1042.3",
        lag=Lag(events=0, seconds=0),
        rebuild=RebuildStatus(phase=JobPhase.RUNNING, events_done=50, events_total=200, percent=25),
    ),
    "Replay": ReplayStatus(
        observed_generation=1,
        conditions=[
            Condition(
                type="Succeeded",
                status=ConditionStatus.TRUE,
                last_transition_time=NOW,
                reason="Completed",
                message="replayed 1000 events",
            )
        ],
        phase=JobPhase.SUCCEEDED,
        progress=Progress(events_done=1000, events_total=1000, percent=100),
        start_time=NOW,
        completion_time=NOW,
    ),
}
EXPECTED_ROWS = {
    "EventStream": {"READY": "True", "TYPE": "persistent", "PARTITIONS": "1", "HEAD": "17"},
    "ConsumerGroup": {"DESIRED": "1", "READY REPLICAS": "2", "LAG": "12", "LAG SECONDS": "1.5", "READY": "True"},
    "RetentionPolicy": {"MATCHED": '["orders","orders-eu"]', "PRUNED": "420", "READY": "True"},
    "Projection": {"SOURCES": '["orders"]', "POSITION": "1042.3", "LAG": "0", "READY": "True"},
    "Replay": {"SOURCE": "orders", "TARGET": "email", "PHASE": "Succeeded", "PROGRESS": "100", "SUCCEEDED": "True"},
}


@pytest.mark.parametrize("kind", KINDS)
def test_a_status_built_from_the_models_is_accepted_and_shown(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str], namespace: str, kind: str
) -> None:
    name = f"full-status-{kind.lower()}"
    kubernetes_cluster.create(namespace, minimal_manifest(kind, name))
    status = FULL_STATUSES[kind].to_manifest()
    stored = kubernetes_cluster.merge_patch_status(namespace, kind, name, status)
    assert stored["status"] == status
    assert RESOURCES_BY_KIND[kind].model_validate(stored).status == FULL_STATUSES[kind]
    (row,) = parse_table(kubernetes_cluster.kubectl("get", kind.lower(), name, namespace=namespace).stdout)
    assert {column: row[column] for column in EXPECTED_ROWS[kind]} == EXPECTED_ROWS[kind]


def test_status_is_only_written_through_the_status_subresource(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str], namespace: str
) -> None:
    kubernetes_cluster.create(namespace, minimal_manifest("EventStream", "status-ignored"))
    stored = kubernetes_cluster.merge_patch(
        namespace, "EventStream", "status-ignored", {"status": {"appendedEventCount": 5}}
    )
    assert "status" not in stored


# /scale and the HorizontalPodAutoscaler --------------------------------------------------------------------------


def test_scale_subresource_serves_kubectl_scale(kubernetes_cluster: KubernetesCluster, examples_namespace: str) -> None:
    name = "email-notifications"
    assert kubernetes_cluster.get_scale(examples_namespace, "ConsumerGroup", name)["spec"] == {"replicas": 2}
    selector = "sluice.dev/consumer-group=email-notifications"
    kubernetes_cluster.merge_patch_status(
        examples_namespace, "ConsumerGroup", name, ConsumerGroupStatus(selector=selector, replicas=2).to_manifest()
    )
    scale = kubernetes_cluster.get_scale(examples_namespace, "ConsumerGroup", name)
    assert scale["kind"] == "Scale"
    assert scale["status"] == {"replicas": 2, "selector": selector}

    kubernetes_cluster.kubectl("scale", f"consumergroup/{name}", "--replicas=3", namespace=examples_namespace)
    group = ConsumerGroup.model_validate(kubernetes_cluster.get(examples_namespace, "ConsumerGroup", name))
    assert group.spec.replicas == 3
    assert kubernetes_cluster.get_scale(examples_namespace, "ConsumerGroup", name)["spec"] == {"replicas": 3}


def _autoscaler(name: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "sluice.dev/v1alpha1", "kind": "ConsumerGroup", "name": target},
            "minReplicas": 1,
            "maxReplicas": 8,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                }
            ],
        },
    }


def test_horizontal_pod_autoscaler_resolves_the_scale_target(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str], namespace: str
) -> None:
    """With status.selector filled, the HPA controller reads /scale (AbleToScale True, SucceededGetScale) and
    only lacks metrics (ScalingActive False, FailedGetResourceMetric: there is no metrics API here). Without
    it, the HPA reports ScalingActive False, InvalidSelector, "the HPA target's scale is missing a selector".

    The controller syncs an HPA every 3 s here. Its first sync may say AbleToScale False, FailedGetScale, 'no
    matches for kind "ConsumerGroup"': kube-controller-manager refreshes its discovery cache every 30 s, so
    right after the CRD is installed it does not know the kind yet. That is allowed, nothing else is; in
    these runs the final conditions appeared 30 s after the HPAs were created."""
    kubernetes_cluster.create(namespace, minimal_manifest("ConsumerGroup", "autoscaled"))
    kubernetes_cluster.merge_patch_status(
        namespace,
        "ConsumerGroup",
        "autoscaled",
        ConsumerGroupStatus(selector="sluice.dev/consumer-group=autoscaled", replicas=1).to_manifest(),
    )
    kubernetes_cluster.create(namespace, minimal_manifest("ConsumerGroup", "no-selector"))
    kubernetes_cluster.create_horizontal_pod_autoscaler(namespace, _autoscaler("autoscaled", "autoscaled"))
    kubernetes_cluster.create_horizontal_pod_autoscaler(namespace, _autoscaler("no-selector", "no-selector"))
    observed: set[tuple[str, str, str, str]] = set()

    def both_conditions() -> list[dict[str, V2HorizontalPodAutoscalerCondition]]:
        both = [
            kubernetes_cluster.horizontal_pod_autoscaler_conditions(namespace, name)
            for name in ("autoscaled", "no-selector")
        ]
        observed.update(
            (condition.type, condition.status, condition.reason or "", condition.message or "")
            for conditions in both
            for condition in conditions.values()
        )
        return both

    with_selector, without_selector = wait_until(
        both_conditions,
        lambda both: all("ScalingActive" in conditions for conditions in both),
        timeout_seconds=HPA_TIMEOUT_SECONDS,
        interval=1,
    )

    able = with_selector["AbleToScale"]
    assert (able.status, able.reason) == ("True", "SucceededGetScale")
    scaling = with_selector["ScalingActive"]
    assert (scaling.status, scaling.reason) == ("False", "FailedGetResourceMetric")
    assert "unable to get metrics for resource cpu" in (scaling.message or "")

    assert (without_selector["AbleToScale"].status, without_selector["AbleToScale"].reason) == (
        "True",
        "SucceededGetScale",
    )
    missing = without_selector["ScalingActive"]
    assert (missing.status, missing.reason) == ("False", "InvalidSelector")
    assert missing.message == "the HPA target's scale is missing a selector"

    transient = {entry for entry in observed if entry[2] == "FailedGetScale"}
    assert all('no matches for kind "ConsumerGroup" in group "sluice.dev"' in entry[3] for entry in transient)


def test_models_parse_what_the_api_server_returns(
    kubernetes_cluster: KubernetesCluster, examples_namespace: str
) -> None:
    stream = EventStream.model_validate(kubernetes_cluster.get(examples_namespace, "EventStream", "orders"))
    assert stream.stream_name == "orders"
    assert stream.metadata.generation == 1
    assert stream.spec.retention is not None
    assert stream.spec.retention.respect_consumer_positions is True
    policy = RetentionPolicy.model_validate(
        kubernetes_cluster.get(examples_namespace, "RetentionPolicy", "orders-nightly")
    )
    assert policy.spec.schedule == "0 3 * * *"
    projection = Projection.model_validate(kubernetes_cluster.get(examples_namespace, "Projection", "order-summary"))
    assert projection.spec.database is not None
    assert projection.spec.database.schema_name == "sluice"
    replay = Replay.model_validate(
        kubernetes_cluster.get(examples_namespace, "Replay", "orders-to-email-notifications")
    )
    assert replay.spec.target.consumer_group == "email-notifications"
