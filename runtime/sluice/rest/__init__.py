"""The REST management API: ``create_app(store, tokens=..., health=...)`` returns a FastAPI app.

Streams, consumer groups, dead letters and stream health under ``/api/event-streams`` (bearer
tokens), and open ``/health/live``, ``/health/ready`` and ``/metrics``. See docs/rest-api.md.
"""

from sluice.rest.application import create_app

__all__ = ["create_app"]
