"""The HTTP sink: POST each event to a URL as a CloudEvent in binary content mode.

Binary mode keeps the event's stored payload as the request body, byte for byte, with its content
type as ``Content-Type``; the CloudEvent attributes travel as ``ce-*`` headers:

    ce-specversion: 1.0                     ce-id: <the event id>
    ce-type: <the event type>               ce-source: /sluice/streams/<stream>
    ce-time: <when it was appended>         ce-subject: <partition>/<offset>
    ce-sluicestream, ce-sluicepartition, ce-sluiceoffset, ce-sluiceschemaversion,
    ce-sluicegroup (when consumed by a group), ce-correlationid (when the event has one)

A 2xx answer means the receiver took the event; anything else (and any transport failure) raises
SinkDeliveryError, which the worker retries and eventually dead-letters. The event id is stable
across retries, so receivers can deduplicate (delivery is at least once).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
from cloudevents.core.bindings.http import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from sluice.core.errors import InvalidArgumentError, SinkDeliveryError
from sluice.core.events import RecordedEvent

DELIVERY_ATTEMPT_HEADER = "Sluice-Delivery-Attempt"
DEFAULT_TIMEOUT_SECONDS = 10.0
_FORMAT = JSONFormat()


def validate_sink_url(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) URL with a host, else raise InvalidArgumentError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgumentError(f"invalid sink URL {url!r}: expected http://host[:port]/path or https://...")
    return url


def to_cloud_event(event: RecordedEvent, *, group_id: str | None = None) -> CloudEvent:
    """The CloudEvent (v1.0) for a stored event, carrying its payload bytes unchanged."""
    attributes: dict[str, Any] = {
        "id": str(event.event_id),
        "source": f"/sluice/streams/{event.stream_name}",
        "type": event.event_type,
        "time": event.timestamp,
        "subject": f"{event.partition}/{event.offset}",
        "datacontenttype": event.content_type,
        "sluicestream": event.stream_name,
        "sluicepartition": str(event.partition),
        "sluiceoffset": str(event.offset),
        "sluiceschemaversion": str(event.schema_version),
    }
    if group_id is not None:
        attributes["sluicegroup"] = group_id
    if event.correlation_id:
        attributes["correlationid"] = event.correlation_id
    return CloudEvent(attributes=attributes, data=event.payload)


def binary_request(event: RecordedEvent, *, group_id: str | None = None) -> tuple[dict[str, str], bytes]:
    """Headers and body of the binary-mode HTTP request for ``event``."""
    message = to_binary(to_cloud_event(event, group_id=group_id), _FORMAT)
    return dict(message.headers), message.body


class HttpSink:
    """POSTs events to one URL. Use ``async with`` (or ``aclose()``) to release its connections."""

    def __init__(
        self,
        url: str,
        *,
        group_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = validate_sink_url(url)
        self.group_id = group_id
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None

    async def deliver(self, event: RecordedEvent, attempt: int = 1) -> None:
        """POST one event (``attempt`` is sent as a header); return on a 2xx answer, raise
        SinkDeliveryError otherwise."""
        headers, body = binary_request(event, group_id=self.group_id)
        headers[DELIVERY_ATTEMPT_HEADER] = str(attempt)
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise SinkDeliveryError(f"POST {self.url} failed: {type(error).__name__}: {error}") from error
        if not response.is_success:
            raise SinkDeliveryError(
                f"POST {self.url} answered {response.status_code} {response.reason_phrase}: {response.text[:200]}",
                status_code=response.status_code,
            )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()
