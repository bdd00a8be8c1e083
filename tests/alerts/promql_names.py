"""The metric names a PromQL expression (or a Grafana ``label_values(...)`` query) refers to.

A small tokenizer, not a full parser: string literals, label matchers (``{...}``), range and subquery durations
(``[...]``), numbers and durations (``0.99``, ``offset 5m``) and the label lists of ``by``, ``without``, ``on``,
``ignoring``, ``group_left`` and ``group_right`` are dropped; then every remaining identifier that is not a keyword
and is not called like a function is a metric name. Grafana variables (``$stream``, ``$__rate_interval``) only
appear inside the dropped parts.
"""

from __future__ import annotations

import re

KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"})
LABEL_LIST_KEYWORDS = r"(?:by|without|on|ignoring|group_left|group_right)"
STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
MATCHERS = re.compile(r"\{[^{}]*\}")
DURATIONS = re.compile(r"\[[^\[\]]*\]")
LABEL_LISTS = re.compile(LABEL_LIST_KEYWORDS + r"\s*\([^()]*\)")
NUMBERS = re.compile(r"(?<![A-Za-z0-9_:])[0-9][0-9.]*(?:[eE][+-]?[0-9]+)?(?:ms|s|m|h|d|w|y)*")
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,")


class UnparsedExpressionError(ValueError):
    """An expression the extractor could not read (unbalanced braces or brackets)."""


def metric_names(expression: str) -> set[str]:
    """Every metric name ``expression`` selects."""
    text = STRINGS.sub('""', expression)
    text = MATCHERS.sub(" ", text)
    text = DURATIONS.sub(" ", text)
    text = LABEL_LISTS.sub(" ", text)
    text = NUMBERS.sub(" ", text)
    if any(character in text for character in "{}[]"):
        raise UnparsedExpressionError(f"cannot read {expression!r}")
    names = set()
    for match in IDENTIFIER.finditer(text):
        name = match.group()
        following = text[match.end() :].lstrip()
        if name.lower() in KEYWORDS or following.startswith("("):
            continue
        names.add(name)
    return names


def variable_metric(query: str) -> str | None:
    """The metric of a ``label_values(metric, label)`` template-variable query; None for other queries."""
    match = LABEL_VALUES.match(query)
    return match.group(1) if match else None
