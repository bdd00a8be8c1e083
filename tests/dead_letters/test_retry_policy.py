"""The retry policy: fixed and exponential backoff, jitter bounds, validation; and the waits that
deliver_with_retries really sleeps between attempts."""

from __future__ import annotations

import itertools
import time

import pytest

from sluice.core.errors import InvalidArgumentError, InvalidNameError
from sluice.services.retries import Backoff, RetryPolicy, default_dead_letter_stream, deliver_with_retries


def test_fixed_backoff_waits_the_same_ceiling_every_time() -> None:
    policy = RetryPolicy(max_attempts=6, backoff=Backoff.FIXED, delay=0.5, max_delay=0.5, jitter=False)
    assert [policy.delay_after(failures) for failures in range(1, 6)] == [0.5] * 5


def test_fixed_backoff_with_jitter_stays_between_min_and_delay() -> None:
    policy = RetryPolicy(backoff=Backoff.FIXED, delay=2.0, min_delay=1.0, max_delay=2.0)
    draws = [policy.delay_after(failures) for failures in (1, 2, 5) for _ in range(200)]
    assert all(1.0 <= draw <= 2.0 for draw in draws)
    assert len(set(draws)) > 500  # spread, not one value


def test_exponential_backoff_doubles_up_to_the_maximum() -> None:
    policy = RetryPolicy(max_attempts=10, delay=0.5, max_delay=4.0, jitter=False)
    assert [policy.delay_ceiling(failures) for failures in range(1, 8)] == [0.5, 1, 2, 4, 4, 4, 4]
    assert [policy.delay_after(failures) for failures in range(1, 8)] == [0.5, 1, 2, 4, 4, 4, 4]
    assert policy.delay_ceiling(10_000) == 4.0  # no overflow for absurd attempt counts


@pytest.mark.parametrize("failures", [1, 2, 3, 4, 6])
def test_exponential_jitter_draws_within_min_delay_and_the_ceiling(failures: int) -> None:
    policy = RetryPolicy(delay=0.1, max_delay=1.0, min_delay=0.05)
    ceiling = min(1.0, 0.1 * 2 ** (failures - 1))
    draws = [policy.delay_after(failures) for _ in range(300)]
    assert all(0.05 <= draw <= ceiling for draw in draws)
    assert max(draws) > 0.05 + (ceiling - 0.05) * 0.8  # reaches up towards the ceiling
    assert min(draws) < 0.05 + (ceiling - 0.05) * 0.2  # and down towards the minimum


def test_full_jitter_by_default() -> None:
    draws = [RetryPolicy(delay=1.0, max_delay=1.0).delay_after(1) for _ in range(300)]
    assert min(draws) < 0.1
    assert all(0 <= draw <= 1.0 for draw in draws)


@pytest.mark.parametrize(
    "arguments",
    [
        {"max_attempts": 0},
        {"delay": -1.0},
        {"delay": 5.0, "max_delay": 1.0},
        {"min_delay": 0.5, "delay": 0.2},
        {"backoff": "linear"},
    ],
)
def test_impossible_policies_are_refused(arguments: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentError):
        RetryPolicy(**arguments)  # type: ignore[arg-type]


def test_the_dead_letter_stream_defaults_per_stream_and_group() -> None:
    assert RetryPolicy().dead_letter_stream_for("orders", "email") == "orders.email.dead-letter"
    assert RetryPolicy(dead_letter_stream="failed").dead_letter_stream_for("orders", "email") == "failed"
    with pytest.raises(InvalidNameError):
        RetryPolicy(dead_letter_stream="bad name")
    with pytest.raises(InvalidNameError):
        default_dead_letter_stream("o" * 190, "g")


async def test_delivery_waits_the_fixed_delay_between_attempts() -> None:
    policy = RetryPolicy(max_attempts=4, backoff=Backoff.FIXED, delay=0.1, max_delay=0.1, jitter=False)
    calls: list[float] = []

    async def fails_twice(event: str, attempt: int) -> None:
        calls.append(time.monotonic())
        if attempt <= 2:
            raise RuntimeError(f"attempt {attempt}")

    outcome = await deliver_with_retries(fails_twice, "event", policy)
    assert outcome.delivered
    assert outcome.attempts == 3
    assert outcome.waits == (0.1, 0.1)
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert all(0.1 <= gap < 1.0 for gap in gaps), gaps
    assert outcome.first_failure_at is not None
    assert outcome.last_failure_at is not None
    assert outcome.first_failure_at <= outcome.last_failure_at


async def test_delivery_gives_up_after_max_attempts_with_exponential_waits() -> None:
    policy = RetryPolicy(max_attempts=4, delay=0.02, max_delay=0.05, jitter=False)
    attempts: list[int] = []

    async def always_fails(event: str, attempt: int) -> None:
        attempts.append(attempt)
        raise ValueError("no")

    started = time.monotonic()
    outcome = await deliver_with_retries(always_fails, "event", policy)
    assert attempts == [1, 2, 3, 4]
    assert not outcome.delivered
    assert outcome.error == "ValueError: no"
    assert outcome.waits == (0.02, 0.04, 0.05)  # doubled, then capped
    assert time.monotonic() - started >= 0.11
