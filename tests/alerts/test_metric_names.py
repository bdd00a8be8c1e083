"""Every dashboard panel query, template variable and alert expression refers only to metrics Sluice exports, and
so does every metric name the docs give in backticks.

The exported names come from the processes themselves: a real ``sluice serve`` (exercised with a stream, appends, a
consumer group and a queue, so its labelled series appear) and a real ``sluice consume`` worker are scraped over
HTTP; ``sluice project`` and the operator serve prometheus-client's default registry, read here from a process that
imported their entry modules. A family without samples still counts by its ``# TYPE`` line; a histogram exports
``_bucket``, ``_sum`` and ``_count``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sluice import EventData
from sluice.client import SluiceClient
from tests.alerts.conftest import DASHBOARDS, REPOSITORY_ROOT, RULES
from tests.alerts.promql_names import UnparsedExpressionError, metric_names, variable_metric
from tests.gateway.running import TOKEN, serve_process

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
SCRAPE_SECONDS = 40.0
REGISTRY_OF_ENTRY_MODULES = """
import sys
import {modules}
from prometheus_client import generate_latest
sys.stdout.write(generate_latest().decode())
"""


def exported_names(exposition: str) -> set[str]:
    """Sample names of a text exposition, plus every name its ``# TYPE`` lines promise."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(maxsplit=3)
            names.add(family)
            if kind == "histogram":
                names.update(family + suffix for suffix in HISTOGRAM_SUFFIXES)
            if kind == "summary":
                names.update(family + suffix for suffix in ("_sum", "_count"))
        elif line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names


def sample_names(exposition: str) -> set[str]:
    return {
        line.split("{", 1)[0].split(" ", 1)[0] for line in exposition.splitlines() if line and not line.startswith("#")
    }


def registry_of(*modules: str) -> str:
    """The default-registry exposition of a fresh Python process that imported ``modules``."""
    completed = subprocess.run(
        [sys.executable, "-c", REGISTRY_OF_ENTRY_MODULES.format(modules=", ".join(modules))],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPOSITORY_ROOT,
        timeout=60,
    )
    return completed.stdout


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and template variable of every dashboard."""
    paths = sorted(DASHBOARDS.glob("*.json"))
    assert len(paths) == 5
    for path in paths:
        dashboard: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                yield f"{path.name}: {panel['title']} ({target['refId']})", target["expr"]
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                metric = variable_metric(variable["definition"])
                assert metric is not None, f"{path.name}: variable {variable['name']} is not label_values(...)"
                yield f"{path.name}: variable {variable['name']}", metric


def alert_expressions() -> Iterator[tuple[str, str]]:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield f"alert {rule['alert']}", rule["expr"]


DOC_METRIC = re.compile(r"`(sluice_[a-z0-9_]+)(?:\{[^}`]*\})?`")
NOT_PROMETHEUS_METRICS = {
    "sluice_operator": "the operator's Python package",
    "sluice_devkit": "the dev kit's Python package (devkit/, not shipped)",
    "sluice_consumer_group_lag_events": "served by prometheus-adapter on custom.metrics.k8s.io (autoscaling.md)",
    "sluice_consumer_group_lag_seconds": "served by prometheus-adapter on custom.metrics.k8s.io (autoscaling.md)",
}


def documented_metrics() -> Iterator[tuple[str, str]]:
    """(doc, name) of every ``sluice_...`` name in backticks in the docs (labels in braces allowed)."""
    for path in [*sorted((REPOSITORY_ROOT / "docs").glob("*.md")), REPOSITORY_ROOT / "README.md"]:
        for match in DOC_METRIC.finditer(path.read_text(encoding="utf-8")):
            if match.group(1) not in NOT_PROMETHEUS_METRICS:
                yield path.name, match.group(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def scrape_until(url: str, wanted: set[str], *, within_seconds: float = SCRAPE_SECONDS) -> str:
    """Scrape ``url`` until every name in ``wanted`` has a sample (the lag refresher runs every 15 s)."""
    deadline = asyncio.get_running_loop().time() + within_seconds
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            try:
                text = (await http.get(url)).text
            except httpx.TransportError:
                text = ""
            missing = wanted - sample_names(text)
            if not missing:
                return text
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{url} still has no samples of {sorted(missing)}")
            await asyncio.sleep(0.5)


async def serve_and_worker_expositions(dsn: str, directory: Path) -> tuple[str, str]:
    async with serve_process(dsn, directory) as gateway:
        grpc_target = f"127.0.0.1:{gateway.ports['grpc_port']}"
        async with await SluiceClient.connect(grpc_target, token=TOKEN) as client:
            await client.create_stream("orders", partitions=2)
            await client.append("orders", [EventData(event_type="OrderPlaced", data={"n": n}) for n in range(6)])
            consumption = await client.consume("orders", group_id="email", consumer_id="email-1")
            async with consumption:
                event = await asyncio.wait_for(anext(consumption), 15)
                await event.commit()
            await client.enqueue("jobs", [EventData(event_type="Job", data={"job": n}) for n in range(2)])
        serve_text = await scrape_until(
            f"{gateway.http_base}/metrics",
            {
                "sluice_events_appended_total",
                "sluice_events_consumed_total",
                "sluice_delivery_latency_seconds_bucket",
                "sluice_messages_enqueued_total",
                "sluice_consumer_lag_events",
                "sluice_consumer_partition_lag_events",
                "sluice_stream_head_offset",
                "sluice_stream_retained_events",
                "sluice_queue_depth",
                "sluice_database_up",
            },
        )
    worker_port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SLUICE_")}
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice.cli",
        "consume",
        "--dsn",
        dsn,
        "--stream",
        "orders",
        "--group",
        "mailer",
        "--consumer-id",
        "mailer-1",
        "--handler",
        "tests.alerts.handlers:accept",
        "--http-host",
        "127.0.0.1",
        "--http-port",
        str(worker_port),
        cwd=REPOSITORY_ROOT,
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        worker_text = await scrape_until(
            f"http://127.0.0.1:{worker_port}/metrics",
            {"sluice_worker_events_delivered_total", "sluice_worker_owned_partitions"},
        )
    finally:
        if worker.returncode is None:
            worker.terminate()
            await asyncio.wait_for(worker.wait(), 30)
    return serve_text, worker_text


@pytest.fixture
async def exported(postgres_dsn: str, tmp_path: Path) -> dict[str, set[str]]:
    serve_text, worker_text = await serve_and_worker_expositions(postgres_dsn, tmp_path)
    return {
        "sluice serve": exported_names(serve_text),
        "sluice consume": exported_names(worker_text),
        "sluice project": exported_names(registry_of("sluice.cli", "sluice.services.projections.worker")),
        "operator": exported_names(registry_of("sluice_operator.__main__")),
    }


@pytest.mark.timeout(300)  # a gateway, a worker and at least one 15 s lag refresh
async def test_every_dashboard_alert_and_documented_metric_is_exported(exported: dict[str, set[str]]) -> None:
    every_name = set().union(*exported.values())
    assert "sluice_consumer_lag_events" in exported["sluice serve"]
    assert "sluice_worker_events_delivered_total" in exported["sluice consume"]
    assert "sluice_projection_batch_seconds_bucket" in exported["sluice project"]
    assert "sluice_operator_reconcile_duration_seconds_bucket" in exported["operator"]
    unknown: list[str] = []
    checked = 0
    for where, expression in [*dashboard_queries(), *alert_expressions()]:
        names = metric_names(expression)
        assert names, f"{where}: no metric found in {expression!r}"
        checked += 1
        unknown.extend(f"{where}: {name}" for name in sorted(names - every_name))
    assert checked > 60
    documented = list(documented_metrics())
    assert len(documented) > 30
    unknown.extend(f"{doc}: {name}" for doc, name in documented if name not in every_name)
    assert unknown == []


def test_the_extractor_reads_names_and_skips_functions_labels_and_keywords() -> None:
    expression = (
        'histogram_quantile(0.99, sum by (stream, le) (rate(a_bucket{stream=~"$stream", x="y z"}[$__rate_interval])))'
        " > on (stream) group_left (group) b_total unless c offset 5m and bool d"
    )
    assert metric_names(expression) == {"a_bucket", "b_total", "c", "d"}
    assert metric_names("count by (kind) (ready == 0)") == {"ready"}
    with pytest.raises(UnparsedExpressionError):
        metric_names("sum(a{stream=")


def test_a_metric_that_does_not_exist_is_caught() -> None:
    """The check can fail: a misspelt name is not among the exported ones."""
    names = exported_names("# HELP sluice_queue_depth x\n# TYPE sluice_queue_depth gauge\n")
    assert metric_names("max(sluice_queue_depth)") <= names
    assert not metric_names("max(sluice_queue_depht)") <= names
    histogram = exported_names("# TYPE h_seconds histogram\n")
    assert {"h_seconds_bucket", "h_seconds_sum", "h_seconds_count"} <= histogram
