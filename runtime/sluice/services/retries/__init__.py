"""Retries and dead letters of consumer groups on persistent streams: the retry policy (attempts,
fixed or exponential backoff with jitter, dead-letter stream), delivery with retries, and the
dead letters of each group, which can be listed, inspected, redriven to that group only, and
purged. See docs/dead-letters.md."""

from sluice.services.retries.access import group_dead_letters
from sluice.services.retries.delivery import Delivery, DeliveryOutcome, deliver_with_retries
from sluice.services.retries.model import FailedDelivery, GroupDeadLetter
from sluice.services.retries.policy import Backoff, RetryPolicy, default_dead_letter_stream
from sluice.services.retries.repository import DeadLetterBurial, GroupDeadLetters, RedriveClaim

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
