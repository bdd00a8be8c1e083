"""How a projection reads its sources: batch size and where a new projection starts."""

from __future__ import annotations

import dataclasses
import enum

from sluice.core.errors import InvalidArgumentError
from sluice.core.events import GlobalPosition

MAXIMUM_BATCH_SIZE = 100_000


class ProjectionStart(enum.Enum):
    """Where a projection that has no checkpoint yet starts (ignored once it has one)."""

    BEGINNING = "beginning"
    """Every event of the sources, from the first."""
    END = "end"
    """Only events appended after the projection first starts."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectionOptions:
    """``batch_size`` events are applied per transaction (with their checkpoint)."""

    batch_size: int = 100
    start: ProjectionStart = ProjectionStart.BEGINNING
    start_after: GlobalPosition | None = None
    """Start after this global position instead (overrides ``start``)."""

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise InvalidArgumentError(f"batch_size must be an integer, got {self.batch_size!r}")
        if not 1 <= self.batch_size <= MAXIMUM_BATCH_SIZE:
            raise InvalidArgumentError(f"batch_size must be 1 to {MAXIMUM_BATCH_SIZE}, got {self.batch_size}")
        if not isinstance(self.start, ProjectionStart):
            raise InvalidArgumentError(f"start must be a ProjectionStart, got {self.start!r}")
        if self.start_after is not None and not isinstance(self.start_after, GlobalPosition):
            raise InvalidArgumentError(f"start_after must be a GlobalPosition, got {self.start_after!r}")
