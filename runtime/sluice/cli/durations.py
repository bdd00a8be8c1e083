"""``Seconds``: the click type of every duration flag, so that an out-of-range value (negative, NaN,
infinite, or past Sluice's 100-year limit) is a usage error naming the flag, not a traceback."""

from __future__ import annotations

import math
from typing import Any

import click

from sluice.core.validation import MAX_DURATION

MAX_SECONDS = MAX_DURATION.total_seconds()


class Seconds(click.ParamType[float, Any]):
    """A number of seconds from ``minimum`` (excluded when ``minimum_open``) to ``MAX_SECONDS``."""

    name = "seconds"

    def __init__(self, minimum: float = 0.0, *, minimum_open: bool = False) -> None:
        self.minimum = minimum
        self.minimum_open = minimum_open

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        too_low = number <= self.minimum if self.minimum_open else number < self.minimum
        if not math.isfinite(number) or too_low or number > MAX_SECONDS:
            low = f"above {self.minimum:g}" if self.minimum_open else f"{self.minimum:g}"
            self.fail(f"{value!r} is not a number of seconds from {low} to {MAX_SECONDS:.0f} (100 years)", param, ctx)
        return number
