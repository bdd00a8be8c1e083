"""Options shared by the commands: where the database is, which schema, and how to print.

Settings read ``SLUICE_<FLAG>`` environment variables (``--dsn`` → ``SLUICE_DSN``,
``--batch-size`` → ``SLUICE_BATCH_SIZE``); a flag on the command line wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

CommandT = TypeVar("CommandT", bound=Callable[..., Any])


def environment_variable(flag: str) -> str:
    """``--batch-size`` → ``SLUICE_BATCH_SIZE``."""
    return "SLUICE_" + flag.lstrip("-").replace("-", "_").upper()


def setting(*declarations: str, **attributes: Any) -> Callable[[CommandT], CommandT]:
    """A click option that also reads its ``SLUICE_*`` environment variable."""
    long_flag = next(declaration for declaration in declarations if declaration.startswith("--"))
    return click.option(*declarations, envvar=environment_variable(long_flag), show_envvar=True, **attributes)


def store_settings(command: CommandT) -> CommandT:
    """``--dsn`` and ``--schema``: the store a command works on."""
    command = setting(
        "--schema", "schema_name", default="sluice", show_default=True, help="PostgreSQL schema of Sluice's tables."
    )(command)
    return setting(
        "--dsn", help="postgresql://user@host/db, or memory:// (a store that lives as long as the command)."
    )(command)


def output_setting(command: CommandT) -> CommandT:
    """``--output table|json``."""
    return setting(
        "--output",
        "-o",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="Print a table for people or JSON for programs.",
    )(command)


def require_dsn(dsn: str | None) -> str:
    if not dsn:
        raise click.UsageError("give --dsn or set SLUICE_DSN")
    return dsn
