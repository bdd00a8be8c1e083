"""Reading what the operator wrote: conditions by type, and waiting for a status to reach a state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.custom_resources.cluster import KubernetesCluster, Manifest, wait_until

STATUS_TIMEOUT_SECONDS = 40


def conditions(body: Manifest) -> dict[str, dict[str, Any]]:
    """Condition type → condition."""
    return {condition["type"]: condition for condition in (body.get("status") or {}).get("conditions") or []}


def condition_status(body: Manifest, condition_type: str) -> str | None:
    condition = conditions(body).get(condition_type)
    return None if condition is None else str(condition["status"])


def wait_for_object(
    cluster: KubernetesCluster,
    namespace: str,
    kind: str,
    name: str,
    done: Callable[[Manifest], bool],
    *,
    timeout_seconds: float = STATUS_TIMEOUT_SECONDS,
) -> Manifest:
    """Read the object until ``done`` holds (fails with the last object after the timeout)."""
    return wait_until(lambda: cluster.get(namespace, kind, name), done, timeout_seconds=timeout_seconds)


def reconciled_with(condition_type: str, status: str) -> Callable[[Manifest], bool]:
    """Done when the status describes the current generation and the condition has the status."""

    def done(body: Manifest) -> bool:
        observed = (body.get("status") or {}).get("observedGeneration")
        return observed == body["metadata"]["generation"] and condition_status(body, condition_type) == status

    return done
