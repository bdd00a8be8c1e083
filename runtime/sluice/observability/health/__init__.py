"""Health of streams and of the service: what ``/health/*`` and ``check_stream_health`` answer.

- ``model``: thresholds (per stream, with per-group overrides), statuses and reasons.
- ``evaluation``: the pure function that turns an observation into a verdict (unit-tested without I/O).
- ``checks``: ``check_stream_health`` and ``check_readiness``, which gather observations from a store.
"""

from sluice.observability.health.checks import check_readiness, check_stream_health
from sluice.observability.health.evaluation import evaluate_stream_health
from sluice.observability.health.model import (
    HealthReason,
    HealthSettings,
    HealthStatus,
    HealthThresholds,
    LagThresholds,
    Readiness,
    StreamHealth,
    StreamObservation,
)

__all__ = [
    "HealthReason",
    "HealthSettings",
    "HealthStatus",
    "HealthThresholds",
    "LagThresholds",
    "Readiness",
    "StreamHealth",
    "StreamObservation",
    "check_readiness",
    "check_stream_health",
    "evaluate_stream_health",
]
