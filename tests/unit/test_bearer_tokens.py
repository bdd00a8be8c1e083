"""Bearer tokens: parsing, environment configuration and authentication."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.core.errors import InvalidArgumentError, UnauthenticatedError
from sluice.security import BearerTokens


def test_authenticate_returns_the_principal_owning_the_token() -> None:
    tokens = BearerTokens.parse(["alice=secret-a", "bob=secret-b"])
    assert tokens.authenticate("Bearer secret-a") == "alice"
    assert tokens.authenticate("bearer secret-b") == "bob"


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer wrong", "secret-a"])
def test_missing_or_unknown_tokens_are_refused(header: str | None) -> None:
    tokens = BearerTokens.parse(["alice=secret-a"])
    with pytest.raises(UnauthenticatedError):
        tokens.authenticate(header)


def test_environment_inline_and_file(tmp_path: Path) -> None:
    assert BearerTokens.from_environment({}) is None
    inline = BearerTokens.from_environment({"SLUICE_API_TOKENS": "alice=one, bob=two"})
    assert inline is not None
    assert inline.authenticate("Bearer two") == "bob"
    token_file = tmp_path / "tokens"
    token_file.write_text("# operators\ncarol=three\n\n", encoding="utf-8")
    from_file = BearerTokens.from_environment({"SLUICE_API_TOKENS_FILE": str(token_file)})
    assert from_file is not None
    assert from_file.authenticate("Bearer three") == "carol"


@pytest.mark.parametrize("pairs", [[], ["no-separator"], ["=token"], ["principal="]])
def test_malformed_configuration_is_a_typed_error(pairs: list[str]) -> None:
    with pytest.raises(InvalidArgumentError):
        BearerTokens.parse(pairs)
