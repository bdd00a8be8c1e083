"""Who is calling: authentication of API callers (bearer tokens) shared by the gRPC and REST doors."""

from sluice.security.tokens import BearerTokens

__all__ = ["BearerTokens"]
