"""Transparent payload compression: zstd or gzip per stream, above a size threshold.

A compressed payload is stored with its content type qualified by a ``compression`` parameter
(``application/json; compression=zstd``), so the encoding travels with the event wherever its row
goes (events, queue messages, dead letters, redrives) and no query has to know about it. Readers get
the original bytes and content type back; decompression stops at the store's ``max_payload_bytes``,
so a corrupt or hostile row can never make a reader allocate more than an honest payload could be.
"""

from __future__ import annotations

import dataclasses
import enum
import gzip
import operator
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Final

import zstandard

from sluice.core.errors import CorruptPayloadError
from sluice.core.events import BINARY_CONTENT_TYPE, JSON_CONTENT_TYPE, EventRow
from sluice.core.prepared_batches import PreparedBatch


class Compression(enum.StrEnum):
    """How a stream compresses payloads larger than its threshold."""

    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


DEFAULT_COMPRESSION_THRESHOLD: Final = 1024
"""Payloads of at most this many bytes are stored as they are (compressing tiny payloads costs more
time than it saves space)."""

COMPRESSION_PARAMETER: Final = "; compression="
PLAIN_CONTENT_TYPES: Final = frozenset({JSON_CONTENT_TYPE, BINARY_CONTENT_TYPE})
_CONTENT_TYPE_COLUMN = 4
_content_type_of = operator.itemgetter(_CONTENT_TYPE_COLUMN)
_PAYLOAD_COLUMN = 5
_ZSTD_LEVEL = 3
_GZIP_LEVEL = 6
_GZIP_WINDOW_BITS = 16 + zlib.MAX_WBITS
_READ_CHUNK = 1 << 20

CompressorFunction = Callable[[bytes], bytes]


def stored_content_type(content_type: str, compression: Compression) -> str:
    """The content type recorded for a payload compressed with ``compression``."""
    return f"{content_type}{COMPRESSION_PARAMETER}{compression.value}"


def split_content_type(stored: str) -> tuple[str, Compression]:
    """(original content type, compression) of a stored content type."""
    content_type, separator, encoding = stored.partition(COMPRESSION_PARAMETER)
    if not separator:
        return stored, Compression.NONE
    try:
        compression = Compression(encoding)
    except ValueError:
        raise CorruptPayloadError(f"stored content type {stored!r} names an unknown compression") from None
    if compression is Compression.NONE:
        raise CorruptPayloadError(f"stored content type {stored!r} names no compression")
    return content_type, compression


def compress(payload: bytes, compression: Compression) -> bytes:
    """``payload`` compressed (``Compression.NONE`` returns it as it is)."""
    if compression is Compression.ZSTD:
        return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(payload)
    if compression is Compression.GZIP:
        return gzip.compress(payload, compresslevel=_GZIP_LEVEL, mtime=0)
    return payload


def decompress(payload: bytes, compression: Compression, *, limit: int) -> bytes:
    """The original bytes of a compressed payload; CorruptPayloadError if it is corrupt or would
    decompress to more than ``limit`` bytes (nothing beyond ``limit + 1`` bytes is ever produced)."""
    if compression is Compression.ZSTD:
        return _decompress_zstd(payload, limit)
    if compression is Compression.GZIP:
        return _decompress_gzip(payload, limit)
    return payload


def _decompress_zstd(payload: bytes, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        with zstandard.ZstdDecompressor().stream_reader(payload, read_across_frames=True) as reader:
            while size <= limit:
                chunk = reader.read(min(_READ_CHUNK, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except zstandard.ZstdError as error:
        raise CorruptPayloadError(f"a zstd-compressed payload is corrupt: {error}") from error
    if size > limit:
        raise _too_large(limit)
    return b"".join(chunks)


def _decompress_gzip(payload: bytes, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits=_GZIP_WINDOW_BITS)
    try:
        original = decompressor.decompress(payload, limit + 1)
    except zlib.error as error:
        raise CorruptPayloadError(f"a gzip-compressed payload is corrupt: {error}") from error
    if len(original) > limit:
        raise _too_large(limit)
    if not decompressor.eof or decompressor.unused_data:
        raise CorruptPayloadError("a gzip-compressed payload is truncated or followed by other data")
    return original


def _too_large(limit: int) -> CorruptPayloadError:
    return CorruptPayloadError(
        f"a compressed payload decompresses to more than max_payload_bytes ({limit} bytes); "
        "it was not decoded (a corrupt row, or one written by a store with a larger limit)"
    )


def plain_payload(payload: bytes, stored: str, *, limit: int) -> tuple[bytes, str]:
    """(original bytes, original content type) of a stored payload."""
    if stored in PLAIN_CONTENT_TYPES:
        return payload, stored
    content_type, compression = split_content_type(stored)
    return decompress(bytes(payload), compression, limit=limit), content_type


def plain_rows(rows: Sequence[EventRow], *, limit: int) -> Sequence[EventRow]:
    """Event rows with every compressed payload decompressed (the same sequence when none is)."""
    plain = PLAIN_CONTENT_TYPES
    if plain.issuperset(map(_content_type_of, rows)):  # the common case, checked at C speed
        return rows
    return [row if row[_CONTENT_TYPE_COLUMN] in plain else plain_row(row, limit=limit) for row in rows]


def plain_row(row: EventRow, *, limit: int) -> tuple[Any, ...]:
    """One event row with its payload decompressed (a tuple in the same column layout)."""
    values = list(row)  # type: ignore[call-overload]
    values[_PAYLOAD_COLUMN], values[_CONTENT_TYPE_COLUMN] = plain_payload(
        values[_PAYLOAD_COLUMN], values[_CONTENT_TYPE_COLUMN], limit=limit
    )
    return tuple(values)


@dataclasses.dataclass(frozen=True, slots=True)
class CompressionPolicy:
    """A stream's compression setting: which codec, for payloads over how many bytes."""

    compression: Compression = Compression.NONE
    threshold: int = DEFAULT_COMPRESSION_THRESHOLD

    def apply(self, batch: PreparedBatch) -> PreparedBatch:
        """``batch`` with each payload over the threshold compressed (kept as it is when compressing
        does not make it smaller). Returns ``batch`` itself when nothing changes."""
        if self.compression is Compression.NONE or not any(len(p) > self.threshold for p in batch.payloads):
            return batch
        payloads = list(batch.payloads)
        content_types = list(batch.content_types)
        compressor = _compressor(self.compression)
        for index, payload in enumerate(payloads):
            if len(payload) <= self.threshold:
                continue
            compressed = compressor(payload)
            if len(compressed) < len(payload):
                payloads[index] = compressed
                content_types[index] = stored_content_type(content_types[index], self.compression)
        return dataclasses.replace(batch, payloads=payloads, content_types=content_types)


def _compressor(compression: Compression) -> CompressorFunction:
    if compression is Compression.ZSTD:
        return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress
    return lambda payload: gzip.compress(payload, compresslevel=_GZIP_LEVEL, mtime=0)
