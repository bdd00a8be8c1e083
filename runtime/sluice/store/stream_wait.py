"""Waiting for a stream that does not exist yet, before subscribing to it or joining a group on it.

In Kubernetes, workers often start before producers: the stream appears with its first append when
streams are auto-created (``auto_create_streams`` and ``auto_create_rules``). A subscriber or group
member then waits for it, woken by the first append (and polling); when the name is not auto-created,
it fails at once with StreamNotFoundError saying so. A soft-deleted stream is never waited for (its
first append is refused): StreamDeletedError.

A small helper over the port (the stream log and the append signals), so the facade's ``subscribe``
and the consumer-group service share it without the store layer importing a service.
"""

from __future__ import annotations

import logging

from sluice.core.errors import StreamDeletedError, StreamNotFoundError
from sluice.core.options import StoreOptions
from sluice.core.streams import StreamInfo, StreamType
from sluice.store.backend import Backend

logger = logging.getLogger(__name__)


def not_auto_created(name: str) -> StreamNotFoundError:
    """StreamNotFoundError for a stream that nothing will create by appending."""
    error = StreamNotFoundError(name)
    error.args = (
        f"stream {name!r} does not exist and is not auto-created by its first append "
        "(auto_create_streams is off or an auto_create_rules entry denies it): create it before consuming",
    )
    return error


async def wait_for_stream(backend: Backend, options: StoreOptions, name: str) -> StreamInfo:
    """The stream's description once it exists in ``backend`` (at once when it does); ``options`` say
    whether its first append creates it and how often to look."""
    announced = False
    while True:
        ticket = backend.signals.ticket(name)
        info = await backend.log.describe_stream(name)
        if info is not None and not info.deleted:
            if announced:
                logger.info("stream %s now exists", name)
            return info
        if info is not None:
            raise StreamDeletedError(name)
        if options.auto_create_config(name, StreamType.PERSISTENT) is None:
            raise not_auto_created(name)
        if not announced:
            logger.info("stream %s does not exist yet: waiting for its first append to create it", name)
            announced = True
        # Polling, not the long listening interval: create_stream (unlike an append) sends no
        # notification, and a stream created empty elsewhere must still be found promptly.
        await backend.signals.wait(ticket, options.poll_interval.total_seconds())
