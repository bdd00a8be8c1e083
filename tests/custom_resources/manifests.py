"""Reading the repository's YAML manifests (examples/, crds/) in tests, and minimal valid specs per kind."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol, cast

from sluice_operator.models import API_VERSION

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIRECTORY = REPOSITORY_ROOT / "examples"
CRDS_DIRECTORY = REPOSITORY_ROOT / "crds"
SLUICE_EXAMPLE_FILES = (
    "event-stream.yaml",
    "consumer-group.yaml",
    "retention-policy.yaml",
    "projection.yaml",
    "replay.yaml",
)
"""One example per kind, in the order of sluice_operator.models.CUSTOM_RESOURCES."""


class _YamlModule(Protocol):
    def safe_load_all(self, stream: str) -> Any: ...  # YAML documents are any JSON


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document in a file (PyYAML ships no type hints, so it is imported dynamically)."""
    yaml = cast(_YamlModule, importlib.import_module("yaml"))
    documents = [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]
    for document in documents:
        if not isinstance(document, dict):
            raise TypeError(f"{path}: a document is not a mapping")
    return documents


def load_example(file_name: str) -> dict[str, Any]:
    """The one object of an example file."""
    (document,) = load_documents(EXAMPLES_DIRECTORY / file_name)
    return document


def minimal_manifest(kind: str, name: str) -> dict[str, Any]:
    """The smallest valid object of each kind: what the API server's defaults are tested against."""
    specs: dict[str, dict[str, Any]] = {
        "EventStream": {},
        "ConsumerGroup": {"streamRef": {"name": "orders"}, "handler": {"sink": {"url": "http://sink.example/events"}}},
        "RetentionPolicy": {"streamSelector": {"names": ["orders*"]}, "maxAge": "7d"},
        "Projection": {
            "sources": ["orders"],
            "target": {"entrypoint": {"function": "shop.projections:apply", "image": "example/worker:1"}},
        },
        "Replay": {"source": {"stream": "orders"}, "fromOffset": 0, "target": {"consumerGroup": "email"}},
    }
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": specs[kind]}
