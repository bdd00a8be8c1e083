"""Durations (``7d``, ``1h30m``) and byte sizes (``50Gi``, ``5G``) as retention's CLI and the operator's
resources write them (the operator's ``parse_duration``/``parse_byte_quantity`` call these); malformed text
raises ``InvalidArgumentError``."""

from __future__ import annotations

import re
from datetime import timedelta

from sluice.core.errors import InvalidArgumentError

_DURATION = re.compile(r"([0-9]+(ms|s|m|h|d|w))+")
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_DURATION_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_BYTES = re.compile(r"([0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")
_BYTE_SUFFIXES = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` → ``timedelta(hours=1, minutes=30)``; units ms, s, m, h, d and w."""
    if _DURATION.fullmatch(text) is None:
        raise InvalidArgumentError(f"invalid duration {text!r}: use numbers with units ms, s, m, h, d or w, such as 7d")
    return sum(
        (int(amount) * _DURATION_UNITS[unit] for amount, unit in _DURATION_PART.findall(text)), start=timedelta(0)
    )


def parse_byte_size(text: str) -> int:
    """``"10Gi"`` → ``10737418240``, ``"5G"`` → ``5000000000``, ``"1024"`` → ``1024``."""
    matched = _BYTES.fullmatch(text)
    if matched is None:
        raise InvalidArgumentError(
            f"invalid byte size {text!r}: use an integer with an optional suffix such as Gi or G"
        )
    return int(matched.group(1)) * _BYTE_SUFFIXES[matched.group(2)]


def format_duration(duration: timedelta) -> str:
    """Text ``parse_duration`` reads back as ``duration``, in days and smaller units (``7d``, ``1h30m``)."""
    remaining = duration // timedelta(milliseconds=1)
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return "".join(parts) or "0s"
