"""The stream lifecycle endpoints (``/api/event-streams/{name}/...``, ``/api/stream-lifecycle``): archive,
unarchive, soft delete, restore, list with deleted streams, purge; the caller's principal is recorded as who
made each change."""

from __future__ import annotations

import httpx
import pytest

from sluice import EventData, EventStore, StreamConfig
from sluice.core.errors import StreamArchivedError
from tests.rest.conftest import AUTHORIZATION


async def test_archive_soft_delete_restore_and_purge(client: httpx.AsyncClient, store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="order:eu"))
    await store.append("order:eu", EventData("E", {}))

    archived = await client.post("/api/event-streams/order:eu/archive", headers=AUTHORIZATION)
    assert archived.status_code == 200, archived.text
    assert (archived.json()["state"], archived.json()["archived_by"]) == ("archived", "ada")
    with pytest.raises(StreamArchivedError):
        await store.append("order:eu", EventData("E", {}))
    unarchived = await client.post("/api/event-streams/order:eu/unarchive", headers=AUTHORIZATION)
    assert unarchived.json()["state"] == "active"

    deleted = await client.post("/api/event-streams/order:eu/soft-delete", headers=AUTHORIZATION)
    assert deleted.status_code == 200, deleted.text
    assert (deleted.json()["state"], deleted.json()["deleted_by"]) == ("deleted", "ada")
    assert (await client.get("/api/stream-lifecycle", headers=AUTHORIZATION)).json()["streams"] == []
    listed = await client.get("/api/stream-lifecycle", params={"include_deleted": "true"}, headers=AUTHORIZATION)
    assert [stream["name"] for stream in listed.json()["streams"]] == ["order:eu"]
    hidden = await client.post("/api/event-streams/order:eu/archive", headers=AUTHORIZATION)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "stream_deleted")

    restored = await client.post("/api/event-streams/order:eu/restore", headers=AUTHORIZATION)
    assert restored.json()["state"] == "active"
    assert (await store.get_stream("order:eu")).head == 1

    await client.post("/api/event-streams/order:eu/soft-delete", headers=AUTHORIZATION)
    purged = await client.post(
        "/api/stream-lifecycle/purge-deleted", params={"older_than_seconds": 0}, headers=AUTHORIZATION
    )
    assert purged.json() == {"purged": ["order:eu"]}
    missing = await client.post("/api/event-streams/order:eu/restore", headers=AUTHORIZATION)
    assert (missing.status_code, missing.json()["code"]) == (404, "stream_not_found")
    unauthenticated = await client.post("/api/event-streams/order:eu/archive")
    assert unauthenticated.status_code == 401
