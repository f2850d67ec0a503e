"""wire._json.loads: the one place a JSON decode error becomes data (an offset)."""

import pytest

from chatcontract.wire._json import loads


@pytest.mark.parametrize(
    ("data", "value"),
    [(b'{"a": [1, null]}', {"a": [1, None]}), ('"\u00e9"', "\u00e9"), (b"0", 0)],
    ids=["bytes-object", "str-string", "zero"],
)
def test_valid_json_decodes_with_no_offset(data, value):
    assert loads(data) == (value, None)


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b'{"a": 1 x}', 8),
        ('{"a": 1 x}', 8),
        ('{"a": "\u00e9\u00e9", x}'.encode(), 14),
        ('{"a": "\u00e9\u00e9", x}', 12),
        ('"\u20ac" x'.encode(), 6),
        (b"", 0),
    ],
    ids=[
        "ascii-bytes",
        "ascii-str",
        "two-byte-chars-count-as-bytes",
        "str-counts-characters",
        "three-byte-char",
        "empty",
    ],
)
def test_a_decode_error_gives_the_byte_offset_for_bytes_and_the_character_offset_for_str(
    data, offset
):
    assert loads(data) == (None, offset)
