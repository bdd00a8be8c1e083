"""``./dev bench --write-readme`` rewrites only what lies between the README's markers, from the printed rows,
gives the same file when run twice, and refuses a README without its markers (bench/readme_table.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from bench.harness import Comparison
from bench.readme_table import (
    BEGIN_MARKER,
    END_MARKER,
    MarkersMissingError,
    RunDescription,
    check_markers,
    rewrite_table,
    table_markdown,
    write_readme_table,
)

RUN = RunDescription(
    command="./dev bench grpc --write-readme",
    finished=datetime(2026, 12, 7, 10, 30, tzinfo=UTC),
    machine="2 cores, Test CPU",
    load_before=(1.5, 2.0, 2.25),
    load_after=(3.0, 2.5, 2.0),
)
SUITES = [
    (
        "grpc",
        [
            Comparison("gRPC append batch 100, 8 clients", 9000.0, 15000.0, "events/s", ">= 0.5x", True),
            Comparison("subscribe latency, p99", 61.25, None, "ms", "<= 50 ms", False),
            Comparison("a | piped name", 1.0, None, "% core"),
        ],
    )
]
README = f"""# Sluice

## Benchmarks

Prose before the table.

{BEGIN_MARKER}
| scenario | old |
| --- | --- |
| stale | row |
{END_MARKER}

Prose after the table.
"""


def test_the_table_between_the_markers_is_replaced_by_the_printed_rows(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")
    write_readme_table(SUITES, RUN, readme)
    text = readme.read_text(encoding="utf-8")
    before, rest = text.split(BEGIN_MARKER)
    table, after = rest.split(END_MARKER)
    assert before == README.split(BEGIN_MARKER, maxsplit=1)[0]
    assert after == README.split(END_MARKER)[1]
    assert "stale" not in table
    assert "`./dev bench grpc --write-readme` on 2026-12-07 10:30 UTC; 2 cores, Test CPU" in table
    assert "1.50/2.00/2.25 at the start, 3.00/2.50/2.00 at the end" in table
    rows = [line for line in table.splitlines() if line.startswith("| grpc")]
    assert rows == [
        "| grpc | gRPC append batch 100, 8 clients | 9,000 events/s | 15,000 events/s | 0.60x | >= 0.5x | yes |",
        "| grpc | subscribe latency, p99 | 61.2 ms |  |  | <= 50 ms | no |",
        "| grpc | a \\| piped name | 1.0% core |  |  |  |  |",
    ]


def test_writing_the_same_run_twice_gives_the_same_file(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")
    write_readme_table(SUITES, RUN, readme)
    once = readme.read_text(encoding="utf-8")
    write_readme_table(SUITES, RUN, readme)
    assert readme.read_text(encoding="utf-8") == once
    assert once.count(BEGIN_MARKER) == 1
    assert once.count(END_MARKER) == 1


@pytest.mark.parametrize(
    "text",
    [
        "# Sluice\n\nno markers\n",
        f"# Sluice\n{BEGIN_MARKER}\nonly the beginning\n",
        f"# Sluice\nonly the end\n{END_MARKER}\n",
        f"# Sluice\n{END_MARKER}\nreversed\n{BEGIN_MARKER}\n",
        f"{BEGIN_MARKER}\n{END_MARKER}\n{BEGIN_MARKER}\n{END_MARKER}\n",
    ],
    ids=["none", "begin only", "end only", "reversed", "twice"],
)
def test_a_readme_without_its_markers_is_refused_and_left_alone(tmp_path: Path, text: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(text, encoding="utf-8")
    with pytest.raises(MarkersMissingError, match="bench:"):
        check_markers(readme)
    with pytest.raises(MarkersMissingError):
        write_readme_table(SUITES, RUN, readme)
    assert readme.read_text(encoding="utf-8") == text


def test_the_repository_readme_has_its_markers() -> None:
    check_markers()  # the README in the repository: ./dev bench --write-readme has somewhere to write


def test_the_table_lists_every_row_with_its_target_and_verdict() -> None:
    table = table_markdown(SUITES, RUN)
    assert table.splitlines()[2] == "| suite | scenario | Sluice | baseline | ratio | target | met |"
    assert len([line for line in table.splitlines() if line.startswith("| grpc")]) == 3
    assert rewrite_table(f"{BEGIN_MARKER}{END_MARKER}", table) == f"{BEGIN_MARKER}\n{table}\n{END_MARKER}"
