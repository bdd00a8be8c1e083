"""The access policy on its own: pattern precedence, implied permissions, principal patterns, loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sluice.core.errors import InvalidArgumentError
from sluice.security import AccessPolicy, Grant, Permission, parse_policy, policy_from_environment
from sluice.security.policy_loading import POLICY_FILE_VARIABLE, POLICY_VARIABLE

READ, WRITE, CONSUME, ADMIN = Permission.READ, Permission.WRITE, Permission.CONSUME, Permission.ADMIN


def test_the_most_specific_stream_pattern_decides(policy: AccessPolicy) -> None:
    assert policy.permissions("writer", "orders-eu") == {READ, WRITE}  # "orders-*"
    assert policy.permissions("writer", "orders-audit") == {READ}  # the exact name wins over "orders-*"
    assert policy.permissions("writer", "payments") == frozenset()  # no pattern matches
    assert policy.permissions("worker", "orders") == {CONSUME}


def test_longer_literal_patterns_beat_shorter_ones_and_ties_add_up() -> None:
    policy = AccessPolicy(
        [
            Grant.of(principals=["p"], streams=["*"], permissions=["read", "write"]),
            Grant.of(principals=["p"], streams=["orders-*"], permissions=["read"]),
            Grant.of(principals=["p"], streams=["orders-eu-*"], permissions=["write"]),
            Grant.of(principals=["p", "q"], streams=["orders-eu-*"], permissions=["consume"]),
        ]
    )
    assert policy.permissions("p", "payments") == {READ, WRITE}
    assert policy.permissions("p", "orders-us") == {READ}  # "orders-*" takes write away
    assert policy.permissions("p", "orders-eu-1") == {WRITE, CONSUME}  # two grants at the same pattern
    assert policy.permissions("q", "orders-eu-1") == {CONSUME}
    assert policy.permissions("q", "orders-us") == frozenset()


def test_admin_implies_every_other_permission(policy: AccessPolicy) -> None:
    assert policy.permissions("operator", "anything") == {READ, WRITE, CONSUME, ADMIN}
    assert policy.allows_everywhere("operator", ADMIN)
    assert not policy.allows_everywhere("reader", ADMIN)
    assert policy.allows_everywhere("reader", READ)
    assert not policy.allows_everywhere("writer", WRITE)


def test_principals_match_exactly_or_by_service_account_pattern(policy: AccessPolicy) -> None:
    assert policy.allows("system:serviceaccount:shipping:mailer", READ, "orders")
    assert not policy.allows("system:serviceaccount:billing:mailer", READ, "orders")
    assert not policy.allows("read", READ, "orders")  # exact: a prefix of "reader" is someone else
    assert not policy.allows("nobody", READ, "orders")


def test_patterns_match_literally_apart_from_the_wildcard() -> None:
    policy = AccessPolicy([Grant.of(principals=["team.a+"], streams=["a.b"], permissions=["read"])])
    assert policy.allows("team.a+", READ, "a.b")
    assert not policy.allows("teamXa", READ, "a.b")
    assert not policy.allows("team.a+", READ, "aXb")


def test_json_documents_load_too_and_the_environment_names_the_file(tmp_path: Path) -> None:
    document = {"grants": [{"principals": ["ci"], "streams": ["builds"], "permissions": ["write"]}]}
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    from_file = policy_from_environment({POLICY_FILE_VARIABLE: str(path)})
    inline = policy_from_environment({POLICY_VARIABLE: json.dumps(document)})
    for policy in (from_file, inline):
        assert policy is not None
        assert policy.permissions("ci", "builds") == {WRITE}
    assert policy_from_environment({}) is None


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ("grants: [{principals: [a], streams: ['*'], permissions: [fly]}]", "permissions"),
        ("grants: [{principals: [a], streams: ['bad name!'], permissions: [read]}]", "stream pattern"),
        ("grants: [{principals: [], streams: ['*'], permissions: [read]}]", "principals"),
        ("grants: [{principals: [a], streams: ['*'], permissions: [read], extra: 1}]", "extra"),
        ("{grants: [", "not valid YAML"),
        ("[]", "not valid"),
    ],
)
def test_a_malformed_policy_is_a_typed_error_naming_the_problem(document: str, complaint: str) -> None:
    with pytest.raises(InvalidArgumentError, match=complaint):
        parse_policy(document)


def test_a_missing_policy_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="cannot read the access policy file"):
        policy_from_environment({POLICY_FILE_VARIABLE: str(tmp_path / "absent.yaml")})
