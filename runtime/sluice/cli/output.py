"""Printing results: aligned tables for people, JSON for programs.

Lists print as one JSON array; events (``read``, ``tail``) print as JSON lines, one object per event,
so that an endless ``tail`` can be piped. Binary payloads appear as ``data_base64``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import click

from sluice.core.events import RecordedEvent

MAX_CELL_WIDTH = 60


def to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def cell(value: Any) -> str:
    """One table cell: compact JSON for structures, cut to MAX_CELL_WIDTH characters."""
    if value is None:
        text = ""
    elif isinstance(value, datetime):
        text = value.isoformat(timespec="milliseconds")
    elif isinstance(value, dict | list):
        text = to_json(value)
    else:
        text = str(value)
    return text if len(text) <= MAX_CELL_WIDTH else text[: MAX_CELL_WIDTH - 1] + "…"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as an aligned text table with a header line."""
    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[index]) for line in cells]) for index, column in enumerate(columns)]
    lines = ["  ".join(column.upper().ljust(width) for column, width in zip(columns, widths, strict=True))]
    lines += ["  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def emit_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], output: str) -> None:
    """A list: a table, or a JSON array (every field, not only the table's columns)."""
    if output == "json":
        click.echo(to_json(list(rows)))
    elif rows:
        click.echo(table(rows, columns))
    else:
        click.echo("(none)")


def emit_object(value: Mapping[str, Any], output: str) -> None:
    """One object: ``key: value`` lines, or a JSON object."""
    if output == "json":
        click.echo(to_json(value))
        return
    width = max((len(key) for key in value), default=0)
    for key, item in value.items():
        click.echo(f"{key.ljust(width)}  {cell(item) if not isinstance(item, str) else item}")


EVENT_COLUMNS = (("partition", 9), ("offset", 8), ("timestamp", 29), ("event_type", 24), ("data", 0))
"""Columns of event tables with fixed widths, so that rows printed one by one (``tail``) line up."""


def event_record(event: RecordedEvent) -> dict[str, Any]:
    """An event as a JSON-ready mapping."""
    record: dict[str, Any] = {
        "stream": event.stream_name,
        "partition": event.partition,
        "offset": event.offset,
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "timestamp": event.timestamp.isoformat(),
        "correlation_id": event.correlation_id,
        "metadata": dict(event.metadata),
    }
    data = event.data
    if isinstance(data, bytes):
        record["data_base64"] = base64.b64encode(data).decode("ascii")
    else:
        record["data"] = data
    return record


def emit_event(event: RecordedEvent, output: str, *, header: bool) -> None:
    """One event as a JSON line, or a table row (with the header before the first)."""
    record = event_record(event)
    if output == "json":
        click.echo(to_json(record))
        return
    record["timestamp"] = event.timestamp
    if "data_base64" in record:
        record["data"] = f"<{len(event.payload)} bytes>"
    if header:
        click.echo("  ".join(name.upper().ljust(width) for name, width in EVENT_COLUMNS).rstrip())
    click.echo("  ".join(cell(record.get(name)).ljust(width) for name, width in EVENT_COLUMNS).rstrip())
