"""Putting one store or consumer-group method behind a permission check on the stream the call names.

The stream is found by the method's parameter names (``stream_name``, ``queue_name``, ``name``,
``stream``, or a ``config`` with a ``name``), so the check follows the method's signature as it evolves.
A call that names no stream needs the permission on every stream. A method with an ``actor`` parameter
(who did it, recorded in stream metadata) gets the principal when the caller did not pass one.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

from sluice.security.authorizer import Authorizer
from sluice.security.permissions import Permission

STREAM_ARGUMENT_NAMES = ("stream_name", "queue_name", "name", "stream")
ACTOR_ARGUMENT = "actor"


_signatures: dict[Callable[..., Any], inspect.Signature | None] = {}
"""Signatures by function: ``inspect.signature`` costs more than the rest of a check, and methods are few."""


def _signature_of(function: Callable[..., Any]) -> inspect.Signature | None:
    if function not in _signatures:
        try:
            _signatures[function] = inspect.signature(function)
        except (TypeError, ValueError):
            _signatures[function] = None
    return _signatures[function]


def _bind(target: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The arguments of a call by parameter name (None when they do not fit the signature)."""
    function = getattr(target, "__func__", target)  # a bound method: its function, with ``self`` bound too
    signature = _signature_of(function)
    if signature is None:
        return None
    leading = (getattr(target, "__self__", None),) if function is not target else ()
    try:
        return signature.bind_partial(*leading, *args, **kwargs).arguments
    except TypeError:
        return None


_stream_parameters: dict[Callable[..., Any], tuple[int | None, str] | None] = {}


def _stream_parameter(function: Callable[..., Any]) -> tuple[int | None, str] | None:
    """The position (None: keyword-only) and name of the parameter naming the stream, if any."""
    if function not in _stream_parameters:
        found: tuple[int | None, str] | None = None
        signature = _signature_of(function)
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for position, parameter in enumerate(signature.parameters.values() if signature is not None else ()):
            if parameter.name in STREAM_ARGUMENT_NAMES:
                found = (position if parameter.kind in positional else None, parameter.name)
                break
        _stream_parameters[function] = found
    return _stream_parameters[function]


def stream_named_by(target: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The stream a call of ``target`` names, or None when it names none."""
    function = getattr(target, "__func__", target)
    located = _stream_parameter(function)
    if located is not None:  # the common case, without binding every argument
        position, parameter_name = located
        value = kwargs.get(parameter_name)
        index = None if position is None else position - (0 if function is target else 1)
        if value is None and index is not None and 0 <= index < len(args):
            value = args[index]
        if isinstance(value, str):
            return value
    arguments = _bind(target, args, kwargs)
    if arguments is None:
        return None
    for parameter in STREAM_ARGUMENT_NAMES:
        value = arguments.get(parameter)
        if isinstance(value, str):
            return value
    config_name = getattr(arguments.get("config"), "name", None)
    return config_name if isinstance(config_name, str) else None


_shapes: dict[Callable[..., Any], tuple[str, bool]] = {}


def _shape(target: Callable[..., Any]) -> tuple[str, bool]:
    """How ``target`` is called (``generator``, ``coroutine`` or ``plain``) and whether it takes an actor."""
    function = getattr(target, "__func__", target)
    if function not in _shapes:
        kind = (
            "generator"
            if inspect.isasyncgenfunction(function)
            else "coroutine"
            if inspect.iscoroutinefunction(function)
            else "plain"
        )
        signature = _signature_of(function)
        _shapes[function] = (kind, signature is not None and ACTOR_ARGUMENT in signature.parameters)
    return _shapes[function]


def guarded(
    authorizer: Authorizer, name: str, permission: Permission, target: Callable[..., Any]
) -> Callable[..., Any]:
    """``target`` behind a check of ``permission`` (checked when called; for an async generator, when
    first iterated, as the generator itself would run)."""
    kind, takes_actor = _shape(target)

    def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        stream_name = stream_named_by(target, args, kwargs)
        if stream_name is None:
            authorizer.require_everywhere(permission, action=name)
        else:
            correlation_id = kwargs.get("correlation_id")
            authorizer.require(
                permission,
                stream_name,
                action=name,
                correlation_id=correlation_id if isinstance(correlation_id, str) else None,
            )
        if takes_actor and kwargs.get(ACTOR_ARGUMENT) is None:
            return {**kwargs, ACTOR_ARGUMENT: authorizer.principal}
        return kwargs

    if kind == "generator":

        async def checked_generator(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            checked_kwargs = check(args, kwargs)
            async for item in target(*args, **checked_kwargs):
                yield item

        return checked_generator
    if kind == "coroutine":

        async def checked_coroutine(*args: Any, **kwargs: Any) -> Any:
            checked_kwargs = check(args, kwargs)
            return await target(*args, **checked_kwargs)

        return checked_coroutine

    def checked(*args: Any, **kwargs: Any) -> Any:
        checked_kwargs = check(args, kwargs)
        return target(*args, **checked_kwargs)

    return checked
