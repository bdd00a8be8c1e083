"""Fixtures of the controller tests: an in-memory Kubernetes API (``FakeKubernetes``), a real PostgreSQL
database per test behind the namespace's ``sluice-database`` Secret, and the operator's composition root
(``OperatorContext``) over both, as the operator's start-up builds it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from sluice_operator.controllers.context import OperatorContext
from sluice_operator.databases import Databases
from sluice_operator.settings import OperatorSettings
from tests.operator_controllers.fake_kubernetes import FakeKubernetes

NAMESPACE = "shop"
DATABASE_SECRET = "sluice-database"
IMAGE = "registry.example/sluice:test"
DATABASE_TIMEOUT_SECONDS = 5.0


def closed_port_dsn() -> str:
    """A DSN where nothing listens: a loopback port that was free a moment ago (a database that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return f"postgresql://nobody:secret-password@127.0.0.1:{port}/nothing"


def manifest(kind: str, name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    """An object of one of Sluice's kinds, as a user writes it."""
    return {"apiVersion": "sluice.dev/v1alpha1", "kind": kind, "metadata": {"name": name, **metadata}, "spec": spec}


def event_stream(name: str, *, secret: str = DATABASE_SECRET, **spec: Any) -> dict[str, Any]:
    return manifest("EventStream", name, {"database": {"secretRef": {"name": secret}}, **spec})


def conditions(body: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Condition type → condition."""
    assert body is not None
    return {condition["type"]: condition for condition in (body.get("status") or {}).get("conditions") or []}


def condition(body: dict[str, Any] | None, condition_type: str) -> tuple[str, str]:
    """(status, reason) of one condition."""
    found = conditions(body)[condition_type]
    return str(found["status"]), str(found["reason"])


@pytest.fixture
def kubernetes() -> FakeKubernetes:
    return FakeKubernetes()


@pytest.fixture
async def operator_context(kubernetes: FakeKubernetes, postgres_dsn: str) -> AsyncIterator[OperatorContext]:
    """The operator's context, with the namespace's database Secret pointing at this test's database."""
    async with _context(kubernetes, postgres_dsn) as context:
        yield context


@pytest.fixture
async def offline_context(kubernetes: FakeKubernetes) -> AsyncIterator[OperatorContext]:
    """The operator's context for tests that never reach a database (it saves cloning one): the Secret
    points where nothing listens, so a test that does reach it sees DatabaseUnreachable."""
    async with _context(kubernetes, closed_port_dsn()) as context:
        yield context


@asynccontextmanager
async def _context(kubernetes: FakeKubernetes, database_url: str) -> AsyncIterator[OperatorContext]:
    kubernetes.put_secret(NAMESPACE, DATABASE_SECRET, {"uri": database_url})
    context = OperatorContext(
        settings=OperatorSettings(image=IMAGE, database_timeout_seconds=DATABASE_TIMEOUT_SECONDS),
        kubernetes=kubernetes,
        databases=Databases(timeout_seconds=DATABASE_TIMEOUT_SECONDS),
        namespaces=(NAMESPACE,),
    )
    try:
        yield context
    finally:
        await context.close()
