"""Checkpoints in this process's memory: for development, tests and read models outside PostgreSQL.

Work runs before the checkpoint moves, and nothing makes the two atomic: a crash in between delivers
the batch again (at least once), so handlers use ``event.event_id`` to stay idempotent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sluice.core.errors import ProjectionConflictError, ProjectionNotFoundError
from sluice.core.events import GlobalPosition
from sluice.store.contracts.projection_checkpoints import CheckpointStore, TransactionWork
from sluice.store.values.projections import ProjectionDeadLetter, ProjectionState, RebuildProgress, VersionCheckpoint

if TYPE_CHECKING:
    from sluice.store.sql_connection import SqlConnection


class MemoryCheckpointStore(CheckpointStore):
    """Checkpoints that live as long as this object."""

    same_database = False

    def __init__(self) -> None:
        self._projections: dict[str, ProjectionState] = {}
        self._dead_letters: dict[tuple[str, int], list[ProjectionDeadLetter]] = {}

    async def register(
        self, name: str, sources: Sequence[str], *, reset_generation: int, start_after: GlobalPosition | None
    ) -> ProjectionState:
        state = self._projections.get(name)
        if state is None:
            state = ProjectionState(
                name=name,
                sources=tuple(sources),
                active_version=1,
                reset_generation=reset_generation,
                checkpoints={1: VersionCheckpoint(1, start_after)},
            )
        else:
            state = dataclasses.replace(state, sources=tuple(sources))
        self._projections[name] = state
        return state

    async def load(self, name: str) -> ProjectionState | None:
        return self._projections.get(name)

    async def advance(
        self,
        name: str,
        version: int,
        *,
        expected: GlobalPosition | None,
        position: GlobalPosition,
        count: int,
        work: TransactionWork,
    ) -> None:
        self._check_position(name, version, expected)
        await work(None)
        state = self._check_position(name, version, expected)
        checkpoint = state.checkpoints[version]
        checkpoints = dict(state.checkpoints)
        checkpoints[version] = dataclasses.replace(
            checkpoint, position=position, events_applied=checkpoint.events_applied + count
        )
        rebuild = state.rebuild
        if rebuild is not None and rebuild.running and rebuild.version == version:
            rebuild = dataclasses.replace(rebuild, done=rebuild.done + count)
        self._projections[name] = dataclasses.replace(state, checkpoints=checkpoints, rebuild=rebuild)

    async def start_rebuild(
        self, name: str, *, generation: int, version: int, blue_green: bool, total: int, work: TransactionWork
    ) -> ProjectionState:
        state = self._existing(name)
        await work(None)
        checkpoints = dict(state.checkpoints)
        checkpoints[version] = VersionCheckpoint(version, None)
        self._dead_letters.pop((name, version), None)
        state = dataclasses.replace(
            state,
            reset_generation=max(state.reset_generation, generation),
            checkpoints=checkpoints,
            rebuild_requested=False,
            rebuild=RebuildProgress(
                version=version,
                blue_green=blue_green,
                done=0,
                total=total,
                started_at=datetime.now(UTC),
                finished_at=None,
            ),
        )
        self._projections[name] = state
        return state

    async def finish_rebuild(self, name: str, version: int, *, work: TransactionWork) -> ProjectionState:
        state = self._existing(name)
        rebuild = state.rebuild
        if rebuild is None or rebuild.version != version or not rebuild.running:
            raise ProjectionConflictError(f"projection {name!r} is not rebuilding version {version}")
        await work(None)
        for other in state.checkpoints:
            if other != version:
                self._dead_letters.pop((name, other), None)
        state = dataclasses.replace(
            state,
            active_version=version,
            checkpoints={version: state.checkpoints[version]},
            rebuild=dataclasses.replace(rebuild, finished_at=datetime.now(UTC)),
        )
        self._projections[name] = state
        return state

    async def run_in_transaction(self, work: TransactionWork) -> None:
        await work(None)

    async def request_rebuild(self, name: str) -> None:
        self._projections[name] = dataclasses.replace(self._existing(name), rebuild_requested=True)

    async def rebuild_requested(self, name: str) -> bool:
        state = self._projections.get(name)
        return state is not None and state.rebuild_requested

    async def record_generation(self, name: str, generation: int) -> None:
        state = self._existing(name)
        self._projections[name] = dataclasses.replace(state, reset_generation=max(state.reset_generation, generation))

    async def record_dead_letters(
        self, connection: SqlConnection | None, name: str, letters: Sequence[ProjectionDeadLetter]
    ) -> None:
        state = self._existing(name)
        checkpoints = dict(state.checkpoints)
        now = datetime.now(UTC)
        for letter in letters:
            recorded = self._dead_letters.setdefault((name, letter.version), [])
            earlier = next((index for index, old in enumerate(recorded) if old.position == letter.position), None)
            if earlier is None:
                recorded.append(dataclasses.replace(letter, dead_lettered_at=now))
                checkpoint = checkpoints[letter.version]
                checkpoints[letter.version] = dataclasses.replace(
                    checkpoint, events_dead_lettered=checkpoint.events_dead_lettered + 1
                )
            else:  # one event that several upserts could not apply: one letter, every reason
                old = recorded[earlier]
                recorded[earlier] = dataclasses.replace(old, reason=f"{old.reason}; {letter.reason}")
        self._projections[name] = dataclasses.replace(state, checkpoints=checkpoints)

    async def dead_letters(self, name: str, *, limit: int) -> list[ProjectionDeadLetter]:
        state = self._existing(name)
        recorded = self._dead_letters.get((name, state.active_version), [])
        return sorted(recorded, key=lambda letter: letter.position)[:limit]

    def _existing(self, name: str) -> ProjectionState:
        state = self._projections.get(name)
        if state is None:
            raise ProjectionNotFoundError(name)
        return state

    def _check_position(self, name: str, version: int, expected: GlobalPosition | None) -> ProjectionState:
        state = self._existing(name)
        checkpoint = state.checkpoints.get(version)
        if checkpoint is None or checkpoint.position != expected:
            raise ProjectionConflictError(
                f"the checkpoint of projection {name!r} (version {version}) moved: another runner applied "
                "this batch or reset the projection"
            )
        return state
