"""Python's garbage collector in a long-running server process: what the process made while starting
is moved out of the collector's way, and young collections run less often.

Profiled (issue 18, docs/subscriptions.md): one append fanned out to 500 gRPC subscriptions allocates
short-lived containers (futures, protobuf messages, gRPC operations) enough for about twenty young
collections, and every tenth of those walks the older generation too: a sixth of the server's CPU in
``gc_collect_main``, and pauses of 30-60 ms (generation 1) and 200-400 ms (generation 2) in the middle of
a fan-out, which is what its p99 latency was made of. Freezing the objects that exist once the server
is up (modules, models, the store's pools) takes them out of every later collection; a higher young
threshold makes fewer, larger collections of mostly dead objects. Reference counting still frees
everything that is not in a cycle at once, so memory does not grow by more than the cycles made
between two collections.

Only process entry points call this (``sluice serve``, benchmark servers), never a library or
a test process: frozen objects that later become cyclic garbage are never collected.
"""

from __future__ import annotations

import gc

YOUNG_COLLECTION_THRESHOLD = 20_000
"""Allocations (minus deallocations) of tracked objects between young collections (Python's default: 700)."""


def settle_after_startup() -> None:
    """Collect once, freeze what is left, and make young collections rarer (call once, when serving)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)
