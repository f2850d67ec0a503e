"""Deterministic answers, token counts and the success bodies built from them.

Nothing here is random: the same request always gets the same content and the same usage, so a
test can assert on them. The tokenizer is deliberately simple (a word or a punctuation mark is a
token) but it is used consistently: ``completion_tokens`` is the number of tokens in the content,
a stream carries one content delta per token, and ``max_tokens`` truncates at a token boundary.

Shapes follow research/cometapi.md §8 E1 (non-streaming) and E11 (stream chunks) field for field.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "Answer",
    "Reply",
    "answer_for",
    "completion_body",
    "count_tokens",
    "prompt_tokens",
    "stream_chunks",
    "token_pieces",
    "usage_body",
]

_TOKEN = re.compile(r"\w+|[^\w\s]")
# A stream delta: one token with the whitespace before it, so the deltas join back to the text.
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])")
_REPLY_EXACTLY = re.compile(r"reply with exactly\s*:\s*(.+?)\s*$", re.IGNORECASE | re.DOTALL)
_QUOTES = {'"': '"', "'": "'", "`": "`", "“": "”"}

# Per-message and reply-priming overheads, in the spirit of OpenAI's chat token accounting.
MESSAGE_OVERHEAD_TOKENS = 4
REPLY_PRIMING_TOKENS = 3
IMAGE_PART_TOKENS = 85


def count_tokens(text: str) -> int:
    """Tokens in ``text`` under the simulator's tokenizer (a word or a punctuation mark each)."""
    return len(_TOKEN.findall(text))


@functools.lru_cache(maxsize=4096)
def token_pieces(text: str) -> tuple[str, ...]:
    """Split ``text`` into one piece per token; the pieces join back to ``text``."""
    pieces = _PIECE.findall(text)
    consumed = sum(len(p) for p in pieces)
    if consumed < len(text) and pieces:  # trailing whitespace belongs to the last piece
        pieces[-1] += text[consumed:]
    return tuple(pieces)


def _content_text(content: object) -> tuple[str, int]:
    """The text of a message ``content`` and the extra tokens of its non-text parts."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return "", 0
    texts: list[str] = []
    extra = 0
    for part in content:
        if not isinstance(part, dict):
            continue
        text = part.get("text")
        if isinstance(text, str):
            texts.append(text)
        elif part.get("type") == "image_url":
            extra += IMAGE_PART_TOKENS
    return " ".join(texts), extra


def prompt_tokens(messages: Sequence[object]) -> int:
    """Prompt tokens for ``messages``: every message's content plus a fixed per-message overhead."""
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS
        if not isinstance(message, dict):
            continue
        text, extra = _content_text(message.get("content"))
        total += count_tokens(text) + extra
        name = message.get("name")
        if isinstance(name, str):
            total += count_tokens(name)
    return total


def _prompt_of(messages: Sequence[object]) -> str:
    """The text the answer responds to: the last user message, else the last message."""
    dicts = [m for m in messages if isinstance(m, dict)]
    users = [m for m in dicts if m.get("role") == "user"]
    chosen = users[-1] if users else (dicts[-1] if dicts else {})
    return _content_text(chosen.get("content"))[0]


_OPENERS = ("Sure.", "Understood.", "Here is a short answer.", "Good question.", "In short:")
_SUBJECTS = ("the contract", "the gateway", "the request", "the stream", "the model", "the client")
_VERBS = ("keeps", "checks", "returns", "records", "describes", "settles")
_OBJECTS = (
    "every field in the response",
    "a stable shape for each reply",
    "the usage it was billed for",
    "a clear answer to the prompt",
    "the finish reason of the turn",
    "a deterministic sentence",
)
_CLOSERS = (
    "Nothing else is needed.",
    "That is all for now.",
    "Ask again for the same answer.",
    "The simulator will say it again.",
)


@functools.lru_cache(maxsize=4096)
def _answer_text(prompt: str) -> str:
    exact = _REPLY_EXACTLY.search(prompt)
    if exact:
        wanted = exact.group(1).strip()
        if len(wanted) >= 2 and _QUOTES.get(wanted[0]) == wanted[-1]:
            wanted = wanted[1:-1].strip()
        if wanted:
            return wanted
    seed = hashlib.blake2b(prompt.encode(), digest_size=8).digest()
    opener, subject, verb, obj, closer = (
        words[byte % len(words)]
        for words, byte in zip(
            (_OPENERS, _SUBJECTS, _VERBS, _OBJECTS, _CLOSERS), seed, strict=False
        )
    )
    return f"{opener} {subject[0].upper()}{subject[1:]} {verb} {obj}. {closer}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """What the assistant says and what it costs.

    ``pieces`` are the stream deltas (one per token) and join to ``content``; ``finish_reason``
    ``None`` means no choice ever carries one (a truncated turn).
    """

    content: str | None
    pieces: tuple[str, ...]
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int

    def __post_init__(self) -> None:
        if (self.content or "") != "".join(self.pieces):
            raise ValueError("Answer.pieces must join to Answer.content")
        if self.prompt_tokens < 0 or self.completion_tokens < 0:
            raise ValueError("token counts cannot be negative")

    def truncated(self, limit: int) -> Answer:
        """This answer cut to ``limit`` tokens with ``finish_reason="length"``."""
        pieces = self.pieces[: max(limit, 0)]
        return replace(
            self,
            content="".join(pieces),
            pieces=pieces,
            finish_reason="length",
            completion_tokens=len(pieces),
        )


def _assistant_prefix(messages: Sequence[object]) -> str:
    """The text of a trailing assistant message (a continuation request), else ``""``."""
    last = messages[-1] if messages else None
    if not isinstance(last, dict) or last.get("role") != "assistant":
        return ""
    content = last.get("content")
    return content if isinstance(content, str) else ""


def answer_for(messages: Sequence[object], *, max_tokens: int | None = None) -> Answer:
    """The deterministic answer to ``messages``, truncated to ``max_tokens`` when it is set.

    A request ending with an assistant message whose text begins the answer is a continuation
    (``assistant_prefix``, vLLM's ``continue_final_message``): it gets only the rest.

    >>> answer_for([{"role": "user", "content": "Reply with exactly: pong"}]).content
    'pong'
    """
    text = _answer_text(_prompt_of(messages))
    prefix = _assistant_prefix(messages)
    if prefix and text.startswith(prefix):
        text = text[len(prefix) :]  # continue the partial answer: only the new text
    pieces = token_pieces(text)
    answer = Answer(
        content="".join(pieces),
        pieces=pieces,
        finish_reason="stop",
        prompt_tokens=prompt_tokens(messages),
        completion_tokens=len(pieces),
    )
    if max_tokens is not None and max_tokens < len(pieces):
        return answer.truncated(max_tokens)
    return answer


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """The envelope facts of one completion: id, clock, model and fingerprint."""

    id: str
    created: int
    model: str
    fingerprint: str
    answer: Answer


def usage_body(answer: Answer) -> dict[str, Any]:
    """The ``usage`` object, with the detail objects OpenAI and CometAPI return."""
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_body(reply: Reply) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` body, key for key as research/cometapi.md E1."""
    answer = reply.answer
    return {
        "id": reply.id,
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": answer.content,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": usage_body(answer),
        "service_tier": "default",
        "system_fingerprint": reply.fingerprint,
    }


# OpenAI pads chunks with a random-length ``obfuscation`` string; a fixed cycle stays deterministic.
_OBFUSCATION = tuple(
    hashlib.blake2b(bytes([i]), digest_size=8).hexdigest()[: 3 + i % 9] for i in range(16)
)


def stream_chunks(reply: Reply, *, include_usage: bool) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a stream, without framing or ``[DONE]``.

    The first delta is ``{"role":"assistant","content":"","refusal":null}``, then one content delta
    per token, then an empty delta carrying ``finish_reason`` (left out when the answer has none),
    then, only with ``include_usage``, a ``choices: []`` chunk carrying ``usage``; with
    ``include_usage`` every other chunk carries ``usage: null`` as OpenAI sends it.
    """
    answer = reply.answer
    deltas: list[tuple[dict[str, Any], str | None]] = [
        ({"role": "assistant", "content": "", "refusal": None}, None)
    ]
    deltas.extend(({"content": piece}, None) for piece in answer.pieces)
    if answer.finish_reason is not None:
        deltas.append(({}, answer.finish_reason))
    chunks: list[dict[str, Any]] = []
    for index, (delta, finish_reason) in enumerate(deltas):
        chunk: dict[str, Any] = {
            "id": reply.id,
            "object": "chat.completion.chunk",
            "created": reply.created,
            "model": reply.model,
            "service_tier": "default",
            "system_fingerprint": reply.fingerprint,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            chunk["usage"] = None
        chunk["obfuscation"] = _OBFUSCATION[index % len(_OBFUSCATION)]
        chunks.append(chunk)
    if include_usage:
        chunks.append(
            {
                "id": reply.id,
                "object": "chat.completion.chunk",
                "created": reply.created,
                "model": reply.model,
                "service_tier": "default",
                "system_fingerprint": reply.fingerprint,
                "choices": [],
                "usage": usage_body(answer),
                "obfuscation": _OBFUSCATION[len(deltas) % len(_OBFUSCATION)],
            }
        )
    return chunks
