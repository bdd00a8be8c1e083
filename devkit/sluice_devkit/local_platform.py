"""``LocalPlatform``: what the local platform starts (PostgreSQL, a control plane or an existing cluster, the
CRDs, the operator, a sink, the end-to-end example, local processes for the example's pods), how it watches
the example catch up (the consumer group, the projection), runs the example's replay, and stopping all of it
by process id. ``platform.py`` is its command line.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from sluice.storage.postgres.embedded import EmbeddedPostgres, ServerSettings
from sluice_devkit.console_gateway import ConsoleGateway
from sluice_devkit.control_plane import LocalControlPlane, build_control_plane_binaries
from sluice_devkit.demo_sink import CloudEventSink
from sluice_devkit.end_to_end_example import (
    CONSUMER_GROUP,
    DEFAULT_EXAMPLE_DIRECTORY,
    PROJECTION,
    PROJECTION_TABLE,
    REPLAY,
    STREAM,
    load_example_manifests,
)
from sluice_devkit.job_stand_in import run_job_pod
from sluice_devkit.kubectl import Kubectl
from sluice_devkit.kubelet_stand_in import (
    PodProcess,
    pods_of_deployment,
    start_pod_processes,
    wait_for_pods,
    wait_until_ready,
)
from sluice_devkit.local_processes import process_is_running
from sluice_devkit.operator_process import OperatorProcess, start_operator
from sluice_devkit.platform_errors import PlatformError, PlatformInterruptedError
from sluice_devkit.platform_status import (
    consumer_group_state,
    projection_state,
    ready_status,
    replay_state,
    sluice_table,
)
from sluice_devkit.read_model import REVENUE_PER_CUSTOMER_SQL, order_summary_rows, revenue_per_customer
from sluice_devkit.sample_events import append_sample_orders

__all__ = ["DEMO_NAMESPACE", "REPOSITORY_ROOT", "LocalPlatform", "PlatformOptions"]


REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
DEMO_NAMESPACE = "sluice-demo"
REFRESH_INTERVAL_SECONDS = 2.0
STEP_TIMEOUT_SECONDS = 90.0
CRD_NAMES = (
    "eventstreams.sluice.dev",
    "consumergroups.sluice.dev",
    "retentionpolicies.sluice.dev",
    "projections.sluice.dev",
    "replays.sluice.dev",
)
SAMPLE_EVENTS_SHOWN = 3
READ_MODEL_ROWS_SHOWN = 3
CUSTOMERS_SHOWN = 5


@dataclass(frozen=True)
class PlatformOptions:
    """What ``python -m sluice_devkit.platform`` was asked to do."""

    state_directory: Path
    events: int
    exit_after_ready: bool = False
    kubeconfig_path: Path | None = None
    """An existing cluster's kubeconfig; None starts the local control plane."""
    example_directory: Path = DEFAULT_EXAMPLE_DIRECTORY
    crds_directory: Path = REPOSITORY_ROOT / "crds"
    build_script: Path = REPOSITORY_ROOT / "scripts" / "control-plane" / "build.sh"
    ready_timeout_seconds: float = 120.0

    @property
    def uses_local_control_plane(self) -> bool:
        return self.kubeconfig_path is None


def _say(text: str, started_at: float) -> None:
    elapsed = click.style(f"[{time.monotonic() - started_at:6.1f} s]", fg="cyan")
    click.echo(f"{elapsed} {text}")


class LocalPlatform:
    """Everything the platform starts, and stopping all of it by process id."""

    def __init__(self, options: PlatformOptions) -> None:
        self.options = options
        self.started_at = time.monotonic()
        self.log_directory = options.state_directory / "logs"
        self.postgres: EmbeddedPostgres | None = None
        self.control_plane: LocalControlPlane | None = None
        self.operator: OperatorProcess | None = None
        self.sink: CloudEventSink | None = None
        self.gateway: ConsoleGateway | None = None
        self.pods: list[PodProcess] = []
        """Processes of Deployment pods (the consumer group's and the projection's), kept running."""
        self.job_pods: list[PodProcess] = []
        """Processes of Job pods (the replay's), which run to completion."""
        self.kubectl: Kubectl | None = None
        self._events_shown = 0
        self._events_reported = 0
        self._owns_pid_file = False
        self.example_objects: list[tuple[str, str]] = []

    def say(self, text: str) -> None:
        _say(text, self.started_at)

    # Starting -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Bring everything up and wait until the consumer group has caught up (or raise PlatformError)."""
        self._prepare_state_directory()
        database_url = self._start_postgres()
        kubectl = self._start_or_find_cluster()
        self._install_crds(kubectl)
        self._start_operator(kubectl.kubeconfig_path, database_url)
        sink = self._start_sink()
        # Applied while the operator starts up: it reconciles every existing object when it begins.
        self._apply_example(kubectl, database_url=database_url, sink_url=sink.url)
        self._wait_for_operator()
        self._wait_for_stream(kubectl)
        asyncio.run(append_sample_orders(database_url, stream=STREAM, count=self.options.events))
        self.say(f"appended {self.options.events} OrderPlaced events to '{STREAM}' (keyed by customer)")
        self._run_deployment_pods(kubectl, CONSUMER_GROUP)
        if self.options.uses_local_control_plane:  # on a real cluster, its own pod projects
            self._run_deployment_pods(kubectl, PROJECTION)

    def _prepare_state_directory(self) -> None:
        state = self.options.state_directory
        state.mkdir(parents=True, exist_ok=True)
        pid_file = state / "platform.pid"
        if pid_file.exists():
            previous = pid_file.read_text().strip()
            if previous.isdigit() and int(previous) != os.getpid() and process_is_running(int(previous)):
                raise PlatformError(f"a local platform already runs from {state} (pid {previous}); stop it first")
        # Whatever a platform killed with SIGKILL left behind is of no use to this one.
        for leftover in ("postgres", "control-plane", "logs"):
            shutil.rmtree(state / leftover, ignore_errors=True)
        self.log_directory.mkdir(parents=True)
        (state / "postgres").mkdir()
        pid_file.write_text(f"{os.getpid()}\n")
        self._owns_pid_file = True

    def _start_postgres(self) -> str:
        self.postgres = EmbeddedPostgres(
            ServerSettings(durable=True, max_connections=100), base_dir=self.options.state_directory / "postgres"
        )
        self.postgres.start()
        database_url = self.postgres.dsn()
        self.say(f"PostgreSQL {database_url} (pid {self.postgres.pid}, data in {self.postgres.data_dir})")
        return database_url

    def _start_or_find_cluster(self) -> Kubectl:
        if self.options.kubeconfig_path is not None:
            binary = shutil.which("kubectl")
            kubectl_path = Path(binary) if binary else self._control_plane_binaries() / "kubectl"
            self.kubectl = Kubectl(kubectl_path, self.options.kubeconfig_path)
            server = self.kubectl.run("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
            self.say(f"using the existing cluster {server} ({self.options.kubeconfig_path})")
            return self.kubectl
        bin_directory = self._control_plane_binaries()
        self.control_plane = LocalControlPlane(bin_directory, self.options.state_directory / "control-plane")
        self.control_plane.start()
        process_ids = ", ".join(f"{name} {pid}" for name, pid in self.control_plane.process_ids.items())
        self.say(f"local control plane {self.control_plane.server_url} ({process_ids})")
        self.kubectl = Kubectl(bin_directory / "kubectl", self.control_plane.kubeconfig_path)
        return self.kubectl

    def _control_plane_binaries(self) -> Path:
        """The folder of the built kubectl, etcd, kube-apiserver, ... (instant once built)."""
        try:
            return build_control_plane_binaries(self.options.build_script)
        except RuntimeError as error:
            raise PlatformError(f"{error}; run ./dev demo, which builds them first") from error

    def _install_crds(self, kubectl: Kubectl) -> None:
        kubectl.run(
            "apply", "--server-side", "--field-manager=sluice-local-platform", "-f", str(self.options.crds_directory)
        )
        kubectl.run("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{name}" for name in CRD_NAMES))
        self.say(f"installed the {len(CRD_NAMES)} Sluice CRDs from {self.options.crds_directory}")

    def _start_operator(self, kubeconfig_path: Path, database_url: str) -> None:
        self.operator = start_operator(
            kubeconfig_path=kubeconfig_path,
            default_database_url=database_url,
            log_path=self.log_directory / "operator.log",
        )
        self.say(
            f"operator: python -m sluice_operator --all-namespaces (pid {self.operator.process_id}, "
            f"metrics {self.operator.metrics_url}, log {self.operator.log_path})"
        )

    def _wait_for_operator(self) -> None:
        assert self.operator is not None
        self.operator.wait_until_live()
        self.say("the operator is live (kopf /healthz answers)")

    def _start_sink(self) -> CloudEventSink:
        self.sink = CloudEventSink()
        self.sink.start()
        self.say(f"HTTP sink for the email service: {self.sink.url} (prints the CloudEvents it receives)")
        return self.sink

    def _apply_example(self, kubectl: Kubectl, *, database_url: str, sink_url: str) -> None:
        example = load_example_manifests(self.options.example_directory)
        self.example_objects = example.kinds_and_names()
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NAMESPACE}}
        kubectl.apply([namespace], namespace=DEMO_NAMESPACE)
        kubectl.apply(
            example.for_local_platform(database_url=database_url, sink_url=sink_url), namespace=DEMO_NAMESPACE
        )
        names = ", ".join(f"{kind}/{name}" for kind, name in example.kinds_and_names())
        self.say(f"applied {self.options.example_directory} to namespace {DEMO_NAMESPACE}: {names}")
        self.say("  (the Secret's uri is this PostgreSQL, the ConsumerGroup's sink URL is the local sink)")

    def _wait_for_stream(self, kubectl: Kubectl) -> None:
        def stream_ready() -> bool:
            return ready_status(kubectl.get_json("eventstream.sluice.dev", STREAM, namespace=DEMO_NAMESPACE)) == "True"

        self._wait(stream_ready, f"EventStream {STREAM} to be Ready")
        self.say(f"EventStream {STREAM} is Ready: the operator migrated the database and created the stream")

    def _run_deployment_pods(self, kubectl: Kubectl, deployment_name: str) -> None:
        deployment = kubectl.get_json("deployment", deployment_name, namespace=DEMO_NAMESPACE)
        replicas = int(deployment["spec"].get("replicas", 1))
        pods = wait_for_pods(
            kubectl, DEMO_NAMESPACE, deployment_name, count=replicas, timeout_seconds=STEP_TIMEOUT_SECONDS
        )
        self._start_pods(kubectl, pods)

    def _start_pods(self, kubectl: Kubectl, pods: list[dict[str, Any]]) -> None:
        new_processes: list[PodProcess] = []
        try:
            start_pod_processes(
                kubectl,
                pods,
                log_directory=self.log_directory,
                into=new_processes,
                # On an existing cluster the real pods may run too: local members must not fence them.
                consumer_id_suffix="" if self.options.uses_local_control_plane else "-local",
            )
        finally:
            self.pods.extend(new_processes)
        report_ready = self.options.uses_local_control_plane
        wait_until_ready(kubectl, pods, new_processes, report_ready=report_ready)
        for pod_process in new_processes:
            arguments = " ".join(pod_process.process.command[1:])
            self.say(
                f"pod {pod_process.pod_name}: running `sluice {arguments}` here (pid {pod_process.process.process_id})"
            )
        if report_ready:
            self.say(
                "  no kubelet runs in the local control plane: this platform reported those pods Running and Ready"
            )

    def _wait(self, done: Callable[[], bool], description: str) -> None:
        deadline = time.monotonic() + STEP_TIMEOUT_SECONDS
        while not done():
            if time.monotonic() > deadline:
                operator_log = self.operator.log_tail() if self.operator is not None else ""
                raise PlatformError(f"timed out waiting for {description}; operator log:\n{operator_log}")
            time.sleep(0.5)

    # Watching -----------------------------------------------------------------------------------------

    def watch_until_caught_up(self) -> None:
        """Print ``kubectl get sluice -A`` every few seconds until the group and the projection have lag 0 and
        are Ready."""
        assert self.kubectl is not None
        assert self.sink is not None
        deadline = time.monotonic() + self.options.ready_timeout_seconds
        while True:
            self._show_new_sink_events()
            received = self.sink.distinct_event_count()
            state = consumer_group_state(self.kubectl, DEMO_NAMESPACE, CONSUMER_GROUP)
            projection = projection_state(self.kubectl, DEMO_NAMESPACE, PROJECTION)
            table = sluice_table(self.kubectl)
            caught_up = received >= self.options.events and state.lag_events == 0 and state.member_count > 0
            if self.options.uses_local_control_plane:
                caught_up = caught_up and state.ready == "True" and projection.caught_up
            lag = "not reported yet" if state.lag_events is None else f"{state.lag_events} events"
            projection_lag = "not reported yet" if projection.lag_events is None else f"{projection.lag_events} events"
            self.say(
                f"kubectl get sluice -A   (the sink has received {received} of {self.options.events} events; "
                f"{CONSUMER_GROUP} lag: {lag}, Ready: {state.ready or 'not reported yet'}; "
                f"{PROJECTION} lag: {projection_lag})"
            )
            click.echo(table + "\n")
            if caught_up:
                self.say(
                    f"caught up: the sink received all {received} events, {CONSUMER_GROUP} reports lag 0 and "
                    f"{PROJECTION} is at {projection.position} with lag {projection.lag_events}"
                )
                self._events_reported = len(self.sink.received)
                return
            if time.monotonic() > deadline:
                raise PlatformError(
                    f"the consumer group did not catch up in {self.options.ready_timeout_seconds:.0f} s; "
                    f"logs are in {self.log_directory}"
                )
            time.sleep(REFRESH_INTERVAL_SECONDS)

    def show_read_model(self) -> None:
        """Print a few rows of the projection's table: the read model the operator's Projection maintains."""
        if self.postgres is None or not self.options.uses_local_control_plane:
            return  # on a real cluster the projection runs in its pod, when the image is there
        dsn = self.postgres.dsn()
        rows = asyncio.run(order_summary_rows(dsn, PROJECTION_TABLE, limit=READ_MODEL_ROWS_SHOWN))
        self.say(f"{PROJECTION_TABLE} (kept by Projection/{PROJECTION}), {rows.total} rows; the first ones:")
        for row in rows.rows:
            click.echo(f"    {row}")
        revenues = asyncio.run(revenue_per_customer(dsn, PROJECTION_TABLE, limit=CUSTOMERS_SHOWN))
        query = REVENUE_PER_CUSTOMER_SQL.format(table=PROJECTION_TABLE).replace("$1", str(CUSTOMERS_SHOWN))
        self.say(f"revenue per customer, a query on the read model: {query}")
        click.echo(f"    {'customer_id':<12} {'orders':>6} {'revenue':>10}")
        for revenue in revenues:
            click.echo(f"    {revenue.customer_id:<12} {revenue.orders:>6} {revenue.revenue:>10}")

    def run_replay(self) -> None:
        """Run the example's Replay: its Job's pod here (the group's offsets are reset, so the sink receives
        every event again), then report the pod Succeeded; wait for the Replay to say Succeeded."""
        assert self.kubectl is not None
        kubectl = self.kubectl
        if not self.options.uses_local_control_plane:
            self.say(f"Replay {REPLAY}: its Job runs in the cluster (when its pod is scheduled); not waiting for it")
            return
        received_before = len(self.sink.received) if self.sink is not None else 0
        pod, exit_code = run_job_pod(
            kubectl,
            DEMO_NAMESPACE,
            REPLAY,
            log_directory=self.log_directory,
            into=self.job_pods,
            timeout_seconds=self.options.ready_timeout_seconds,
        )
        if exit_code != 0:
            raise PlatformError(f"the replay exited with {exit_code}; its log is in {self.log_directory}")
        arguments = " ".join(self.job_pods[-1].process.command[1:])
        self.say(f"Job {REPLAY}: ran `sluice {arguments}` here for pod {pod['metadata']['name']}; it exited 0")
        redelivered = (len(self.sink.received) if self.sink is not None else 0) - received_before
        self.say(f"  the sink received {redelivered} CloudEvent(s) again: the group re-read the stream from offset 0")
        self._events_reported = len(self.sink.received) if self.sink is not None else 0
        deadline = time.monotonic() + self.options.ready_timeout_seconds
        while (state := replay_state(kubectl, DEMO_NAMESPACE, REPLAY)).phase != "Succeeded":
            if time.monotonic() > deadline:
                raise PlatformError(f"Replay {REPLAY} did not succeed: phase {state.phase}, progress {state.progress}")
            time.sleep(REFRESH_INTERVAL_SECONDS / 4)
        self.say(f"Replay {REPLAY}: {state.phase}, progress {dict(state.progress)}, Ready {state.ready}")
        self.say("kubectl get sluice -A")
        click.echo(sluice_table(kubectl) + "\n")

    def _show_new_sink_events(self) -> None:
        assert self.sink is not None
        received = self.sink.received
        for event in received[self._events_shown : SAMPLE_EVENTS_SHOWN]:
            self.say(
                f"sink received CloudEvent {event.event_type} id={event.event_id} subject={event.subject} "
                f"group={event.consumer_group}: {event.body}"
            )
        self._events_shown = max(self._events_shown, min(len(received), SAMPLE_EVENTS_SHOWN))

    def start_console(self) -> None:
        """Start ``sluice serve`` on loopback against the demo's PostgreSQL and say where its web console is."""
        assert self.postgres is not None
        self.gateway = ConsoleGateway(
            self.postgres.dsn(), self.options.state_directory / "gateway", self.log_directory / "gateway.log"
        )
        addresses = self.gateway.start()
        console = addresses.console_url
        self.say(
            f"gateway: sluice serve (pid {self.gateway.process_id}), REST {addresses.api_url}, "
            f"gRPC 127.0.0.1:{addresses.grpc_port}"
        )
        token = self.gateway.token
        self.say(f"web console: {console}   (sign in with the token {token}, also in {self.gateway.tokens_path})")
        click.echo(
            f"    the stream:         {console}streams/{STREAM}\n"
            f"    the consumer group: {console}streams/{STREAM}/groups/{CONSUMER_GROUP}\n"
            f"    the projection and the replay: {console}operations?projection={PROJECTION}\n"
        )

    def console_hint(self) -> str:
        """The line the "running" message gives about the console ('' when the gateway did not start)."""
        if self.gateway is None or self.gateway.addresses is None:
            return ""
        return f"  open {self.gateway.addresses.console_url} (token: {self.gateway.token})\n"

    def keep_running(self) -> None:
        """Until Ctrl-C, act as the group's kubelet: a process for every new pod (after ``kubectl scale``), none
        for a deleted pod, and a new one for a pod whose process exited (as ``restartPolicy: Always`` does)."""
        assert self.kubectl is not None
        kubeconfig = self.kubectl.kubeconfig_path
        click.echo(
            "\nThe local Sluice platform is running. Try:\n"
            f"  export KUBECONFIG={kubeconfig}\n"
            f"  {self.kubectl.binary} get sluice -A\n"
            f"  {self.kubectl.binary} scale consumergroup {CONSUMER_GROUP} -n {DEMO_NAMESPACE} --replicas=3\n"
            f"  .venv/bin/sluice lag {STREAM} --dsn {self.postgres.dsn() if self.postgres else '...'}\n"
            f"{self.console_hint()}"
            f"Logs: {self.log_directory}\n"
            "Press Ctrl-C to stop everything this command started (nothing is left running).\n"
        )
        while True:
            time.sleep(REFRESH_INTERVAL_SECONDS)
            try:
                self._sync_pods(self.kubectl)
            except PlatformInterruptedError:
                raise
            except PlatformError as error:  # e.g. the Deployment deleted by hand: the operator recreates it
                self.say(f"kubelet stand-in: {error} (trying again)")
            self._report_sink_progress()

    def _report_sink_progress(self) -> None:
        """Say when the sink has received more events (appended with ``sluice append``, or redelivered)."""
        assert self.sink is not None
        received = len(self.sink.received)
        if received > self._events_reported:
            latest = self.sink.received[-1]
            self.say(
                f"sink: {received - self._events_reported} more CloudEvent(s), {received} in all; latest "
                f"{latest.event_type} subject={latest.subject}: {latest.body}"
            )
            self._events_reported = received

    def _sync_pods(self, kubectl: Kubectl) -> None:
        deployments = [CONSUMER_GROUP, PROJECTION] if self.options.uses_local_control_plane else [CONSUMER_GROUP]
        pods = [pod for name in deployments for pod in pods_of_deployment(kubectl, DEMO_NAMESPACE, name)]
        wanted = {str(pod["metadata"]["name"]) for pod in pods}
        for pod_process in list(self.pods):
            exit_code = pod_process.process.exit_code()
            if pod_process.pod_name not in wanted:
                pod_process.process.stop()
                self.say(
                    f"pod {pod_process.pod_name} is gone: stopped its process (pid {pod_process.process.process_id})"
                )
            elif exit_code is not None:
                self.say(f"the process of pod {pod_process.pod_name} exited with {exit_code}: starting it again")
            else:
                continue
            self.pods.remove(pod_process)
        running = {pod_process.pod_name for pod_process in self.pods}
        new_pods = [pod for pod in pods if str(pod["metadata"]["name"]) not in running]
        if new_pods:
            self._start_pods(kubectl, new_pods)

    # Stopping -----------------------------------------------------------------------------------------

    def started_processes(self) -> dict[str, int]:
        """Name → process id of every process this platform started (and has not yet stopped)."""
        processes: dict[str, int] = {}
        finished_jobs = [pod_process for pod_process in self.job_pods if pod_process.process.exit_code() is not None]
        for pod_process in [*self.pods, *self.job_pods]:
            if pod_process in finished_jobs:
                continue  # ran to completion: nothing to stop
            if pod_process.process.process_id is not None:
                processes[f"pod/{pod_process.pod_name}"] = pod_process.process.process_id
        if self.gateway is not None and self.gateway.process_id is not None:
            processes["gateway"] = self.gateway.process_id
        if self.operator is not None and self.operator.process_id is not None:
            processes["operator"] = self.operator.process_id
        if self.control_plane is not None:
            processes.update(self.control_plane.process_ids)
        if self.postgres is not None and self.postgres.pid is not None:
            processes["postgres"] = self.postgres.pid
        return processes

    def stop(self) -> None:
        """Stop everything, newest first, by process id; say which processes were stopped."""
        processes = self.started_processes()
        for pod_process in reversed([*self.pods, *self.job_pods]):
            pod_process.process.stop()
        if self.gateway is not None:
            self.gateway.stop()
        if self.operator is not None:
            self.operator.stop()
        if self.sink is not None:
            self.sink.stop()
        if self.control_plane is not None:
            self.control_plane.stop()
        if self.postgres is not None:
            self.postgres.stop()
        if self._owns_pid_file:
            (self.options.state_directory / "platform.pid").unlink(missing_ok=True)
        still_running = [f"{name} {pid}" for name, pid in processes.items() if process_is_running(pid)]
        stopped = ", ".join(f"{name} {pid}" for name, pid in processes.items())
        self.say(f"stopped (by process id): {stopped or 'nothing was running'}")
        if still_running:
            self.say(click.style(f"still running: {', '.join(still_running)}", fg="red"))
        else:
            self.say("nothing this command started is left running")
