"""Deterministic answers, the tokenizer, and the bodies built from them."""

from __future__ import annotations

import pytest

from chatcontract.simulator.answers import (
    MESSAGE_OVERHEAD_TOKENS,
    REPLY_PRIMING_TOKENS,
    Answer,
    Reply,
    answer_for,
    completion_body,
    count_tokens,
    prompt_tokens,
    stream_chunks,
    token_pieces,
)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Reply with exactly: pong", "pong"),
        ("reply WITH exactly:   Hello, world!  ", "Hello, world!"),
        ('Please. Reply with exactly: "quoted words"', "quoted words"),
        ("Reply with exactly: 42", "42"),
    ],
    ids=["pong", "case-and-spaces", "quotes-stripped", "number"],
)
def test_reply_with_exactly_answers_the_requested_text(prompt, expected):
    assert answer_for(user(prompt)).content == expected


def test_other_prompts_get_the_same_sentence_every_time():
    first = answer_for(user("What is a contract test?"))
    again = answer_for(user("What is a contract test?"))
    other = answer_for(user("Tell me about streams."))
    assert first.content == again.content
    assert first.content != other.content
    assert first.content
    assert first.content.endswith(".")


def test_the_answer_responds_to_the_last_user_message():
    messages = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Reply with exactly: first"},
        {"role": "assistant", "content": "first"},
        {"role": "user", "content": "Reply with exactly: second"},
    ]
    assert answer_for(messages).content == "second"


def test_text_parts_of_array_content_are_read():
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Reply with exactly: parts"}]}
    ]
    assert answer_for(messages).content == "parts"


def test_tokenizer_counts_words_and_punctuation():
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("") == 0


def test_token_pieces_join_back_to_the_text():
    text = "Sure. The model keeps  a stable shape, always. "
    pieces = token_pieces(text)
    assert "".join(pieces) == text
    assert len(pieces) == count_tokens(text)


def test_prompt_tokens_count_every_message_plus_overheads():
    messages = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Hi there!"},
    ]
    expected = REPLY_PRIMING_TOKENS + 2 * MESSAGE_OVERHEAD_TOKENS + 3 + 3
    assert prompt_tokens(messages) == expected


def test_completion_tokens_equal_the_pieces_of_the_content():
    answer = answer_for(user("Describe the gateway."))
    assert answer.completion_tokens == len(answer.pieces) == count_tokens(answer.content or "")


def test_max_tokens_truncates_with_finish_reason_length():
    full = answer_for(user("Describe the gateway."))
    cut = answer_for(user("Describe the gateway."), max_tokens=3)
    assert cut.finish_reason == "length"
    assert cut.completion_tokens == 3
    assert cut.content == "".join(full.pieces[:3])


def test_max_tokens_above_the_answer_changes_nothing():
    answer = answer_for(user("Reply with exactly: pong"), max_tokens=50)
    assert (answer.content, answer.finish_reason) == ("pong", "stop")


def test_answer_rejects_pieces_that_do_not_join_to_the_content():
    with pytest.raises(ValueError, match="join"):
        Answer(
            content="ab", pieces=("a",), finish_reason="stop", prompt_tokens=1, completion_tokens=1
        )


def _reply(answer: Answer) -> Reply:
    return Reply(id="chatcmpl-x", created=1, model="m-snapshot", fingerprint="fp_1", answer=answer)


def test_completion_body_has_the_documented_keys_in_order():
    body = completion_body(_reply(answer_for(user("Reply with exactly: pong"))))
    assert list(body) == [
        "id", "object", "created", "model", "choices", "usage",
        "service_tier", "system_fingerprint",
    ]  # fmt: skip
    assert body["choices"][0]["message"] == {
        "role": "assistant", "content": "pong", "refusal": None, "annotations": [],
    }  # fmt: skip
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_stream_chunks_rebuild_the_content_and_end_with_usage():
    answer = answer_for(user("Describe the gateway."))
    chunks = stream_chunks(_reply(answer), include_usage=True)
    first, *middle, finish, usage = chunks
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert "".join(c["choices"][0]["delta"]["content"] for c in middle) == answer.content
    assert finish["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == len(middle)
    assert all(c["usage"] is None for c in chunks[:-1])
    assert all(isinstance(c["obfuscation"], str) and c["obfuscation"] for c in chunks)


def test_stream_chunks_without_include_usage_carry_no_usage_key():
    chunks = stream_chunks(_reply(answer_for(user("hi"))), include_usage=False)
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
