"""examples/end-to-end/: every file applies to a real kube-apiserver with Sluice's CRDs, and the platform's
substitutions (database URI, sink URL) change only what they should."""

from __future__ import annotations

import json

import pytest

from sluice_devkit.end_to_end_example import (
    CONSUMER_GROUP,
    DATABASE_SECRET,
    DEFAULT_EXAMPLE_DIRECTORY,
    load_example_manifests,
)
from tests.custom_resources.cluster import KubernetesCluster

EXPECTED_OBJECTS = [
    ("Secret", DATABASE_SECRET),
    ("EventStream", "orders"),
    ("ConsumerGroup", CONSUMER_GROUP),
    ("Projection", "order-summary"),
    ("RetentionPolicy", "orders-nightly"),
    ("Replay", "orders-to-email-notifications"),
]


def test_the_example_holds_one_object_of_each_kind_and_its_secret() -> None:
    example = load_example_manifests()
    assert example.kinds_and_names() == EXPECTED_OBJECTS
    assert [path.name for path in example.files] == sorted(
        path.name for path in DEFAULT_EXAMPLE_DIRECTORY.glob("*.yaml")
    )


def test_the_local_platform_replaces_only_the_database_uri_and_the_sink_url() -> None:
    example = load_example_manifests()
    adapted = example.for_local_platform(
        database_url="postgresql://sluice@127.0.0.1:5999/postgres", sink_url="http://127.0.0.1:6001/events"
    )
    originals = {manifest["kind"]: manifest for manifest in example.manifests}
    changed = {manifest["kind"]: manifest for manifest in adapted}
    assert changed["Secret"]["stringData"] == {"uri": "postgresql://sluice@127.0.0.1:5999/postgres"}
    assert changed["ConsumerGroup"]["spec"]["handler"]["sink"]["url"] == "http://127.0.0.1:6001/events"
    # The loaded example itself is untouched, and nothing else differs.
    assert originals["Secret"]["stringData"]["uri"].startswith("postgresql://sluice:change-me@")
    assert originals["ConsumerGroup"]["spec"]["handler"]["sink"]["url"].startswith("http://email-service.")
    for kind in ("EventStream", "Projection", "RetentionPolicy", "Replay"):
        assert json.dumps(changed[kind], sort_keys=True) == json.dumps(originals[kind], sort_keys=True)
    changed["ConsumerGroup"]["spec"]["handler"]["sink"]["url"] = originals["ConsumerGroup"]["spec"]["handler"]["sink"][
        "url"
    ]
    assert changed["ConsumerGroup"] == originals["ConsumerGroup"]


@pytest.mark.kubernetes
def test_every_file_applies_to_the_control_plane(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str], namespace: str
) -> None:
    applied = kubernetes_cluster.kubectl(
        "apply", "--validate=strict", "-f", str(DEFAULT_EXAMPLE_DIRECTORY), namespace=namespace
    ).stdout
    for kind, name in EXPECTED_OBJECTS:
        resource = "secret" if kind == "Secret" else f"{kind.lower()}.sluice.dev"
        assert f"{resource}/{name} created" in applied, applied
        stored = json.loads(kubernetes_cluster.kubectl("get", resource, name, "-o", "json", namespace=namespace).stdout)
        assert stored["metadata"]["name"] == name
    group = kubernetes_cluster.get(namespace, "ConsumerGroup", CONSUMER_GROUP)
    # Defaults from the CRD are filled in by the API server: the example is valid as written.
    assert group["spec"]["startPosition"]["from"] == "earliest"
    assert group["spec"]["replicas"] == 2
    stream = kubernetes_cluster.get(namespace, "EventStream", "orders")
    assert stream["spec"]["partitions"] == 4
    # Applying again changes none of the Sluice objects (kubectl always reports a Secret written with
    # stringData as "configured").
    again = kubernetes_cluster.kubectl("apply", "-f", str(DEFAULT_EXAMPLE_DIRECTORY), namespace=namespace).stdout
    for kind, name in EXPECTED_OBJECTS[1:]:
        assert f"{kind.lower()}.sluice.dev/{name} unchanged" in again, again
