"""What the routes share: the store, the token set, health settings and metrics of one app."""

from __future__ import annotations

import dataclasses

from fastapi import Request

from sluice.health.model import HealthSettings
from sluice.observability.metrics import SluiceMetrics
from sluice.security import BearerTokens
from sluice.store import EventStore


@dataclasses.dataclass(frozen=True, slots=True)
class ServerContext:
    store: EventStore
    tokens: BearerTokens | None
    health: HealthSettings
    metrics: SluiceMetrics


def server_context(request: Request) -> ServerContext:
    """The app's context (a FastAPI dependency)."""
    context: ServerContext = request.app.state.sluice
    return context
