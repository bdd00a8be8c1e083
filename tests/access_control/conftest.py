"""Fixtures of the access-control tests: one policy with a principal per role, its tokens, and the shared
``store`` fixture (memory and PostgreSQL)."""

from __future__ import annotations

import pytest

from sluice.security import AccessPolicy, BearerTokens, parse_policy
from tests.store_fixtures import store, store_url  # noqa: F401  (shared fixtures)

POLICY_DOCUMENT = """
grants:
  - principals: [reader]
    streams: ["*"]
    permissions: [read]
  - principals: [writer]
    streams: ["orders", "orders-*", "jobs"]
    permissions: [write, read]
  - principals: [writer]
    streams: ["orders-audit"]        # an exact name beats "orders-*": the writer may only read it
    permissions: [read]
  - principals: [worker]
    streams: ["orders", "jobs"]
    permissions: [consume]
  - principals: [operator]
    streams: ["*"]
    permissions: [admin]
  - principals: ["system:serviceaccount:shipping:*"]
    streams: ["orders"]
    permissions: [read]
"""

TOKENS = {"reader": "reader-token", "writer": "writer-token", "worker": "worker-token", "operator": "operator-token"}


def bearer(principal: str) -> dict[str, str]:
    """The Authorization header of a principal's token."""
    return {"Authorization": f"Bearer {TOKENS[principal]}"}


@pytest.fixture
def policy() -> AccessPolicy:
    return parse_policy(POLICY_DOCUMENT)


@pytest.fixture
def tokens() -> BearerTokens:
    return BearerTokens({token: principal for principal, token in TOKENS.items()})
