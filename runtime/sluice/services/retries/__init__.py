"""Retries and dead letters of consumer groups on persistent streams: the retry policy (attempts,
fixed or exponential backoff with jitter, dead-letter stream), delivery with retries, and the
dead letters of each group, which can be listed, inspected, redriven to that group only, and
purged. See docs/dead-letters.md."""

from sluice.services.retries.access import group_dead_letters
from sluice.services.retries.delivery import Delivery, DeliveryOutcome, deliver_with_retries
from sluice.services.retries.policy import Backoff, RetryPolicy, default_dead_letter_stream
from sluice.store.contracts.dead_letters import DeadLetterBurial, GroupDeadLetters, RedriveClaim
from sluice.store.values.dead_letters import FailedDelivery, GroupDeadLetter

__all__ = [
    "Backoff",
    "DeadLetterBurial",
    "Delivery",
    "DeliveryOutcome",
    "FailedDelivery",
    "GroupDeadLetter",
    "GroupDeadLetters",
    "RedriveClaim",
    "RetryPolicy",
    "default_dead_letter_stream",
    "deliver_with_retries",
    "group_dead_letters",
]
