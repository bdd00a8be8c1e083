"""The Helm chart on the real test API server: its rendered output passes a server-side dry run, installs, and
the operator it describes, run with the chart's ServiceAccount token and nothing more, reconciles an example.

The operator runs as a local process with exactly the container command, arguments and environment of the
rendered Deployment (Secret references resolved as a kubelet would), except its two ports, which must be free
local ports, and KUBECONFIG, which stands in for the mounted ServiceAccount token: a kubeconfig holding a
token minted for the chart's ServiceAccount. Every API call it makes is therefore authorized by the chart's
RBAC alone; a missing rule shows as a 403 in its log and as an example that never gets its status.

The release watches one application namespace (``operator.watchNamespaces``), so its workload ClusterRole is
bound there by a RoleBinding: the narrowest grant the chart makes. Cluster-scoped objects of the release
(ClusterRoles and their bindings) carry a per-test release name and are deleted afterwards; the CRDs stay,
as the chart's ``helm.sh/resource-policy: keep`` says (they equal the session's crds/).
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from sluice_operator.models import CUSTOM_RESOURCES
from tests.custom_resources.cluster import KubernetesCluster, Manifest, wait_until
from tests.custom_resources.conftest import kubernetes_cluster
from tests.custom_resources.manifests import load_example
from tests.kopf_operator.helpers import condition_status, conditions, reconciled_with, wait_for_object

__all__ = ["kubernetes_cluster"]

pytestmark = [pytest.mark.kubernetes, pytest.mark.postgres, pytest.mark.slow]

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CHART = REPOSITORY_ROOT / "charts" / "sluice"
DATABASE_SECRET = "sluice-database"
ESTABLISHED_TIMEOUT_SECONDS = 30
OPERATOR_LIVE_TIMEOUT_SECONDS = 60
OPERATOR_STOP_TIMEOUT_SECONDS = 15
TOKEN_DURATION = "1h"
EXAMPLE_FILES = ("event-stream.yaml", "consumer-group.yaml", "projection.yaml", "replay.yaml", "retention-policy.yaml")


@dataclass(frozen=True)
class Release:
    """One rendered and installed release: its name, its namespace and the namespace it watches."""

    name: str
    namespace: str
    watched_namespace: str
    documents: list[Manifest]

    def one(self, kind: str, name_suffix: str) -> Manifest:
        (document,) = [
            document
            for document in self.documents
            if document["kind"] == kind and document["metadata"]["name"] == f"{self.name}{name_suffix}"
        ]
        return document


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def helm_template(cluster: KubernetesCluster, release: str, namespace: str, *settings: str) -> str:
    completed = subprocess.run(
        [str(cluster.bin_directory / "helm"), "template", release, str(CHART), "--namespace", namespace, *settings],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def secret_value(cluster: KubernetesCluster, namespace: str, name: str, key: str) -> str:
    """What a kubelet puts in an environment variable with ``valueFrom.secretKeyRef``."""
    secret = json.loads(cluster.kubectl("get", "secret", name, "-o", "json", namespace=namespace).stdout)
    return base64.b64decode(secret["data"][key]).decode("utf-8")


def container_environment(cluster: KubernetesCluster, namespace: str, container: Manifest) -> dict[str, str]:
    """The container's ``env`` as the kubelet resolves it (plain values and Secret keys; nothing else is used)."""
    environment: dict[str, str] = {}
    for variable in container.get("env") or []:
        if "value" in variable:
            environment[variable["name"]] = str(variable["value"])
            continue
        reference = variable["valueFrom"]["secretKeyRef"]
        environment[variable["name"]] = secret_value(cluster, namespace, reference["name"], reference["key"])
    return environment


def token_kubeconfig(cluster: KubernetesCluster, token: str, path: Path) -> Path:
    """A kubeconfig for the same API server that authenticates with ``token`` only (no client certificate)."""
    administrator = json.loads(cluster.kubeconfig_path.read_text(encoding="utf-8"))
    (cluster_entry,) = administrator["clusters"]
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster_entry],
        "users": [{"name": "sluice-operator", "user": {"token": token}}],
        "contexts": [
            {"name": "sluice-operator", "context": {"cluster": cluster_entry["name"], "user": "sluice-operator"}}
        ],
        "current-context": "sluice-operator",
    }
    path.write_text(json.dumps(kubeconfig), encoding="utf-8")
    path.chmod(0o600)
    return path


def can_i(cluster: KubernetesCluster, kubeconfig: Path, verb: str, resource: str, namespace: str | None) -> bool:
    """Whether the kubeconfig's identity may do this, in one namespace or (None) in all of them."""
    scope = "--all-namespaces" if namespace is None else f"--namespace={namespace}"
    completed = subprocess.run(
        [str(cluster.bin_directory / "kubectl"), f"--kubeconfig={kubeconfig}", "auth", "can-i", verb, resource, scope],
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() == "yes"


class ChartOperator:
    """The rendered operator container, run as a local process with a ServiceAccount kubeconfig."""

    def __init__(self, *, command: list[str], environment: dict[str, str], log_path: Path, liveness_url: str):
        self.command = command
        self.environment = environment
        self.log_path = log_path
        self.liveness_url = liveness_url
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ChartOperator:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command, cwd=REPOSITORY_ROOT, env=self.environment, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._wait_until_live()
        except BaseException:
            self.__exit__()  # never leave a process running (and unwaited) behind a failed start
            raise
        return self

    def _wait_until_live(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + OPERATOR_LIVE_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AssertionError(f"the operator exited with {self._process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.liveness_url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"the operator's liveness endpoint did not answer:\n{self.log()}")

    def __exit__(self, *exception: object) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=OPERATOR_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def operator_command(container: Manifest, liveness_port: int, metrics_port: int) -> list[str]:
    """The container's command and arguments, with its ports replaced by free local ones."""
    (executable,) = container["command"]
    local_executable = Path(sys.executable).parent / executable  # the image installs the same console script
    assert local_executable.exists(), f"{executable} is not installed in this virtualenv"
    local_ports = {"--liveness-port=": liveness_port, "--metrics-port=": metrics_port}
    arguments = [
        next((f"{flag}{port}" for flag, port in local_ports.items() if argument.startswith(flag)), argument)
        for argument in container["args"]
    ]
    assert {f"{flag}{port}" for flag, port in local_ports.items()} <= set(arguments), container["args"]
    return [str(local_executable), *arguments]


def wait_for_established_definitions(cluster: KubernetesCluster) -> None:
    names = [resource.definition.name for resource in CUSTOM_RESOURCES]
    wait_until(
        lambda: all(cluster.custom_resource_definition_conditions(name).get("Established") == "True" for name in names),
        bool,
        timeout_seconds=ESTABLISHED_TIMEOUT_SECONDS,
        interval=0.2,
    )


WATCH_ONE_NAMESPACE = "watch-one-namespace"
WATCH_ALL_NAMESPACES = "watch-all-namespaces"


@pytest.fixture
def release(
    kubernetes_cluster: KubernetesCluster, postgres_dsn: str, request: pytest.FixtureRequest
) -> Iterator[Release]:
    """Namespaces and database Secrets for one release, and the chart rendered for them (gateway on,
    ServiceMonitor off); removed afterwards. Watches one application namespace unless the test is
    parametrized with WATCH_ALL_NAMESPACES (the chart's default)."""
    mode = getattr(request, "param", WATCH_ONE_NAMESPACE)
    suffix = uuid.uuid4().hex[:6]
    name = f"sluice-{suffix}"
    namespace = f"chart-{suffix}"
    watched_namespace = f"chart-apps-{suffix}"
    for each in (namespace, watched_namespace):
        kubernetes_cluster.create_namespace(each)
        kubernetes_cluster.kubectl(
            "create", "secret", "generic", DATABASE_SECRET, f"--from-literal=uri={postgres_dsn}", namespace=each
        )
    settings = [
        "--set",
        "gateway.enabled=true,serviceMonitor.enabled=false",
        "--set",
        f"database.secretName={DATABASE_SECRET},operator.resyncSeconds=1",
    ]
    if mode == WATCH_ONE_NAMESPACE:
        settings += ["--set", f"operator.watchNamespaces={{{watched_namespace}}}"]
    rendered = helm_template(kubernetes_cluster, name, namespace, *settings)
    documents = [document for document in yaml.safe_load_all(rendered) if document]
    try:
        yield Release(name=name, namespace=namespace, watched_namespace=watched_namespace, documents=documents)
    finally:
        kubernetes_cluster.kubectl(
            "delete",
            "clusterrole,clusterrolebinding",
            "--selector",
            f"app.kubernetes.io/instance={name}",
            "--ignore-not-found",
            "--wait=false",
        )
        for each in (namespace, watched_namespace):
            kubernetes_cluster.kubectl("delete", "namespace", each, "--ignore-not-found", "--wait=false")


def service_account_kubeconfig(cluster: KubernetesCluster, release: Release, directory: Path) -> Path:
    """Install the rendered release, mint a token for its operator ServiceAccount, and write a kubeconfig."""
    apply_rendered(cluster, release.documents)
    wait_for_established_definitions(cluster)
    service_account = release.one("Deployment", "-operator")["spec"]["template"]["spec"]["serviceAccountName"]
    token = cluster.kubectl(
        "create", "token", service_account, f"--duration={TOKEN_DURATION}", namespace=release.namespace
    ).stdout.strip()
    return token_kubeconfig(cluster, token, directory / "operator.kubeconfig")


def apply_rendered(cluster: KubernetesCluster, documents: list[Manifest], *extra: str) -> str:
    stream = yaml.safe_dump_all(documents)
    return cluster.kubectl(
        "apply", "--server-side", "--field-manager=sluice-chart-test", *extra, "-f", "-", stdin=stream
    ).stdout


@pytest.mark.parametrize("release", [WATCH_ALL_NAMESPACES, WATCH_ONE_NAMESPACE], indirect=True)
def test_rendered_chart_passes_a_server_side_dry_run(kubernetes_cluster: KubernetesCluster, release: Release) -> None:
    output = apply_rendered(kubernetes_cluster, release.documents, "--dry-run=server")
    assert output.count("(server dry run)") == len(release.documents), output
    kinds = {document["kind"] for document in release.documents}
    assert {"CustomResourceDefinition", "Deployment", "Service", "PodDisruptionBudget", "ServiceAccount"} <= kinds
    assert "ServiceMonitor" not in kinds
    # Nothing was stored.
    missing = kubernetes_cluster.kubectl(
        "get", "deployment", f"{release.name}-operator", namespace=release.namespace, check=False
    )
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr


def test_the_chart_operator_reconciles_examples_with_the_chart_rbac_only(
    kubernetes_cluster: KubernetesCluster, release: Release, tmp_path: Path
) -> None:
    kubeconfig = service_account_kubeconfig(kubernetes_cluster, release, tmp_path)
    pod_spec = release.one("Deployment", "-operator")["spec"]["template"]["spec"]

    # The grant is as narrow as the chart says: workloads only in the watched namespace, no deletes of
    # Sluice objects, Secrets readable one by one but never listed.
    watched = release.watched_namespace
    assert can_i(kubernetes_cluster, kubeconfig, "create", "deployments.apps", watched)
    assert can_i(kubernetes_cluster, kubeconfig, "patch", "consumergroups.sluice.dev", watched)
    assert can_i(kubernetes_cluster, kubeconfig, "get", "secrets", watched)
    assert not can_i(kubernetes_cluster, kubeconfig, "list", "secrets", watched)
    assert not can_i(kubernetes_cluster, kubeconfig, "delete", "eventstreams.sluice.dev", watched)
    assert not can_i(kubernetes_cluster, kubeconfig, "create", "deployments.apps", "default")
    assert not can_i(kubernetes_cluster, kubeconfig, "get", "secrets", release.namespace)

    (container,) = pod_spec["containers"]
    liveness_port, metrics_port = free_port(), free_port()
    environment = container_environment(kubernetes_cluster, release.namespace, container)
    assert set(environment) >= {"SLUICE_DSN", "SLUICE_SCHEMA", "SLUICE_IMAGE", "SLUICE_OPERATOR_RESYNC_SECONDS"}
    liveness_path = container["livenessProbe"]["httpGet"]["path"]
    operator = ChartOperator(
        command=operator_command(container, liveness_port, metrics_port),
        environment={**environment, "KUBECONFIG": str(kubeconfig)},
        log_path=tmp_path / "operator.log",
        liveness_url=f"http://127.0.0.1:{liveness_port}{liveness_path}",
    )
    with operator:
        try:
            _examples_reach_their_conditions(kubernetes_cluster, watched, metrics_port)
        finally:
            print("operator log:\n" + "\n".join(operator.log().splitlines()[-200:]))
    log = operator.log()
    assert "Forbidden" not in log, "the operator was refused something the chart must grant"
    assert "(403)" not in log


@pytest.mark.parametrize("release", [WATCH_ALL_NAMESPACES], indirect=True)
def test_the_default_release_grants_what_watching_every_namespace_needs(
    kubernetes_cluster: KubernetesCluster, release: Release, tmp_path: Path
) -> None:
    """The chart's default (``--all-namespaces``): the same workload rules, bound cluster-wide, plus listing
    namespaces. The operator is not started in this mode here: on the shared test cluster it would reconcile
    other tests' objects; the rules it would use are the ones the namespaced test above exercises."""
    (container,) = release.one("Deployment", "-operator")["spec"]["template"]["spec"]["containers"]
    assert "--all-namespaces" in container["args"]
    assert not any(document["kind"] == "RoleBinding" for document in release.documents)
    kubeconfig = service_account_kubeconfig(kubernetes_cluster, release, tmp_path)
    for verb in ("list", "watch"):
        for resource in ("eventstreams.sluice.dev", "consumergroups.sluice.dev", "deployments.apps", "jobs.batch"):
            assert can_i(kubernetes_cluster, kubeconfig, verb, resource, namespace=None), (verb, resource)
        assert can_i(kubernetes_cluster, kubeconfig, verb, "namespaces", namespace=None), verb
        assert can_i(kubernetes_cluster, kubeconfig, verb, "customresourcedefinitions.apiextensions.k8s.io", None)
    assert can_i(kubernetes_cluster, kubeconfig, "create", "deployments.apps", release.watched_namespace)
    assert can_i(kubernetes_cluster, kubeconfig, "patch", "eventstreams.sluice.dev/status", release.watched_namespace)
    assert not can_i(kubernetes_cluster, kubeconfig, "list", "secrets", namespace=None)
    assert not can_i(kubernetes_cluster, kubeconfig, "delete", "deployments.apps", release.watched_namespace)
    assert not can_i(kubernetes_cluster, kubeconfig, "update", "consumergroups.sluice.dev", release.watched_namespace)


def _examples_reach_their_conditions(cluster: KubernetesCluster, namespace: str, metrics_port: int) -> None:
    """Every example, as tests/kopf_operator/test_examples.py expects it, plus a stream whose data is dropped on
    deletion: its finalizer is added and removed with the chart's rights alone."""
    for file_name in EXAMPLE_FILES:
        cluster.create(namespace, load_example(file_name))
    stream = wait_for_object(cluster, namespace, "EventStream", "orders", reconciled_with("Ready", "True"))
    assert condition_status(stream, "SchemaReady") == "True"
    assert stream["status"]["headOffsets"] == [
        {"partition": partition, "head": 0, "first": 0} for partition in range(4)
    ]

    # No kubelet runs pods here: the group waits on its workload and says so; its Deployment exists, made with
    # the ServiceAccount's rights, and /scale has the selector.
    group = wait_for_object(
        cluster, namespace, "ConsumerGroup", "email-notifications", reconciled_with("Ready", "False")
    )
    assert condition_status(group, "StreamFound") == "True"
    assert conditions(group)["WorkloadAvailable"]["reason"] == "ReplicasNotReady"
    assert _owner_of(cluster, namespace, "deployment", "email-notifications") == (
        "ConsumerGroup",
        "email-notifications",
    )
    scale = cluster.get_scale(namespace, "ConsumerGroup", "email-notifications")
    assert scale["status"]["selector"] == group["status"]["selector"]

    # The projection and the replay wait on their pods too; the retention policy needs none and is Ready.
    projection = wait_for_object(cluster, namespace, "Projection", "order-summary", reconciled_with("Ready", "False"))
    assert conditions(projection)["WorkloadAvailable"]["reason"] == "ReplicasNotReady"
    replay = wait_for_object(
        cluster,
        namespace,
        "Replay",
        "orders-to-email-notifications",
        lambda body: (body.get("status") or {}).get("phase") == "Pending",
    )
    assert condition_status(replay, "Succeeded") == "Unknown"
    policy = wait_for_object(cluster, namespace, "RetentionPolicy", "orders-nightly", reconciled_with("Ready", "True"))
    assert policy["status"]["matchedStreams"] == ["orders"]
    assert _owner_of(cluster, namespace, "job", "orders-to-email-notifications") == (
        "Replay",
        "orders-to-email-notifications",
    )

    cluster.create(
        namespace,
        {
            "apiVersion": "sluice.dev/v1alpha1",
            "kind": "EventStream",
            "metadata": {"name": "scratch"},
            "spec": {"deletionPolicy": "delete"},
        },
    )
    scratch = wait_for_object(cluster, namespace, "EventStream", "scratch", reconciled_with("Ready", "True"))
    assert scratch["metadata"]["finalizers"] == ["sluice.dev/delete-stream-data"]
    cluster.kubectl("delete", "eventstream", "scratch", "--wait=true", "--timeout=40s", namespace=namespace)

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        metrics = response.read().decode("utf-8")
    assert 'sluice_operator_reconciles_total{kind="EventStream",result="ok"}' in metrics


def _owner_of(cluster: KubernetesCluster, namespace: str, kind: str, name: str) -> tuple[str, str]:
    child = json.loads(cluster.kubectl("get", kind, name, "-o", "json", namespace=namespace).stdout)
    (owner,) = child["metadata"]["ownerReferences"]
    return owner["kind"], owner["name"]
