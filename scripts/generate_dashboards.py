"""Generate Sluice's Grafana dashboards (JSON) from the short definitions below.

Writes each dashboard to ``deploy/grafana/<uid>.json`` and to ``charts/sluice/files/dashboards/<uid>.json``
(the chart's ConfigMaps for the Grafana sidecar read that copy); ``--check`` fails when a checked-in file differs.
Every query names only metrics Sluice exports: tests/alerts/test_metric_names.py checks each expression
against the metric families scraped from a running ``sluice serve``, the workers' and the operator's registries.
Run by ``scripts/generate.sh``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent
OUTPUT_FOLDERS = (REPOSITORY / "deploy" / "grafana", REPOSITORY / "charts" / "sluice" / "files" / "dashboards")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


@dataclasses.dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclasses.dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"


@dataclasses.dataclass(frozen=True)
class Variable:
    """A multi-value template variable filled from ``label_values(metric, label)``."""

    name: str
    metric: str


@dataclasses.dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    variables: tuple[Variable, ...]
    panels: tuple[Panel, ...]


def one(expr: str, legend: str) -> tuple[Query, ...]:
    return (Query(expr, legend),)


def quantiles(histogram: str, selector: str, by: str, legend: str) -> tuple[Query, ...]:
    """p50 and p99 of a histogram, summed over instances, per ``by``."""
    return tuple(
        Query(
            f"histogram_quantile({quantile}, sum by ({by}, le) (rate({histogram}_bucket{selector}[{RATE}])))",
            f"p{round(quantile * 100)} {legend}",
        )
        for quantile in (0.5, 0.99)
    )


STREAM = '{stream=~"$stream"}'
GROUP = '{stream=~"$stream", group=~"$group"}'
QUEUE = '{queue=~"$queue"}'
PROJECTION = '{projection=~"$projection"}'

DASHBOARDS = (
    Dashboard(
        uid="sluice-streams",
        title="Sluice / Streams",
        description="Appends, size and head of persistent streams (from sluice serve's /metrics).",
        variables=(Variable("stream", "sluice_stream_head_offset"),),
        panels=(
            Panel(
                "Append rate",
                "Events appended per second, per stream (all gateways).",
                one(f"sum by (stream) (rate(sluice_events_appended_total{STREAM}[{RATE}]))", "{{stream}}"),
                "ops",
            ),
            Panel(
                "Append latency",
                "Time an append call took, from the caller's side.",
                quantiles("sluice_append_duration_seconds", STREAM, "stream", "{{stream}}"),
                "s",
            ),
            Panel(
                "Stream size (retained events)",
                "Events the stream still stores (head minus the oldest retained offset, summed over partitions).",
                one(
                    f"sum by (stream) (max by (stream, partition) (sluice_stream_retained_events{STREAM}))",
                    "{{stream}}",
                ),
            ),
            Panel(
                "Head offset per partition",
                "The next offset each partition will assign (its log end offset).",
                one(f"max by (stream, partition) (sluice_stream_head_offset{STREAM})", "{{stream}}/{{partition}}"),
            ),
            Panel(
                "Pruned by retention",
                "Events deleted by retention per second, and consumer groups a prune left behind.",
                (
                    Query(
                        f"sum by (stream) (rate(sluice_retention_pruned_events_total{STREAM}[{RATE}]))", "{{stream}}"
                    ),
                    Query(
                        f"sum by (stream, group) (increase(sluice_retention_truncations_total{STREAM}[{RATE}]))",
                        "truncated {{stream}}/{{group}}",
                    ),
                ),
                "ops",
            ),
            Panel(
                "Group commit batch size",
                "Appends merged into one transaction by group commit (p50, p99).",
                quantiles("sluice_group_commit_batch_size", STREAM, "stream", "{{stream}}"),
            ),
        ),
    ),
    Dashboard(
        uid="sluice-consumer-groups",
        title="Sluice / Consumer groups",
        description="Lag (events and seconds, per group and partition), members, rebalances and delivery latency.",
        variables=(
            Variable("stream", "sluice_consumer_lag_events"),
            Variable("group", "sluice_consumer_lag_events"),
        ),
        panels=(
            Panel(
                "Lag (events) per group",
                "Events appended but not yet committed, summed over partitions.",
                one(f"max by (stream, group) (sluice_consumer_lag_events{GROUP})", "{{stream}}/{{group}}"),
            ),
            Panel(
                "Lag (seconds) per group",
                "Age of the oldest event the group has not committed (max over partitions).",
                one(f"max by (stream, group) (sluice_consumer_lag_seconds{GROUP})", "{{stream}}/{{group}}"),
                "s",
            ),
            Panel(
                "Lag (events) per partition",
                "Events of each partition the group has not committed.",
                one(
                    f"max by (stream, group, partition) (sluice_consumer_partition_lag_events{GROUP})",
                    "{{stream}}/{{group}} p{{partition}}",
                ),
            ),
            Panel(
                "Lag (seconds) per partition",
                "Age of the oldest uncommitted event of each partition.",
                one(
                    f"max by (stream, group, partition) (sluice_consumer_partition_lag_seconds{GROUP})",
                    "{{stream}}/{{group}} p{{partition}}",
                ),
                "s",
            ),
            Panel(
                "Active members",
                "Members whose session is alive, and partitions each worker pod owns.",
                (
                    Query(
                        f"max by (stream, group) (sluice_consumer_group_active_members{GROUP})",
                        "members {{stream}}/{{group}}",
                    ),
                    Query(
                        f"sum by (stream, group) (sluice_worker_owned_partitions{GROUP})",
                        "owned partitions {{stream}}/{{group}}",
                    ),
                ),
            ),
            Panel(
                "Rebalances",
                "Assignment changes seen by the group's members.",
                one(
                    f"sum by (stream, group) (increase(sluice_consumer_group_rebalances_total{GROUP}[{RATE}]))",
                    "{{stream}}/{{group}}",
                ),
            ),
            Panel(
                "Consume rate",
                "Events delivered to members, and events workers' sinks or handlers accepted, per second.",
                (
                    Query(
                        f"sum by (stream, group) (rate(sluice_events_consumed_total{GROUP}[{RATE}]))",
                        "delivered {{stream}}/{{group}}",
                    ),
                    Query(
                        f"sum by (stream, group) (rate(sluice_worker_events_delivered_total{GROUP}[{RATE}]))",
                        "accepted {{stream}}/{{group}}",
                    ),
                ),
                "ops",
            ),
            Panel(
                "Delivery latency",
                "Time from an event's append to its delivery to a member.",
                quantiles("sluice_delivery_latency_seconds", GROUP, "stream, group", "{{stream}}/{{group}}"),
                "s",
            ),
            Panel(
                "Worker delivery failures",
                "Failed delivery attempts per second (each retry counts), and time to the outcome (p99).",
                (
                    Query(
                        f"sum by (stream, group) (rate(sluice_worker_delivery_failures_total{GROUP}[{RATE}]))",
                        "failures {{stream}}/{{group}}",
                    ),
                    Query(
                        "histogram_quantile(0.99, sum by (stream, group, le) "
                        f"(rate(sluice_worker_delivery_seconds_bucket{GROUP}[{RATE}])))",
                        "p99 seconds {{stream}}/{{group}}",
                    ),
                ),
            ),
        ),
    ),
    Dashboard(
        uid="sluice-queues",
        title="Sluice / Queues and dead letters",
        description="Work-queue throughput, depth and dead letters, and consumer groups' dead letters.",
        variables=(Variable("queue", "sluice_queue_depth"),),
        panels=(
            Panel(
                "Queue throughput",
                "Messages enqueued, leased, acknowledged and nacked per second.",
                tuple(
                    Query(
                        f"sum by (queue) (rate(sluice_messages_{what}_total{QUEUE}[{RATE}]))", f"{what} {{{{queue}}}}"
                    )
                    for what in ("enqueued", "dequeued", "acknowledged", "nacked")
                ),
                "ops",
            ),
            Panel(
                "Queue depth",
                "Messages waiting (visible or delayed) and leased but not yet acknowledged.",
                (
                    Query(f"max by (queue) (sluice_queue_depth{QUEUE})", "waiting {{queue}}"),
                    Query(f"max by (queue) (sluice_queue_in_flight{QUEUE})", "in flight {{queue}}"),
                ),
            ),
            Panel(
                "Queue dead letters",
                "Messages moved to the dead-letter queue after their last attempt.",
                one(f"sum by (queue) (increase(sluice_messages_dead_lettered_total{QUEUE}[{RATE}]))", "{{queue}}"),
            ),
            Panel(
                "Queue delivery latency",
                'Time from enqueue to lease (queues record it with group "").',
                quantiles("sluice_delivery_latency_seconds", '{stream=~"$queue", group=""}', "stream", "{{stream}}"),
                "s",
            ),
            Panel(
                "Consumer group dead letters",
                "Events workers buried as dead letters of their group, and redriven dead letters they delivered.",
                (
                    Query(
                        f"sum by (stream, group) (increase(sluice_worker_events_dead_lettered_total[{RATE}]))",
                        "buried {{stream}}/{{group}}",
                    ),
                    Query(
                        f"sum by (stream, group) (increase(sluice_worker_redrives_delivered_total[{RATE}]))",
                        "redriven {{stream}}/{{group}}",
                    ),
                ),
            ),
        ),
    ),
    Dashboard(
        uid="sluice-projections",
        title="Sluice / Projections and replays",
        description="Projections' apply rate, batch time, versions and rebuilds; Projection and Replay status.",
        variables=(Variable("projection", "sluice_projection_active_version"),),
        panels=(
            Panel(
                "Events applied",
                "Events applied (with their checkpoint) per second, per projection.",
                one(
                    f"sum by (projection) (rate(sluice_projection_events_applied_total{PROJECTION}[{RATE}]))",
                    "{{projection}}",
                ),
                "ops",
            ),
            Panel(
                "Dead-lettered events",
                "Events a projection could not apply and set aside with the reason (e.g. a value of the wrong type).",
                one(
                    f"sum by (projection) (increase(sluice_projection_events_dead_lettered_total{PROJECTION}[{RATE}]))",
                    "{{projection}}",
                ),
            ),
            Panel(
                "Batch time",
                "Time to apply one batch and commit its checkpoint.",
                quantiles("sluice_projection_batch_seconds", PROJECTION, "projection", "{{projection}}"),
                "s",
            ),
            Panel(
                "Active read-model version",
                "The version readers see; it changes when a blue/green rebuild is switched over.",
                one(f"max by (projection) (sluice_projection_active_version{PROJECTION})", "{{projection}}"),
            ),
            Panel(
                "Rebuild progress",
                "Progress of the current or last rebuild (100 when none runs).",
                one(f"min by (projection) (sluice_projection_rebuild_percent{PROJECTION})", "{{projection}}"),
                "percent",
            ),
            Panel(
                "Projections and replays not Ready",
                "Projection and Replay resources whose Ready condition is not True (the operator's view).",
                one(
                    'sluice_operator_resource_ready{kind=~"Projection|Replay"} == 0',
                    "{{kind}} {{namespace}}/{{name}}",
                ),
            ),
            Panel(
                "Failed replays",
                "Replay resources whose phase is Failed.",
                one('sluice_operator_resource_failed{kind="Replay"} == 1', "{{namespace}}/{{name}}"),
            ),
        ),
    ),
    Dashboard(
        uid="sluice-operator",
        title="Sluice / Operator",
        description="The operator's reconciles (results, errors, durations), resources not Ready and its lag view.",
        variables=(),
        panels=(
            Panel(
                "Reconciles",
                "Reconciles per second, by kind and result.",
                one(f"sum by (kind, result) (rate(sluice_operator_reconciles_total[{RATE}]))", "{{kind}} {{result}}"),
                "ops",
            ),
            Panel(
                "Reconcile errors",
                "Reconciles that ended in an error, by kind.",
                one(
                    f'sum by (kind) (increase(sluice_operator_reconciles_total{{result="error"}}[{RATE}]))', "{{kind}}"
                ),
            ),
            Panel(
                "Reconcile duration",
                "Time one reconcile took, by kind.",
                quantiles("sluice_operator_reconcile_duration_seconds", "", "kind", "{{kind}}"),
                "s",
            ),
            Panel(
                "Resources not Ready",
                "Custom resources whose Ready condition is not True, by kind.",
                one("count by (kind) (sluice_operator_resource_ready == 0)", "{{kind}}"),
            ),
            Panel(
                "ConsumerGroup lag (operator's poll)",
                "Lag of each ConsumerGroup as the operator last polled it (what autoscaling reads).",
                (
                    Query(
                        "max by (namespace, consumer_group) (sluice_operator_consumer_group_lag_events)",
                        "events {{namespace}}/{{consumer_group}}",
                    ),
                    Query(
                        "max by (namespace, consumer_group) (sluice_operator_consumer_group_lag_seconds)",
                        "seconds {{namespace}}/{{consumer_group}}",
                    ),
                ),
            ),
        ),
    ),
)


def variable_json(variable: Variable) -> dict[str, Any]:
    definition = f"label_values({variable.metric}, {variable.name})"
    return {
        "name": variable.name,
        "label": variable.name,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": definition,
        "query": {"query": definition, "refId": "StandardVariableQuery"},
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "refresh": 2,
        "sort": 1,
        "current": {},
    }


def panel_json(panel: Panel, identifier: int) -> dict[str, Any]:
    column = (identifier - 1) % 2
    row = (identifier - 1) // 2
    return {
        "id": identifier,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * column, "y": 8 * row},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            {"refId": chr(ord("A") + index), "datasource": DATASOURCE, "expr": query.expr, "legendFormat": query.legend}
            for index, query in enumerate(panel.queries)
        ],
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    datasource_variable = {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
    }
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["sluice"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "",
        "annotations": {"list": []},
        "templating": {"list": [datasource_variable, *(variable_json(variable) for variable in dashboard.variables)]},
        "panels": [panel_json(panel, index) for index, panel in enumerate(dashboard.panels, start=1)],
    }


def rendered() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"{dashboard.uid}.json": json.dumps(dashboard_json(dashboard), indent=2) + "\n" for dashboard in DASHBOARDS}


def main(arguments: list[str]) -> int:
    check = "--check" in arguments
    wanted = rendered()
    stale: list[str] = []
    for folder in OUTPUT_FOLDERS:
        present = {path.name for path in folder.glob("*.json")} if folder.is_dir() else set()
        for name, text in wanted.items():
            path = folder / name
            if check:
                if not path.is_file() or path.read_text() != text:
                    stale.append(str(path.relative_to(REPOSITORY)))
            else:
                folder.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        for extra in sorted(present - wanted.keys()):
            if check:
                stale.append(f"{(folder / extra).relative_to(REPOSITORY)} (no longer generated)")
            else:
                (folder / extra).unlink()
    if stale:
        print("Grafana dashboards out of date (run scripts/generate.sh):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
