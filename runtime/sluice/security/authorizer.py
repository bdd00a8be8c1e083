"""The decision point: may this principal do this to this stream? Denials raise and are logged for audit.

Every decision that refuses is logged on the ``sluice.audit`` logger at WARNING as a structured record
(``principal``, ``action``, ``permission``, ``stream``, ``outcome``, ``correlation_id``); administrative
operations that are allowed are logged there at INFO, so that the log answers "who deleted this
stream". Reads, writes and consumption that are allowed are not logged (there are too many).
"""

from __future__ import annotations

import logging

from sluice.core.errors import PermissionDeniedError
from sluice.observability.correlation import current_correlation_id
from sluice.security.permissions import Permission
from sluice.security.policy import AccessPolicy

AUDIT_LOGGER_NAME = "sluice.audit"
EVERY_STREAM = "*"
"""The ``stream`` an audit record names for an operation on no stream in particular."""

audit_logger = logging.getLogger(AUDIT_LOGGER_NAME)


class Authorizer:
    """One principal's view of a policy: checks, with audit records."""

    def __init__(self, principal: str, policy: AccessPolicy) -> None:
        self.principal = principal
        self.policy = policy

    def require(
        self, permission: Permission, stream_name: str, *, action: str, correlation_id: str | None = None
    ) -> None:
        """Raise PermissionDeniedError (and log it) unless the principal holds ``permission`` on the stream."""
        allowed = self.policy.allows(self.principal, permission, stream_name)
        self._record(allowed, permission, stream_name, action=action, correlation_id=correlation_id)
        if not allowed:
            raise PermissionDeniedError(principal=self.principal, action=permission.value, resource=stream_name)

    def require_everywhere(self, permission: Permission, *, action: str) -> None:
        """Raise PermissionDeniedError unless the principal holds ``permission`` on every stream."""
        allowed = self.policy.allows_everywhere(self.principal, permission)
        self._record(allowed, permission, EVERY_STREAM, action=action, correlation_id=None)
        if not allowed:
            raise PermissionDeniedError(
                principal=self.principal, action=f"{permission.value} (on every stream)", resource=EVERY_STREAM
            )

    def may(self, permission: Permission, stream_name: str) -> bool:
        """A silent check (for filtering lists: what is left out is not a denial)."""
        return self.policy.allows(self.principal, permission, stream_name)

    def may_everywhere(self, permission: Permission) -> bool:
        return self.policy.allows_everywhere(self.principal, permission)

    def may_see(self, stream_name: str) -> bool:
        """Whether the stream shows in the principal's listings: it holds some permission on it."""
        return self.policy.allows_anything(self.principal, stream_name)

    def _record(
        self,
        allowed: bool,
        permission: Permission,
        stream_name: str,
        *,
        action: str,
        correlation_id: str | None,
    ) -> None:
        if allowed and permission is not Permission.ADMIN:
            return
        fields = {
            "principal": self.principal,
            "action": action,
            "permission": permission.value,
            "stream": stream_name,
            "outcome": "allowed" if allowed else "denied",
            "correlation_id": correlation_id or current_correlation_id(),
        }
        if allowed:
            audit_logger.info("access granted", extra=fields)
        else:
            audit_logger.warning("access denied", extra=fields)
