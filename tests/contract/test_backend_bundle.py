"""The Backend bundle (``store.backend``): each store has its own parts, services find theirs there and
nowhere else, and a wrapped store reaches the same backend (docs/design.md, "The storage contract")."""

from __future__ import annotations

import sluice
from sluice import EventStore
from sluice.services.group_commit.batched_store import batched
from sluice.services.projections.runner import default_checkpoint_store
from sluice.services.replay.record_stores import replay_records
from sluice.services.retention.storage import storage_of
from sluice.services.retries.access import group_dead_letters
from sluice.services.sagas.repositories import saga_repository
from tests.store_fixtures import FAST_POLL


async def test_services_use_the_parts_of_their_stores_backend(store: EventStore, store_url: str) -> None:
    backend = store.backend
    assert backend.name == ("memory" if store_url == "memory://" else "postgresql")
    assert saga_repository(store) is backend.sagas
    assert replay_records(store) is backend.replays
    assert group_dead_letters(store) is backend.dead_letters
    assert storage_of(store) is backend.retention
    assert (await store.check_backend()) == (await backend.check())


async def test_checkpoints_are_same_database_exactly_where_the_adapter_has_a_sql_database(store: EventStore) -> None:
    checkpoints = default_checkpoint_store(store)
    assert checkpoints.same_database is (store.backend.database is not None)
    assert checkpoints.same_database is (store.backend.name == "postgresql")


async def test_two_stores_never_share_stateful_parts(store: EventStore, store_url: str) -> None:
    other = await sluice.connect(store_url, poll_interval=FAST_POLL)
    try:
        for part in ("log", "groups", "retention", "dead_letters", "sagas", "replays", "signals"):
            assert getattr(other.backend, part) is not getattr(store.backend, part), part
    finally:
        await other.close()


async def test_a_batched_store_reaches_the_backend_of_the_store_it_wraps(store: EventStore) -> None:
    wrapped = batched(store)
    try:
        assert wrapped.backend is store.backend
        assert group_dead_letters(wrapped) is store.backend.dead_letters
    finally:
        await wrapped.close()
