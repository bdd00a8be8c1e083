"""The local control plane's options are checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice_devkit.control_plane import LocalControlPlane


def test_an_autoscaler_sync_period_under_a_second_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="autoscaler_sync_period_seconds must be at least 1, not 0"):
        LocalControlPlane(tmp_path / "bin", tmp_path / "work", autoscaler_sync_period_seconds=0)


def test_the_autoscaler_sync_period_is_kept(tmp_path: Path) -> None:
    control_plane = LocalControlPlane(tmp_path / "bin", tmp_path / "work", autoscaler_sync_period_seconds=15)
    assert control_plane.autoscaler_sync_period_seconds == 15
