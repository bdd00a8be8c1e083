"""Errors of the local platform (``python -m sluice_devkit.platform``)."""

from __future__ import annotations

from sluice.core.errors import SluiceError

__all__ = ["PlatformError", "PlatformInterruptedError"]


class PlatformError(SluiceError):
    """A step of bringing up the local platform failed; the message says which and shows the log tail."""

    code = "local_platform"


class PlatformInterruptedError(PlatformError):
    """Ctrl-C or SIGTERM arrived: the platform stops everything it started."""

    code = "local_platform_interrupted"
