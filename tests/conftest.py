"""Shared fixtures: one throwaway PostgreSQL server per test run (per worker under pytest-xdist), a migrated
template database, and a fresh database per test cloned from it (``CREATE DATABASE ... TEMPLATE``, milliseconds).

``SLUICE_TEST_DSN=postgresql://user@host:port/db`` points the suite at an existing server instead
(the user must be allowed to create databases). Workers then share that server: the template's name carries
the worker id and each test database the worker's process id, so no two workers touch the same database.

Tests that need a machine-wide resource (the real node's bridge and ports, the image build's storage) run
in one xdist group, so ``--dist loadgroup`` sends them to a single worker one after another.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from _pytest.nodeid import NodeId  # private, for set_group_suffix only

from sluice.storage.postgres import migrations
from sluice.storage.postgres.embedded import EmbeddedPostgres, find_postgres_bindir
from tests.real_node.node_cluster import node_binaries_or_reason

WORKER_ID = os.environ.get("PYTEST_XDIST_WORKER", "main")
"""``gw0``, ``gw1``, ... under pytest-xdist; ``main`` in a run without workers."""
if not re.fullmatch(r"gw[0-9]+|main", WORKER_ID):
    raise RuntimeError(f"unexpected PYTEST_XDIST_WORKER {WORKER_ID!r}: it names databases")
TEMPLATE_DATABASE = f"sluice_test_template_{WORKER_ID}"
SCHEMA = "sluice"
_database_numbers = itertools.count(1)


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def postgres_admin_dsn() -> Iterator[str]:
    """A DSN to the server's maintenance database, on the embedded server unless SLUICE_TEST_DSN is set."""
    external = os.environ.get("SLUICE_TEST_DSN")
    if external:
        yield external
        return
    with EmbeddedPostgres() as server:
        yield server.dsn()


@pytest.fixture(scope="session")
def embedded_server_bindir() -> str:
    return str(find_postgres_bindir())


async def _create_template(admin_dsn: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {TEMPLATE_DATABASE}")
    finally:
        await admin.close()
    template = await asyncpg.connect(with_database(admin_dsn, TEMPLATE_DATABASE))
    try:
        await migrations.migrate(template, SCHEMA)
    finally:
        await template.close()


@pytest.fixture(scope="session")
def template_database(postgres_admin_dsn: str) -> str:
    """The name of a database with Sluice's schema installed, to clone per test."""
    asyncio.run(_create_template(postgres_admin_dsn))
    return TEMPLATE_DATABASE


@pytest.fixture
async def fresh_database(postgres_admin_dsn: str) -> AsyncIterator[str]:
    """A DSN to a new, empty database (no Sluice schema), dropped after the test."""
    name = f"sluice_test_{os.getpid()}_{next(_database_numbers)}"
    admin = await asyncpg.connect(postgres_admin_dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    yield with_database(postgres_admin_dsn, name)
    admin = await asyncpg.connect(postgres_admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def postgres_dsn(postgres_admin_dsn: str, template_database: str) -> AsyncIterator[str]:
    """A DSN to a new database with Sluice's schema, cloned from the template, dropped after the test."""
    name = f"sluice_test_{os.getpid()}_{next(_database_numbers)}"
    admin = await asyncpg.connect(postgres_admin_dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    finally:
        await admin.close()
    yield with_database(postgres_admin_dsn, name)
    admin = await asyncpg.connect(postgres_admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture(autouse=True)
async def no_leftover_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running (a subscription, heartbeat or notification
    task that outlives its store is a leak in production too)."""
    before = asyncio.all_tasks()
    yield
    for _ in range(20):  # give cancelled tasks a moment to finish
        leftover = {task for task in asyncio.all_tasks() - before if not task.done()}
        leftover.discard(asyncio.current_task())  # type: ignore[arg-type]
        if not leftover:
            return
        await asyncio.sleep(0.05)
    names = sorted(task.get_name() + ": " + repr(task.get_coro()) for task in leftover)
    pytest.fail("tasks left running: " + "; ".join(names))


KIND_OPTION = "--kind-e2e"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        KIND_OPTION, action="store_true", help="run the opt-in kind end-to-end suite in tests/kind (needs Docker)"
    )


@pytest.fixture(scope="session")
def node_binaries() -> tuple[Path, Path]:
    """(Kubernetes bin, node bin) folders for the tests of a real node (tests/real_node, tests/bare_node,
    tests/argocd_live); skips the test where no real node can run."""
    found = node_binaries_or_reason()
    if isinstance(found, str):
        pytest.skip(f"no real node on this machine: {found}")
    return found


MACHINE_WIDE_GROUPS = {"node": "machine", "image": "machine"}
"""Marker → xdist group of the tests that hold something only one test on the machine can hold at a time:
``node`` (the bridge rn0, its fixed node ports, iptables and mounts) and ``image`` (the buildah storage under
.cache/image, which the real-node tests fill too). A group runs on one worker under ``--dist loadgroup``."""


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of a machine-wide resource join its xdist group. Tests marked ``kind`` run only with
    ``--kind-e2e``; otherwise they are deselected (not skipped)."""
    for item in items:
        for marker, group in MACHINE_WIDE_GROUPS.items():
            if item.get_closest_marker(marker) is not None and item.get_closest_marker("xdist_group") is None:
                item.add_marker(pytest.mark.xdist_group(group))
    if config.getoption(KIND_OPTION):
        return
    deselected = [item for item in items if item.get_closest_marker("kind") is not None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item.get_closest_marker("kind") is None]


HEAVY_FIXTURE_MARKERS = {
    "kubernetes_cluster": "kubernetes",
    "helm": "kubernetes",
    "keda_control_plane": "keda",
    "real_cluster": "node",
    "node_binaries": "node",
    "gitops": "argocd",
    "built_image": "image",
}
"""Fixture → the marker every test using it must carry: these start the local control plane, build it (helm
comes from its build), start KEDA, the real node or Argo CD, or build the image, so ``-m "not kubernetes"``
and the like must really leave them out."""


def missing_markers(fixture_names: Iterable[str], marker_names: Iterable[str]) -> list[str]:
    """``fixture (needs the 'marker' marker)`` for each heavy fixture used without its marker."""
    markers = set(marker_names)
    return [
        f"{fixture} (needs the {HEAVY_FIXTURE_MARKERS[fixture]!r} marker)"
        for fixture in sorted(set(fixture_names) & HEAVY_FIXTURE_MARKERS.keys())
        if HEAVY_FIXTURE_MARKERS[fixture] not in markers
    ]


@pytest.hookimpl(tryfirst=True)  # before the fixtures are set up: an unmarked test starts nothing
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a test that uses a heavy fixture without its marker (HEAVY_FIXTURE_MARKERS)."""
    missing = missing_markers(getattr(item, "fixturenames", ()), (mark.name for mark in item.iter_markers()))
    if missing:
        pytest.fail(f"{item.nodeid} uses " + ", ".join(missing), pytrace=False)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's hook sends the ids to the controller
def pytest_collection_finish(session: pytest.Session) -> None:
    """Under ``--dist loadgroup``, make sure each grouped test's id ends in ``@<group>``: that suffix is all the
    controller sees of a group. pytest-xdist 3.8 writes it to ``item._nodeid``, which pytest 9.2 no longer
    reads (pytest-dev/pytest-xdist#1386): the grouped tests would silently spread over every worker."""
    if not getattr(session.config.option, "loadgroup", False):  # set in pytest-xdist's workers only
        return
    for item in session.items:
        groups = sorted(
            {
                str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                for mark in item.iter_markers("xdist_group")
            }
        )
        if groups:
            set_group_suffix(item, "_".join(groups))


def set_group_suffix(item: pytest.Item, group: str) -> None:
    """Give ``item`` the id ``<nodeid>@<group>`` unless pytest-xdist already did; fail the run if it won't stick."""
    suffix = f"@{group}"
    if item.nodeid.endswith(suffix):
        return
    grouped = item.nodeid + suffix
    item._id = NodeId.parse(grouped)
    if not item.nodeid.endswith(suffix):
        raise pytest.UsageError(f"cannot put {item.nodeid} in xdist group {group!r}: pytest changed its node ids")
