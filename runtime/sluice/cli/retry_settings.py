"""The retry flags of ``sluice consume`` and the RetryPolicy they make.

``--retry-backoff`` takes ``fixed`` or ``exponential``; for the command lines written before
those existed it also takes a number of seconds, which means ``exponential`` with that first
delay (``--retry-backoff 0.5`` = ``--retry-backoff exponential --retry-delay 0.5``).
``--retry-max-backoff`` is the older name of ``--retry-max-delay``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from sluice.cli.durations import Seconds
from sluice.cli.settings import CommandT, environment_variable, setting
from sluice.core.errors import InvalidArgumentError
from sluice.services.retries.policy import Backoff, RetryPolicy

DEFAULT_DELAY = 0.2
DEFAULT_MAX_DELAY = 10.0


class BackoffType(click.ParamType["Backoff | float", Any]):
    """``fixed``, ``exponential``, or (older command lines) a number of seconds."""

    name = "fixed|exponential"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Backoff | float:
        if isinstance(value, Backoff | float):
            return value
        text = str(value).strip().lower()
        for backoff in Backoff:
            if text == backoff.value:
                return backoff
        try:
            seconds = float(text)
        except ValueError:
            self.fail(f"{value!r} is not one of 'fixed', 'exponential' (or a number of seconds)", param, ctx)
        if not seconds >= 0:  # also refuses NaN
            self.fail(f"{value!r}: a delay cannot be negative", param, ctx)
        return seconds


def retry_settings(command: CommandT) -> CommandT:
    """The retry flags, outermost last so they print in this order in ``--help``."""
    seconds = Seconds()
    decorators: list[Callable[[CommandT], CommandT]] = [
        setting(
            "--retry-backoff",
            type=BackoffType(),
            default=Backoff.EXPONENTIAL.value,
            show_default=True,
            help="How the wait between attempts grows (a number of seconds: exponential, starting there).",
        ),
        setting(
            "--retry-delay",
            type=seconds,
            help=f"Seconds: the fixed wait, or the first exponential one. Default {DEFAULT_DELAY}.",
        ),
        setting(
            "--retry-max-delay",
            type=seconds,
            help=f"Seconds: the exponential wait never exceeds it. Default {DEFAULT_MAX_DELAY}.",
        ),
        setting("--retry-max-backoff", type=seconds, help="Older name of --retry-max-delay."),
        setting(
            "--retry-min-delay",
            type=seconds,
            default=0.0,
            show_default=True,
            help="Seconds: jitter never waits less (waits are drawn between this and the backoff's ceiling).",
        ),
        click.option(
            "--retry-jitter/--no-retry-jitter",
            envvar=environment_variable("--retry-jitter"),
            show_envvar=True,
            default=True,
            show_default=True,
            help="Randomize each wait (so many workers do not retry in lockstep).",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def retry_policy(
    *,
    max_attempts: int,
    retry_backoff: Backoff | float,
    retry_delay: float | None,
    retry_max_delay: float | None,
    retry_max_backoff: float | None,
    retry_min_delay: float,
    retry_jitter: bool,
    dead_letter_stream: str | None,
) -> RetryPolicy:
    """The policy the flags describe; click.UsageError for contradictions or impossible delays."""
    if isinstance(retry_backoff, Backoff):
        backoff, delay = retry_backoff, retry_delay
    else:
        if retry_delay is not None:
            raise click.UsageError("give the first delay once: --retry-backoff SECONDS or --retry-delay SECONDS")
        backoff, delay = Backoff.EXPONENTIAL, retry_backoff
    if retry_max_delay is not None and retry_max_backoff is not None and retry_max_delay != retry_max_backoff:
        raise click.UsageError("--retry-max-delay and its older name --retry-max-backoff disagree: give one")
    max_delay = next((value for value in (retry_max_delay, retry_max_backoff) if value is not None), None)
    delay = DEFAULT_DELAY if delay is None else delay
    if max_delay is None:
        max_delay = max(DEFAULT_MAX_DELAY, delay)
    try:
        return RetryPolicy(
            max_attempts=max_attempts,
            backoff=backoff,
            delay=delay,
            max_delay=max_delay,
            min_delay=retry_min_delay,
            jitter=retry_jitter,
            dead_letter_stream=dead_letter_stream,
        )
    except InvalidArgumentError as error:
        raise click.UsageError(str(error)) from error
