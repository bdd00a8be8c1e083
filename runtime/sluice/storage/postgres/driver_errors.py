"""The PostgreSQL backend's one driver-error translator: asyncpg, socket and timeout errors become Sluice errors.

It is applied in one place: the store's pool is a ``TranslatingPool``, so every statement the backend
runs (``pool.fetch(...)`` or anything inside ``async with pool.acquire()``) raises Sluice errors only,
whichever module of the backend ran it (store, consumer groups, retention, sagas, retries, replay,
projection checkpoints). Code inside an ``acquire()`` block still sees the driver's own error first,
so it can handle the ones it expects (a unique violation, a deadlock it retries); only what escapes
the block is translated.

What each driver error becomes:
- the database cannot be reached or the connection broke (refused, reset, starting up, shutting down,
  too many connections, an internal client error, no answer in time): ``ConnectionLostError``;
- the database refused the work for now (statement timeout or cancel, deadlock, serialization
  failure, lock not available, out of resources, read-only after a failover): ``DatabaseBusyError``;
- a value the database cannot hold (numbers out of range, bad text, dates past year 9999):
  ``InvalidArgumentError`` (the statement was rolled back: nothing was stored);
- the schema is missing: ``MigrationError``.
Anything else (a bug: a syntax error, an undefined column) is left as it is, so it is not mistaken
for a transient failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import types
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

import asyncpg
import asyncpg.exceptions
from asyncpg.pool import PoolAcquireContext, PoolConnectionProxy

from sluice.core.errors import (
    ConnectionLostError,
    DatabaseBusyError,
    InvalidArgumentError,
    MigrationError,
    SluiceError,
    StoreClosedError,
)

if TYPE_CHECKING:
    _PoolBase = asyncpg.Pool[asyncpg.Record]
    _AcquireContextBase = PoolAcquireContext[asyncpg.Record]
else:  # neither class is subscriptable at run time
    _PoolBase = asyncpg.Pool
    _AcquireContextBase = PoolAcquireContext

_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable host, DNS, and TimeoutError (connect or command timeout)
    asyncpg.PostgresConnectionError,  # class 08: connection does not exist, failure, protocol violation
    asyncpg.CannotConnectNowError,  # "the database system is starting up" / "shutting down"
    asyncpg.AdminShutdownError,  # the backend was terminated (pg_terminate_backend, fast shutdown)
    asyncpg.CrashShutdownError,  # another backend crashed; the server restarts
    asyncpg.TooManyConnectionsError,  # no connection slot now
    asyncpg.InvalidAuthorizationSpecificationError,  # the credentials were refused
    asyncpg.InternalClientError,  # the driver's connection state broke (seen during restarts)
    asyncpg.InterfaceError,  # the connection is closed or was released under a running statement
)

_BUSY: tuple[type[BaseException], ...] = (
    asyncpg.QueryCanceledError,  # statement_timeout, pg_cancel_backend
    asyncpg.TransactionRollbackError,  # serialization failure, deadlock
    asyncpg.LockNotAvailableError,
    asyncpg.InsufficientResourcesError,  # disk full, out of memory (too many connections is above)
    asyncpg.ReadOnlySQLTransactionError,  # connected to a standby after a failover
)

_INVALID_VALUE: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,  # class 22 from the server: out of range, bad text, bad datetime
    asyncpg.exceptions._base.DataError,  # the driver refused to encode an argument
    OverflowError,  # a value the driver cannot encode or decode (dates past 9999, huge numbers)
)

_SCHEMA_MISSING: tuple[type[BaseException], ...] = (
    asyncpg.InvalidSchemaNameError,
    asyncpg.UndefinedTableError,
)


def translate(
    error: BaseException, operation: str | None = None, *, pool: asyncpg.Pool | None = None
) -> SluiceError | None:
    """The Sluice error a driver error stands for, or None when it is not one this module translates
    (a Sluice error already, a cancellation, or a bug that must surface as it is). ``operation``, when
    known, is named in the message ("during connect"). A lost connection of a ``pool`` being closed is
    the store closed on purpose (``store.close()`` closes its pool): StoreClosedError, no outage to wait out."""
    if isinstance(error, SluiceError) or not isinstance(error, Exception):
        return None
    detail = str(error) or type(error).__name__
    during = f" during {operation}" if operation else ""
    # The client-side DataError is also an InterfaceError, so values come before connections; too many
    # connections is also an InsufficientResourcesError, so connections come before busy.
    if isinstance(error, _INVALID_VALUE):
        return InvalidArgumentError(f"the database cannot store a value of this request: {detail}")
    if isinstance(error, _UNREACHABLE):
        return _connection_failure(detail, during, pool)
    if isinstance(error, _BUSY):
        return DatabaseBusyError(f"the database refused the work{during} for now (nothing was changed): {detail}")
    if isinstance(error, _SCHEMA_MISSING):
        return MigrationError(f"the database schema is missing or incomplete (run sluice migrate): {detail}")
    return None


def _connection_failure(detail: str, during: str, pool: asyncpg.Pool | None) -> SluiceError:
    if pool is not None and pool.is_closing():  # store.close() closed the pool: no outage to wait out
        return StoreClosedError(f"the store was closed while this operation ran{during}: {detail}")
    return ConnectionLostError(
        f"the database connection failed{during} (a write in flight was stored whole or not at all; "
        f"retrying it with the same event ids is safe): {detail}"
    )


def is_deadlock(error: BaseException) -> bool:
    """Whether PostgreSQL aborted this statement to break a deadlock (raw, or as translated here):
    the statement changed nothing and may simply run again."""
    return isinstance(error, asyncpg.DeadlockDetectedError) or (
        isinstance(error, DatabaseBusyError) and isinstance(error.__cause__, asyncpg.DeadlockDetectedError)
    )


def is_connection_lost(error: BaseException) -> bool:
    """Whether ``error`` (raw, inside an ``acquire()`` block) means the connection broke: the pool turns it
    into ``ConnectionLostError`` when it escapes the block."""
    return isinstance(translate(error), ConnectionLostError)


def is_untranslated_database_error(error: BaseException) -> bool:
    """Whether ``error`` is a database error this module leaves as it is (a failed constraint, a raised
    exception, a bug in a statement): the server refused the statement for good."""
    return isinstance(error, asyncpg.PostgresError) and translate(error) is None


class translated(contextlib.AbstractContextManager[None]):  # noqa: N801  (used as a function: ``with translated():``)
    """Re-raise the driver errors of the block as Sluice errors (the driver's error is the cause); ``pool``
    as for ``translate``. A class rather than a generator-based context manager: every pooled operation
    enters it twice, and a generator costs several times more to set up and leave."""

    __slots__ = ("_operation", "_pool")

    def __init__(self, operation: str | None = None, *, pool: asyncpg.Pool | None = None) -> None:
        self._operation = operation
        self._pool = pool

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if error is None or not isinstance(error, Exception):
            return
        replacement = translate(error, self._operation, pool=self._pool)
        if replacement is not None:
            raise replacement from error


class _TranslatingAcquireContext(_AcquireContextBase):
    """``pool.acquire()`` whose connect errors and whose block's escaping errors are translated."""

    __slots__ = ()

    async def __aenter__(self) -> PoolConnectionProxy[asyncpg.Record]:
        with translated(pool=self.pool):
            return await super().__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        error = exc[1] if len(exc) > 1 else None
        with translated(pool=self.pool):
            await super().__aexit__(*exc)
        if isinstance(error, BaseException) and (replacement := translate(error, pool=self.pool)) is not None:
            raise replacement from error

    def __await__(self) -> Generator[Any, None, PoolConnectionProxy[asyncpg.Record]]:
        return self._acquire_translated().__await__()

    async def _acquire_translated(self) -> PoolConnectionProxy[asyncpg.Record]:
        self.done = True
        with translated(pool=self.pool):
            return await PoolAcquireContext(self.pool, self.timeout)


class TranslatingPool(_PoolBase):
    """An asyncpg pool whose every use raises Sluice errors instead of driver errors.

    ``Pool.fetch``, ``fetchval``, ``execute`` and the rest run through ``acquire()``, so overriding
    it covers them all."""

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext[asyncpg.Record]:
        return _TranslatingAcquireContext(self, timeout)

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109  (asyncpg's signature)
        """Give a connection back. One whose statement was cancelled (the caller's timeout or a cancelled
        task) is closed at once instead of waiting for the server to confirm the cancel: a frozen server
        never confirms it, and the caller's cancellation (a readiness probe's time limit, a gRPC deadline)
        would wait for it as long as the server stays frozen. The pool opens a new connection when needed.

        The rest is ``Pool.release`` without its ``asyncio.shield`` when the release has nothing to wait
        for (see ``_release_shielded_if_it_waits``)."""
        raw = getattr(connection, "_con", None)
        if raw is not None and raw._protocol is not None and raw._protocol._is_cancelling():
            raw.terminate()  # returns the holder to the pool and detaches the proxy
        if raw is None or raw.is_closed() or type(connection) is not PoolConnectionProxy:
            await super().release(connection, timeout=timeout)  # released already, or asyncpg refuses it
            return
        holder: Any = connection._holder  # asyncpg's private parts below are the ones Pool.release uses
        if holder._pool is not self:
            await super().release(connection, timeout=timeout)  # asyncpg refuses it
            return
        self._check_init()
        raw._on_release()
        await _release_shielded_if_it_waits(holder.release(holder._timeout if timeout is None else timeout))


async def _release_shielded_if_it_waits(release: Coroutine[Any, Any, None]) -> None:
    """Run a connection holder's ``release``, shielded from the caller's cancellation only if it waits.

    asyncpg runs every release in a task of its own under ``asyncio.shield``, so that a cancellation
    cannot leave a connection half returned; that task costs the caller one or two more turns of the event
    loop per operation (about 25 us of client CPU of 130 for a pooled ``SELECT 1``, measured). A release
    of an idle connection (no open transaction, no cancel to confirm, not due to be closed) never waits,
    and a coroutine that does not wait cannot be interrupted. So its first step runs here: when it
    finishes, there was nothing to protect; when it waits (a rollback, a close), the rest of it runs
    shielded, as asyncpg would have run it whole."""
    try:
        awaited = release.send(None)
    except StopIteration:
        return
    await asyncio.shield(_finish(release, awaited))


async def _finish(coroutine: Coroutine[Any, Any, None], awaited: Any) -> None:
    await _resumed(coroutine, awaited)


@types.coroutine
def _resumed(coroutine: Coroutine[Any, Any, None], awaited: Any) -> Generator[Any, None, None]:
    """The rest of ``coroutine``, which has run up to waiting for ``awaited`` (a future): the task that
    awaits this waits for that future, then steps the coroutine on, as ``await coroutine`` would."""
    while True:
        try:
            yield awaited
        except BaseException as error:  # thrown into the wait (a cancellation of the shielded task)
            step = functools.partial(coroutine.throw, error)
        else:
            step = functools.partial(coroutine.send, None)
        try:
            awaited = step()
        except StopIteration:
            return


async def create_translating_pool(dsn: str, *, min_size: int, max_size: int, **options: Any) -> TranslatingPool:
    """Open a ``TranslatingPool`` with asyncpg's defaults (as ``asyncpg.create_pool`` would)."""
    pool = TranslatingPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        **options,
    )
    with translated("connect"):
        await pool
    return pool
