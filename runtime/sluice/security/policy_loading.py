"""Reading an access policy from a file or the environment (YAML or JSON; JSON is YAML too).

``SLUICE_ACCESS_POLICY_FILE`` names a file (a mounted ConfigMap, say); ``SLUICE_ACCESS_POLICY`` holds
the document inline. Neither set: no policy (every authenticated caller may do everything). The
document:

    grants:
      - principals: [ingest]                                  # exact principal names ...
        streams: ["orders", "orders-*"]
        permissions: [write]
      - principals: ["system:serviceaccount:shipping:*"]      # ... or patterns
        streams: ["orders-*"]
        permissions: [consume, read]

A malformed document raises InvalidArgumentError naming the problem: a server refuses to start
rather than run with a policy it misread.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pydantic
import yaml

from sluice.core.errors import InvalidArgumentError
from sluice.security.permissions import Permission
from sluice.security.policy import AccessPolicy, Grant

POLICY_FILE_VARIABLE = "SLUICE_ACCESS_POLICY_FILE"
POLICY_VARIABLE = "SLUICE_ACCESS_POLICY"


class _GrantDocument(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    principals: list[str] = pydantic.Field(min_length=1)
    streams: list[str] = pydantic.Field(min_length=1)
    permissions: list[Permission] = pydantic.Field(min_length=1)


class _PolicyDocument(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    grants: list[_GrantDocument]


def parse_policy(text: str, *, source: str = "the access policy") -> AccessPolicy:
    """Parse a YAML or JSON policy document."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidArgumentError(f"{source} is not valid YAML or JSON: {error}") from None
    return policy_from_document(document, source=source)


def policy_from_document(document: object, *, source: str = "the access policy") -> AccessPolicy:
    """Build a policy from an already parsed document (a mapping with a ``grants`` list)."""
    try:
        parsed = _PolicyDocument.model_validate(document)
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'document'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise InvalidArgumentError(f"{source} is not valid: {problems}") from None
    return AccessPolicy(
        [
            Grant.of(principals=grant.principals, streams=grant.streams, permissions=grant.permissions)
            for grant in parsed.grants
        ]
    )


def load_policy_file(path: Path) -> AccessPolicy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidArgumentError(f"cannot read the access policy file {str(path)!r}: {error.strerror}") from None
    return parse_policy(text, source=f"access policy file {str(path)!r}")


def policy_from_environment(environ: Mapping[str, str] | None = None) -> AccessPolicy | None:
    """The policy configured in the environment, or None when there is none."""
    environment = os.environ if environ is None else environ
    file_name = environment.get(POLICY_FILE_VARIABLE)
    if file_name:
        return load_policy_file(Path(file_name))
    inline = environment.get(POLICY_VARIABLE)
    if inline:
        return parse_policy(inline, source=f"${POLICY_VARIABLE}")
    return None
