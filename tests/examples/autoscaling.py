"""Reading examples/autoscaling/ in tests: the example files, the documents in them, and the KEDA lag query."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.custom_resources.manifests import EXAMPLES_DIRECTORY, REPOSITORY_ROOT, load_documents, load_example

AUTOSCALING_DIRECTORY = EXAMPLES_DIRECTORY / "autoscaling"
KEDA_LAG_QUERY_FILE = REPOSITORY_ROOT / "runtime" / "sluice" / "storage" / "postgres" / "sql" / "keda_lag.sql"


def autoscaling_documents(file_name: str) -> list[dict[str, Any]]:
    return load_documents(AUTOSCALING_DIRECTORY / file_name)


def one_document(file_name: str, kind: str) -> dict[str, Any]:
    """The one document of ``kind`` in an autoscaling example file."""
    (document,) = [document for document in autoscaling_documents(file_name) if document.get("kind") == kind]
    return document


def keda_lag_query(path: Path = KEDA_LAG_QUERY_FILE) -> str:
    """The statement of keda_lag.sql: its text without the leading ``--`` comment lines."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.startswith("--")).strip()


def example_stream_partitions() -> int:
    """Partitions of the stream the example ConsumerGroup reads (examples/event-stream.yaml)."""
    stream = load_example("event-stream.yaml")
    group = load_example("consumer-group.yaml")
    assert group["spec"]["streamRef"]["name"] == stream["metadata"]["name"]
    partitions = stream["spec"]["partitions"]
    assert isinstance(partitions, int)
    return partitions
