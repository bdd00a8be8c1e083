"""What the docs name must exist: every ``tests/...`` path and ``test_...`` name in docs/*.md and README.md, and
every REST route they mention (checked against docs/openapi.json, which ``scripts/generate.sh --check`` keeps equal
to the app's), and every served route is documented somewhere. A renamed test or a removed route then fails here
instead of leaving a doc that lies."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import click

from sluice.cli import main as sluice_command

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
DOCS = (*sorted((REPOSITORY_ROOT / "docs").glob("*.md")), REPOSITORY_ROOT / "README.md")
REST_DOC = REPOSITORY_ROOT / "docs" / "rest-api.md"
TESTS = REPOSITORY_ROOT / "tests"

TEST_PATH = re.compile(r"(?<![\w/.-])tests/[A-Za-z0-9_./-]*[A-Za-z0-9_]")
TEST_NAME = re.compile(r"(?<![\w/.-])(test_[a-z0-9_]+)(\.py)?\b")
ROUTE = re.compile(r"`(?:(GET|POST|PUT|PATCH|DELETE) )?(/(?:api/[^`\s]*|health/[^`\s]*|metrics))`")
SLUICE_SNIPPET = re.compile(r"`(sluice [^`]*)`|^\s*(?:\$ )?(sluice .*)$", re.M)
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*(?![\w-]|\.\.\.)")
PREFIXES = frozenset({"/health/*"})
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def mentioned(pattern: re.Pattern[str], docs: tuple[Path, ...]) -> list[tuple[str, re.Match[str]]]:
    return [(path.name, match) for path in docs for match in pattern.finditer(path.read_text(encoding="utf-8"))]


@cache
def defined_test_functions() -> frozenset[str]:
    names: set[str] = set()
    for path in TESTS.rglob("*.py"):
        names.update(re.findall(r"^\s*(?:async )?def (test_[a-z0-9_]+)", path.read_text(encoding="utf-8"), re.M))
    return frozenset(names)


@cache
def defined_test_files() -> frozenset[str]:
    return frozenset(path.name for path in TESTS.rglob("test_*.py"))


def missing_test_paths(docs: tuple[Path, ...]) -> list[str]:
    return sorted(
        f"{doc}: {match.group()}"
        for doc, match in mentioned(TEST_PATH, docs)
        if not (REPOSITORY_ROOT / match.group()).exists()
    )


def missing_test_names(docs: tuple[Path, ...]) -> list[str]:
    missing: list[str] = []
    for doc, match in mentioned(TEST_NAME, docs):
        name, suffix = match.group(1), match.group(2)
        found = f"{name}.py" in defined_test_files() or (not suffix and name in defined_test_functions())
        if not found:
            missing.append(f"{doc}: {match.group()}")
    return sorted(missing)


def documented_routes(docs: tuple[Path, ...]) -> list[tuple[str | None, str]]:
    """(method or None, path) of every route ``docs`` name in backticks (``GET /api/...``, ``/api/...``); ``a|b``
    alternatives are expanded; ``/health/*`` is a prefix, not a route."""
    routes: list[tuple[str | None, str]] = []
    for _doc, match in mentioned(ROUTE, docs):
        method, path = match.group(1), match.group(2).split("?", 1)[0]
        if path in PREFIXES:
            continue
        head, _, last = path.rpartition("/")
        routes.extend((method, f"{head}/{alternative}") for alternative in last.split("|"))
    return routes


def shape(path: str) -> str:
    """A route with its parameters' names left out: /a/{name}/b and /a/{stream}/b are one route."""
    return re.sub(r"\{[^}]*\}", "{}", path)


@cache
def served_routes() -> dict[str, frozenset[str]]:
    document = json.loads((REPOSITORY_ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    return {
        shape(path): frozenset(method.upper() for method in operations if method in HTTP_METHODS)
        for path, operations in document["paths"].items()
    }


def unserved_routes(docs: tuple[Path, ...]) -> list[str]:
    served = served_routes()
    return sorted(
        f"{method or 'ANY'} {path}"
        for method, path in documented_routes(docs)
        if shape(path) not in served or (method is not None and method not in served[shape(path)])
    )


@cache
def sluice_options() -> frozenset[str]:
    """Every long option of every ``sluice`` command and subcommand."""
    options = {"--help"}
    commands: list[click.Command] = [sluice_command]
    while commands:
        command = commands.pop()
        for parameter in command.params:
            if isinstance(parameter, click.Option):
                options.update(name for name in (*parameter.opts, *parameter.secondary_opts) if name.startswith("--"))
        if isinstance(command, click.Group):
            commands.extend(command.commands.values())
    return frozenset(options)


def unknown_flags(docs: tuple[Path, ...]) -> list[str]:
    """Flags in ``sluice ...`` snippets (inline code or command lines) that no sluice command has (a flag cut off
    with ``...`` in captured output is left out)."""
    unknown: list[str] = []
    for doc, match in mentioned(SLUICE_SNIPPET, docs):
        snippet = match.group(1) or match.group(2)
        unknown.extend(f"{doc}: {flag}" for flag in FLAG.findall(snippet) if flag not in sluice_options())
    return sorted(unknown)


def test_every_tests_path_in_the_docs_exists() -> None:
    assert len(mentioned(TEST_PATH, DOCS)) > 30
    assert missing_test_paths(DOCS) == []


def test_every_test_name_in_the_docs_exists() -> None:
    assert len(mentioned(TEST_NAME, DOCS)) > 10
    assert missing_test_names(DOCS) == []


def test_every_route_in_the_docs_is_served() -> None:
    assert len(documented_routes((REST_DOC,))) > 20
    assert unserved_routes(DOCS) == []


def test_every_served_route_is_documented() -> None:
    """In docs/rest-api.md or in the page of its feature (dead-letters.md, replay.md, sagas.md, ...)."""
    documented = {shape(path) for _method, path in documented_routes(DOCS)}
    assert sorted(set(served_routes()) - documented) == []


def test_every_sluice_flag_in_the_docs_exists() -> None:
    assert len(mentioned(SLUICE_SNIPPET, DOCS)) > 30
    assert unknown_flags(DOCS) == []


def test_the_checks_find_what_does_not_exist(tmp_path: Path) -> None:
    doc = tmp_path / "wrong.md"
    doc.write_text(
        "Tested by `tests/grpc_api/test_partition_moves.py` (test_events_are_lost_when_a_partition_moves) and\n"
        "`tests/rest/test_fuzzing.py`. Archive with `POST /api/event-streams/{name}/freeze|archive`;\n"
        "`DELETE /api/sagas/{id}` ends a saga. Run `sluice serve --metrics-port 9090 --dsn ...`.\n",
        encoding="utf-8",
    )
    assert missing_test_paths((doc,)) == ["wrong.md: tests/grpc_api/test_partition_moves.py"]
    assert missing_test_names((doc,)) == ["wrong.md: test_events_are_lost_when_a_partition_moves"]
    assert unserved_routes((doc,)) == ["DELETE /api/sagas/{id}", "POST /api/event-streams/{name}/freeze"]
    assert unknown_flags((doc,)) == ["wrong.md: --metrics-port"]
