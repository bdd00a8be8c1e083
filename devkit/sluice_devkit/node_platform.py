"""``NodePlatform``: the local platform on a real node. The operator is installed by the Helm chart and runs
as a pod (in-cluster configuration, the chart's ServiceAccount and RBAC); the consumer and projection
workers and the Replay Job are containers of the Sluice image, run by the kubelet and containerd.

Steps: the node's bridge, PostgreSQL (also on the bridge gateway), the control plane (API server on the
gateway), the node (``local_node.py``), the image (``scripts/image/build.sh``, imported into containerd),
the chart, the sink (on the gateway), the example, sample events; then it watches the example catch up,
runs the replay and shows ``kubectl get pods -o wide``. ``LocalPlatform`` (``local_platform.py``) is the
process stand-in for machines where no node can run; both share the watching and the output.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import click

from sluice.storage.postgres.embedded import EmbeddedPostgres, ServerSettings
from sluice_devkit.control_plane import LocalControlPlane
from sluice_devkit.demo_sink import CloudEventSink
from sluice_devkit.end_to_end_example import (
    CONSUMER_GROUP,
    PROJECTION,
    REPLAY,
    STREAM,
    load_example_manifests,
)
from sluice_devkit.kubectl import Kubectl
from sluice_devkit.local_node import LocalNode
from sluice_devkit.local_platform import (
    CRD_NAMES,
    DEMO_NAMESPACE,
    REPOSITORY_ROOT,
    LocalPlatform,
    PlatformOptions,
)
from sluice_devkit.platform_errors import PlatformError
from sluice_devkit.platform_status import replay_state, sluice_table
from sluice_devkit.sample_events import append_sample_orders

__all__ = ["OPERATOR_NAMESPACE", "NodePlatform", "build_image", "build_node_binaries"]

OPERATOR_NAMESPACE = "sluice-system"
RELEASE = "sluice"
DATABASE_SECRET = "sluice-database"  # noqa: S105 - a Secret's name
NODE_BUILD_SCRIPT = REPOSITORY_ROOT / "scripts" / "node" / "build.sh"
IMAGE_BUILD_SCRIPT = REPOSITORY_ROOT / "scripts" / "image" / "build.sh"
CHART_DIRECTORY = REPOSITORY_ROOT / "charts" / "sluice"
POD_READY_TIMEOUT = "120s"


def _script_output(script: Path, line_count: int) -> list[str]:
    """Run a build script (progress on this terminal) and return the last lines of its output."""
    completed = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or len(lines) < line_count:
        raise PlatformError(f"{script} failed with exit code {completed.returncode}")
    return lines[-line_count:]


def build_node_binaries(script: Path = NODE_BUILD_SCRIPT) -> Path:
    """scripts/node/build.sh: runc, containerd, the CNI plugins and pause (instant once built)."""
    return Path(_script_output(script, 1)[0])


def build_image(script: Path = IMAGE_BUILD_SCRIPT) -> tuple[Path, str]:
    """scripts/image/build.sh: the Sluice image's OCI archive and reference (cached by its inputs' hash)."""
    archive, reference = _script_output(script, 2)
    return Path(archive), reference


class NodePlatform(LocalPlatform):
    """The platform with a real kubelet: pods are containers, the operator is a pod of the chart."""

    def __init__(self, options: PlatformOptions) -> None:
        super().__init__(options)
        self.node: LocalNode | None = None
        self.image = ""
        self._replay_manifests: list[dict[str, Any]] = []

    # Starting -----------------------------------------------------------------------------------------

    def start(self) -> None:
        self.say("mode: real node (kubelet, containerd and runc; the operator, workers and Job run as containers)")
        self._prepare_state_directory()
        shutil.rmtree(self.options.state_directory / "node", ignore_errors=True)
        kubernetes_bin = self._control_plane_binaries()
        node_bin = build_node_binaries()
        self.node = LocalNode(node_bin, kubernetes_bin, self.options.state_directory / "node")
        self.node.create_network()
        self.say(f"node network: bridge {self.node.layout.bridge_name} {self.node.gateway}/24 (pods' gateway)")
        database_url = self._start_postgres()
        self.control_plane = LocalControlPlane(
            kubernetes_bin, self.options.state_directory / "control-plane", node_address=self.node.gateway
        )
        self.control_plane.start()
        process_ids = ", ".join(f"{name} {pid}" for name, pid in self.control_plane.process_ids.items())
        self.say(f"control plane {self.control_plane.server_url} ({process_ids})")
        self.node.start(self.control_plane)
        node_ids = ", ".join(f"{name} {pid}" for name, pid in self.node.process_ids.items())
        self.say(
            f"node {self.node.layout.node_name} Ready in {self.node.ready_after_seconds:.1f} s ({node_ids}); "
            f"steps {self.node.timings}"
        )
        kubectl = Kubectl(kubernetes_bin / "kubectl", self.control_plane.kubeconfig_path)
        self.kubectl = kubectl
        self._import_image()
        pod_database_url = self._pod_database_url()
        self._install_chart(kubectl, kubernetes_bin / "helm", pod_database_url)
        self.sink = CloudEventSink(host=str(self.node.gateway))
        self.sink.start()
        self.say(f"HTTP sink for the email service: {self.sink.url} (on the bridge: pods reach it)")
        self._apply_example(kubectl, database_url=pod_database_url, sink_url=self.sink.url)
        self._wait_for_operator_pod(kubectl)
        self._wait_for_stream(kubectl)
        asyncio.run(append_sample_orders(database_url, stream=STREAM, count=self.options.events))
        self.say(f"appended {self.options.events} OrderPlaced events to '{STREAM}' (keyed by customer)")
        for deployment in (CONSUMER_GROUP, PROJECTION):
            self._wait_for_pods_ready(kubectl, f"app.kubernetes.io/instance={deployment}", deployment)

    def _start_postgres(self) -> str:
        assert self.node is not None
        self.postgres = EmbeddedPostgres(
            ServerSettings(
                durable=True,
                max_connections=100,
                extra_listen_addresses=(str(self.node.gateway),),
                trusted_client_networks=(str(self.node.layout.pod_subnet),),
            ),
            base_dir=self.options.state_directory / "postgres",
        )
        self.postgres.start()
        database_url = self.postgres.dsn()
        self.say(
            f"PostgreSQL {database_url}, for pods {self._pod_database_url()} "
            f"(pid {self.postgres.pid}, data in {self.postgres.data_dir})"
        )
        return database_url

    def _pod_database_url(self) -> str:
        assert self.postgres is not None
        assert self.node is not None
        return f"postgresql://{self.postgres.settings.database_user}@{self.node.gateway}:{self.postgres.port}/postgres"

    def _import_image(self) -> None:
        assert self.node is not None
        started_at = time.monotonic()
        archive, self.image = build_image()
        built = time.monotonic()
        self.node.import_image(archive)
        self.say(
            f"image {self.image}: built or found in {built - started_at:.1f} s, imported into containerd in "
            f"{time.monotonic() - built:.1f} s ({archive.stat().st_size // 1_000_000} MB OCI archive)"
        )

    def _install_chart(self, kubectl: Kubectl, helm: Path, pod_database_url: str) -> None:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": DATABASE_SECRET},
            "stringData": {"uri": pod_database_url},
        }
        kubectl.apply([namespace], namespace=OPERATOR_NAMESPACE)
        kubectl.apply([secret], namespace=OPERATOR_NAMESPACE)
        repository, tag = self.image.rsplit(":", 1)
        command = [
            str(helm),
            f"--kubeconfig={kubectl.kubeconfig_path}",
            "install",
            RELEASE,
            str(CHART_DIRECTORY),
            f"--namespace={OPERATOR_NAMESPACE}",
            f"--set=image.repository={repository}",
            f"--set=image.tag={tag}",
            "--set=image.pullPolicy=Never",
            f"--set=database.secretName={DATABASE_SECRET}",
            "--set=operator.resyncSeconds=2",
        ]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if completed.returncode != 0:
            raise PlatformError(f"helm install failed: {completed.stderr.strip()}")
        kubectl.run("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{name}" for name in CRD_NAMES))
        self.say(
            f"helm install {RELEASE} {CHART_DIRECTORY.relative_to(REPOSITORY_ROOT)} -n {OPERATOR_NAMESPACE} "
            f"(image {self.image}, CRDs, ServiceAccount, RBAC, the operator's Deployment)"
        )

    def _apply_example(self, kubectl: Kubectl, *, database_url: str, sink_url: str) -> None:
        """The example without its Replay, which ``run_replay`` applies once the group has caught up (its Job
        would otherwise start at once, before the sample events are appended)."""
        example = load_example_manifests(self.options.example_directory)
        manifests = example.for_local_platform(database_url=database_url, sink_url=sink_url)
        self._replay_manifests = [manifest for manifest in manifests if manifest["kind"] == "Replay"]
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NAMESPACE}}
        kubectl.apply([namespace], namespace=DEMO_NAMESPACE)
        kubectl.apply([manifest for manifest in manifests if manifest["kind"] != "Replay"], namespace=DEMO_NAMESPACE)
        names = ", ".join(f"{kind}/{name}" for kind, name in example.kinds_and_names() if kind != "Replay")
        self.say(f"applied {self.options.example_directory} to namespace {DEMO_NAMESPACE}: {names}")
        self.say(
            "  (the Secret's uri is PostgreSQL on the bridge gateway, the sink URL the sink's; the Replay comes later)"
        )

    def _wait_for_operator_pod(self, kubectl: Kubectl) -> None:
        self._wait_for_pods_ready(kubectl, "app.kubernetes.io/component=operator", "operator", OPERATOR_NAMESPACE)
        self.say("  the operator runs in-cluster: the kubernetes Service, its ServiceAccount token, the chart's RBAC")

    def _wait_for_pods_ready(
        self, kubectl: Kubectl, selector: str, description: str, namespace: str = DEMO_NAMESPACE
    ) -> None:
        started_at = time.monotonic()
        self._wait(
            lambda: bool(kubectl.run("get", "pods", "-l", selector, "-o", "name", namespace=namespace).strip()),
            f"pods of {description}",
        )
        try:
            kubectl.run(
                "wait",
                "--for=condition=Ready",
                f"--timeout={POD_READY_TIMEOUT}",
                "pod",
                "-l",
                selector,
                namespace=namespace,
            )
        except PlatformError as error:
            pods = kubectl.run("get", "pods", "-o", "wide", namespace=namespace)
            raise PlatformError(f"{error}\n{pods}") from error
        pods = kubectl.run("get", "pods", "-l", selector, "-o", "wide", namespace=namespace).rstrip()
        self.say(
            f"{description}: pods Ready in {time.monotonic() - started_at:.1f} s (readiness probes by the kubelet)"
        )
        click.echo(pods)

    # Replay, running, stopping --------------------------------------------------------------------------

    def show_read_model(self) -> None:
        if self.postgres is None:
            return
        super().show_read_model()

    def run_replay(self) -> None:
        """The Replay's Job runs as a real pod; wait until the operator reports it Succeeded."""
        assert self.kubectl is not None
        kubectl = self.kubectl
        received_before = len(self.sink.received) if self.sink is not None else 0
        kubectl.apply(self._replay_manifests, namespace=DEMO_NAMESPACE)
        self.say(f"applied Replay/{REPLAY}: the operator creates its Job; the kubelet runs its pod")
        deadline = time.monotonic() + self.options.ready_timeout_seconds
        while (state := replay_state(kubectl, DEMO_NAMESPACE, REPLAY)).phase != "Succeeded":
            if time.monotonic() > deadline:
                raise PlatformError(f"Replay {REPLAY} did not succeed: phase {state.phase}, progress {state.progress}")
            time.sleep(1.0)
        redelivered = (len(self.sink.received) if self.sink is not None else 0) - received_before
        self.say(f"Replay {REPLAY}: {state.phase}, progress {dict(state.progress)}, Ready {state.ready}")
        self.say(f"  its Job's pod ran `sluice replay`; the sink received {redelivered} CloudEvent(s) again since")
        self._events_reported = len(self.sink.received) if self.sink is not None else 0
        self.say("kubectl get sluice -A")
        click.echo(sluice_table(kubectl) + "\n")
        self.say("kubectl get pods -A -o wide")
        click.echo(kubectl.run("get", "pods", "--all-namespaces", "-o", "wide").rstrip() + "\n")

    def keep_running(self) -> None:
        """Until Ctrl-C: the kubelet runs the pods; report what the sink receives."""
        assert self.kubectl is not None
        click.echo(
            "\nThe local Sluice platform is running on a real node. Try:\n"
            f"  export KUBECONFIG={self.kubectl.kubeconfig_path}\n"
            f"  {self.kubectl.binary} get pods -A -o wide\n"
            f"  {self.kubectl.binary} logs -n {DEMO_NAMESPACE} deploy/{CONSUMER_GROUP}\n"
            f"  {self.kubectl.binary} scale consumergroup {CONSUMER_GROUP} -n {DEMO_NAMESPACE} --replicas=3\n"
            f"{self.console_hint()}"
            "Press Ctrl-C to stop everything this command started (nothing is left running).\n"
        )
        while True:
            time.sleep(2.0)
            self._report_sink_progress()

    def started_processes(self) -> dict[str, int]:
        processes = super().started_processes()
        if self.node is not None:
            processes.update(self.node.process_ids)
        return processes

    def stop(self) -> None:
        """The node first (pods deleted through the API, then everything it left), then the rest."""
        if self.node is not None:
            left = self.node.stop()
            if left:
                self.say(click.style(f"the node left: {', '.join(left)}", fg="red"))
            else:
                self.say("node stopped: no pods, shims, mounts, veths, bridge, iptables rules or sysctl changes left")
        super().stop()
