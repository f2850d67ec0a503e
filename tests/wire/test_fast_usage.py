"""The fast paths' reading of ``usage``: the same Usage as the full walk, or None to decline.

``_fast_usage`` takes the three counts out of a copy of the object (the rest, in order, are the
details) and declines at any ``*_tokens`` member that is neither null nor a non-negative
integer; the usual detail objects are not looked at one by one.
"""

from __future__ import annotations

import orjson
import pytest

from chatcontract.wire import Usage, parse_completion
from chatcontract.wire.completion import _fast_usage, _read_usage

COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
OPENAI_USAGE = {
    "prompt_tokens": 16,
    "completion_tokens": 21,
    "total_tokens": 37,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}


def _full_walk(raw: dict[str, object]) -> Usage | None:
    return _read_usage(raw, "$.usage", [])


@pytest.mark.parametrize(
    "raw",
    [
        OPENAI_USAGE,
        {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        {"completion_tokens_details": {"reasoning_tokens": 1}, "prompt_tokens": 1},
        {"prompt_tokens": 1, "reasoning_tokens": 4, "total_tokens": 5},
        {"prompt_tokens": 1, "cache_tokens": None},
        {"prompt_tokens": 0, "latency_checkpoint": "x", "claude_cache_creation_5_m_tokens": 0},
        {"prompt_tokens_details": None, "total_tokens": 0},
        {},
    ],
    ids=[
        "openai", "counts-only", "details-first", "an-unusual-count", "a-null-unusual-count",
        "unusual-members", "null-details", "empty",
    ],
)  # fmt: skip
def test_a_well_formed_usage_reads_as_the_full_walk_reads_it(raw):
    read = _fast_usage(raw)
    assert read is not None
    usage, _ = read
    assert usage == _full_walk(raw)
    assert list(usage.details) == [name for name in raw if name not in COUNTS]
    assert type(usage) is Usage


def test_the_details_keep_the_order_they_came_in():
    raw = {
        "completion_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 3,
        "x_member": 1,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    usage, _ = _fast_usage(raw)  # type: ignore[misc]
    assert list(usage.details) == ["completion_tokens_details", "x_member", "prompt_tokens_details"]


def test_the_object_read_is_left_as_it_was():
    raw = dict(OPENAI_USAGE)
    _fast_usage(raw)
    assert raw == OPENAI_USAGE


@pytest.mark.parametrize("name", ["prompt_tokens", "completion_tokens", "total_tokens"])
@pytest.mark.parametrize("value", [-1, 1.5, True, "3", {"a": 1}], ids=repr)
def test_a_count_that_is_not_a_non_negative_integer_declines(name, value):
    raw = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, name: value}
    assert _fast_usage(raw) is None


@pytest.mark.parametrize("name", ["prompt_tokens", "completion_tokens", "total_tokens"])
def test_a_zero_count_is_read(name):
    raw = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, name: 0}
    read = _fast_usage(raw)
    assert read is not None
    assert getattr(read[0], name) == 0


@pytest.mark.parametrize(
    "raw",
    [
        {"reasoning_tokens": -1},
        {"reasoning_tokens": 2.0},
        {"prompt_tokens_details": {}, "reasoning_tokens": -1},
        {"x": 1, "cache_read_tokens": {"a": 1}},
    ],
    ids=["negative", "float", "after-a-usual-detail", "an-object"],
)
def test_an_unusual_count_that_is_not_a_non_negative_integer_declines(raw):
    assert _fast_usage(raw) is None


@pytest.mark.parametrize(
    ("raw", "complete"),
    [
        ({"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}, True),
        ({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}, True),
        ({"completion_tokens": 2, "total_tokens": 3}, False),
        ({"prompt_tokens": 1, "total_tokens": 3}, False),
        ({"prompt_tokens": 1, "completion_tokens": 2}, False),
        ({"prompt_tokens": 1, "completion_tokens": None, "total_tokens": 3}, False),
    ],
    ids=["all-three", "all-zero", "no-prompt", "no-completion", "no-total", "a-null-count"],
)
def test_usage_is_complete_with_all_three_counts(raw, complete):
    read = _fast_usage(raw)
    assert read is not None
    assert read[1] is complete


def test_a_body_whose_usage_declines_is_read_the_general_way():
    body = {
        "id": "c",
        "model": "m",
        "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2,
                  "reasoning_tokens": -3},
    }  # fmt: skip
    result = parse_completion(orjson.dumps(body))
    assert [violation.path for violation in result.violations] == ["$.usage.reasoning_tokens"]
    assert result.completion is not None
    assert result.completion.usage == Usage(
        prompt_tokens=1, completion_tokens=1, total_tokens=2, details={"reasoning_tokens": -3}
    )
