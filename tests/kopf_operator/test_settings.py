"""The operator's settings from the environment: defaults, values, and refused values."""

from __future__ import annotations

import pytest

from sluice.core.errors import InvalidNameError
from sluice_operator.settings import DEFAULT_IMAGE, OperatorSettings, SettingsError


def test_defaults_when_nothing_is_set() -> None:
    settings = OperatorSettings.from_environment({})
    assert settings.default_database_url is None
    assert settings.image == DEFAULT_IMAGE
    assert settings.resync_interval_seconds == 15.0


def test_values_from_the_environment() -> None:
    settings = OperatorSettings.from_environment(
        {
            "SLUICE_DSN": "postgresql://h/d",
            "SLUICE_SCHEMA": "events",
            "SLUICE_IMAGE": "registry.example/sluice:2",
            "SLUICE_OPERATOR_RESYNC_SECONDS": "2.5",
        }
    )
    assert (settings.default_database_url, settings.default_schema_name) == ("postgresql://h/d", "events")
    assert settings.image == "registry.example/sluice:2"
    assert settings.resync_interval_seconds == 2.5


@pytest.mark.parametrize("value", ["soon", "0", "-1"])
def test_a_bad_interval_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="SLUICE_OPERATOR_RESYNC_SECONDS"):
        OperatorSettings.from_environment({"SLUICE_OPERATOR_RESYNC_SECONDS": value})


def test_a_bad_schema_name_is_refused() -> None:
    with pytest.raises(InvalidNameError):
        OperatorSettings.from_environment({"SLUICE_SCHEMA": "Robert'); DROP"})
