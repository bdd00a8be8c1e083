"""What a Replay means: the Job running ``sluice replay`` once; its phase from the Job's status and its
progress from the replay's record in the database (``sluice.services.replay``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sluice.store.values.replays import ReplayProgress, ReplayState
from sluice_operator.models.common import ConditionStatus, JobPhase
from sluice_operator.models.replays import Replay
from sluice_operator.reconcile.conditions import DesiredCondition, format_time
from sluice_operator.reconcile.ownership import Owner
from sluice_operator.reconcile.workloads import ContainerSpec, job_manifest

__all__ = [
    "SUCCEEDED",
    "JobState",
    "job_state",
    "replay_arguments",
    "replay_job",
    "replay_phase",
    "replay_progress_fields",
    "replay_run_name",
    "succeeded_condition",
]

SUCCEEDED = "Succeeded"


def replay_run_name(replay: Replay) -> str:
    """The replay's name in the database: namespace, name and the start of the object's uid, so a Replay
    deleted and created again under the same name is a new run, not the old one resumed."""
    metadata = replay.metadata
    return f"{metadata.namespace}.{metadata.name}.{(metadata.uid or '')[:8]}".rstrip(".")


def replay_arguments(replay: Replay, source_stream_name: str, target_name: str) -> list[str]:
    """``replay --name N --stream S (--from-offset N | --from-time T)
    --to-(consumer-group|projection|stream) NAME [--rate-limit R] --batch-size B``."""
    spec = replay.spec
    arguments = ["replay", "--name", replay_run_name(replay), "--stream", source_stream_name]
    if spec.from_offset is not None:
        arguments += ["--from-offset", str(spec.from_offset)]
    elif spec.from_time is not None:
        arguments += ["--from-time", format_time(spec.from_time)]
    for partition in spec.source.partitions or []:
        arguments += ["--partition", str(partition)]
    if spec.target.consumer_group is not None:
        arguments += ["--to-consumer-group", target_name]
    elif spec.target.projection is not None:
        arguments += ["--to-projection", target_name]
    else:
        arguments += ["--to-stream", target_name]
    if spec.rate_limit is not None:
        arguments += ["--rate-limit", str(spec.rate_limit)]
    arguments += ["--batch-size", str(spec.batch_size)]
    return arguments


def replay_job(
    replay: Replay,
    source_stream_name: str,
    target_name: str,
    *,
    namespace: str,
    owner: Owner,
    image: str,
    database_environment: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    container = ContainerSpec(
        image=image,
        arguments=replay_arguments(replay, source_stream_name, target_name),
        environment=database_environment,
        http_probes=False,
    )
    return job_manifest(owner, namespace, container=container)


@dataclass(frozen=True)
class JobState:
    phase: JobPhase
    start_time: str | None = None
    completion_time: str | None = None


def job_state(job: Mapping[str, Any] | None) -> JobState:
    """The phase a Job's status shows: Pending (no pod running yet), Running, Succeeded or Failed."""
    if job is None:
        return JobState(JobPhase.PENDING)
    status = job.get("status") or {}
    conditions = {condition.get("type"): condition.get("status") for condition in status.get("conditions") or []}
    start_time = status.get("startTime")
    if conditions.get("Complete") == "True" or int(status.get("succeeded") or 0) > 0:
        return JobState(JobPhase.SUCCEEDED, start_time, status.get("completionTime"))
    if conditions.get("Failed") == "True":
        return JobState(JobPhase.FAILED, start_time, None)
    # ``active`` also counts pods that wait to be scheduled or started; ``ready`` only running ones.
    if int(status.get("ready") or 0) > 0:
        return JobState(JobPhase.RUNNING, start_time)
    return JobState(JobPhase.PENDING, start_time)


def succeeded_condition(phase: JobPhase) -> DesiredCondition:
    """Succeeded: True once the Job completed, False if it failed, Unknown before."""
    if phase is JobPhase.SUCCEEDED:
        return DesiredCondition(SUCCEEDED, ConditionStatus.TRUE, "JobComplete", "")
    if phase is JobPhase.FAILED:
        return DesiredCondition(SUCCEEDED, ConditionStatus.FALSE, "JobFailed", "the replay Job failed")
    return DesiredCondition(SUCCEEDED, ConditionStatus.UNKNOWN, f"Job{phase.value}", f"the replay Job is {phase.value}")


def replay_phase(job: JobState, progress: ReplayProgress | None) -> JobPhase:
    """The Job's phase, except that a replay the database shows running is Running even before the Job's
    pod reports ready, and a replay it shows cancelled is Failed (the Job then exits with an error)."""
    if job.phase in {JobPhase.SUCCEEDED, JobPhase.FAILED} or progress is None:
        return job.phase
    if progress.state is ReplayState.CANCELLED:
        return JobPhase.FAILED
    if progress.state is ReplayState.RUNNING:
        return JobPhase.RUNNING
    return job.phase


def replay_progress_fields(progress: ReplayProgress | None) -> dict[str, Any]:
    """``progress`` (events done, total and percent) from the replay's record; nothing before it exists."""
    if progress is None:
        return {}
    return {
        "progress": {
            "eventsDone": progress.events_done,
            "eventsTotal": progress.events_total,
            "percent": progress.percent,
        }
    }
