"""A serving process settles its garbage collector once it is up (sluice/serving/garbage_collection.py):
what it made while starting is frozen out of later collections, and young collections are rarer.
Checked in a child process: freezing the test process's objects would keep its cyclic garbage."""

from __future__ import annotations

import subprocess
import sys

from sluice.serving.garbage_collection import YOUNG_COLLECTION_THRESHOLD

_CHILD = """
import gc
from sluice.serving.garbage_collection import settle_after_startup
before = gc.get_freeze_count()
settle_after_startup()
print(before, gc.get_freeze_count(), gc.get_threshold()[0])
"""


def test_settling_freezes_what_exists_and_raises_the_young_threshold() -> None:
    result = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=60, check=True)
    before, after, threshold = (int(value) for value in result.stdout.split())
    assert before == 0
    assert after > 1000, "the objects made while starting are frozen"
    assert threshold == YOUNG_COLLECTION_THRESHOLD
