"""Invalid objects, shared by the model tests (Python must refuse them) and the API server tests (the server
must refuse them with a readable message)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.custom_resources.manifests import minimal_manifest


@dataclass(frozen=True)
class InvalidSpec:
    """A minimal object of ``kind`` with ``spec_changes`` merged into its spec, which must be refused."""

    identifier: str
    kind: str
    spec_changes: dict[str, Any]
    server_message_parts: tuple[str, ...]
    """Substrings of the API server's message."""
    python_message: str | None = None
    """Substring of pydantic's error (CEL rules mirrored in Python say the same), when it is worth checking."""
    remove: tuple[str, ...] = field(default=())
    """Spec keys to drop from the minimal object first."""

    def manifest(self) -> dict[str, Any]:
        manifest = minimal_manifest(self.kind, f"invalid-{self.identifier}")
        spec = {key: value for key, value in manifest["spec"].items() if key not in self.remove}
        manifest["spec"] = {**spec, **self.spec_changes}
        return manifest


SINK = {"url": "http://sink.example/events"}
ENTRYPOINT = {"function": "shop.handlers:handle", "image": "example/worker:1"}
SQL_TARGET = {
    "table": "order_summary",
    "keyColumns": ["order_id"],
    "upserts": [{"eventType": "OrderPlaced", "columns": {"order_id": "$.order_id"}}],
}

INVALID_SPECS = (
    InvalidSpec(
        "partitions-zero",
        "EventStream",
        {"partitions": 0},
        ("spec.partitions", "should be greater than or equal to 1"),
    ),
    InvalidSpec(
        "partitions-over-1024",
        "EventStream",
        {"partitions": 1025},
        ("spec.partitions", "should be less than or equal to 1024"),
    ),
    InvalidSpec(
        "unknown-type",
        "EventStream",
        {"type": "durable"},
        ('spec.type: Unsupported value: "durable"', '"persistent", "ephemeral"'),
    ),
    InvalidSpec(
        "bad-stream-name",
        "EventStream",
        {"streamName": "orders/eu west"},
        ('spec.streamName: Invalid value: "orders/eu west"', "should match"),
    ),
    InvalidSpec(
        "bad-database-schema",
        "EventStream",
        {"database": {"secretRef": {"name": "db"}, "schema": "Sluice-Events"}},
        ("spec.database.schema", "should match"),
    ),
    InvalidSpec(
        "retention-without-limits",
        "EventStream",
        {"retention": {"respectConsumerPositions": True}},
        ("spec.retention", "retention needs at least one of maxAge, maxEventCount or maxBytes"),
        python_message="retention needs at least one of maxAge, maxEventCount or maxBytes",
    ),
    InvalidSpec(
        "bad-duration",
        "EventStream",
        {"retention": {"maxAge": "7 days"}},
        ("spec.retention.maxAge", "should match"),
    ),
    InvalidSpec(
        "empty-cleanup-window",
        "EventStream",
        {"retention": {"maxAge": "7d", "cleanupWindow": {"start": "02:00", "end": "02:00"}}},
        ("spec.retention.cleanupWindow", "cleanupWindow start and end must differ"),
        python_message="cleanupWindow start and end must differ",
    ),
    InvalidSpec(
        "sink-and-entrypoint",
        "ConsumerGroup",
        {"handler": {"sink": SINK, "entrypoint": ENTRYPOINT}},
        ("spec.handler", "handler needs exactly one of sink or entrypoint"),
        python_message="handler needs exactly one of sink or entrypoint",
    ),
    InvalidSpec(
        "no-handler",
        "ConsumerGroup",
        {"handler": {}},
        ("spec.handler", "handler needs exactly one of sink or entrypoint"),
        python_message="handler needs exactly one of sink or entrypoint",
    ),
    InvalidSpec(
        "negative-replicas",
        "ConsumerGroup",
        {"replicas": -1},
        ("spec.replicas", "should be greater than or equal to 0"),
    ),
    InvalidSpec(
        "periodic-without-interval",
        "ConsumerGroup",
        {"commitStrategy": "periodic"},
        ("spec: Invalid value", "commitStrategy periodic needs commitInterval"),
        python_message="commitStrategy periodic needs commitInterval",
    ),
    InvalidSpec(
        "start-offset-without-offset",
        "ConsumerGroup",
        {"startPosition": {"from": "offset"}},
        ("spec.startPosition", "startPosition.from 'offset' needs startPosition.offset"),
        python_message="startPosition.from 'offset' needs startPosition.offset",
    ),
    InvalidSpec(
        "bad-entrypoint",
        "ConsumerGroup",
        {"handler": {"entrypoint": {"function": "shop.handlers.handle", "image": "example/worker:1"}}},
        ("spec.handler.entrypoint.function", "should match"),
    ),
    InvalidSpec(
        "empty-stream-selector",
        "RetentionPolicy",
        {"streamSelector": {}},
        ("spec.streamSelector", "streamSelector needs names or matchLabels"),
        python_message="streamSelector needs names or matchLabels",
    ),
    InvalidSpec(
        "bad-schedule",
        "RetentionPolicy",
        {"schedule": "nightly"},
        ("spec.schedule", "should match"),
    ),
    InvalidSpec(
        "no-sources",
        "Projection",
        {"sources": []},
        ("spec.sources", "should have at least 1 items"),
    ),
    InvalidSpec(
        "sql-and-entrypoint",
        "Projection",
        {"target": {"sql": SQL_TARGET, "entrypoint": ENTRYPOINT}},
        ("spec.target", "target needs exactly one of sql or entrypoint"),
        python_message="target needs exactly one of sql or entrypoint",
    ),
    InvalidSpec(
        "key-column-not-mapped",
        "Projection",
        {"target": {"sql": {**SQL_TARGET, "keyColumns": ["order_id", "line"]}}},
        ("spec.target.sql", "every upsert must map every key column"),
        python_message="every upsert must map every key column",
    ),
    InvalidSpec(
        "bad-column-name",
        "Projection",
        {
            "target": {
                "sql": {**SQL_TARGET, "upserts": [{"eventType": "A", "columns": {"order_id": "$.id", "Total": "$.t"}}]}
            }
        },
        ("spec.target.sql.upserts[0].columns", "column names must be lower-case PostgreSQL identifiers"),
        python_message="column names must be lower-case PostgreSQL identifiers",
    ),
    InvalidSpec(
        "bad-json-path",
        "Projection",
        {"target": {"sql": {**SQL_TARGET, "upserts": [{"eventType": "A", "columns": {"order_id": "order_id"}}]}}},
        ("spec.target.sql.upserts[0].columns.order_id", "should match"),
    ),
    InvalidSpec(
        "unknown-column-type",
        "Projection",
        {"target": {"sql": {**SQL_TARGET, "columnTypes": {"order_id": "varchar); DROP TABLE x; --"}}}},
        ("spec.target.sql.columnTypes.order_id", "Unsupported value"),
    ),
    InvalidSpec(
        "type-of-a-column-no-upsert-sets",
        "Projection",
        {"target": {"sql": {**SQL_TARGET, "columnTypes": {"total": "numeric"}}}},
        ("spec.target.sql", "columnTypes may only name key columns and columns that some upsert sets"),
        python_message="columnTypes may only name key columns and columns that some upsert sets",
    ),
    InvalidSpec(
        "index-on-a-column-no-upsert-sets",
        "Projection",
        {"target": {"sql": {**SQL_TARGET, "indexes": [{"columns": ["customer_id"]}]}}},
        ("spec.target.sql", "indexes may only name key columns and columns that some upsert sets"),
        python_message="indexes may only name key columns and columns that some upsert sets",
    ),
    InvalidSpec(
        "index-without-columns",
        "Projection",
        {"target": {"sql": {**SQL_TARGET, "indexes": [{"columns": []}]}}},
        ("spec.target.sql.indexes[0].columns", "should have at least 1 items"),
    ),
    InvalidSpec(
        "offset-and-time",
        "Replay",
        {"fromTime": "2026-01-01T00:00:00Z"},
        ("spec: Invalid value", "a replay needs exactly one of fromOffset or fromTime"),
        python_message="a replay needs exactly one of fromOffset or fromTime",
    ),
    InvalidSpec(
        "neither-offset-nor-time",
        "Replay",
        {},
        ("spec: Invalid value", "a replay needs exactly one of fromOffset or fromTime"),
        python_message="a replay needs exactly one of fromOffset or fromTime",
        remove=("fromOffset",),
    ),
    InvalidSpec(
        "two-targets",
        "Replay",
        {"target": {"consumerGroup": "email", "stream": "orders-copy"}},
        ("spec.target", "target needs exactly one of consumerGroup, projection or stream"),
        python_message="target needs exactly one of consumerGroup, projection or stream",
    ),
)
