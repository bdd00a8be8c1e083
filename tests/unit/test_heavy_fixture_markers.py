"""The check in tests/conftest.py that a test using a heavy fixture (the control plane, helm, KEDA, the real
node, Argo CD, the image) carries that fixture's marker, so that deselecting the marker leaves it out."""

from __future__ import annotations

import pytest

from tests.conftest import HEAVY_FIXTURE_MARKERS, missing_markers


def test_a_heavy_fixture_without_its_marker_is_reported() -> None:
    assert missing_markers(["tmp_path", "kubernetes_cluster"], ["slow"]) == [
        "kubernetes_cluster (needs the 'kubernetes' marker)"
    ]
    assert missing_markers(["helm", "built_image"], ["kubernetes"]) == ["built_image (needs the 'image' marker)"]


def test_marked_tests_and_light_fixtures_pass() -> None:
    assert missing_markers(["kubernetes_cluster", "helm"], ["kubernetes", "postgres"]) == []
    assert missing_markers(["real_cluster", "node_binaries"], ["kubernetes", "node"]) == []
    assert missing_markers(["postgres_dsn", "tmp_path"], []) == []


def test_every_marker_named_is_registered(pytestconfig: pytest.Config) -> None:
    registered = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert set(HEAVY_FIXTURE_MARKERS.values()) <= registered
