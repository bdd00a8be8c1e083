"""``sluice retention set | list | delete | apply``: stored retention policies, and pruning by them now.

sluice retention set 'orders-*' --max-age 7d --max-events 1000000 --window 01:00-04:00
sluice retention list
sluice retention apply --stream orders-eu --now
sluice retention delete 'orders-*'
"""

from __future__ import annotations

from typing import Any

import click

from sluice.cli.output import emit_object, emit_rows
from sluice.cli.running import open_store, run
from sluice.cli.settings import output_setting, require_dsn, store_settings
from sluice.services.retention import (
    DEFAULT_BATCH_SIZE,
    CleanupWindow,
    PruneReport,
    RetentionLimits,
    RetentionPolicy,
    apply_policies,
    delete_policy,
    list_policies,
    set_policy,
)
from sluice.services.retention.quantities import format_duration, parse_byte_size, parse_duration
from sluice.store.values.retention import DEFAULT_CLEANUP_INTERVAL

POLICY_COLUMNS = ["pattern", "max_age", "max_events", "max_bytes", "window", "interval", "mode", "last_applied_at"]
REPORT_COLUMNS = ["stream", "pruned_events", "pruned_bytes", "oldest_retained", "held_back_by", "truncated", "skipped"]


def policy_record(policy: RetentionPolicy) -> dict[str, Any]:
    limits = policy.limits
    return {
        "pattern": policy.pattern,
        "max_age": format_duration(limits.max_age) if limits.max_age is not None else None,
        "max_events": limits.max_event_count,
        "max_bytes": limits.max_bytes,
        "window": str(limits.cleanup_window) if limits.cleanup_window is not None else None,
        "interval": format_duration(limits.cleanup_interval),
        "mode": "enforce" if limits.enforce else "respect-consumers",
        "last_applied_at": policy.last_applied_at,
    }


def report_record(report: PruneReport) -> dict[str, Any]:
    return {
        "stream": report.stream,
        "pruned_events": report.pruned_events,
        "pruned_bytes": report.pruned_bytes,
        "oldest_retained": report.oldest_retained_offsets,
        "held_back_by": report.held_back_by,
        "truncated": report.truncated_groups,
        "skipped": report.skipped_reason,
    }


@click.group()
def retention() -> None:
    """Retention policies by stream-name pattern: set, list, delete, and apply them now."""


@retention.command("set")
@click.argument("pattern")
@click.option("--max-age", help="Prune events older than this, such as 7d or 12h.")
@click.option("--max-events", type=click.IntRange(min=1), help="Keep at most this many events per partition.")
@click.option("--max-bytes", help="Keep at most this many payload bytes per stream, such as 50Gi.")
@click.option("--window", help="Only prune between these UTC times, such as 01:00-04:00 (may wrap midnight).")
@click.option("--interval", help="Run the policy at most this often (the worker); default 5m.")
@click.option("--enforce", is_flag=True, help="Prune to the limits even past consumer groups' offsets.")
@store_settings
@output_setting
def set_command(
    *,
    pattern: str,
    max_age: str | None,
    max_events: int | None,
    max_bytes: str | None,
    window: str | None,
    interval: str | None,
    enforce: bool,
    dsn: str | None,
    schema_name: str,
    output: str,
) -> None:
    """Create or replace the policy of PATTERN: a stream name, a prefix and '*' (orders-*), or '*'."""
    database = require_dsn(dsn)

    async def body() -> None:
        limits = RetentionLimits(
            max_age=parse_duration(max_age) if max_age is not None else None,
            max_event_count=max_events,
            max_bytes=parse_byte_size(max_bytes) if max_bytes is not None else None,
            cleanup_window=CleanupWindow.parse(window) if window is not None else None,
            cleanup_interval=parse_duration(interval) if interval is not None else DEFAULT_CLEANUP_INTERVAL,
            enforce=enforce,
        )
        async with open_store(database, schema_name) as store:
            policy = await set_policy(store, pattern, limits)
        emit_object(policy_record(policy), output)

    run(body())


@retention.command("list")
@store_settings
@output_setting
def list_command(dsn: str | None, schema_name: str, output: str) -> None:
    """Every stored policy."""

    async def body() -> None:
        async with open_store(require_dsn(dsn), schema_name) as store:
            policies = await list_policies(store)
        emit_rows([policy_record(policy) for policy in policies], POLICY_COLUMNS, output)

    run(body())


@retention.command("delete")
@click.argument("pattern")
@store_settings
def delete_command(pattern: str, dsn: str | None, schema_name: str) -> None:
    """Delete the policy of PATTERN."""

    async def body() -> None:
        async with open_store(require_dsn(dsn), schema_name) as store:
            await delete_policy(store, pattern)
        click.echo(f"deleted retention policy {pattern!r}")

    run(body())


@retention.command("apply")
@click.option("--stream", help="Only this stream (default: every stream a policy covers).")
@click.option("--now", "ignore_window", is_flag=True, help="Run now, even outside the policies' cleanup windows.")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True, help="Events per delete."
)
@store_settings
@output_setting
def apply_command(
    *, stream: str | None, ignore_window: bool, batch_size: int, dsn: str | None, schema_name: str, output: str
) -> None:
    """Prune every stream (or STREAM) by its most specific policy, and report what went."""

    async def body() -> None:
        async with open_store(require_dsn(dsn), schema_name) as store:
            reports = await apply_policies(store, ignore_window=ignore_window, stream=stream, batch_size=batch_size)
        emit_rows([report_record(report) for report in reports], REPORT_COLUMNS, output)

    run(body())


__all__ = ["retention"]
