"""Bearer-token authentication of gRPC calls: a server interceptor over ``sluice.security.BearerTokens``.

Every call must carry ``authorization: Bearer <token>`` metadata, except the standard health and
reflection services (probes and tools such as grpcurl call them without credentials; they reveal
nothing but the API's shape and whether the server is up).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from sluice.errors import UnauthenticatedError
from sluice.rpc.status_codes import abort_with
from sluice.security import BearerTokens

UNAUTHENTICATED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _denying_handler(
    handler: grpc.RpcMethodHandler[Any, Any], error: UnauthenticatedError
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape as ``handler`` that ends the call as UNAUTHENTICATED."""

    async def deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await abort_with(context, error)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny)
    return grpc.unary_unary_rpc_method_handler(deny)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls whose bearer token is missing or unknown, before the service sees them."""

    def __init__(self, tokens: BearerTokens) -> None:
        self._tokens = tokens

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method or ""
        if handler is None or method.startswith(UNAUTHENTICATED_PREFIXES):
            return handler
        authorization = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                authorization = value if isinstance(value, str) else None
        try:
            self._tokens.authenticate(authorization)
        except UnauthenticatedError as error:
            return _denying_handler(handler, error)
        return handler
