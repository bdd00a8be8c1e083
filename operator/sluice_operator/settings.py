"""The operator's settings, read once from the environment (``SLUICE_*`` variables) at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sluice.core.names import validate_schema_name
from sluice_operator.errors import OperatorError

__all__ = ["DEFAULT_IMAGE", "OperatorSettings", "SettingsError"]

DEFAULT_IMAGE = "ghcr.io/sluice-dev/sluice:0.1.0"


class SettingsError(OperatorError):
    """An environment variable of the operator has a value it cannot use."""

    code = "invalid_operator_setting"
    reason = "InvalidOperatorSetting"


@dataclass(frozen=True)
class OperatorSettings:
    """Everything the operator is configured with."""

    default_database_url: str | None = None
    """``SLUICE_DSN``: the database of EventStreams without ``spec.database``."""
    default_schema_name: str = "sluice"
    """``SLUICE_SCHEMA``: its schema."""
    image: str = DEFAULT_IMAGE
    """``SLUICE_IMAGE``: the Sluice image that consumer, projection and replay pods run."""
    resync_interval_seconds: float = 15.0
    """``SLUICE_OPERATOR_RESYNC_SECONDS``: how often every object is reconciled again (drift repair, database
    reachability) and consumer-group lag is polled, once per stream for all its groups."""
    database_timeout_seconds: float = 10.0
    """``SLUICE_OPERATOR_DATABASE_TIMEOUT_SECONDS``: how long one database call may take before the database
    counts as unreachable."""
    watch_inactivity_timeout_seconds: float = 300.0
    """``SLUICE_OPERATOR_WATCH_INACTIVITY_TIMEOUT_SECONDS``: restart a watch that has been silent this long."""
    retention_interval_seconds: float = 300.0
    """``SLUICE_OPERATOR_RETENTION_INTERVAL_SECONDS``: how often an EventStream's own ``spec.retention`` is
    applied (inside its cleanup window). RetentionPolicies follow their own cron schedules."""

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] | None = None) -> OperatorSettings:
        """Read the settings; raises SettingsError for a value that is not usable."""
        values = os.environ if environment is None else environment
        return cls(
            default_database_url=values.get("SLUICE_DSN") or None,
            default_schema_name=validate_schema_name(values.get("SLUICE_SCHEMA", "sluice")),
            image=values.get("SLUICE_IMAGE") or DEFAULT_IMAGE,
            resync_interval_seconds=_positive_number(values, "SLUICE_OPERATOR_RESYNC_SECONDS", 15.0),
            database_timeout_seconds=_positive_number(values, "SLUICE_OPERATOR_DATABASE_TIMEOUT_SECONDS", 10.0),
            watch_inactivity_timeout_seconds=_positive_number(
                values, "SLUICE_OPERATOR_WATCH_INACTIVITY_TIMEOUT_SECONDS", 300.0
            ),
            retention_interval_seconds=_positive_number(values, "SLUICE_OPERATOR_RETENTION_INTERVAL_SECONDS", 300.0),
        )


def _positive_number(values: Mapping[str, str], name: str, default: float) -> float:
    text = values.get(name)
    if not text:
        return default
    try:
        number = float(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not a number of seconds") from None
    if number <= 0:
        raise SettingsError(f"{name}={text!r} must be positive")
    return number
