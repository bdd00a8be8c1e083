"""The checked-in OpenAPI document matches the code, and the served one is the same document."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from sluice.rest import openapi_document


def test_the_checked_in_document_is_current() -> None:
    checked_in = openapi_document.DEFAULT_PATH.read_text(encoding="utf-8")
    assert checked_in == openapi_document.render(openapi_document.openapi_document()), (
        "docs/openapi.json is out of date: run `python -m sluice.rest.openapi_document`"
    )
    assert openapi_document.main(["--check"]) == 0


def test_check_fails_on_drift(tmp_path: Path) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n", encoding="utf-8")
    assert openapi_document.main(["--check", "--path", str(stale)]) == 1
    assert openapi_document.main(["--path", str(stale)]) == 0
    assert openapi_document.main(["--check", "--path", str(stale)]) == 0


async def test_the_served_document_is_the_checked_in_one(client: httpx.AsyncClient) -> None:
    served = (await client.get("/openapi.json")).json()
    assert served == json.loads(openapi_document.DEFAULT_PATH.read_text(encoding="utf-8"))
    assert "/api/event-streams/subscriptions/{id}/consumers/{consumerId}/reset-offset" in served["paths"]
    assert served["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
