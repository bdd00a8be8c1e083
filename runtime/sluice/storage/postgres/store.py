"""The PostgreSQL adapter's composition: ``open_postgres_backend`` connects, checks (or applies) the schema and
bundles the adapter's parts into a Backend, and ``PostgresEventStore`` is the EventStore over it.

The parts live beside this module: the stream log (``stream_log.py``) and the queues (``queues.py``), which
share one ``stream_catalog.PostgresStreamCatalog``; consumer groups, retention, group dead letters, sagas and
replay records; the LISTEN/NOTIFY channel (``notifications.py``).
"""

from __future__ import annotations

import contextlib
from typing import cast

import asyncpg

from sluice.core.event_types import EventTypeRegistry
from sluice.core.options import StoreOptions
from sluice.core.signals import AppendSignals
from sluice.storage.postgres import migrations
from sluice.storage.postgres.database import PostgresDatabase
from sluice.storage.postgres.driver_errors import create_translating_pool, translated
from sluice.storage.postgres.group_dead_letters import PostgresGroupDeadLetters
from sluice.storage.postgres.groups import PostgresConsumerGroups
from sluice.storage.postgres.notifications import NotificationChannel
from sluice.storage.postgres.queues import PostgresQueues
from sluice.storage.postgres.replays import PostgresReplayRecords
from sluice.storage.postgres.retention import PostgresRetentionStorage
from sluice.storage.postgres.sagas import PostgresSagaRepository
from sluice.storage.postgres.stream_catalog import PostgresStreamCatalog
from sluice.storage.postgres.stream_log import PostgresStreamLog
from sluice.store import Backend, BackendCheck, ConsumerGroupsFactory, EventStore


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Pool release hook. asyncpg's default sends a reset query (UNLISTEN, RESET ALL, ...) on every
    release, a round trip per operation; Sluice's statements leave no session state to reset
    (asyncpg still rolls back an open transaction locally), so nothing is sent."""


class _PostgresConnection:
    """The adapter's resources: the pool and the LISTEN/NOTIFY connection."""

    def __init__(self, database: PostgresDatabase, notifications: NotificationChannel, schema_name: str) -> None:
        self._database = database
        self.notifications = notifications
        self._schema_name = schema_name

    async def check(self) -> BackendCheck:
        async with self._database.acquire() as connection:
            version = await migrations.check_schema(cast(asyncpg.Connection, connection), self._schema_name)
        return BackendCheck(backend="postgresql", schema_name=self._schema_name, schema_version=version)

    async def close(self) -> None:
        await self.notifications.stop()
        await self._database.pool.close()

    def terminate(self) -> None:
        self._database.pool.terminate()


async def open_postgres_backend(dsn: str, options: StoreOptions) -> Backend:
    """Connect, check (or apply) the schema, start listening for appends, and bundle the adapter's parts."""
    schema = options.schema_name
    with translated("connect"):
        connection = await asyncpg.connect(dsn)
        try:
            if options.migrate:
                await migrations.migrate(connection, schema)
            else:
                await migrations.check_schema(connection, schema)
        finally:
            await connection.close()
    pool = await create_translating_pool(
        dsn,
        min_size=options.pool_min_size,
        max_size=options.pool_max_size,
        reset=_keep_session,
        # Every named query is written to have a good generic plan; skipping planning on each
        # call saves 0.3-1 ms per statement (see queries.sql).
        server_settings={
            "search_path": schema,
            "application_name": "sluice",
            "plan_cache_mode": "force_generic_plan",
        },
    )
    database = PostgresDatabase(pool)
    signals = AppendSignals()
    notifications = NotificationChannel(dsn=dsn, channel=f"sluice_{schema}", signals=signals)

    def announce(key: str) -> None:
        """Wake readers of ``key`` here and, through NOTIFY, in every other process."""
        signals.fire(key)
        notifications.appended(key)

    catalog = PostgresStreamCatalog(pool=pool, options=options)
    log = PostgresStreamLog(pool=pool, options=options, catalog=catalog, notifications=notifications)
    groups = PostgresConsumerGroups(pool, announce)
    backend = Backend(
        name="postgresql",
        log=log,
        queues=PostgresQueues(pool=pool, options=options, catalog=catalog, signals=signals),
        groups=groups,
        retention=PostgresRetentionStorage(pool),
        dead_letters=PostgresGroupDeadLetters(log, groups, database),
        sagas=PostgresSagaRepository(database),
        replays=PostgresReplayRecords(database),
        signals=signals,
        connection=_PostgresConnection(database, notifications, schema),
        database=database,
    )
    with translated("connect"):
        await notifications.start()
    return backend


class PostgresEventStore(EventStore):
    """An EventStore on PostgreSQL. Open it with ``await sluice.connect("postgresql://...")``.

    Only a constructor (``open``) and two conveniences for tests and tools; everything else is
    ``EventStore``'s, over the backend ``open_postgres_backend`` builds (its consumer groups are the service
    ``consumer_groups_factory`` builds: ``sluice.connect`` passes it)."""

    @classmethod
    async def open(
        cls,
        dsn: str,
        options: StoreOptions,
        registry: EventTypeRegistry | None = None,
        *,
        consumer_groups_factory: ConsumerGroupsFactory,
    ) -> PostgresEventStore:
        """Connect, check (or apply) the schema, and start listening for appends."""
        backend = await open_postgres_backend(dsn, options)
        return cls(backend, options, registry, consumer_groups_factory=consumer_groups_factory)

    @property
    def database(self) -> PostgresDatabase:
        """The store's connection pool."""
        assert isinstance(self.backend.database, PostgresDatabase)
        return self.backend.database

    def acquire(self) -> contextlib.AbstractAsyncContextManager[asyncpg.pool.PoolConnectionProxy[asyncpg.Record]]:
        """A pooled connection with search_path set to Sluice's schema (for tests and tools)."""
        return self.database.acquire()

    @property
    def notifications(self) -> NotificationChannel:
        """The LISTEN/NOTIFY connection (exposed for health checks and tests)."""
        assert isinstance(self.backend.connection, _PostgresConnection)
        return self.backend.connection.notifications
