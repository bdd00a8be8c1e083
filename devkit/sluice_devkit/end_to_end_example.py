"""The end-to-end example (``examples/end-to-end/``) as the local platform applies it.

The files are applied as written, with two substitutions the platform prints: the database Secret's ``uri``
becomes the URL of the PostgreSQL the platform started, and the ConsumerGroup's sink URL becomes the local
sink's (a pod would reach the email service by its cluster DNS name; a local process cannot).
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from sluice_devkit.platform_errors import PlatformError

__all__ = [
    "CONSUMER_GROUP",
    "DATABASE_SECRET",
    "DEFAULT_EXAMPLE_DIRECTORY",
    "PROJECTION",
    "PROJECTION_TABLE",
    "REPLAY",
    "STREAM",
    "ExampleManifests",
    "load_example_manifests",
]

DEFAULT_EXAMPLE_DIRECTORY = Path(__file__).resolve().parents[2] / "examples" / "end-to-end"
"""``examples/end-to-end`` of the source checkout this module runs from."""
DATABASE_SECRET = "sluice-database"  # noqa: S105 - the Secret's name, not a password
STREAM = "orders"
CONSUMER_GROUP = "email-notifications"
PROJECTION = "order-summary"
PROJECTION_TABLE = "reporting.order_summary"
REPLAY = "orders-to-email-notifications"


class _YamlModule(Protocol):
    def safe_load_all(self, stream: str) -> Any: ...  # YAML documents are any JSON


def _yaml_module() -> _YamlModule:
    # PyYAML ships no type hints; this is its one entry point used here.
    return cast(_YamlModule, importlib.import_module("yaml"))


@dataclass(frozen=True)
class ExampleManifests:
    """The example's objects in file order, and the files they came from."""

    manifests: Sequence[dict[str, Any]]
    files: Sequence[Path]

    def kinds_and_names(self) -> list[tuple[str, str]]:
        return [(manifest["kind"], manifest["metadata"]["name"]) for manifest in self.manifests]

    def for_local_platform(self, *, database_url: str, sink_url: str) -> list[dict[str, Any]]:
        """Copies with the Secret's ``uri`` and the ConsumerGroup's sink URL replaced."""
        adapted = []
        for original in self.manifests:
            manifest = copy.deepcopy(original)
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            if kind == "Secret" and name == DATABASE_SECRET:
                manifest.pop("data", None)
                manifest["stringData"] = {"uri": database_url}
            elif kind == "ConsumerGroup" and name == CONSUMER_GROUP:
                manifest["spec"]["handler"] = {"sink": {**manifest["spec"]["handler"]["sink"], "url": sink_url}}
            adapted.append(manifest)
        return adapted


def load_example_manifests(directory: Path = DEFAULT_EXAMPLE_DIRECTORY) -> ExampleManifests:
    """Every object of every ``*.yaml`` file in ``directory``, in file-name order."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise PlatformError(f"no *.yaml files in {directory}: is this a Sluice source checkout?")
    manifests: list[dict[str, Any]] = []
    yaml = _yaml_module()
    for path in files:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is None:
                continue
            if not isinstance(document, dict) or "kind" not in document or "metadata" not in document:
                raise PlatformError(f"{path}: every document must be a Kubernetes object")
            manifests.append(document)
    example = ExampleManifests(manifests=manifests, files=files)
    expected = {("Secret", DATABASE_SECRET), ("EventStream", STREAM), ("ConsumerGroup", CONSUMER_GROUP)}
    missing = expected - set(example.kinds_and_names())
    if missing:
        raise PlatformError(f"{directory} lacks {sorted(missing)}, which the local platform needs")
    return example
