"""Load a Python handler from a ``module:function`` spec, for ``sluice consume --handler``.

The function takes one ConsumedEvent and returns None; it may be ``async def`` or a plain
function (which then runs in a worker thread, so a slow handler does not stop heartbeats). It
signals failure by raising: the worker retries it and eventually dead-letters the event. The spec
may name a nested attribute (``package.module:Class.method``).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any

from sluice.core.errors import HandlerSpecError
from sluice.store.values.consumed import ConsumedEvent

HANDLER_SPEC_PATTERN = re.compile(
    r"(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<attribute>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
)
"""``module.path:attribute.path``, Python identifiers separated by dots."""

Handler = Callable[[ConsumedEvent, int], Awaitable[None]]
"""A loaded handler as the worker calls it: the event and the attempt number (not passed on)."""


def parse_handler_spec(spec: str) -> tuple[str, str]:
    """Split ``module:function`` into its module and attribute paths; HandlerSpecError if malformed."""
    match = HANDLER_SPEC_PATTERN.fullmatch(spec)
    if match is None:
        raise HandlerSpecError(
            f"invalid handler {spec!r}: expected 'module:function' (for example 'my_app.handlers:on_order')"
        )
    return match["module"], match["attribute"]


def load_handler(spec: str) -> Handler:
    """Import the handler ``spec`` names and return it as a coroutine function."""
    module_name, attribute_path = parse_handler_spec(spec)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise HandlerSpecError(f"handler {spec!r}: cannot import module {module_name!r}: {error}") from error
    for attribute in attribute_path.split("."):
        if not hasattr(target, attribute):
            raise HandlerSpecError(f"handler {spec!r}: {module_name!r} has no attribute {attribute_path!r}")
        target = getattr(target, attribute)
    if not callable(target):
        raise HandlerSpecError(f"handler {spec!r}: {attribute_path!r} is a {type(target).__name__}, not callable")
    return as_coroutine_function(target)


def as_coroutine_function(function: Callable[[ConsumedEvent], Any]) -> Handler:
    """Wrap a sync or async handler into one coroutine function."""
    if inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(getattr(function, "__call__", None)):  # noqa: B004

        async def call_async(event: ConsumedEvent, attempt: int) -> None:
            await function(event)

        return call_async

    async def call_in_thread(event: ConsumedEvent, attempt: int) -> None:
        result = await asyncio.to_thread(function, event)
        if inspect.isawaitable(result):  # a plain function that returned a coroutine
            await result

    return call_in_thread
