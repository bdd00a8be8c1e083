"""What the checkpoint stores keep per projection and the status the operator reports: the values live in
the store layer (``sluice.store.values.projections``), since the checkpoint contract names them; this module
keeps the import path the operator and users' code use."""

from sluice.store.values.projections import (
    ProjectionDeadLetter,
    ProjectionState,
    ProjectionStatus,
    RebuildPhase,
    RebuildProgress,
    VersionCheckpoint,
    merge_dead_letters,
)

__all__ = [
    "ProjectionDeadLetter",
    "ProjectionState",
    "ProjectionStatus",
    "RebuildPhase",
    "RebuildProgress",
    "VersionCheckpoint",
    "merge_dead_letters",
]
