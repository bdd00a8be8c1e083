"""The retry flags of ``sluice consume`` make the RetryPolicy they say, including the command lines
written before ``fixed|exponential`` existed (a number for --retry-backoff, --retry-max-backoff)."""

from __future__ import annotations

from typing import Any

import click
import pytest

from sluice.cli.retry_settings import BackoffType, retry_policy
from sluice.services.retries import Backoff, RetryPolicy

DEFAULTS: dict[str, Any] = {
    "max_attempts": 5,
    "retry_backoff": Backoff.EXPONENTIAL,
    "retry_delay": None,
    "retry_max_delay": None,
    "retry_max_backoff": None,
    "retry_min_delay": 0.0,
    "retry_jitter": True,
    "dead_letter_stream": None,
}


def policy(**flags: Any) -> RetryPolicy:
    return retry_policy(**{**DEFAULTS, **flags})


def test_defaults_match_the_documented_ones() -> None:
    assert policy() == RetryPolicy()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"retry_backoff": Backoff.FIXED, "retry_delay": 2.0}, RetryPolicy(backoff=Backoff.FIXED, delay=2.0)),
        (
            {"retry_backoff": Backoff.FIXED, "retry_delay": 30.0},
            RetryPolicy(backoff=Backoff.FIXED, delay=30.0, max_delay=30.0),
        ),
        ({"retry_delay": 1.0, "retry_max_delay": 60.0}, RetryPolicy(delay=1.0, max_delay=60.0)),
        ({"retry_backoff": 0.01}, RetryPolicy(delay=0.01)),  # the older form: exponential from 0.01 s
        ({"retry_max_backoff": 3.0}, RetryPolicy(max_delay=3.0)),
        ({"retry_max_backoff": 3.0, "retry_max_delay": 3.0}, RetryPolicy(max_delay=3.0)),
        (
            {"retry_min_delay": 0.1, "retry_jitter": False, "dead_letter_stream": "failed", "max_attempts": 2},
            RetryPolicy(max_attempts=2, min_delay=0.1, jitter=False, dead_letter_stream="failed"),
        ),
    ],
)
def test_flags_make_the_policy(flags: dict[str, Any], expected: RetryPolicy) -> None:
    assert policy(**flags) == expected


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"retry_backoff": 0.5, "retry_delay": 0.5}, "give the first delay once"),
        ({"retry_max_delay": 2.0, "retry_max_backoff": 3.0}, "disagree"),
        ({"retry_delay": 5.0, "retry_max_delay": 1.0}, "min_delay <= delay <= max_delay"),
        ({"retry_min_delay": 1.0}, "min_delay <= delay <= max_delay"),
    ],
)
def test_contradictions_are_usage_errors(flags: dict[str, Any], message: str) -> None:
    with pytest.raises(click.UsageError, match=message):
        policy(**flags)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("fixed", Backoff.FIXED), ("EXPONENTIAL", Backoff.EXPONENTIAL), ("0.25", 0.25), ("3", 3.0)],
)
def test_backoff_flag_values(text: str, expected: Backoff | float) -> None:
    assert BackoffType().convert(text, None, None) == expected


@pytest.mark.parametrize("text", ["linear", "-1", "nan", ""])
def test_bad_backoff_flag_values(text: str) -> None:
    with pytest.raises(click.BadParameter):
        BackoffType().convert(text, None, None)
