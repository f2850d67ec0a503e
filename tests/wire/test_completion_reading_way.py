"""Which way parse_completion reads a body: typed decoder, one-pass reading or full walk.

The result never depends on the way (each test below checks it against the full walk alone,
``_parse_document_slowly``); what these tests pin is that the common bodies take the cheap
ways. A change that only makes a fast path decline more often gives the same result more
slowly, and only a test that watches the way catches it (docs/mutation.md).

- typed decoder: ``decode_body`` accepts, nothing else runs (no ``loads``);
- one-pass reading: ``decode_body`` declines (an unknown member, say), ``loads`` and
  ``_fast_completion`` accept, ``check_required`` does not run;
- full walk: ``check_required`` runs.
"""

from dataclasses import replace

import orjson
import pytest

from chatcontract.contract import ResponseSpec, load_preset
from chatcontract.contract.model import Contract
from chatcontract.wire import completion as completion_module
from chatcontract.wire import parse_completion
from chatcontract.wire._body import decode_body
from chatcontract.wire.completion import _parse_document_slowly

COMETAPI = load_preset("cometapi")
DEFAULT_REQUIRED = ResponseSpec().required_paths
# What a body of the common shape proves present and non-null, written out here rather than
# read from the module's constants (a changed constant must not change the test with it).
BASE_PATHS = (
    "id",
    "model",
    "choices",
    "choices[0]",
    "choices[0].message",
    "choices[0].message.content",
    "choices[0].finish_reason",
)
USAGE_PATHS = ("usage", "usage.prompt_tokens", "usage.completion_tokens", "usage.total_tokens")
COMPLETE_USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}

_ABSENT = object()


def _doc(*, usage: object = _ABSENT, **changes: object) -> dict[str, object]:
    message: dict[str, object] = {"role": "assistant", "content": "hi"}
    tool_calls = changes.pop("tool_calls", _ABSENT)
    if tool_calls is not _ABSENT:
        message["tool_calls"] = tool_calls
    doc: dict[str, object] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "system_fingerprint": "fp",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }
    if usage is not _ABSENT:
        doc["usage"] = usage
    doc.update(changes)
    return doc


def _contract(paths: tuple[str, ...] | None) -> Contract | None:
    if paths is None:
        return None
    return replace(COMETAPI, response=ResponseSpec(required_paths=paths))


class _Ways:
    """Counts the calls that tell the ways apart."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.loads = 0
        self.walks = 0
        real_loads = completion_module.loads
        real_check = completion_module.check_required

        def loads(body: bytes) -> object:
            self.loads += 1
            return real_loads(body)

        def check_required(*args: object) -> None:
            self.walks += 1
            real_check(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(completion_module, "loads", loads)
        monkeypatch.setattr(completion_module, "check_required", check_required)

    @property
    def way(self) -> str:
        if self.walks:
            return "full walk"
        return "one-pass" if self.loads else "typed"


def _read(doc: dict[str, object], paths: tuple[str, ...] | None, ways: _Ways) -> str:
    """The way ``doc`` went; its result must be the full walk's."""
    raw = orjson.dumps(doc)
    result = parse_completion(raw, contract=_contract(paths))
    way = ways.way  # before the full walk below, which calls check_required itself
    assert result == _parse_document_slowly(doc, paths or DEFAULT_REQUIRED)
    return way


# Required paths, usage, way. `None` is parse_completion's default contract.
_TYPED = [
    pytest.param(None, COMPLETE_USAGE, id="defaults-complete-usage"),
    pytest.param(None, _ABSENT, id="defaults-no-usage"),
    pytest.param(None, None, id="defaults-null-usage"),
    pytest.param(DEFAULT_REQUIRED, ZERO_USAGE, id="zero-counts"),
    pytest.param(DEFAULT_REQUIRED, {"completion_tokens": 0}, id="one-zero-count"),
    pytest.param(BASE_PATHS, _ABSENT, id="exactly-the-base-paths-no-usage"),
    pytest.param(BASE_PATHS[:3], _ABSENT, id="fewer-than-the-base-paths"),
    pytest.param((*BASE_PATHS, *USAGE_PATHS), COMPLETE_USAGE, id="base-and-usage-paths"),
    pytest.param((*DEFAULT_REQUIRED, "usage.total_tokens"), COMPLETE_USAGE, id="one-usage-path"),
    pytest.param((*DEFAULT_REQUIRED, "usage"), ZERO_USAGE, id="usage-with-zero-counts"),
]


@pytest.mark.parametrize(("paths", "usage"), _TYPED)
def test_a_common_body_is_read_by_the_typed_decoder_alone(monkeypatch, paths, usage):
    doc = _doc(usage=usage)
    assert decode_body(orjson.dumps(doc)) is not None
    assert _read(doc, paths, _Ways(monkeypatch)) == "typed"


@pytest.mark.parametrize(("paths", "usage"), _TYPED)
def test_a_common_body_with_an_unknown_member_is_read_in_one_pass(monkeypatch, paths, usage):
    # The typed decoder refuses unknown members; the one-pass reading ignores them.
    doc = _doc(usage=usage, x_request_cost=1)
    assert decode_body(orjson.dumps(doc)) is None
    assert _read(doc, paths, _Ways(monkeypatch)) == "one-pass"


@pytest.mark.parametrize(
    "changes",
    [
        {"created": None},
        {"object": None},
        {"system_fingerprint": None},
        {"tool_calls": []},
        {"choices": [{"message": {"content": "hi", "role": None}, "finish_reason": "stop"}]},
        {"choices": [{"message": {"content": "hi", "refusal": None}, "finish_reason": "stop"}]},
        {"choices": [{"message": {"content": "hi", "refusal": "no"}, "finish_reason": "stop"}]},
        {
            "choices": [
                {"message": {"content": "hi", "reasoning_content": None}, "finish_reason": "stop"}
            ]
        },
        {
            "choices": [
                {"message": {"content": "hi", "reasoning_content": "hm"}, "finish_reason": "stop"}
            ]
        },
        {"choices": [{"index": None, "message": {"content": "hi"}, "finish_reason": "stop"}]},
    ],
    ids=[
        "created-null",
        "object-null",
        "fingerprint-null",
        "tool-calls-empty",
        "role-null",
        "refusal-null",
        "refusal",
        "reasoning-null",
        "reasoning",
        "index-null",
    ],
)
def test_the_allowed_values_keep_a_body_on_the_one_pass_reading(monkeypatch, changes):
    doc = _doc(usage=COMPLETE_USAGE, x_request_cost=1, **changes)
    assert _read(doc, None, _Ways(monkeypatch)) == "one-pass"


@pytest.mark.parametrize(
    ("paths", "usage"),
    [
        pytest.param((*DEFAULT_REQUIRED, "usage.total_tokens"), _ABSENT, id="usage-needed-absent"),
        pytest.param(
            (*DEFAULT_REQUIRED, "usage.total_tokens"),
            {"prompt_tokens": 1, "completion_tokens": 2},
            id="usage-needed-incomplete",
        ),
        pytest.param((*DEFAULT_REQUIRED, "system_fingerprint"), COMPLETE_USAGE, id="other-path"),
        pytest.param(None, {"completion_tokens": -1}, id="negative-count"),
        pytest.param(None, {"completion_tokens": 1.0}, id="float-count"),
        pytest.param(None, {"completion_tokens": True}, id="boolean-count"),
    ],
)
def test_what_the_fast_ways_cannot_prove_goes_through_the_full_walk(monkeypatch, paths, usage):
    for doc in (_doc(usage=usage), _doc(usage=usage, x_request_cost=1)):
        assert _read(doc, paths, _Ways(monkeypatch)) == "full walk"
