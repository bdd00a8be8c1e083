"""Run the parts of a bidirectional call side by side until the first one ends, then stop the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


async def run_until_first_ends(*works: Coroutine[Any, Any, None]) -> None:
    """Run every coroutine as a task; when one returns or raises, cancel the others and wait for
    them. The first error (if any) is raised; otherwise this returns."""
    tasks = [asyncio.ensure_future(work) for work in works]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if task in done and not task.cancelled() and task.exception() is not None:
            task.result()
