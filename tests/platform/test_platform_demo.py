"""``python -m sluice_devkit.platform --exit-after-ready`` (what ``./dev demo`` runs) as a user runs it:
it brings up PostgreSQL, the control plane, the operator and the end-to-end example, the sink receives every
sample event, ``kubectl get sluice -A`` shows the kinds with their Ready status and the group's lag 0, and
nothing it started is left running afterwards."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sluice_devkit.local_processes import process_is_running
from sluice_devkit.sample_events import CUSTOMERS
from tests.custom_resources.cluster import KubernetesCluster, parse_table
from tests.custom_resources.manifests import REPOSITORY_ROOT

pytestmark = [pytest.mark.kubernetes, pytest.mark.postgres, pytest.mark.slow]

EVENTS = 50
PLATFORM_TIMEOUT_SECONDS = 110
TABLE_HEADER = re.compile(r"^\[\s*[\d.]+ s\] kubectl get sluice -A")
CONSOLE_LINE = re.compile(
    r"web console: (?P<url>http://127\.0\.0\.1:\d+/console/) +\(sign in with the token (?P<token>\S+),"
)
STOPPED_LINE = re.compile(r"^\[\s*[\d.]+ s\] stopped \(by process id\): (?P<processes>.+)$", re.MULTILINE)


@pytest.fixture
def state_directory() -> Iterator[Path]:
    """A folder the platform owns; readable by the ``postgres`` user that runs the server when tests run as root."""
    directory = Path(tempfile.mkdtemp(prefix="sluice-platform-test-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def last_sluice_tables(output: str) -> dict[str, dict[str, str]]:
    """The last ``kubectl get sluice -A`` printed: resource name (``kind.sluice.dev/name``) → its row."""
    lines = output.splitlines()
    start = max(index for index, line in enumerate(lines) if TABLE_HEADER.match(line))
    block: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("["):
            break
        block.append(line)
    rows: dict[str, dict[str, str]] = {}
    for table in "\n".join(block).split("\n\n"):
        if table.strip():
            rows.update({row["NAME"]: row for row in parse_table(table)})
    return rows


def test_the_platform_comes_up_delivers_every_event_and_leaves_nothing_running(state_directory: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "sluice_devkit.platform",
            "--mode=processes",
            "--exit-after-ready",
            "--events",
            str(EVENTS),
            "--state-directory",
            str(state_directory),
        ],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=PLATFORM_TIMEOUT_SECONDS,
        check=False,
    )
    output = completed.stdout
    assert completed.returncode == 0, f"{output}\n{completed.stderr}"

    rows = last_sluice_tables(output)
    stream = rows["eventstream.sluice.dev/orders"]
    assert stream["READY"] == "True"
    assert stream["HEAD"] == str(EVENTS)
    group = rows["consumergroup.sluice.dev/email-notifications"]
    assert group["READY"] == "True"
    assert group["LAG"] == "0"
    assert group["READY REPLICAS"] == "2"
    projection = rows["projection.sluice.dev/order-summary"]
    assert projection["READY"] == "True"
    assert projection["LAG"] == "0"
    assert rows["retentionpolicy.sluice.dev/orders-nightly"]["READY"] == "True"
    replay = rows["replay.sluice.dev/orders-to-email-notifications"]
    assert replay["PHASE"] == "Succeeded"
    assert replay["SUCCEEDED"] == "True"
    assert replay["PROGRESS"] == "100"
    assert f"the sink received all {EVENTS} events" in output
    assert "reported those pods Running and Ready" in output
    assert f"reporting.order_summary (kept by Projection/order-summary), {EVENTS} rows" in output
    # Typed columns: plain values, not JSON text, and a query on the read model with its result.
    assert "    {'order_id': 'order-1', 'customer_id': 'ada', 'status': 'placed', 'total': 1000}" in output
    assert "revenue per customer, a query on the read model: SELECT customer_id, count(*) AS orders" in output
    revenue: dict[str, int] = {}
    for number in range(EVENTS):
        customer = CUSTOMERS[number % len(CUSTOMERS)]
        revenue[customer] = revenue.get(customer, 0) + 1000 + 25 * number
    top = max(revenue, key=lambda customer: (revenue[customer], customer))
    orders = sum(1 for number in range(EVENTS) if CUSTOMERS[number % len(CUSTOMERS)] == top)
    assert f"    {top:<12} {orders:>6} {revenue[top]:>10}" in output
    assert f"the sink received {EVENTS} CloudEvent(s) again" in output

    stopped = STOPPED_LINE.search(output)
    assert stopped is not None, output
    processes = dict(entry.rsplit(" ", 1) for entry in stopped["processes"].split(", "))
    assert {"postgres", "etcd", "kube-apiserver", "kube-controller-manager", "operator", "gateway"} <= processes.keys()
    assert CONSOLE_LINE.search(output), output
    assert sum(name.startswith("pod/email-notifications-") for name in processes) == 2
    assert sum(name.startswith("pod/order-summary-") for name in processes) == 1
    assert not any(name.startswith("pod/orders-to-email-notifications-") for name in processes)  # ran to the end
    assert [name for name, pid in processes.items() if process_is_running(int(pid))] == []
    assert "nothing this command started is left running" in output
    assert not (state_directory / "platform.pid").exists()


def test_ctrl_c_stops_everything_it_started(state_directory: Path, tmp_path: Path) -> None:
    output_path = tmp_path / "platform.out"
    with output_path.open("wb") as output_file:
        platform = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sluice_devkit.platform",
                "--mode=processes",
                "--events",
                "10",
                "--state-directory",
                str(state_directory),
            ],
            cwd=REPOSITORY_ROOT,
            stdout=output_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + PLATFORM_TIMEOUT_SECONDS - 20
        while "Press Ctrl-C" not in output_path.read_text() and time.monotonic() < deadline:
            assert platform.poll() is None, output_path.read_text()
            time.sleep(0.5)
        assert "Press Ctrl-C" in output_path.read_text()
        console = CONSOLE_LINE.search(output_path.read_text())
        assert console is not None, output_path.read_text()
        _check_the_console_shows_the_demo(console["url"], console["token"])
        platform.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert platform.wait(timeout=20) == 0, output_path.read_text()
    finally:
        if platform.poll() is None:
            platform.kill()
            platform.wait()
    output = output_path.read_text()
    assert "interrupted: stopping everything this command started" in output
    stopped = STOPPED_LINE.search(output)
    assert stopped is not None, output
    process_ids = [int(entry.rsplit(" ", 1)[1]) for entry in stopped["processes"].split(", ")]
    # postgres, etcd, kube-apiserver, kube-controller-manager, operator, gateway, 2 consumer pods, the
    # projection's pod (the replay's pod ran to completion before the platform reported it was ready)
    assert len(process_ids) == 9
    assert [pid for pid in process_ids if process_is_running(pid)] == []


def _check_the_console_shows_the_demo(console_url: str, token: str) -> None:
    """The console the platform announced shows the demo's stream, its group, the projection and the replay to the
    printed token, and nothing without it."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=10) as client:
        assert client.get(f"{console_url}streams/orders").status_code == 401
        streams = client.get(console_url, headers=headers)
        assert streams.status_code == 200, streams.text[:500]
        assert "orders" in streams.text
        group = client.get(f"{console_url}streams/orders/groups/email-notifications", headers=headers)
        assert group.status_code == 200, group.text[:500]
        assert "email-notifications" in group.text
        operations = client.get(f"{console_url}operations", params={"projection": "order-summary"}, headers=headers)
        assert operations.status_code == 200, operations.text[:500]
        assert "order-summary" in operations.text
        assert "orders-to-email-notifications" in operations.text


def test_an_existing_cluster_is_used_without_standing_in_for_its_kubelet(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str], state_directory: Path
) -> None:
    # The session's control plane plays the user's cluster (KUBECONFIG): the platform starts no control plane
    # of its own, and does not report pods Ready there (a real cluster's kubelet owns them).
    try:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "sluice_devkit.platform",
                "--exit-after-ready",
                "--events",
                "20",
                "--kubeconfig",
                str(kubernetes_cluster.kubeconfig_path),
                "--state-directory",
                str(state_directory),
            ],
            cwd=REPOSITORY_ROOT,
            capture_output=True,
            text=True,
            timeout=PLATFORM_TIMEOUT_SECONDS,
            check=False,
        )
    finally:
        kubernetes_cluster.kubectl("delete", "namespace", "sluice-demo", "--ignore-not-found", "--wait=false")
    output = completed.stdout
    assert completed.returncode == 0, f"{output}\n{completed.stderr}"
    assert "using the existing cluster https://127.0.0.1:" in output
    assert "the sink received all 20 events" in output
    group = last_sluice_tables(output)["consumergroup.sluice.dev/email-notifications"]
    assert group["LAG"] == "0"
    assert group["READY"] == "False"  # its pods in the cluster never run: nothing pretends otherwise
    assert "reported those pods Running and Ready" not in output
    stopped = STOPPED_LINE.search(output)
    assert stopped is not None, output
    processes = dict(entry.rsplit(" ", 1) for entry in stopped["processes"].split(", "))
    assert sorted(name.split("/")[0] for name in processes) == ["gateway", "operator", "pod", "pod", "postgres"]
    assert [name for name, pid in processes.items() if process_is_running(int(pid))] == []
