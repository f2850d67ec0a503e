"""A read holding two one-line events: the fast path takes both, whatever their lengths (the
single-event shortcut must only fire when the first line feed ends the whole read)."""

from __future__ import annotations

import pytest

from chatcontract.wire import SSEDecoder


@pytest.mark.parametrize("second_length", range(1, 41))
def test_two_events_in_one_read_are_both_decoded(second_length):
    second = "b" * second_length
    decoder = SSEDecoder()
    events = decoder.feed(f"data: a\n\ndata: {second}\n\n".encode())
    assert [event.data for event in events] == ["a", second]
