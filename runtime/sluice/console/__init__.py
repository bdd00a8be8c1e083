"""The web console: server-rendered pages at ``/console/`` over the REST API's store, authentication
and access policy (docs/console.md).

``create_console_app`` builds the pages as an ASGI app that the REST API mounts; ``LagHistory`` keeps
each consumer group's lag over the last hour and ``LagSampler`` fills it in the background.
"""

from __future__ import annotations

from sluice.console.application import create_console_app
from sluice.console.lag_history import LagHistory, LagSample, LagSampler

__all__ = ["LagHistory", "LagSample", "LagSampler", "create_console_app"]
