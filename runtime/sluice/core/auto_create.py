"""Which streams and queues are created by their first append or enqueue, and how.

``StoreOptions.auto_create_streams`` (a bool) is the default for every name; ``auto_create_rules``
refine it per name pattern. Precedence: among the rules whose pattern matches the name, the most
specific wins (the one with the most characters that are not wildcards; an exact name beats every
pattern); between equally specific rules, the first one listed wins. A winning rule with
``create=False`` denies auto-creation; otherwise the stream is created with the rule's template.
When no rule matches, ``auto_create_streams`` decides, and the stream gets the default configuration.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Annotated

from pydantic import ConfigDict, Field, field_validator

from sluice.core.compression import DEFAULT_COMPRESSION_THRESHOLD, Compression
from sluice.core.streams import DEFAULT_MAX_ATTEMPTS, DeliverySemantics, StreamConfig, StreamType
from sluice.core.validation import SluiceModel

PATTERN = re.compile(r"[A-Za-z0-9._:*?-]{1,200}")
"""Auto-create patterns: stream-name characters plus the wildcards ``*`` (any run of characters)
and ``?`` (one character)."""
WILDCARDS = frozenset("*?")


class AutoCreateRule(SluiceModel):
    """Auto-creation for the names matching ``pattern``: allowed with this template, or denied."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pattern: str
    """A stream name, or a pattern with ``*`` and ``?`` wildcards (``orders-*``, ``*``)."""
    create: bool = True
    """False makes this a deny rule: matching names must be created explicitly."""
    partitions: Annotated[int, Field(ge=1, le=1024)] = 1
    """Persistent streams created by the rule get this many partitions."""
    delivery: DeliverySemantics = DeliverySemantics.BROADCAST
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = DEFAULT_MAX_ATTEMPTS
    """Queues created by the rule move a message to dead letters after this many deliveries."""
    compression: Compression = Compression.NONE
    compression_threshold: Annotated[int, Field(ge=0, le=256 * 1024 * 1024)] = DEFAULT_COMPRESSION_THRESHOLD

    @field_validator("pattern")
    @classmethod
    def _pattern_is_valid(cls, value: str) -> str:
        if PATTERN.fullmatch(value) is None:
            raise ValueError(
                f"invalid pattern {value!r}: use 1-200 characters from letters, digits, '.', '_', ':', '-' "
                "and the wildcards '*' and '?'"
            )
        return value

    @property
    def specificity(self) -> int:
        """How many characters of the pattern are not wildcards (more wins)."""
        return sum(1 for character in self.pattern if character not in WILDCARDS)

    def matches(self, name: str) -> bool:
        """Whether ``name`` matches the pattern (case-sensitive)."""
        return fnmatch.fnmatchcase(name, self.pattern)

    def config_for(self, name: str, stream_type: StreamType) -> StreamConfig:
        """The configuration a stream or queue named ``name`` is created with under this rule."""
        return StreamConfig(
            name=name,
            type=stream_type,
            partitions=self.partitions if stream_type is StreamType.PERSISTENT else 1,
            delivery=self.delivery,
            max_attempts=self.max_attempts,
            compression=self.compression,
            compression_threshold=self.compression_threshold,
        )


def winning_rule(rules: tuple[AutoCreateRule, ...], name: str) -> AutoCreateRule | None:
    """The rule that decides for ``name`` (see the module docstring), or None when none matches."""
    best: AutoCreateRule | None = None
    for rule in rules:
        if rule.matches(name) and (best is None or rule.specificity > best.specificity):
            best = rule
    return best


def auto_create_config(
    rules: tuple[AutoCreateRule, ...], default_allowed: bool, name: str, stream_type: StreamType
) -> StreamConfig | None:
    """How a missing stream or queue named ``name`` is created by a first write, or None if it is not."""
    rule = winning_rule(rules, name)
    if rule is None:
        return StreamConfig(name=name, type=stream_type) if default_allowed else None
    return rule.config_for(name, stream_type) if rule.create else None
