"""Running a command's coroutine: open the store, and turn failures into clear messages and exit codes.

Exit codes: 0 success; 1 a failure (a SluiceError such as an unknown stream, or an unreachable
database), with a one-line message on stderr; 2 a usage error (click's own).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import click

import sluice
from sluice.store import EventStore

ResultT = TypeVar("ResultT")


def run(coroutine: Coroutine[Any, Any, ResultT]) -> ResultT:
    """``asyncio.run`` with Sluice's errors as click errors (exit 1, message on stderr)."""
    try:
        return asyncio.run(coroutine)
    except sluice.SluiceError as error:
        raise click.ClickException(str(error)) from error
    except (OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(f"cannot reach the database: {error}") from error


@asynccontextmanager
async def open_store(dsn: str, schema_name: str) -> AsyncIterator[EventStore]:
    """Connect to ``dsn`` (checking the schema is current) and close the store afterwards."""
    store = await sluice.connect(dsn, schema_name=schema_name)
    try:
        yield store
    finally:
        await store.close()
