"""The lag chart: a group's lag samples as the geometry of an inline SVG, computed on the server.

No charting library is needed for one line over time: ``lag_chart`` scales the samples into a
``width`` x ``height`` plot and the template ``lag_chart.html`` draws the polyline, the axes and their
labels. The raw values ride along (``values``) so tests and screen readers read them without pixels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from sluice.console.lag_history import LagSample

CHART_WIDTH = 640
CHART_HEIGHT = 200
MARGIN_LEFT = 56
MARGIN_BOTTOM = 24
MARGIN_TOP = 12
MARGIN_RIGHT = 12


@dataclasses.dataclass(frozen=True, slots=True)
class LagChart:
    """What the template needs to draw the chart."""

    width: int
    height: int
    points: str
    """The polyline's ``points`` attribute ("x,y x,y ...")."""
    values: tuple[int, ...]
    """Lag in events of each sample, oldest first."""
    max_lag: int
    first_at: datetime | None
    last_at: datetime | None
    plot_left: int = MARGIN_LEFT
    plot_right: int = CHART_WIDTH - MARGIN_RIGHT
    plot_top: int = MARGIN_TOP
    plot_bottom: int = CHART_HEIGHT - MARGIN_BOTTOM

    @property
    def empty(self) -> bool:
        return not self.values

    @property
    def values_text(self) -> str:
        return ",".join(str(value) for value in self.values)


def lag_chart(samples: Sequence[LagSample], *, width: int = CHART_WIDTH, height: int = CHART_HEIGHT) -> LagChart:
    """Scale ``samples`` (oldest first) into the plot: time left to right, lag bottom to top."""
    left, right = MARGIN_LEFT, width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, height - MARGIN_BOTTOM
    if not samples:
        return LagChart(width, height, "", (), 0, None, None, left, right, top, bottom)
    first, last = samples[0].at, samples[-1].at
    span = max((last - first).total_seconds(), 1e-9)
    max_lag = max(1, *(sample.lag_events for sample in samples))
    coordinates = []
    for index, sample in enumerate(samples):
        if len(samples) == 1:
            x = float(right)
        elif last == first:
            x = left + (right - left) * index / (len(samples) - 1)
        else:
            x = left + (right - left) * (sample.at - first).total_seconds() / span
        y = bottom - (bottom - top) * sample.lag_events / max_lag
        coordinates.append(f"{x:.1f},{y:.1f}")
    return LagChart(
        width=width,
        height=height,
        points=" ".join(coordinates),
        values=tuple(sample.lag_events for sample in samples),
        max_lag=max_lag,
        first_at=first,
        last_at=last,
        plot_left=left,
        plot_right=right,
        plot_top=top,
        plot_bottom=bottom,
    )
