"""The harness itself: ``EmbeddedPostgres.kill``, ``restart``, ``pause`` and ``resume`` (the additions
the fault suite needs) and the backend kill do what the suite relies on."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import pytest

from tests.faults.database import DATABASE_FAULTS, Fault, FaultyDatabase, terminate_backends

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.faults]

BROKEN_CONNECTION = (asyncpg.PostgresError, OSError, asyncpg.InterfaceError, asyncpg.InternalClientError)
"""What asyncpg raises on a connection whose server or backend went away (raw: this is the driver itself)."""


def server_processes(faulty: FaultyDatabase) -> set[int]:
    """The postmaster and its backends."""
    postmaster = faulty.server.pid
    assert postmaster is not None
    found = {postmaster}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster and fields[0] != "Z":
                found.add(int(entry))
    return found


async def test_each_fault_breaks_connections_keeps_committed_rows_and_pause_freezes(
    faulty_database: FaultyDatabase,
) -> None:
    port = faulty_database.server.port
    setup = await asyncpg.connect(faulty_database.dsn)
    await setup.execute("CREATE TABLE public.kept (n int)")
    await setup.execute("INSERT INTO public.kept SELECT generate_series(1, 100)")
    await setup.close()
    for fault in DATABASE_FAULTS:
        connection = await asyncpg.connect(faulty_database.dsn)
        before = server_processes(faulty_database)
        assert len(before) > 3, "the postmaster, its auxiliary processes and the backend"

        await faulty_database.inject(fault)

        with pytest.raises(BROKEN_CONNECTION):
            await connection.fetchval("SELECT 1")
        connection.terminate()
        assert faulty_database.server.port == port
        again = await asyncpg.connect(faulty_database.dsn)
        try:
            assert await again.fetchval("SELECT count(*) FROM public.kept") == 100, fault
        finally:
            await again.close()
        if fault is not Fault.BACKEND_KILL:
            assert not before & server_processes(faulty_database), f"a process of the old server survived {fault}"

    await a_paused_server_answers_nothing_until_resumed(faulty_database)
    await terminating_backends_spares_other_databases(faulty_database)


async def a_paused_server_answers_nothing_until_resumed(faulty_database: FaultyDatabase) -> None:
    connection = await asyncpg.connect(faulty_database.dsn)
    try:
        faulty_database.server.pause()
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(connection.fetchval("SELECT 1"), timeout=1)
        finally:
            faulty_database.server.resume()
        again = await asyncpg.connect(faulty_database.dsn, timeout=10)
        assert await again.fetchval("SELECT 1") == 1
        await again.close()
    finally:
        connection.terminate()


async def terminating_backends_spares_other_databases(faulty_database: FaultyDatabase) -> None:
    inside = await asyncpg.connect(faulty_database.dsn)
    outside = await asyncpg.connect(faulty_database.admin_dsn)
    try:
        assert await terminate_backends(faulty_database.admin_dsn, faulty_database.database) == 1
        assert await outside.fetchval("SELECT 1") == 1
        with pytest.raises(BROKEN_CONNECTION):
            await inside.fetchval("SELECT 1")
    finally:
        inside.terminate()
        await outside.close()
