"""Authentication of gRPC calls: a server interceptor that names the caller of every call.

Every call must carry ``authorization: Bearer <token>`` metadata when an authenticator is configured,
except the standard health and reflection services (probes and tools such as grpcurl call them without
credentials; they reveal nothing but the API's shape and whether the server is up). Without an
authenticator every caller is ``anonymous``. The handler then runs inside ``caller_context(principal)``
(and ``correlation_context`` of its ``x-correlation-id``), which the per-call authorized store reads.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from sluice.core.errors import SluiceError, UnauthenticatedError
from sluice.observability.correlation import MAX_CORRELATION_ID_LENGTH, correlation_context
from sluice.rpc.call_context import CORRELATION_ID_METADATA_KEY
from sluice.rpc.refusal import await_first_request
from sluice.rpc.status_codes import abort_with, sluice_error_of
from sluice.security.authentication import ANONYMOUS, Authenticator
from sluice.security.caller_scope import caller_context, enter_caller_context

UNAUTHENTICATED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Behavior = Callable[..., Any]
"""A handler's behavior (the stubs type them for the sync server; the aio server passes coroutines)."""


def _denying_handler(handler: grpc.RpcMethodHandler[Any, Any], error: SluiceError) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape as ``handler`` that ends the call with ``error`` (UNAUTHENTICATED, or
    the status of whatever else stopped the authenticator)."""

    async def deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await abort_with(context, error)

    async def deny_after_first_request(
        requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        await await_first_request(requests)  # or the client may see INTERNAL instead (sluice.rpc.refusal)
        await abort_with(context, error)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny_after_first_request)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny_after_first_request)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny)
    return grpc.unary_unary_rpc_method_handler(deny)


def _as_caller(behavior: Behavior, principal: str, correlation_id: str | None) -> Behavior:
    """``behavior`` run as ``principal`` (and with the call's correlation id)."""
    if inspect.isasyncgenfunction(behavior):

        async def generate_as_caller(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            enter_caller_context(principal)  # the call's own task: nothing else runs in this context
            async for response in behavior(request, context):
                yield response

        return generate_as_caller

    async def run_as_caller(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        with caller_context(principal), correlation_context(correlation_id):
            return await behavior(request, context)

    return run_as_caller


def _handler_as_caller(
    handler: grpc.RpcMethodHandler[Any, Any], principal: str, correlation_id: str | None
) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler (same shape and serializers), running as ``principal``."""
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _as_caller(handler.unary_unary, principal, correlation_id), **serializers
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _as_caller(handler.unary_stream, principal, correlation_id), **serializers
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _as_caller(handler.stream_unary, principal, correlation_id), **serializers
        )
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(
        _as_caller(handler.stream_stream, principal, correlation_id), **serializers
    )


class AuthenticationInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls whose credentials the authenticator does not accept, before the service sees them,
    and runs the others as their principal (``anonymous`` when there is no authenticator)."""

    def __init__(self, authenticator: Authenticator | None) -> None:
        self._authenticator = authenticator

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
        correlation_id = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                authorization = value if isinstance(value, str) else None
            elif key == CORRELATION_ID_METADATA_KEY and isinstance(value, str) and value:
                correlation_id = value[:MAX_CORRELATION_ID_LENGTH]
        if self._authenticator is None:
            return _handler_as_caller(handler, ANONYMOUS, correlation_id)
        try:
            principal = await self._authenticator.principal_of(authorization)
        except UnauthenticatedError as error:
            return _denying_handler(handler, error)
        except Exception as error:  # an authenticator that failed (unreachable, a bug): never UNKNOWN
            return _denying_handler(handler, sluice_error_of(error))
        return _handler_as_caller(handler, principal, correlation_id)
