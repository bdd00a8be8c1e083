"""Running a command's coroutine: open the store, and turn failures into clear messages and exit codes.

Exit codes: 0 success; 1 a failure (a SluiceError such as an unknown stream, or an unreachable
database), with a one-line message on stderr; 2 bad input: a usage error (click's own) or an argument
Sluice refuses (InvalidArgumentError: a value out of range, malformed JSON, ...), also one line.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

import sluice
from sluice.store import EventStore

ResultT = TypeVar("ResultT")


class InvalidInput(click.ClickException):
    """Input Sluice refused: ``Error: <message>`` on stderr and exit code 2, like click's usage errors."""

    exit_code = 2


def run(coroutine: Coroutine[Any, Any, ResultT]) -> ResultT:
    """``asyncio.run`` with Sluice's errors as click errors: exit 2 for invalid input, 1 for the rest,
    a one-line message on stderr either way."""
    try:
        return asyncio.run(coroutine)
    except sluice.InvalidArgumentError as error:
        raise InvalidInput(one_line(error)) from error
    except OverflowError as error:  # a number too large for a date or duration that no check caught
        raise InvalidInput(f"a value is out of range: {one_line(error)}") from error
    except UnicodeEncodeError as error:  # an argument holding bytes that are not UTF-8 (surrogate escapes)
        raise InvalidInput(f"an argument is not valid UTF-8 text: {one_line(error)}") from error
    except sluice.SluiceError as error:
        raise click.ClickException(one_line(error)) from error


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def handle_stop_signals(callback: Callable[[], object]) -> tuple[signal.Signals, ...]:
    """Call ``callback`` on SIGTERM or SIGINT; returns the signals handled, for ``remove_signal_handler``.

    Only the main thread receives signals, so a command run in another thread (a program embedding the
    CLI, the in-process CLI tests) handles none and is stopped by whoever runs it."""
    if threading.current_thread() is not threading.main_thread():
        return ()
    loop = asyncio.get_running_loop()
    for signal_number in STOP_SIGNALS:
        loop.add_signal_handler(signal_number, callback)
    return STOP_SIGNALS


def one_line(error: BaseException) -> str:
    """The error's message on one line (a multi-line driver message is joined)."""
    return " ".join(str(error).split()) or type(error).__name__


@asynccontextmanager
async def open_store(dsn: str, schema_name: str) -> AsyncIterator[EventStore]:
    """Connect to ``dsn`` (checking the schema is current) and close the store afterwards."""
    try:
        urlsplit(dsn)
    except ValueError as error:  # such as an unclosed IPv6 bracket
        raise sluice.InvalidArgumentError(f"invalid --dsn: {error}") from error
    store = await sluice.connect(dsn, schema_name=schema_name)
    try:
        yield store
    finally:
        await store.close()


class _OneLineFormatter(logging.Formatter):
    """``WARNING logger: message (ErrorType: text)``: a library's warning without its traceback."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname} {record.name}: {one_line(Exception(record.getMessage()))}"
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text += f" ({type(error).__name__}: {one_line(error)})"
        return text


@contextmanager
def one_line_logs() -> Iterator[None]:
    """While a long-running command (``tail``) runs: warnings of the libraries under it (asyncpg's pool
    retrying during a database outage) on stderr as one line each, not as tracebacks."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_OneLineFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
