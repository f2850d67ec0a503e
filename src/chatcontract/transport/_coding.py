"""Removing a response's ``Content-Encoding`` before the observer parses it: bounded and
incremental, with the libraries httpx2 decodes with.

The openai SDK (through httpx2) asks for ``gzip, deflate`` (and ``br``/``zstd`` when their
libraries are installed) and gets the body decoded; the observer sees the bytes as they came
off the wire, so it removes the same codings itself: ``gzip`` and ``deflate``
(zlib-wrapped, or raw deflate when the first read is no zlib stream, as httpx2 reads it) with
the standard ``zlib``; ``br`` when ``brotli`` or ``brotlicffi`` is importable; ``zstd`` with
``compression.zstd`` (Python 3.14+) or ``backports.zstd``, which is what httpx2 uses (not the
``zstandard`` package, whose streaming decoder cannot bound one call's output). Several
codings (``gzip, br``) are removed in reverse order, at most :data:`MAX_CODINGS`, as httpx2
does. Data after the end of a gzip or deflate stream is ignored, as httpx2 ignores it.

Every call's output is bounded: a decoder hands out pieces of at most :data:`PIECE_BYTES`,
and no more in all than the room the caller gives, so a small compressed body cannot inflate
to an unbounded buffer (a decompression bomb costs the caller's limit, not its size).
"""

from __future__ import annotations

import importlib
import sys
import zlib
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["MAX_CODINGS", "PIECE_BYTES", "BodyDecoder", "CodingError", "codings_of"]

#: The most output one decompression call makes (httpx2 uses the same 1 MiB).
PIECE_BYTES = 1 << 20
#: The most codings one response may stack (httpx2 refuses more than 5 too).
MAX_CODINGS = 5


def _optional(*names: str) -> Any:
    """The first of these modules that imports, or None."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


# The libraries httpx2 decodes with: brotli's C bindings first, then brotlicffi; zstd from
# the standard library on Python 3.14+, else backports.zstd.
_brotli: Any = _optional("brotli", "brotlicffi")
_zstd: Any = _optional("compression.zstd" if sys.version_info >= (3, 14) else "backports.zstd")
_ZstdDecompressor: Any = getattr(_zstd, "ZstdDecompressor", None)
_ZstdError: Any = getattr(_zstd, "ZstdError", None)


class CodingError(Exception):
    """The body is not valid data of its content coding (corrupt or not compressed)."""


class _Input:
    """The first stage: the wire bytes pushed since the last read."""

    def __init__(self) -> None:
        self._pending = b""

    def push(self, data: bytes) -> None:
        self._pending = self._pending + data if self._pending else data

    def read(self) -> bytes:
        data, self._pending = self._pending, b""
        return data


_Source = Callable[[], bytes]
# A stage's own steps per read: each consumes input or makes output, so this is never
# reached on valid data; it only keeps a decompressor that stops progressing from spinning.
_MAX_STEPS = 10_000


class _Zlib:
    """gzip (``wbits`` 31) or deflate (zlib-wrapped; raw deflate when the first call finds no
    zlib header, as httpx2's ``DeflateDecoder``)."""

    def __init__(self, source: _Source, *, deflate: bool) -> None:
        self._source = source
        self._deflate_first = deflate
        self._d = zlib.decompressobj() if deflate else zlib.decompressobj(zlib.MAX_WBITS | 16)
        self._tail = b""
        self._full = False  # the last call filled its limit: output may be pending

    def read(self, limit: int) -> bytes:
        for _ in range(_MAX_STEPS):
            d = self._d
            if d.eof:  # what follows the end of the stream is ignored, as httpx2 does
                return b""
            data = self._tail or self._source()
            if not data and not self._full:
                return b""
            try:
                out = d.decompress(data, limit)
            except zlib.error as exc:
                if not self._deflate_first:
                    raise CodingError(f"invalid compressed data: {exc}") from None
                self._d = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
                self._deflate_first = False
                self._tail = data
                continue
            self._deflate_first = False
            self._tail = d.unconsumed_tail
            self._full = len(out) >= limit
            if out or not data:
                return out
        return b""  # pragma: no cover - see _MAX_STEPS


class _Brotli:
    def __init__(self, source: _Source) -> None:
        self._source = source
        decompressor = _brotli.Decompressor()
        # ``brotli`` calls it ``process``, ``brotlicffi`` ``decompress``
        self._process = getattr(decompressor, "process", None) or decompressor.decompress
        self._pending = False  # a call may have left output inside the decompressor

    def read(self, limit: int) -> bytes:
        try:
            for _ in range(_MAX_STEPS):
                if self._pending:
                    out = self._process(b"", output_buffer_limit=limit)
                    if out:
                        return out  # type: ignore[no-any-return]
                    self._pending = False
                data = self._source()
                if not data:
                    return b""
                out = self._process(data, output_buffer_limit=limit)
                self._pending = True
                if out:
                    return out  # type: ignore[no-any-return]
        except _brotli.error as exc:
            raise CodingError(f"invalid brotli data: {exc}") from None
        return b""  # pragma: no cover - see _MAX_STEPS


class _Zstd:
    """zstd, several frames one after another included (as httpx2 reads them)."""

    def __init__(self, source: _Source) -> None:
        self._source = source
        self._d = _ZstdDecompressor()

    def read(self, limit: int) -> bytes:
        try:
            for _ in range(_MAX_STEPS):
                d = self._d
                if d.eof:
                    data = d.unused_data + self._source()
                    if not data:
                        return b""
                    d = self._d = _ZstdDecompressor()
                elif d.needs_input:
                    data = self._source()
                    if not data:
                        return b""
                else:
                    data = b""
                out = d.decompress(data, limit)
                if out:
                    return out  # type: ignore[no-any-return]
        except _ZstdError as exc:
            raise CodingError(f"invalid zstd data: {exc}") from None
        return b""  # pragma: no cover - see _MAX_STEPS


def _stages() -> dict[str, Callable[[_Source], Any]]:
    found: dict[str, Callable[[_Source], Any]] = {
        "gzip": lambda source: _Zlib(source, deflate=False),
        "deflate": lambda source: _Zlib(source, deflate=True),
    }
    if _brotli is not None:  # pragma: no cover - depends on the installed extras
        found["br"] = _Brotli
    if _ZstdDecompressor is not None:  # pragma: no cover - depends on the installed extras
        found["zstd"] = _Zstd
    return found


#: The codings this Python can remove, by name. Only those httpx2 removes: ``x-gzip``, which
#: RFC 9110 reads as ``gzip``, httpx2 leaves as it came, so neither the openai SDK nor
#: ``ChatClient`` could read such an answer, and judging it by its decoded bytes would call it
#: a success the caller never got (it is ``unsupported_encoding``, as any coding httpx2 keeps).
_STAGES = _stages()


def codings_of(value: str) -> tuple[str, ...] | None:
    """The codings a ``Content-Encoding`` value names, in the order they were applied
    (``identity`` left out; ``()``: nothing to remove), or None when one of them cannot be
    removed here (unknown, its library missing, or more than :data:`MAX_CODINGS`)."""
    names = []
    for token in value.lower().split(","):
        name = token.strip()
        if not name or name == "identity":
            continue
        if name not in _STAGES:
            return None
        names.append(name)
    if len(names) > MAX_CODINGS:
        return None
    return tuple(names)


def supported_codings() -> tuple[str, ...]:
    """The codings this Python can remove (for messages)."""
    return tuple(_STAGES)


class BodyDecoder:
    """Removes the codings of one response body, read by read, with bounded output.

    Args:
        codings: as :func:`codings_of` gives them (in the order applied; not empty).
    """

    def __init__(self, codings: tuple[str, ...]) -> None:
        self._input = _Input()
        stage: Any = self._input
        for name in reversed(codings):
            source = stage.read if stage is self._input else _bounded(stage)
            stage = _STAGES[name](source)
        self._last = stage

    def decode(self, data: bytes, room: int) -> Iterator[bytes]:
        """The decoded pieces ``data`` (the next wire bytes; ``b""`` at the end, to drain
        what is held) makes: each at most :data:`PIECE_BYTES`, at most ``room`` in all (what
        is not handed out stays held). Raises :class:`CodingError` for corrupt data."""
        self._input.push(data)
        last = self._last
        while room > 0:  # each piece is at least one byte: at most ``room`` rounds
            piece = last.read(min(PIECE_BYTES, room))
            if not piece:
                return
            room -= len(piece)
            yield piece


def _bounded(stage: Any) -> _Source:
    """An inner stage's output as the next stage's input, a piece at a time."""
    return lambda: stage.read(PIECE_BYTES)
