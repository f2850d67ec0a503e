"""``ChunkForwarder``: upstream chunk payloads to the client's SSE bytes (sans-IO).

Payloads pass as they came (no re-encoding) except where the client must see otherwise:

- the client did not ask for usage (``stream_options.include_usage``) but the gateway asked
  upstream: the usage chunk is dropped (no choices, or, as LiteLLM sends it, choices that
  carry nothing: ``[{"index": 0, "delta": {}}]``), and a ``usage`` member on any other
  chunk is removed;
- a continuation (a later attempt after the client's stream started): every chunk keeps the
  ``id`` of the first chunk the client received, so the answer reads as one response.

Only payloads that need a change are parsed (found by a substring test first).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import methodcaller
from typing import Any

import orjson

__all__ = ["ChunkForwarder"]

_NULL_USAGE = b',"usage":null'
_DROP_NULL_USAGE = methodcaller("replace", _NULL_USAGE, b"", 1)
_DATA = b"data: "
_EVENT_END = b"\n\n"
#: Between two events (a payload holds no line feed: the SSE decoder split on them).
_BETWEEN = _EVENT_END + _DATA
# ``sub in data`` is not used on bytes here: in Python 3.11, ``bytes.__contains__`` first tries
# ``sub`` as an integer and builds (and clears) a formatted TypeError for it; ``find`` does not.


class ChunkForwarder:
    """Encode the chunk payloads of one client stream (see the module docstring)."""

    __slots__ = ("_continuing", "_first", "_first_id", "_strip_usage")

    def __init__(self, *, client_usage: bool) -> None:
        self._strip_usage = not client_usage
        self._first: bytes | None = None  # the first payload the client received
        self._first_id: str | None = None
        self._continuing = False

    def next_attempt(self) -> None:
        """A new attempt continues the stream the client is reading."""
        if self._first_id is None and self._first is not None:
            # Its id is read only now: a stream that never continues never parses it.
            self._first_id = _id_of(self._first)
        self._continuing = True

    def encode(self, payloads: Sequence[bytes], end: bytes = b"") -> bytes:
        """The SSE bytes for ``payloads`` (possibly none), then ``end`` (what goes out with
        them, e.g. the stream's ``data: [DONE]``: joined here, the body is copied once less
        than by adding it after)."""
        if not payloads:
            return end
        if self._first is None:
            self._first = payloads[0]
        if not (self._strip_usage or self._continuing):  # every payload as it came
            return b"".join((_DATA, _BETWEEN.join(payloads), _EVENT_END, end))
        if self._continuing or len(payloads) == 1:  # (one payload: the loop costs less)
            return self._each(payloads, end)
        # Stripping usage alone: what ``_each`` does, with C passes over the joined payloads
        # up to the first one still naming "usage" once its null member is gone (most
        # streams: the usage chunk at the end, or none in this read). The separator holds no
        # quote and no payload holds it (a good chunk has no blank line), so a match lies
        # inside one payload, and the separators before it count the payloads before it.
        joined = _BETWEEN.join(payloads)
        texts = payloads
        if joined.find(_NULL_USAGE) >= 0:  # each payload's first null member only, as in _each
            texts = list(map(_DROP_NULL_USAGE, payloads))
            joined = _BETWEEN.join(texts)
        at = joined.find(b'"usage"')
        if at < 0:
            return b"".join((_DATA, joined, _EVENT_END, end))
        plain = joined.count(_BETWEEN, 0, at)  # the payloads before the one naming it
        rest = self._each(payloads[plain:], end)
        if not plain:
            return rest
        return b"".join((_DATA, _BETWEEN.join(texts[:plain]), _EVENT_END, rest))

    def _each(self, payloads: Sequence[bytes], end: bytes) -> bytes:
        """The SSE bytes for ``payloads``, each stripped of usage or given the first id as
        needed, then ``end``."""
        parts: list[bytes] = []
        for payload in payloads:
            text = payload
            if self._strip_usage and payload.find(_NULL_USAGE) >= 0:
                # The common case (every chunk of an OpenAI-style stream once usage is asked
                # for): drop the member as text. A quote inside a JSON string is escaped, so
                # this sequence is always structure, never text of the answer.
                text = payload.replace(_NULL_USAGE, b"", 1)
            if self._continuing or (self._strip_usage and text.find(b'"usage"') >= 0):
                kept = self._rewrite(text)
                if kept is None:
                    continue
                text = kept
            parts.append(_DATA + text + _EVENT_END)
        parts.append(end)
        return b"".join(parts)

    def _rewrite(self, payload: bytes) -> bytes | None:
        doc: Any = orjson.loads(payload)  # the transport's parser took it: a JSON object
        changed = False
        if self._strip_usage and "usage" in doc:
            if doc["usage"] is not None and _carries_nothing(doc.get("choices")):
                return None  # the usage chunk the client did not ask for
            del doc["usage"]
            changed = True
        if self._continuing and self._first_id is not None and doc.get("id") != self._first_id:
            doc["id"] = self._first_id
            changed = True
        return orjson.dumps(doc) if changed else payload


def _carries_nothing(choices: Any) -> bool:
    """No choices, or only choices with an empty delta and no finish_reason (LiteLLM's usage
    chunk: without its usage, it would reach the client as a chunk the upstream never sends
    to a client that did not ask for usage)."""
    if not choices:
        return True
    return isinstance(choices, list) and all(
        isinstance(choice, dict)
        and not choice.get("delta")
        and choice.get("finish_reason") is None
        and not choice.get("logprobs")
        for choice in choices
    )


def _id_of(payload: bytes) -> str | None:
    """The ``id`` of the first chunk (parsed once per stream)."""
    value = orjson.loads(payload).get("id")
    return value if isinstance(value, str) else None
