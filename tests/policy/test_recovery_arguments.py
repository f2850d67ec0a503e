"""Run-time tolerance takes its answer facts by keyword only."""

import pytest

from chatcontract.failures import make_failure
from chatcontract.policy import tolerated

NO_DONE = make_failure(kind="parser", category="contract", code="stream_no_done", message="m")


def test_tolerated_takes_the_answer_facts_by_keyword_only():
    assert tolerated(NO_DONE, finish_reason="stop", content="hi", tool_calls=False) is True
    with pytest.raises(TypeError):
        tolerated(NO_DONE, "stop", "hi", False)  # type: ignore[misc]
