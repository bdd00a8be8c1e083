"""``sluice streams archive | unarchive | delete --soft | restore | purge-deleted`` and ``create
--compression`` against PostgreSQL, run in the test process (tests/cli/in_process.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import sluice
from sluice import EventData
from sluice.core.errors import StreamArchivedError
from tests.cli.conftest import run_cli

pytestmark = pytest.mark.slow


def json_output(*arguments: str, dsn: str) -> Any:
    result = run_cli(*arguments, "--output", "json", dsn=dsn)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_archive_unarchive_soft_delete_restore_and_purge(postgres_dsn: str) -> None:
    dsn = postgres_dsn
    created = json_output("streams", "create", "orders", "--compression", "zstd", "--actor", "ada", dsn=dsn)
    assert (created["compression"], created["created_by"], created["state"]) == ("zstd", "ada", "active")

    archived = json_output("streams", "archive", "orders", "--actor", "bob", dsn=dsn)
    assert (archived["state"], archived["archived_by"]) == ("archived", "bob")
    async with await sluice.connect(dsn) as store:
        with pytest.raises(StreamArchivedError):
            await store.append("orders", EventData("E", {}))
    assert json_output("streams", "unarchive", "orders", dsn=dsn)["state"] == "active"

    deleted = run_cli("streams", "delete", "orders", "--soft", dsn=dsn, SLUICE_ACTOR="carol")
    assert deleted.returncode == 0, deleted.stderr
    assert "restorable" in deleted.stdout
    assert json_output("streams", "list", dsn=dsn) == []
    [hidden] = json_output("streams", "list", "--include-deleted", dsn=dsn)
    assert (hidden["state"], hidden["deleted_by"]) == ("deleted", "carol")
    missing = run_cli("streams", "archive", "orders", dsn=dsn)
    assert missing.returncode == 1
    assert "was deleted (soft delete)" in missing.stderr

    assert json_output("streams", "restore", "orders", dsn=dsn)["state"] == "active"
    assert run_cli("streams", "delete", "orders", "--soft", dsn=dsn).returncode == 0
    purged = run_cli("streams", "purge-deleted", "--older-than", "0", "--yes", dsn=dsn)
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.strip() == "purged 1 stream(s): orders"
    assert json_output("streams", "list", "--include-deleted", dsn=dsn) == []
