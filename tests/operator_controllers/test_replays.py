"""Replay controller against the fake API and a real PostgreSQL: its Job running ``sluice replay``, the
phase from the Job's status (Pending, Running, Succeeded, Failed) and the progress from the replay's record
(written here by the runtime's own ``Replays``, in-process, under the run name the Job's arguments carry)."""

from __future__ import annotations

from typing import Any

import pytest

import sluice
from sluice import EventData
from sluice.services.replay import Replays
from sluice.store.values.replays import ReplayRequest, ReplayTargetKind
from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.dispatch import reconcile_named
from tests.operator_controllers.conftest import NAMESPACE, condition, conditions, event_stream, manifest
from tests.operator_controllers.fake_kubernetes import FakeKubernetes

pytestmark = [pytest.mark.postgres]

NAME = "ledger-backfill"


def ledger_backfill() -> dict[str, Any]:
    spec = {"source": {"stream": "ledger"}, "fromOffset": 10, "target": {"stream": "ledger-copy"}, "batchSize": 7}
    return manifest("Replay", NAME, spec)


async def reconcile(context: OperatorContext) -> dict[str, Any]:
    await reconcile_named(context, "Replay", NAMESPACE, NAME)
    body = await context.kubernetes.get_custom_object("Replay", NAMESPACE, NAME)
    assert body is not None
    return body


async def created_replay(context: OperatorContext, kubernetes: FakeKubernetes) -> dict[str, Any]:
    for stream in ("ledger", "ledger-copy"):
        kubernetes.create(NAMESPACE, event_stream(stream))
        await reconcile_named(context, "EventStream", NAMESPACE, stream)
    kubernetes.create(NAMESPACE, ledger_backfill())
    return await reconcile(context)


def job_arguments(kubernetes: FakeKubernetes) -> list[str]:
    job = kubernetes.get("Job", NAMESPACE, NAME)
    assert job is not None
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return list(container["args"])


async def test_the_job_runs_the_replay_command_and_the_replay_is_pending_until_it_starts(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    replay = await created_replay(operator_context, kubernetes)

    job = kubernetes.get("Job", NAMESPACE, NAME)
    assert job is not None
    assert job["metadata"]["ownerReferences"][0]["kind"] == "Replay"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    arguments = job_arguments(kubernetes)
    assert arguments[:2] == ["replay", "--name"]
    assert arguments[arguments.index("--name") + 1].startswith(f"{NAMESPACE}.{NAME}.")
    assert arguments[arguments.index("--from-offset") + 1] == "10"
    assert arguments[arguments.index("--to-stream") + 1] == "ledger-copy"
    assert arguments[arguments.index("--batch-size") + 1] == "7"
    assert replay["status"]["phase"] == "Pending"
    assert condition(replay, "SourceFound") == ("True", "ReferencesFound")
    assert condition(replay, "Succeeded") == ("Unknown", "JobPending")
    assert condition(replay, "Ready")[0] == "Unknown"  # not True before the Job ran


async def test_the_phase_follows_the_job_to_success(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    await created_replay(operator_context, kubernetes)
    kubernetes.start_job(NAMESPACE, NAME)
    running = await reconcile(operator_context)
    assert running["status"]["phase"] == "Running"
    assert running["status"]["startTime"]
    assert condition(running, "Succeeded") == ("Unknown", "JobRunning")

    kubernetes.finish_job(NAMESPACE, NAME, succeeded=True)
    done = await reconcile(operator_context)
    assert done["status"]["phase"] == "Succeeded"
    assert done["status"]["completionTime"]
    assert condition(done, "Succeeded") == ("True", "JobComplete")
    assert condition(done, "Ready") == ("True", "Reconciled")
    assert [call[0] for call in kubernetes.calls].count("apply_job") == 3  # applied again, never replaced


async def test_a_failed_job_fails_the_replay(operator_context: OperatorContext, kubernetes: FakeKubernetes) -> None:
    await created_replay(operator_context, kubernetes)
    kubernetes.start_job(NAMESPACE, NAME)
    kubernetes.finish_job(NAMESPACE, NAME, succeeded=False)
    failed = await reconcile(operator_context)
    assert failed["status"]["phase"] == "Failed"
    assert condition(failed, "Succeeded") == ("False", "JobFailed")
    assert condition(failed, "Ready") == ("False", "JobFailed")


async def test_progress_comes_from_the_replays_record(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    await created_replay(operator_context, kubernetes)
    arguments = job_arguments(kubernetes)
    async with await sluice.connect(postgres_dsn) as store:
        await store.append("ledger", [EventData("Posted", {"n": n}) for n in range(40)])
        request = ReplayRequest(
            name=arguments[arguments.index("--name") + 1],
            stream="ledger",
            from_offset=10,
            target=ReplayTargetKind.STREAM,
            target_name="ledger-copy",
            batch_size=7,
        )
        await Replays(store).start(request)  # what the Job's `sluice replay` does
        copied = [event.data["n"] async for event in store.read_stream("ledger-copy")]
    assert copied == list(range(10, 40))

    finished = await reconcile(operator_context)
    assert finished["status"]["progress"] == {"eventsDone": 30, "eventsTotal": 30, "percent": 100}
    assert finished["status"]["phase"] == "Pending"  # the record is done, but the Job's pod is not reported yet
    kubernetes.finish_job(NAMESPACE, NAME, succeeded=True)
    done = await reconcile(operator_context)
    assert done["status"]["phase"] == "Succeeded"
    assert condition(done, "Ready") == ("True", "Reconciled")


async def test_a_missing_target_keeps_the_replay_pending_without_a_job(
    offline_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    kubernetes.create(NAMESPACE, event_stream("ledger"))
    kubernetes.create(NAMESPACE, ledger_backfill())  # ledger-copy does not exist
    replay = await reconcile(offline_context)
    assert replay["status"]["phase"] == "Pending"
    assert condition(replay, "SourceFound") == ("False", "ReferenceNotFound")
    assert "'ledger-copy' not found" in conditions(replay)["SourceFound"]["message"]
    assert kubernetes.names("Job", NAMESPACE) == []
