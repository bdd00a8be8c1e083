"""The access policy: which principals hold which permissions on which streams, and how rules combine.

A policy is a list of grants. Each grant gives some principals (exact names or ``*`` patterns) some
permissions on some streams (exact names or ``*`` patterns). For one principal and one stream, only
the grants whose principal patterns match count, and of their stream patterns that match the stream,
only the **most specific** decides (an exact name over any wildcard, then more literal characters):
its grants' permissions are the principal's permissions on that stream (several grants at the same
specificity add up). So a narrower rule can take permissions away:

    grants:
      - {principals: [ingest], streams: ["*"], permissions: [read, write]}
      - {principals: [ingest], streams: ["audit-*"], permissions: [read]}   # ingest may not write audit-*

A principal that no grant names holds nothing. Without a policy at all, Sluice authorizes nobody
(every authenticated caller may do everything): see ``docs/access-control.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from sluice.core.errors import InvalidArgumentError
from sluice.security.patterns import NamePattern, compile_pattern, compile_stream_pattern
from sluice.security.permissions import Permission, expand

MAX_REMEMBERED_DECISIONS = 100_000


@dataclasses.dataclass(frozen=True, slots=True)
class Grant:
    """Permissions that some principals hold on some streams."""

    principals: tuple[NamePattern, ...]
    streams: tuple[NamePattern, ...]
    permissions: frozenset[Permission]

    @classmethod
    def of(cls, *, principals: Iterable[str], streams: Iterable[str], permissions: Iterable[Permission | str]) -> Grant:
        """Build a grant from pattern strings (InvalidArgumentError for a bad pattern or permission)."""
        principal_patterns = tuple(compile_pattern(text) for text in principals)
        stream_patterns = tuple(compile_stream_pattern(text) for text in streams)
        try:
            held = frozenset(Permission(value) for value in permissions)
        except ValueError as error:
            raise InvalidArgumentError(
                f"{error}; permissions are {', '.join(permission.value for permission in Permission)}"
            ) from None
        if not principal_patterns or not stream_patterns or not held:
            raise InvalidArgumentError("a grant needs at least one principal, one stream pattern and one permission")
        return cls(principal_patterns, stream_patterns, expand(held))

    def names(self, principal: str) -> bool:
        return any(pattern.matches(principal) for pattern in self.principals)


class AccessPolicy:
    """Grants, evaluated with the most specific matching stream pattern deciding."""

    def __init__(self, grants: Sequence[Grant]) -> None:
        self.grants = tuple(grants)
        self._decisions: dict[tuple[str, str], frozenset[Permission]] = {}

    def grants_of(self, principal: str) -> tuple[Grant, ...]:
        """The grants that name ``principal`` (exactly or by a pattern)."""
        return tuple(grant for grant in self.grants if grant.names(principal))

    def permissions(self, principal: str, stream_name: str) -> frozenset[Permission]:
        """What ``principal`` may do to ``stream_name`` (remembered: the policy never changes)."""
        key = (principal, stream_name)
        held = self._decisions.get(key)
        if held is None:
            if len(self._decisions) >= MAX_REMEMBERED_DECISIONS:
                self._decisions.clear()
            held = self._decisions[key] = self._evaluate(principal, stream_name)
        return held

    def _evaluate(self, principal: str, stream_name: str) -> frozenset[Permission]:
        best: tuple[int, int] | None = None
        held: set[Permission] = set()
        for grant in self.grants_of(principal):
            matching = [pattern.specificity for pattern in grant.streams if pattern.matches(stream_name)]
            if not matching:
                continue
            specificity = max(matching)
            if best is None or specificity > best:
                best, held = specificity, set(grant.permissions)
            elif specificity == best:
                held |= grant.permissions
        return frozenset(held)

    def allows(self, principal: str, permission: Permission, stream_name: str) -> bool:
        return permission in self.permissions(principal, stream_name)

    def allows_everywhere(self, principal: str, permission: Permission) -> bool:
        """Whether ``principal`` holds ``permission`` on every stream, whatever its name: it has a grant
        on ``*`` with it, and no grant of it (which a narrower pattern could make decide) lacks it."""
        grants = self.grants_of(principal)
        covers_all = any(
            permission in grant.permissions and any(pattern.text == "*" for pattern in grant.streams)
            for grant in grants
        )
        return covers_all and all(permission in grant.permissions for grant in grants)

    def allows_anything(self, principal: str, stream_name: str) -> bool:
        """Whether ``principal`` holds any permission on ``stream_name`` (listing shows such streams)."""
        return bool(self.permissions(principal, stream_name))
