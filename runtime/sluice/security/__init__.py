"""Who is calling and what they may do: authentication of API callers and access control.

- Authentication: ``BearerTokens`` (static API tokens), ``TokenReviewAuthenticator`` (Kubernetes
  service-account tokens), ``AuthenticatorChain``; each turns an ``Authorization`` header into a principal.
- Authorization: an ``AccessPolicy`` of grants (principal patterns, stream patterns, permissions
  read/write/consume/admin), loaded by ``policy_from_environment``; ``authorized_store(store,
  principal=..., policy=...)`` enforces it in the library, and the gRPC and REST doors per call.
See docs/access-control.md.
"""

from sluice.security.authentication import ANONYMOUS, Authenticator, AuthenticatorChain
from sluice.security.authorized_store import AuthorizedStore, authorized_store
from sluice.security.permissions import Permission
from sluice.security.policy import AccessPolicy, Grant
from sluice.security.policy_loading import load_policy_file, parse_policy, policy_from_environment
from sluice.security.token_review import TokenReviewAuthenticator
from sluice.security.tokens import BearerTokens

__all__ = [
    "ANONYMOUS",
    "AccessPolicy",
    "Authenticator",
    "AuthenticatorChain",
    "AuthorizedStore",
    "BearerTokens",
    "Grant",
    "Permission",
    "TokenReviewAuthenticator",
    "authorized_store",
    "load_policy_file",
    "parse_policy",
    "policy_from_environment",
]
