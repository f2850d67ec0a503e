"""semantic_failure: the application-level checks of a parsed completion, one row each."""

from dataclasses import replace

import pytest

from chatcontract.contract import load_preset
from chatcontract.failures import semantic_failure
from chatcontract.wire import Completion, ToolCall, Usage

COMET = load_preset("cometapi")


def completion(content="pong", finish="stop", usage=(3, 2, 5), tool_calls=()):
    prompt, completion_tokens, total = usage if usage is not None else (None, None, None)
    return Completion(
        id="x",
        model="m",
        created=1,
        system_fingerprint=None,
        content=content,
        refusal=None,
        reasoning_content=None,
        tool_calls=tool_calls,
        finish_reason=finish,
        usage=None
        if usage is None
        else Usage(prompt_tokens=prompt, completion_tokens=completion_tokens, total_tokens=total),
        choice_count=1,
    )


def check(answer, max_tokens=None):
    failure = semantic_failure(answer, contract=COMET, max_tokens=max_tokens)
    return None if failure is None else (failure.kind, failure.category, failure.code)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (completion(), None),
        (completion(usage=None), None),
        (completion(finish=None), None),
        (completion(finish="eos"), ("semantic", "contract", "unexpected_finish_reason")),
        (completion(content=""), ("semantic", "content", "empty_content")),
        (completion(content=None), ("semantic", "content", "empty_content")),
        (
            completion(content="", finish="content_filter"),
            ("semantic", "content", "content_filter"),
        ),
        (
            completion(
                content=None,
                tool_calls=(ToolCall(index=0, id="c", type="function", name="f", arguments="{}"),),
            ),
            None,
        ),
        (completion(usage=(-1, 2, 1)), ("semantic", "usage", "negative_usage")),
        (completion(usage=(3, -2, 1)), ("semantic", "usage", "negative_usage")),
        (completion(usage=(3, 2, -5)), ("semantic", "usage", "negative_usage")),
        # -1 is negative even where the sum holds
        (completion(usage=(-1, 1, 0)), ("semantic", "usage", "negative_usage")),
        (completion(usage=(1, -1, 0)), ("semantic", "usage", "negative_usage")),
        (completion(usage=(0, 0, -1)), ("semantic", "usage", "negative_usage")),
        (completion(usage=(0, 0, 0)), None),
        (completion(usage=(3, 2, 6)), ("semantic", "usage", "usage_mismatch")),
        (completion(usage=(3, 2, 4)), ("semantic", "usage", "usage_mismatch")),
        (completion(usage=(3, None, 5)), None),
        (completion(usage=(1000, 2000, 3000)), None),
        (completion(usage=(3, None, 2)), ("semantic", "usage", "usage_mismatch")),
        (completion(usage=(3, None, 3)), None),
        (completion(usage=(None, 2, 1)), None),
        (completion(usage=(3, None, None)), None),
    ],
    ids=[
        "ok",
        "no-usage",
        "no-finish-reason",
        "unknown-finish-reason",
        "empty-content",
        "null-content",
        "content-filter",
        "tool-calls-only",
        "negative-prompt",
        "negative-completion",
        "negative-total",
        "minus-1-prompt",
        "minus-1-completion",
        "minus-1-total",
        "all-zero",
        "total-above-sum",
        "total-below-sum",
        "total-above-prompt-no-completion",
        "large-counts-add-up",
        "total-below-prompt",
        "total-equals-prompt",
        "no-prompt",
        "prompt-only",
    ],
)
def test_semantic_rows(answer, expected):
    assert check(answer) == expected


@pytest.mark.parametrize(
    ("max_tokens", "expected"),
    [(None, None), (3, None), (2, None), (1, ("semantic", "usage", "usage_exceeds_max_tokens"))],
    ids=["no-cap", "above", "equal", "below"],
)
def test_completion_tokens_against_max_tokens(max_tokens, expected):
    assert check(completion(), max_tokens=max_tokens) == expected


def test_messages_name_the_numbers():
    def message(answer, max_tokens=None):
        return semantic_failure(answer, contract=COMET, max_tokens=max_tokens).message

    assert message(completion(usage=(3, 2, 6))) == (
        "total_tokens 6 != prompt_tokens 3 + completion_tokens 2"
    )
    assert message(completion(usage=(3, None, 2))) == "total_tokens 2 < prompt_tokens 3"
    assert message(completion(), max_tokens=1) == "completion_tokens 2 > max_tokens 1"
    assert message(completion(usage=(-1, 2, 1))) == "a usage count is negative"
    assert message(completion(finish="eos")) == (
        "finish_reason 'eos' is not one the contract accepts"
    )
    assert message(completion(content="")) == "the assistant content is empty"
    assert message(completion(content="", finish="content_filter")) == (
        "the answer was filtered: no content"
    )


def test_status_and_decision_follow_the_contract():
    failure = semantic_failure(completion(content=""), contract=COMET, status=203)
    assert (failure.status, failure.retry) == (203, "fallback")
    assert semantic_failure(completion(content="")).status == 200  # default contract and status


def test_an_empty_answer_is_content_filtered_only_for_that_finish_reason():
    contract = replace(COMET, response=replace(COMET.response, finish_reasons=("stop", "abort")))
    failure = semantic_failure(completion(content="", finish="abort"), contract=contract)
    assert failure.code == "empty_content"
