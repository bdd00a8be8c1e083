"""``Projection``: the description of a read model — its sources, handlers per event type and hooks.

Decorators only register functions here; ``ProjectionRunner`` reads the sources and calls them::

    summary = Projection("order-summary", sources=["orders"])

    @summary.on(OrderPlaced)
    async def placed(event: RecordedEvent, context: ProjectionContext) -> None:
        await context.require_connection().execute("INSERT ...", event.data["order_id"])
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sluice.core.errors import InvalidArgumentError, InvalidNameError
from sluice.core.event_types import EventTypeRegistry, default_registry
from sluice.core.events import RecordedEvent
from sluice.core.names import validate_stream_name
from sluice.services.projections.context import ProjectionContext
from sluice.services.projections.options import ProjectionOptions

EventHandler = Callable[[RecordedEvent, ProjectionContext], Awaitable[None] | None]
"""Called once per event of its type, in global log order: ``(event, context)``."""
BatchHandler = Callable[[Sequence[RecordedEvent], ProjectionContext], Awaitable[None] | None]
"""Called once per batch with every event of the batch (after the per-type handlers)."""
Hook = Callable[[ProjectionContext], Awaitable[None] | None]
"""Reset and blue/green hooks: ``(context)``; ``context.version`` names the read-model version."""

VersionCheck = Callable[[ProjectionContext], Awaitable[str | None]]
"""Why version ``context.version``'s storage no longer fits the projection's definition (None: it fits)."""

EventHandlerT = TypeVar("EventHandlerT", bound=EventHandler)
BatchHandlerT = TypeVar("BatchHandlerT", bound=BatchHandler)
HookT = TypeVar("HookT", bound=Hook)
VersionCheckT = TypeVar("VersionCheckT", bound=VersionCheck)

MAXIMUM_SOURCES = 64


async def call(function: Callable[..., Any], *arguments: Any) -> None:
    """Call a sync or async handler or hook and wait for it."""
    result = function(*arguments)
    if inspect.isawaitable(result):
        await result


PROJECTION_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,252}")
"""1 to 253 characters from letters, digits, '.', '_', ':' and '-', starting with a letter or digit: every
Kubernetes object name (the operator names a projection after its Projection object) fits."""


def validate_projection_name(name: object) -> str:
    """Return ``name`` if it is a valid projection name, else raise InvalidNameError."""
    if not isinstance(name, str) or PROJECTION_NAME_PATTERN.fullmatch(name) is None:
        raise InvalidNameError(
            f"invalid projection name {name!r}: use 1-253 characters from letters, digits, '.', '_', ':' "
            "and '-', starting with a letter or digit"
        )
    return name


class Projection:
    """A read model built from one or more streams, read together in global log order."""

    def __init__(
        self,
        name: str,
        *,
        sources: Sequence[str],
        options: ProjectionOptions | None = None,
        registry: EventTypeRegistry | None = None,
    ) -> None:
        self.name = validate_projection_name(name)
        if isinstance(sources, str) or not sources:
            raise InvalidArgumentError("sources must be a non-empty list of stream names")
        if len(sources) > MAXIMUM_SOURCES:
            raise InvalidArgumentError(f"a projection reads at most {MAXIMUM_SOURCES} streams")
        self.sources: tuple[str, ...] = tuple(dict.fromkeys(validate_stream_name(source) for source in sources))
        self.options = options or ProjectionOptions()
        self.registry = registry or default_registry
        self.handlers: dict[str, EventHandler] = {}
        self.batch_handler: BatchHandler | None = None
        self.start_hook: Hook | None = None
        self.reset_hook: Hook | None = None
        self.prepare_version_hook: Hook | None = None
        self.activate_version_hook: Hook | None = None
        self.retire_version_hook: Hook | None = None
        self.version_check: VersionCheck | None = None

    def __repr__(self) -> str:
        return f"Projection({self.name!r}, sources={list(self.sources)!r}, handles={sorted(self.handlers)!r})"

    # ----------------------------------------------------------------- registration

    def on(self, event_type: type | str) -> Callable[[EventHandlerT], EventHandlerT]:
        """Register the handler of one event type: a registered class (``OrderPlaced``) or its name."""
        name = self._event_type_name(event_type)

        def register(handler: EventHandlerT) -> EventHandlerT:
            if name in self.handlers:
                raise InvalidArgumentError(f"projection {self.name!r} already has a handler for {name!r}")
            self.handlers[name] = handler
            return handler

        return register

    def on_batch(self, handler: BatchHandlerT) -> BatchHandlerT:
        """Register a handler called with every batch (all event types), after the per-type handlers."""
        self.batch_handler = handler
        return handler

    def on_start(self, hook: HookT) -> HookT:
        """Register a hook run when a runner starts, for the active version (for example, to create the
        read model's tables if they are missing). In same-database mode it runs in a transaction."""
        self.start_hook = hook
        return hook

    def on_reset(self, hook: HookT) -> HookT:
        """Register the hook that clears the read model (version ``context.version``) before an in-place
        rebuild replays the sources. In same-database mode it runs in the transaction that resets the
        checkpoint."""
        self.reset_hook = hook
        return hook

    def on_prepare_version(self, hook: HookT) -> HookT:
        """Blue/green: create the storage of a new version (``context.version``) beside the active one."""
        self.prepare_version_hook = hook
        return hook

    def on_activate_version(self, hook: HookT) -> HookT:
        """Blue/green: make ``context.version`` the one readers see (for example, point a view at its table).
        In same-database mode it runs in the transaction that records the new active version."""
        self.activate_version_hook = hook
        return hook

    def on_retire_version(self, hook: HookT) -> HookT:
        """Blue/green: drop the storage of a version that is no longer active (``context.version``)."""
        self.retire_version_hook = hook
        return hook

    def on_check_version(self, check: VersionCheckT) -> VersionCheckT:
        """Register a check run when a runner starts, on the newest version (the one a rebuild builds, else
        the active one): when it returns a reason (its storage no longer fits the definition, for example a
        column's type changed), the runner rebuilds into a new version, blue/green when supported."""
        self.version_check = check
        return check

    def copy(self, name: str, *, sources: Sequence[str], options: ProjectionOptions | None = None) -> Projection:
        """The same handlers and hooks under another name, sources and options (how ``sluice project
        --handler`` runs a Projection defined in a module under the name the operator gives it)."""
        duplicate = Projection(name, sources=sources, options=options or self.options, registry=self.registry)
        duplicate.handlers = dict(self.handlers)
        duplicate.batch_handler = self.batch_handler
        duplicate.start_hook = self.start_hook
        duplicate.reset_hook = self.reset_hook
        duplicate.prepare_version_hook = self.prepare_version_hook
        duplicate.activate_version_hook = self.activate_version_hook
        duplicate.retire_version_hook = self.retire_version_hook
        duplicate.version_check = self.version_check
        return duplicate

    # ----------------------------------------------------------------- queries

    @property
    def supports_blue_green(self) -> bool:
        """True when the projection can build a new version beside the active one and switch to it."""
        return self.activate_version_hook is not None

    def handles(self, event_type: str) -> bool:
        return event_type in self.handlers or self.batch_handler is not None

    async def apply(self, events: Sequence[RecordedEvent], context: ProjectionContext) -> None:
        """Apply one batch: each event to its type's handler (others are skipped), then the batch handler."""
        handlers = self.handlers
        for event in events:
            handler = handlers.get(event.event_type)
            if handler is not None:
                await call(handler, event, context)
        if self.batch_handler is not None:
            await call(self.batch_handler, events, context)

    def _event_type_name(self, event_type: type | str) -> str:
        if isinstance(event_type, str):
            if not 0 < len(event_type) <= 200:
                raise InvalidArgumentError("an event type name has 1 to 200 characters")
            return event_type
        if isinstance(event_type, type):
            return self.registry.name_and_version(event_type)[0]
        raise InvalidArgumentError(f"on() takes an event class or an event type name, got {event_type!r}")
