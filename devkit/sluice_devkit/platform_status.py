"""Reading what the operator reports: ``kubectl get sluice -A`` for people, and the few fields the platform
waits on (an object's Ready condition, a consumer group's or projection's lag, a replay's phase)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluice_devkit.kubectl import Kubectl
from sluice_devkit.platform_errors import PlatformError

__all__ = [
    "ConsumerGroupState",
    "ProjectionState",
    "ReplayState",
    "condition",
    "consumer_group_state",
    "projection_state",
    "ready_status",
    "replay_state",
    "sluice_table",
]


def sluice_table(kubectl: Kubectl) -> str:
    """``kubectl get sluice -A``: every Sluice object with its printer columns (status, lag)."""
    return kubectl.run("get", "sluice", "--all-namespaces").rstrip()


def condition(body: Mapping[str, Any], condition_type: str) -> Mapping[str, Any] | None:
    """One condition of an object's status, or None."""
    for entry in (body.get("status") or {}).get("conditions") or []:
        if entry.get("type") == condition_type:
            found: Mapping[str, Any] = entry
            return found
    return None


def ready_status(body: Mapping[str, Any]) -> str | None:
    """The Ready condition's status (True/False/Unknown) if it describes the current generation."""
    status = body.get("status") or {}
    if status.get("observedGeneration") != body["metadata"].get("generation"):
        return None
    ready = condition(body, "Ready")
    return None if ready is None else str(ready.get("status"))


@dataclass(frozen=True)
class ConsumerGroupState:
    """What a ConsumerGroup's status says about its progress."""

    ready: str | None
    lag_events: int | None
    lag_seconds: float | None
    member_count: int

    @property
    def caught_up(self) -> bool:
        return self.ready == "True" and self.lag_events == 0 and self.member_count > 0


def consumer_group_state(kubectl: Kubectl, namespace: str, name: str) -> ConsumerGroupState:
    try:
        body = kubectl.get_json("consumergroup.sluice.dev", name, namespace=namespace)
    except PlatformError:
        return ConsumerGroupState(ready=None, lag_events=None, lag_seconds=None, member_count=0)
    status = body.get("status") or {}
    lag = status.get("lag") or {}
    events = lag.get("events")
    seconds = lag.get("seconds")
    return ConsumerGroupState(
        ready=ready_status(body),
        lag_events=None if events is None else int(events),
        lag_seconds=None if seconds is None else float(seconds),
        member_count=len(status.get("members") or []),
    )


@dataclass(frozen=True)
class ProjectionState:
    """What a Projection's status says about its progress."""

    ready: str | None
    lag_events: int | None
    position: str | None

    @property
    def caught_up(self) -> bool:
        return self.ready == "True" and self.lag_events == 0


def projection_state(kubectl: Kubectl, namespace: str, name: str) -> ProjectionState:
    try:
        body = kubectl.get_json("projection.sluice.dev", name, namespace=namespace)
    except PlatformError:
        return ProjectionState(ready=None, lag_events=None, position=None)
    status = body.get("status") or {}
    events = (status.get("lag") or {}).get("events")
    return ProjectionState(
        ready=ready_status(body), lag_events=None if events is None else int(events), position=status.get("position")
    )


@dataclass(frozen=True)
class ReplayState:
    """What a Replay's status says: its phase and progress."""

    ready: str | None
    phase: str | None
    progress: Mapping[str, Any]


def replay_state(kubectl: Kubectl, namespace: str, name: str) -> ReplayState:
    try:
        body = kubectl.get_json("replay.sluice.dev", name, namespace=namespace)
    except PlatformError:
        return ReplayState(ready=None, phase=None, progress={})
    status = body.get("status") or {}
    return ReplayState(ready=ready_status(body), phase=status.get("phase"), progress=status.get("progress") or {})
