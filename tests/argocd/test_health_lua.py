"""The Argo CD health script, run by a real Lua 5.1 interpreter (the dialect of Argo CD's gopher-lua)
against statuses shaped as the operator writes them, and the generated argocd-cm snippet kept current."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from sluice_operator.models import CUSTOM_RESOURCES, GROUP
from sluice_operator.models.common import ConditionStatus
from sluice_operator.reconcile.conditions import DesiredCondition, merge_conditions, roll_up
from sluice_operator.reconcile.replays import JobPhase, succeeded_condition

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
HEALTH_SCRIPT = REPOSITORY_ROOT / "deploy" / "argocd" / "health.lua"
CONFIG_MAP = REPOSITORY_ROOT / "deploy" / "argocd" / "argocd-cm.yaml"


def assess(resource: dict[str, Any], script: str | None = None) -> tuple[str, str]:
    """Run the health script as Argo CD does: the resource in the global ``obj``, a table returned."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = runtime.table_from(resource, recursive=True)
    health = runtime.execute(script if script is not None else HEALTH_SCRIPT.read_text(encoding="utf-8"))
    return str(health["status"]), str(health["message"])


def condition(type_: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-11-26T07:00:00Z",
        "observedGeneration": 2,
    }


def resource(kind: str, status: dict[str, Any] | None, generation: int = 2) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": kind,
        "metadata": {"name": "orders", "namespace": "shop", "generation": generation},
        "spec": {},
    }
    if status is not None:
        body["status"] = status
    return body


READY = condition("Ready", "True", "Reconciled", "stream orders is ready")
NOT_READY_DATABASE_DOWN = condition("Ready", "False", "DatabaseUnreachable", "cannot reach the database")
NOT_READY_TRANSIENT = condition("Ready", "False", "Reconciling", "creating the worker Deployment")
NOT_READY_TERMINAL = condition("Ready", "False", "InvalidSpec", "partitions may not decrease")


@pytest.mark.parametrize(
    ("kind", "status", "expected"),
    [
        ("EventStream", None, "Progressing"),
        ("EventStream", {"observedGeneration": 1, "conditions": [READY]}, "Progressing"),
        ("EventStream", {"conditions": [READY]}, "Progressing"),
        ("EventStream", {"observedGeneration": 2, "conditions": [READY]}, "Healthy"),
        ("EventStream", {"observedGeneration": 2, "conditions": [NOT_READY_DATABASE_DOWN]}, "Degraded"),
        ("EventStream", {"observedGeneration": 2, "conditions": [NOT_READY_TRANSIENT]}, "Progressing"),
        ("EventStream", {"observedGeneration": 2, "conditions": [NOT_READY_TERMINAL]}, "Degraded"),
        (
            "EventStream",
            {"observedGeneration": 2, "conditions": [NOT_READY_TRANSIENT, condition("Stalled", "True", "Broken")]},
            "Degraded",
        ),
        ("ConsumerGroup", {"observedGeneration": 2, "conditions": [READY], "lag": {"events": 10**6}}, "Healthy"),
        (
            "Projection",
            {"observedGeneration": 2, "conditions": [READY, condition("Paused", "True", "Paused")]},
            "Suspended",
        ),
        ("Replay", {"observedGeneration": 2, "conditions": [condition("Succeeded", "True", "Completed")]}, "Healthy"),
        ("Replay", {"observedGeneration": 2, "conditions": [condition("Failed", "True", "BackoffLimit")]}, "Degraded"),
        ("Replay", {"observedGeneration": 2, "conditions": []}, "Progressing"),
        ("RetentionPolicy", {"observedGeneration": 2}, "Progressing"),
    ],
)
def test_health_follows_observed_generation_and_conditions(
    kind: str, status: dict[str, Any] | None, expected: str
) -> None:
    health, message = assess(resource(kind, status))
    assert health == expected
    assert message


def test_degraded_message_is_the_condition_message() -> None:
    _health, message = assess(resource("EventStream", {"observedGeneration": 2, "conditions": [NOT_READY_TERMINAL]}))
    assert message == "partitions may not decrease"


def test_config_map_registers_the_script_for_every_kind() -> None:
    data = yaml.safe_load(CONFIG_MAP.read_text(encoding="utf-8"))["data"]
    script = HEALTH_SCRIPT.read_text(encoding="utf-8")
    for custom_resource in CUSTOM_RESOURCES:
        embedded = data[f"resource.customizations.health.{GROUP}_{custom_resource.definition.kind}"]
        assert embedded == script
        # The embedded copy is what Argo CD runs: it must behave like the file.
        assert assess(resource(custom_resource.definition.kind, None), embedded)[0] == "Progressing"
    ignored = yaml.safe_load(data[f"resource.customizations.ignoreResourceUpdates.{GROUP}_ConsumerGroup"])
    assert "/status/lag" in ignored["jsonPointers"]


def test_generated_config_map_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPOSITORY_ROOT / "scripts" / "generate_argocd_config.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# Statuses as the operator builds them: its own pure functions (roll_up, merge_conditions,
# succeeded_condition), so a change in what the operator writes is seen by these tests.
def operator_status(conditions: list[DesiredCondition], generation: int = 2) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "conditions": merge_conditions([], conditions, generation=generation, now=datetime(2026, 11, 26, tzinfo=UTC)),
    }


SCHEMA_READY = DesiredCondition("SchemaReady", ConditionStatus.TRUE, "Migrated", "schema at version 3")
DATABASE_DOWN = DesiredCondition("DatabaseReachable", ConditionStatus.FALSE, "DatabaseUnreachable", "timeout")


@pytest.mark.parametrize(
    ("kind", "conditions", "expected"),
    [
        ("EventStream", roll_up([SCHEMA_READY]), "Healthy"),
        ("EventStream", roll_up([SCHEMA_READY, DATABASE_DOWN]), "Degraded"),
        (
            "ConsumerGroup",
            roll_up([], stalled=DesiredCondition("Stalled", ConditionStatus.TRUE, "UnsupportedSpec", "offset start")),
            "Degraded",
        ),
        ("Replay", roll_up([succeeded_condition(JobPhase.SUCCEEDED)]), "Healthy"),
        ("Replay", roll_up([succeeded_condition(JobPhase.RUNNING)]), "Progressing"),
        ("Replay", roll_up([succeeded_condition(JobPhase.FAILED)]), "Degraded"),
    ],
)
def test_statuses_built_by_the_operator(kind: str, conditions: list[DesiredCondition], expected: str) -> None:
    assert assess(resource(kind, operator_status(conditions)))[0] == expected
