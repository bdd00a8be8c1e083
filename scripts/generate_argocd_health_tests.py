"""Write deploy/argocd/resource_customizations/sluice.dev/: Sluice's health checks in Argo CD's own layout.

Argo CD keeps its built-in health checks under ``resource_customizations/<group>/<Kind>/``: ``health.lua``,
``health_test.yaml`` (cases: an object under ``testdata/`` and the exact ``healthStatus`` expected) and the
``testdata/*.yaml`` objects; its Go test ``util/lua/health_test.go`` (TestLuaHealthScript) runs every case.
This script writes that folder for each Sluice kind, ready to be copied into Argo CD's repository:

- ``health.lua`` is a byte-for-byte copy of deploy/argocd/health.lua (the one source, also embedded in
  deploy/argocd/argocd-cm.yaml);
- each testdata object is the kind's example from examples/ with a status;
- statuses are built by the operator's own functions (``roll_up``, ``desired_status``, ``schema_ready``,
  ``workload_available``, ``sources_ready``, ``succeeded_condition``, ``lag_status_fields``, its error
  classes' reasons), so they follow what the operator writes. The few conditions the operator does not write
  today (Paused, and Ready=False with a terminal reason but no Stalled) are chosen here, still shaped by
  ``desired_status``.

scripts/argocd/lua-tests.sh runs the cases with Argo CD's own test code. ``--check`` fails when the checked-in
folder differs from what this script would write (a changed, missing or extra file).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from sluice.store.values.consumer_groups import GroupDescription, MemberDescription, PartitionLag
from sluice_operator.controllers.status import desired_status
from sluice_operator.errors import DatabaseSecretError, DatabaseUnavailableError, UnsupportedSpecError
from sluice_operator.models import API_VERSION, CUSTOM_RESOURCES, GROUP
from sluice_operator.models.common import ConditionStatus, JobPhase
from sluice_operator.reconcile.conditions import READY, RECONCILING, STALLED, DesiredCondition, roll_up
from sluice_operator.reconcile.consumer_groups import idle_replicas_condition, lag_status_fields
from sluice_operator.reconcile.event_streams import SCHEMA_READY, STREAM_READY, schema_ready, stream_ready
from sluice_operator.reconcile.projections import sources_ready
from sluice_operator.reconcile.replays import succeeded_condition
from sluice_operator.reconcile.retention_schedule import RunReason
from sluice_operator.reconcile.workloads import WORKLOAD_AVAILABLE, WorkloadState, workload_available

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
HEALTH_SCRIPT = REPOSITORY_ROOT / "deploy" / "argocd" / "health.lua"
EXAMPLES_DIRECTORY = REPOSITORY_ROOT / "examples"
OUTPUT = REPOSITORY_ROOT / "deploy" / "argocd" / "resource_customizations"

EXAMPLE_FILES = {
    "EventStream": "event-stream.yaml",
    "ConsumerGroup": "consumer-group.yaml",
    "RetentionPolicy": "retention-policy.yaml",
    "Projection": "projection.yaml",
    "Replay": "replay.yaml",
}
NAMESPACE = "shop"
GENERATION = 2
WRITTEN_AT = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
"""The reconcile time of every generated status (fixed, so the files do not change from run to run)."""

# Conditions the operator writes in these words (the controllers build them inline; their types and reasons
# are the operator's). Kept here so every kind's cases read alike.
STREAM_FOUND = "StreamFound"
DATABASE_REACHABLE = "DatabaseReachable"
ENFORCED = "Enforced"
SOURCE_FOUND = "SourceFound"
INVALID_SPEC_FIELDS = {
    "EventStream": ("spec.partitions", "Input should be greater than or equal to 1"),
    "ConsumerGroup": ("spec.replicas", "Input should be greater than or equal to 0"),
    "RetentionPolicy": ("spec.maxAge", "Value error, not a duration: '90 days'"),
    "Projection": ("spec.sources", "List should have at least 1 item after validation, not 0"),
    "Replay": ("spec.fromOffset", "Input should be greater than or equal to 0"),
}
"""A spec the models refuse, per kind, in pydantic's words (what report_invalid_spec writes)."""
DATABASE_DOWN = DatabaseUnavailableError(
    "could not reach PostgreSQL at postgres.shop.svc:5432: connection refused (is the database running?)"
)
SECRET_MISSING = DatabaseSecretError("Secret 'sluice-database' not found in namespace 'shop'")

NO_STATUS_MESSAGE = "Waiting for the Sluice operator to reconcile this resource"
GENERATION_MESSAGE = "Waiting for the Sluice operator to observe generation {generation}"
"""The health script's own messages when there is no status yet, or an old one."""


@dataclass(frozen=True)
class HealthCase:
    """One entry of health_test.yaml: testdata/<name>.yaml and the health Argo CD must report for it."""

    name: str
    status: dict[str, Any] | None
    health: str
    message: str
    generation: int = GENERATION


def operator_status(conditions: Sequence[DesiredCondition], fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """The status the operator writes for ``conditions``: ``desired_status``, as ``write_status`` calls it."""
    body = {"metadata": {"generation": GENERATION}}
    return desired_status(body, fields or {}, conditions, now=WRITTEN_AT)


def invalid_spec_message(kind: str) -> str:
    field, problem = INVALID_SPEC_FIELDS[kind]
    return f"1 validation error for {kind}\n{field}\n  {problem}"


def invalid_spec(kind: str) -> list[DesiredCondition]:
    """What controllers/invalid_specs.py writes when the models refuse an object the API server accepted."""
    message = invalid_spec_message(kind)
    return roll_up([], stalled=DesiredCondition("InvalidSpec", ConditionStatus.TRUE, "InvalidSpec", message))


def terminal_not_ready(reason: str, message: str) -> list[DesiredCondition]:
    """Ready=False with a reason that will not fix itself, Stalled=False: Degraded by its reason alone."""
    return [
        DesiredCondition(READY, ConditionStatus.FALSE, reason, message),
        DesiredCondition(RECONCILING, ConditionStatus.FALSE, reason, ""),
        DesiredCondition(STALLED, ConditionStatus.FALSE, reason, ""),
    ]


def paused(ready: list[DesiredCondition]) -> list[DesiredCondition]:
    return [*ready, DesiredCondition("Paused", ConditionStatus.TRUE, "Paused", "reconciliation is paused")]


def common_cases(
    kind: str, ready: list[DesiredCondition], fields: dict[str, Any] | None = None, healthy_message: str | None = None
) -> list[HealthCase]:
    """Cases every kind has: no status yet, an old status, ready, and a spec only the operator refuses.
    ``healthy_message`` defaults to what the script shows for Ready=True (its message, else its reason)."""
    ready_message = healthy_message or next(
        condition.message or condition.reason for condition in ready if condition.type == READY
    )
    return [
        HealthCase("progressing_no_status", None, "Progressing", NO_STATUS_MESSAGE),
        HealthCase(
            "progressing_generation_behind",
            operator_status(ready, fields),
            "Progressing",
            GENERATION_MESSAGE.format(generation=GENERATION + 1),
            generation=GENERATION + 1,
        ),
        HealthCase("healthy", operator_status(ready, fields), "Healthy", ready_message),
        HealthCase(
            "degraded_invalid_spec",
            operator_status(invalid_spec(kind)),
            "Degraded",
            invalid_spec_message(kind),
        ),
    ]


def event_stream_cases() -> list[HealthCase]:
    ready = roll_up(
        [
            schema_ready(True, "sluice-database (schema sluice)"),
            stream_ready(True, "StreamExists", "stream 'orders': persistent, 4 partition(s)"),
        ]
    )
    database_down = roll_up(
        [
            schema_ready(False, str(DATABASE_DOWN)),
            DesiredCondition(STREAM_READY, ConditionStatus.FALSE, DATABASE_DOWN.reason, str(DATABASE_DOWN)),
        ]
    )
    conflict_message = "stream 'orders' exists with 8 partitions; the spec asks for 4"
    conflict = roll_up(
        [DesiredCondition(SCHEMA_READY, ConditionStatus.TRUE, "SchemaMigrated", "")],
        stalled=DesiredCondition(STREAM_READY, ConditionStatus.FALSE, "StreamConflict", conflict_message),
    )
    decreased = "partitions cannot decrease from 8 to 4"
    immutable = "spec.type is immutable (persistent to ephemeral)"
    return [
        *common_cases("EventStream", ready),
        HealthCase(
            "progressing_database_secret_missing",
            operator_status(
                roll_up(
                    [DesiredCondition(SCHEMA_READY, ConditionStatus.FALSE, SECRET_MISSING.reason, str(SECRET_MISSING))]
                )
            ),
            "Progressing",
            str(SECRET_MISSING),
        ),
        HealthCase("degraded_database_unreachable", operator_status(database_down), "Degraded", str(DATABASE_DOWN)),
        HealthCase("degraded_stream_conflict", operator_status(conflict), "Degraded", conflict_message),
        HealthCase(
            "degraded_invalid_spec_not_stalled",
            operator_status(terminal_not_ready("InvalidSpec", invalid_spec_message("EventStream"))),
            "Degraded",
            invalid_spec_message("EventStream"),
        ),
        HealthCase(
            "degraded_partitions_decreased",
            operator_status(terminal_not_ready("PartitionsDecreased", decreased)),
            "Degraded",
            decreased,
        ),
        HealthCase(
            "degraded_immutable_field_changed",
            operator_status(terminal_not_ready("ImmutableFieldChanged", immutable)),
            "Degraded",
            immutable,
        ),
    ]


def lagging_group_fields() -> dict[str, Any]:
    """A group a million events behind: still a working group, so still Healthy."""
    observed_at = WRITTEN_AT
    partitions = tuple(
        PartitionLag(
            partition=partition,
            committed_offset=1_000,
            head=251_000,
            owner=f"email-notifications-{partition % 2}",
            epoch=1,
            oldest_unconsumed_at=observed_at - timedelta(minutes=42),
            observed_at=observed_at,
        )
        for partition in range(4)
    )
    members = tuple(
        MemberDescription(
            consumer_id=f"email-notifications-{index}",
            joined_at=observed_at - timedelta(hours=1),
            last_heartbeat_at=observed_at,
            partitions=(index, index + 2),
            active=True,
        )
        for index in range(2)
    )
    description = GroupDescription(
        stream_name="orders",
        group_id="email-notifications",
        generation=3,
        created_at=observed_at - timedelta(days=1),
        members=members,
        partitions=partitions,
    )
    return {"replicas": 2, "readyReplicas": 2, "idleReplicas": 0} | lag_status_fields(
        description, observed_at=observed_at
    )


def consumer_group_cases() -> list[HealthCase]:
    stream_found = DesiredCondition(STREAM_FOUND, ConditionStatus.TRUE, "StreamFound", "orders")
    lag_polled = DesiredCondition(DATABASE_REACHABLE, ConditionStatus.TRUE, "LagPolled", "")
    available = WorkloadState(exists=True, replicas=2, ready_replicas=2, available=True)
    ready = [
        *roll_up([stream_found, workload_available(available, 2), lag_polled]),
        idle_replicas_condition(0, 4),
    ]
    lag_failed = DesiredCondition(DATABASE_REACHABLE, ConditionStatus.FALSE, DATABASE_DOWN.reason, str(DATABASE_DOWN))
    starting = WorkloadState(exists=True, replicas=2, ready_replicas=0, available=False)
    not_ready = roll_up([stream_found, workload_available(starting, 2), lag_polled])
    not_found_message = "EventStream 'orders' not found in namespace 'shop'"
    stream_missing = roll_up(
        [DesiredCondition(STREAM_FOUND, ConditionStatus.FALSE, "StreamNotFound", not_found_message)]
    )
    unsupported = UnsupportedSpecError("handler needs exactly one of sink or entrypoint")
    stalled = DesiredCondition(WORKLOAD_AVAILABLE, ConditionStatus.FALSE, unsupported.reason, str(unsupported))
    unsupported_spec = roll_up([stream_found, stalled], stalled=stalled)
    unsupported_message = "handler needs exactly one of sink or entrypoint"
    return [
        *common_cases("ConsumerGroup", ready, lagging_group_fields()),
        HealthCase(
            "progressing_replicas_not_ready", operator_status(not_ready), "Progressing", "0 of 2 replicas ready"
        ),
        HealthCase(
            "degraded_database_unreachable",
            operator_status(
                roll_up([stream_found, workload_available(available, 2), lag_failed]), lagging_group_fields()
            ),
            "Degraded",
            str(DATABASE_DOWN),
        ),
        HealthCase("degraded_stream_not_found", operator_status(stream_missing), "Degraded", not_found_message),
        HealthCase(
            "degraded_unsupported_spec_stalled", operator_status(unsupported_spec), "Degraded", unsupported_message
        ),
        HealthCase(
            "degraded_unsupported_spec",
            operator_status(terminal_not_ready(unsupported.reason, unsupported_message)),
            "Degraded",
            unsupported_message,
        ),
        HealthCase("suspended_paused", operator_status(paused(ready)), "Suspended", "reconciliation is paused"),
    ]


def retention_policy_cases() -> list[HealthCase]:
    reachable = DesiredCondition(DATABASE_REACHABLE, ConditionStatus.TRUE, "Checked", "1 database(s) answer")
    next_run = "2026-11-27T03:00:00+00:00"
    enforced = DesiredCondition(
        ENFORCED, ConditionStatus.TRUE, RunReason.NOT_DUE.value, f"1 stream(s) matched; idle; next run at {next_run}"
    )
    fields = {"matchedStreams": ["orders"], "nextRunTime": next_run}
    unreachable = DesiredCondition(DATABASE_REACHABLE, ConditionStatus.FALSE, DATABASE_DOWN.reason, str(DATABASE_DOWN))
    failed_run = DesiredCondition(
        ENFORCED, ConditionStatus.FALSE, DATABASE_DOWN.reason, f"the run failed: {DATABASE_DOWN}"
    )
    prune_failed = DesiredCondition(
        ENFORCED, ConditionStatus.FALSE, "PruneFailed", "the run failed: canceling statement due to statement timeout"
    )
    return [
        *common_cases("RetentionPolicy", roll_up([reachable, enforced]), fields),
        HealthCase(
            "degraded_database_unreachable",
            operator_status(roll_up([unreachable, failed_run]), fields),
            "Degraded",
            str(DATABASE_DOWN),
        ),
        HealthCase(
            "progressing_prune_failed",
            operator_status(roll_up([reachable, prune_failed]), fields),
            "Progressing",
            prune_failed.message,
        ),
    ]


def projection_cases() -> list[HealthCase]:
    available = WorkloadState(exists=True, replicas=1, ready_replicas=1, available=True)
    ready = roll_up([sources_ready([]), workload_available(available, 1)])
    missing = roll_up([sources_ready(["orders"])])
    return [
        *common_cases("Projection", ready),
        HealthCase(
            "progressing_source_not_found",
            operator_status(missing),
            "Progressing",
            "EventStream(s) not found in this namespace: orders",
        ),
        HealthCase("suspended_paused", operator_status(paused(ready)), "Suspended", "reconciliation is paused"),
    ]


def replay_cases() -> list[HealthCase]:
    found = DesiredCondition(SOURCE_FOUND, ConditionStatus.TRUE, "ReferencesFound", "")

    def at(phase: JobPhase) -> list[DesiredCondition]:
        return roll_up([found, succeeded_condition(phase)])

    progress = {"progress": {"eventsDone": 1_200, "eventsTotal": 5_000, "percent": 24.0}}
    missing = roll_up(
        [DesiredCondition(SOURCE_FOUND, ConditionStatus.FALSE, "ReferenceNotFound", "'orders' not found")]
    )
    backoff = "the replay Job reached its backoff limit (6 failed pods)"
    failed_condition = [
        *terminal_not_ready("Failed", "the replay was cancelled"),
        DesiredCondition("Failed", ConditionStatus.TRUE, "Cancelled", "the replay was cancelled"),
    ]
    return [
        *common_cases(
            "Replay",
            at(JobPhase.SUCCEEDED),
            {"phase": JobPhase.SUCCEEDED.value},
            healthy_message=succeeded_condition(JobPhase.SUCCEEDED).reason,
        ),
        HealthCase(
            "progressing_pending", operator_status(at(JobPhase.PENDING)), "Progressing", "the replay Job is Pending"
        ),
        HealthCase(
            "progressing_running",
            operator_status(at(JobPhase.RUNNING), {"phase": JobPhase.RUNNING.value} | progress),
            "Progressing",
            "the replay Job is Running",
        ),
        HealthCase("progressing_reference_not_found", operator_status(missing), "Progressing", "'orders' not found"),
        HealthCase(
            "degraded_succeeded_false",
            operator_status(at(JobPhase.FAILED), {"phase": JobPhase.FAILED.value}),
            "Degraded",
            "the replay Job failed",
        ),
        HealthCase(
            "degraded_job_failed",
            operator_status(terminal_not_ready("JobFailed", "the replay Job failed")),
            "Degraded",
            "the replay Job failed",
        ),
        HealthCase(
            "degraded_backoff_limit_exceeded",
            operator_status(terminal_not_ready("BackoffLimitExceeded", backoff)),
            "Degraded",
            backoff,
        ),
        HealthCase("degraded_failed", operator_status(failed_condition), "Degraded", "the replay was cancelled"),
        HealthCase(
            "degraded_ready_failed",
            operator_status(terminal_not_ready("Failed", "the replay was cancelled")),
            "Degraded",
            "the replay was cancelled",
        ),
    ]


CASES: dict[str, Callable[[], list[HealthCase]]] = {
    "EventStream": event_stream_cases,
    "ConsumerGroup": consumer_group_cases,
    "RetentionPolicy": retention_policy_cases,
    "Projection": projection_cases,
    "Replay": replay_cases,
}


def example_object(kind: str) -> dict[str, Any]:
    documents = yaml.safe_load_all((EXAMPLES_DIRECTORY / EXAMPLE_FILES[kind]).read_text(encoding="utf-8"))
    (document,) = [document for document in documents if document]
    if document.get("apiVersion") != API_VERSION or document.get("kind") != kind:
        raise ValueError(f"examples/{EXAMPLE_FILES[kind]} is not a {API_VERSION} {kind}")
    return dict(document)


def testdata_object(kind: str, case: HealthCase) -> dict[str, Any]:
    example = example_object(kind)
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": example["metadata"]["name"],
            "namespace": NAMESPACE,
            "generation": case.generation,
            "creationTimestamp": "2026-11-26T06:00:00Z",
            "resourceVersion": "4711",
            "uid": "7c1f9a52-2f0e-4c55-9a3e-0d6b2f8e4a10",
        },
        "spec": example["spec"],
    }
    if case.status is not None:
        body["status"] = case.status
    return body


def dump(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


def render() -> dict[Path, str]:
    """Every file of the folder, by path relative to deploy/argocd/resource_customizations."""
    health = HEALTH_SCRIPT.read_text(encoding="utf-8")
    files: dict[Path, str] = {}
    for resource in CUSTOM_RESOURCES:
        kind = resource.definition.kind
        folder = Path(GROUP) / kind
        cases = CASES[kind]()
        names = [case.name for case in cases]
        if len(set(names)) != len(names):
            raise ValueError(f"{kind}: two cases share a name")
        files[folder / "health.lua"] = health
        tests = [
            {
                "healthStatus": {"status": case.health, "message": case.message},
                "inputPath": f"testdata/{case.name}.yaml",
            }
            for case in cases
        ]
        files[folder / "health_test.yaml"] = dump({"tests": tests})
        for case in cases:
            files[folder / "testdata" / f"{case.name}.yaml"] = dump(testdata_object(kind, case))
    return files


def existing_files() -> set[Path]:
    if not OUTPUT.exists():
        return set()
    return {path.relative_to(OUTPUT) for path in OUTPUT.rglob("*") if path.is_file()}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the checked-in folder is not current")
    arguments = parser.parse_args()
    files = render()
    shown = OUTPUT.relative_to(REPOSITORY_ROOT)
    if arguments.check:
        stale = sorted(
            str(path)
            for path, text in files.items()
            if not (OUTPUT / path).is_file() or (OUTPUT / path).read_text(encoding="utf-8") != text
        )
        extra = sorted(str(path) for path in existing_files() - set(files))
        if stale or extra:
            print(f"{shown} is out of date: run scripts/generate.sh", file=sys.stderr)
            for name in stale:
                print(f"  differs or missing: {name}", file=sys.stderr)
            for name in extra:
                print(f"  not generated: {name}", file=sys.stderr)
            return 1
        return 0
    for path in existing_files() - set(files):
        (OUTPUT / path).unlink()
    for path, text in files.items():
        (OUTPUT / path).parent.mkdir(parents=True, exist_ok=True)
        (OUTPUT / path).write_text(text, encoding="utf-8")
    print(f"wrote {shown} ({len(files)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
