"""Name patterns of an access policy: an exact name, or a name with ``*`` wildcards, and how specific each is.

A stream pattern uses the characters of stream names plus ``*`` (``orders``, ``orders-*``, ``*``); a
principal pattern is any text in which ``*`` matches any run of characters
(``system:serviceaccount:payments:*``). Everything but ``*`` is matched literally (escaped before it
reaches the regular expression), so no pattern can smuggle in regular-expression syntax.
"""

from __future__ import annotations

import dataclasses
import re

from sluice.core.errors import InvalidArgumentError

WILDCARD = "*"
MAX_PATTERN_LENGTH = 300
STREAM_PATTERN_SYNTAX = re.compile(r"[A-Za-z0-9._:*-]{1,200}")


@dataclasses.dataclass(frozen=True, slots=True)
class NamePattern:
    """A compiled pattern. ``specificity`` orders patterns: an exact name beats every wildcard pattern,
    and among wildcard patterns the one with more literal characters wins (``orders-eu-*`` over
    ``orders-*`` over ``*``)."""

    text: str
    _expression: re.Pattern[str] = dataclasses.field(repr=False, compare=False)

    @property
    def is_exact(self) -> bool:
        return WILDCARD not in self.text

    @property
    def specificity(self) -> tuple[int, int]:
        return (1 if self.is_exact else 0, len(self.text.replace(WILDCARD, "")))

    def matches(self, name: str) -> bool:
        return self._expression.fullmatch(name) is not None


def compile_pattern(text: str) -> NamePattern:
    """A pattern matching names with ``*`` standing for any run of characters (possibly empty)."""
    if not isinstance(text, str) or not 0 < len(text) <= MAX_PATTERN_LENGTH:
        raise InvalidArgumentError(f"a pattern must be 1 to {MAX_PATTERN_LENGTH} characters, got {text!r}")
    expression = ".*".join(re.escape(part) for part in text.split(WILDCARD))
    return NamePattern(text, re.compile(expression, re.DOTALL))


def compile_stream_pattern(text: str) -> NamePattern:
    """A stream-name pattern: stream-name characters and ``*`` only."""
    if not isinstance(text, str) or STREAM_PATTERN_SYNTAX.fullmatch(text) is None:
        raise InvalidArgumentError(
            f"stream pattern {text!r} is not valid: use 1 to 200 letters, digits, '.', '_', ':', '-' and '*'"
        )
    return compile_pattern(text)
