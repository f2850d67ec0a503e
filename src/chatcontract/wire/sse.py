"""An incremental Server-Sent Events decoder (bytes in, events out, no I/O).

Follows the WHATWG event-stream rules: LF, CR and CRLF line endings, ``data:`` lines joined
with ``\\n``, ``event:`` / ``id:`` / ``retry:`` fields, ``:`` comment lines (ignored, but
counted: keep-alives such as new-api's ``: PING`` tell a slow upstream from a dead one), a
leading byte-order mark stripped. The events produced do not depend on how the byte stream
was split into ``feed`` calls, including splits inside a UTF-8 character or between ``\\r``
and ``\\n``.

Nothing raises out of the decoder for any input. A ``retry:`` value that is not a sane delay
(more than :data:`MAX_RETRY_MS`, e.g. thousands of digits) is ignored and counted in
``invalid_retry_count``; the stream assembler reports it as a violation.

Decoding is linear in the input however it is split: an unterminated line is kept as a list
of pieces and joined once, when its end arrives (``carried_bytes`` counts the bytes joined
again that way; it never exceeds twice the input).

One deliberate leniency: at :meth:`SSEDecoder.close` an unterminated last line is read as a
line and a pending event is dispatched (the spec discards it), so a stream whose final
``data: [DONE]`` lost its blank line is not mistaken for a cut one. The stream assembler
tells a flushed, cut-off JSON chunk from a malformed one.

    >>> decoder = SSEDecoder()
    >>> decoder.feed(b'data: {"a": 1}\\n\\n: PING\\n\\ndata: [DO')
    [SSEEvent(data='{"a": 1}', event='message', id=None)]
    >>> decoder.feed(b"NE]\\n\\n")[0].is_done, decoder.comment_count
    (True, 1)
"""

from __future__ import annotations

from msgspec import Struct

__all__ = ["DONE", "MAX_RETRY_MS", "SSEDecoder", "SSEEvent"]

#: The data payload that ends an OpenAI-compatible stream.
DONE = "[DONE]"

#: The largest ``retry:`` delay taken (one day, in milliseconds); a larger one is invalid.
MAX_RETRY_MS = 86_400_000
_MAX_RETRY_DIGITS = len(str(MAX_RETRY_MS))

_BOM = b"\xef\xbb\xbf"
# Bytes tested by their value (``10 in data``): in Python 3.11 ``b"\n" in data`` first tries
# ``b"\n"`` as an integer and builds (and clears) a formatted TypeError each time.
_LF, _CR = 0x0A, 0x0D
#: Between two events of one ``data:`` line each.
_BETWEEN = b"\n\ndata: "


class SSEEvent(Struct, frozen=True, kw_only=True, gc=False):
    """One dispatched event: its ``data`` (lines joined by ``\\n``), ``event`` type
    (``message`` unless an ``event:`` field said otherwise) and the last event ``id``."""

    data: str
    event: str = "message"
    id: str | None = None

    @property
    def is_done(self) -> bool:
        """True for the ``data: [DONE]`` terminator."""
        return self.data.strip() == DONE


class SSEDecoder:
    """Turn a byte stream into :class:`SSEEvent` values, incrementally.

    ``feed(data)`` returns the events completed by ``data``; ``close()`` flushes what is
    pending at the end of the stream. ``comment_count`` counts ``:`` comment lines,
    ``other_line_count`` lines that are neither fields nor comments (a body that is not SSE
    at all shows up there), ``retry_ms`` holds the last valid ``retry:`` value and
    ``invalid_retry_count`` counts the ``retry:`` values ignored as absurd.
    """

    __slots__ = (
        "_data",
        "_event",
        "_fast_path",
        "_last_id",
        "_pending",
        "_skip_lf",
        "_started",
        "carried_bytes",
        "comment_count",
        "invalid_retry_count",
        "other_line_count",
        "retry_ms",
    )

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # pieces of a line not yet terminated
        self._skip_lf = False  # the last chunk ended in CR: a leading LF belongs to it
        self._started = False  # the byte-order mark check is done
        self._data: list[bytes] = []
        self._event: bytes | None = None
        self._last_id: str | None = None
        self._fast_path = True  # tests switch it off to compare with the general path
        self.comment_count = 0
        self.other_line_count = 0
        self.invalid_retry_count = 0
        self.retry_ms: int | None = None
        self.carried_bytes = 0  # pending bytes joined again when their line completed

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Decode ``data`` and return the events it completes (possibly none)."""
        payloads = self._feed_fast(data)
        if payloads is None:
            return self._feed_general(data)
        last_id = self._last_id
        return [
            SSEEvent(data=payload.decode("utf-8", "replace"), id=last_id) for payload in payloads
        ]

    def _feed_fast(self, data: bytes) -> list[bytes] | None:
        """The data payloads ``data`` completes, as raw bytes (UTF-8 with any invalid byte
        still in place: the caller decodes them with ``errors="replace"`` when it needs text),
        when it is the common case; else None, with nothing consumed, and the caller runs
        :meth:`_feed_general`.

        The common case is what a chat-completions server sends: the decoder sits between
        events (no data or ``event:`` field pending, no CR to pair with an LF), and the
        pending piece plus ``data`` is one or more ``data: …`` events of one line each, LF
        endings only, then at most a partial line (kept pending, as the general path would).
        Anything else (comments, CR, multi-line data, other fields, a BOM) goes the general
        way, which gives the same events; the fast path only skips the per-line dispatch.
        """
        if not self._fast_path or self._data or self._event is not None or self._skip_lf:
            return None
        pending = self._pending
        if pending:
            # A line is pending. Without a line end in ``data`` it stays pending: the general
            # path appends the piece (joining here on every read would be quadratic in the
            # line's length when it arrives in tiny pieces). Before the start, the pending
            # piece of a byte-order mark fails the ``data: `` check below.
            if 0x0A not in data:
                return None
            joined = b"".join(pending)
            self.carried_bytes += len(joined)
            data = joined + data
        # ``0x0D in data`` (an int) is a plain memchr, several times cheaper than ``b"\r" in``
        if not data.startswith(b"data: ") or 0x0D in data:
            return None
        end = len(data) - 2
        if data.find(0x0A, 6) == end and data[-1] == 0x0A:
            # one event of one line: the usual network read
            payloads = [data[6:end]]
            tail = b""
        else:
            end = data.rfind(b"\n\n")
            tail = data[end + 2 :]
            if end < 0 or 0x0A in tail:
                return None
            # Several events (a read that caught up, or held reads): split in C. They are
            # all ``data: `` lines of one line each exactly when no line feed is left in the
            # pieces between the separators ``\n\ndata: `` (memchr; ``bytes.count`` of one
            # byte is a byte-by-byte loop).
            if tail:
                payloads = data[6:end].split(_BETWEEN)
            else:  # the read ends between two events: split it whole, no copy of it first
                payloads = data.split(_BETWEEN)
                payloads[0] = payloads[0][6:]  # after the first ``data: ``
                payloads[-1] = payloads[-1][:-2]  # before the blank line that ends the read
            if 0x0A in b"".join(payloads):
                return None
        self._started = True
        if tail:
            self._pending = [tail]
        elif pending:
            self._pending = []
        return payloads

    def _between_events(self) -> bool:
        """Whether the decoder sits between two events, with nothing pending (what
        :meth:`_feed_fast` requires of a read too), fast path on."""
        return (
            self._fast_path
            and not self._pending
            and not self._data
            and self._event is None
            and not self._skip_lf
        )

    def _feed_general(self, data: bytes) -> list[SSEEvent]:
        """Any bytes, line by line (see :meth:`feed`)."""
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if not self._started:
            data = self._take_pending() + data
            if len(data) < len(_BOM) and _BOM.startswith(data):
                self._pending = [data] if data else []
                return []
            self._started = True
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
        if _LF not in data and _CR not in data:
            # no line ends here: keep the piece, join once when the line completes
            if data:
                self._pending.append(data)
            return []
        buffer = self._take_pending() + data if self._pending else data
        if _CR in buffer:
            self._skip_lf = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        last = lines.pop()
        if last:
            self._pending.append(last)
        return self._lines(lines)

    def close(self) -> list[SSEEvent]:
        """End of stream: read an unterminated last line, dispatch any pending event."""
        # Before the start, what is pending is a strict prefix of a byte-order mark (a whole
        # one would have started the stream): not a mark, so it is read as a line like any.
        last = self._take_pending()
        self._started = True
        return self._lines([last, b""] if last else [b""])

    def _take_pending(self) -> bytes:
        pending = b"".join(self._pending)
        self._pending = []
        self.carried_bytes += len(pending)
        return pending

    def _lines(self, lines: list[bytes]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        data = self._data  # the same list ``_set_data`` appends to
        for line in lines:
            if not line:  # a blank line dispatches the pending event
                if data:
                    joined = data[0] if len(data) == 1 else b"\n".join(data)
                    kind = self._event
                    events.append(
                        SSEEvent(
                            data=joined.decode("utf-8", "replace"),
                            event=kind.decode("utf-8", "replace") if kind else "message",
                            id=self._last_id,
                        )
                    )
                    data = self._data = []
                self._event = None
            elif line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line[0] == 0x3A:  # ":" comment
                self.comment_count += 1
            else:
                self._field(line)
        return events

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        handler = _FIELDS.get(name)
        if handler is None:
            self.other_line_count += 1
            return
        handler(self, value if colon else b"")

    def _set_data(self, value: bytes) -> None:
        self._data.append(value)

    def _set_event(self, value: bytes) -> None:
        self._event = value

    def _set_id(self, value: bytes) -> None:
        if b"\0" not in value:
            self._last_id = value.decode("utf-8", "replace")

    def _set_retry(self, value: bytes) -> None:
        if not (value and value.isdigit()):
            return  # not a number: ignored, as the spec says
        digits = value.lstrip(b"0") or b"0"
        # Check the length before converting: int() of thousands of digits raises.
        if len(digits) > _MAX_RETRY_DIGITS or int(digits) > MAX_RETRY_MS:
            self.invalid_retry_count += 1
            return
        self.retry_ms = int(digits)


_FIELDS = {
    b"data": SSEDecoder._set_data,
    b"event": SSEDecoder._set_event,
    b"id": SSEDecoder._set_id,
    b"retry": SSEDecoder._set_retry,
}
