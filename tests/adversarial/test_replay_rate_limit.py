"""An infinite replay rate limit is refused when the request is made: it used to be accepted, recorded,
and then failed the replay (``ReplayFailedError`` wrapping an OverflowError), leaving a failed record."""

from __future__ import annotations

import pytest

from sluice import EventData, EventStore, InvalidArgumentError
from sluice.core.errors import ReplayNotFoundError
from sluice.services.replay.replays import Replays
from sluice.store.values.replays import ReplayRequest, ReplayTargetKind


@pytest.mark.parametrize("rate_limit", [float("inf"), float("nan")], ids=["inf", "nan"])
async def test_non_finite_rate_limit_is_refused_before_recording(store: EventStore, rate_limit: float) -> None:
    await store.append("orders", EventData("Placed", {}))
    replays = Replays(store)

    async def handler(_batch: object) -> None:
        return None

    with pytest.raises(InvalidArgumentError):
        await replays.start(
            ReplayRequest(
                name="unbounded",
                stream="orders",
                from_offset=0,
                target=ReplayTargetKind.HANDLER,
                rate_limit=rate_limit,
            ),
            handler=handler,
        )
    with pytest.raises(ReplayNotFoundError):
        await replays.progress("unbounded")
