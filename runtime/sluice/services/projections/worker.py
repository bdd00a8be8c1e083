"""The worker behind ``sluice project``: one projection runner with the health endpoint and a clean stop.

``/health/live`` answers while the process runs; ``/health/ready`` once the projection is registered (and
its rebuild, if the reset generation asked for one, started), while not stopping and while the database
answers. ``stop()`` (SIGTERM, SIGINT) lets the batch in hand commit, then returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from sluice.core.errors import SluiceError
from sluice.services.projections.projection import Projection
from sluice.services.projections.runner import ProjectionRunner
from sluice.services.workers.health_server import HealthServer
from sluice.store import EventStore
from sluice.store.values.projections import RebuildProgress

logger = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 2.0


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectionSettings:
    """What the command line sets besides the projection itself."""

    reset_generation: int = 0
    http_host: str = "0.0.0.0"  # noqa: S104  (probes come from outside the pod)
    http_port: int = 0
    """0: no health endpoint."""


class ProjectionWorker:
    """Runs one projection until ``stop()``; ``run()`` returns after a clean stop."""

    def __init__(self, store: EventStore, projection: Projection, settings: ProjectionSettings) -> None:
        self.store = store
        self.settings = settings
        self.runner = ProjectionRunner(projection, store, on_progress=self._log_progress)
        self.health_server: HealthServer | None = None
        self._started = False
        self._last_logged_percent = -1

    def stop(self) -> None:
        """Finish the batch in hand and return from ``run``. Safe to call repeatedly."""
        if not self.runner.stopping.is_set():
            logger.info("stopping projection %s after the batch in hand", self.runner.projection.name)
        self.runner.stop()

    async def run(self) -> None:
        if self.settings.http_port:
            self.health_server = HealthServer(
                host=self.settings.http_host, port=self.settings.http_port, readiness=self.readiness
            )
            await self.health_server.start()
        try:
            state = await self.runner.start(reset_generation=self.settings.reset_generation)
            self._started = True
            logger.info(
                "projecting %s into %s (version %d, position %s)",
                ", ".join(state.sources),
                state.name,
                state.active_version,
                state.position,
            )
            await self.runner.run()
        finally:
            if self.health_server is not None:
                await self.health_server.stop()
        logger.info("stopped cleanly: %d events applied", self.runner.events_applied)

    async def readiness(self) -> tuple[bool, str]:
        if self.runner.stopping.is_set():
            return False, "stopping"
        if not self._started:
            return False, "not started yet"
        try:
            state = await asyncio.wait_for(
                self.runner.checkpoints.load(self.runner.projection.name), READINESS_TIMEOUT_SECONDS
            )
        except (SluiceError, OSError, TimeoutError) as error:
            return False, f"database unavailable: {error}"
        if state is None:
            return False, "projection not registered"
        return True, f"projecting at {state.position} (version {state.active_version})"

    def _log_progress(self, progress: RebuildProgress) -> None:
        percent = progress.percent
        if percent // 10 != self._last_logged_percent // 10 or not progress.running:
            self._last_logged_percent = percent
            logger.info(
                "rebuild of version %d: %d of %d events (%d%%)%s",
                progress.version,
                progress.done,
                progress.total,
                percent,
                "" if progress.running else ", finished",
            )
