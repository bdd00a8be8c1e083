"""docs/argocd.md and what the Argo CD tests use cannot drift: the docs quote deploy/argocd's Application files
verbatim, and their sync-wave table is the one the tests annotate the example with (no cluster needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.argocd_live.gitops import PLATFORM_APPLICATION_FILE, SYNC_WAVES, WORKLOADS_APPLICATION_FILE
from tests.real_node.node_cluster import REPOSITORY_ROOT

DOCS = REPOSITORY_ROOT / "docs" / "argocd.md"
WAVE_ROW = re.compile(r"^\| `(-?\d+)` \| ([A-Za-z, ]+) \|$")


@pytest.mark.parametrize("path", [PLATFORM_APPLICATION_FILE, WORKLOADS_APPLICATION_FILE], ids=lambda path: path.name)
def test_the_docs_quote_each_application_file_verbatim(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert f"```yaml\n{text}```" in DOCS.read_text(encoding="utf-8"), f"docs/argocd.md must quote {path} verbatim"


def test_the_docs_sync_wave_table_is_the_one_the_tests_use() -> None:
    documented: dict[str, int] = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        match = WAVE_ROW.match(line)
        if match:
            for kind in match.group(2).split(","):
                documented[kind.strip()] = int(match.group(1))
    assert documented == SYNC_WAVES
