"""wire._json.loads: the one place a JSON decode error becomes data (an offset); and
out_of_range: a failure that is a number beyond a double, named with its path."""

import pytest
from _examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.wire._json import PATH_SCAN_LIMIT, loads, out_of_range


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


# -- out_of_range: valid JSON holding a number no decoder holds --------------------------------

DIGITS = "9" * 10_000


@pytest.mark.parametrize(
    ("text", "path", "length"),
    [
        ('{"usage": {"prompt_tokens": ' + DIGITS + "}}", ".usage.prompt_tokens", 10_000),
        ('{"created": ' + DIGITS + ', "id": "x"}', ".created", 10_000),
        ('{"a": [1, {"b": 2}, [3, -' + DIGITS + "]]}", ".a[2][1]", 10_001),
        ('{"a": "x\\",[{:", "b c": 1e999}', '["b c"]', 5),
        ('{"\\u0061": 1e999}', ".a", 5),
        ("1e999", "", 5),
    ],
    ids=[
        "nested",
        "top-level",
        "in-arrays",
        "non-name-key-after-tricky-string",
        "escaped-key",
        "root",
    ],
)
def test_a_number_beyond_a_double_is_named_with_its_path_and_length(text, path, length):
    for data in (text, text.encode()):
        doc, error_at = loads(data)
        assert doc is None
        assert out_of_range(data, error_at) == (path, length)


@pytest.mark.parametrize(
    "text",
    ['{"a": 1 x}', '{"a": 1,}', '{"a": 1e308, "b": }', '{"a": NaN}', "", '{"a": 01}', '{"a": -01}'],
    ids=[
        "garbage",
        "trailing-comma",
        "large-but-finite-then-garbage",
        "nan",
        "empty",
        "leading-zero",
        "negative-leading-zero",
    ],
)
def test_any_other_decode_failure_is_not_a_number_out_of_range(text):
    _doc, error_at = loads(text)
    assert error_at is not None
    assert out_of_range(text, error_at) is None


def test_a_number_past_the_scan_limit_is_named_without_its_path():
    text = '{"pad": "' + "x" * PATH_SCAN_LIMIT + '", "n": 1e999}'
    _doc, error_at = loads(text)
    assert out_of_range(text, error_at) == ("", 5)


@pytest.mark.parametrize(
    ("offset", "path"), [(0, ".n"), (1, "")], ids=["at-the-limit", "one-past-it"]
)
def test_the_scan_limit_is_a_mebibyte_into_the_document(offset, path):
    head = '{"n": '
    pad = " " * (PATH_SCAN_LIMIT - len(head) + offset)  # whitespace is valid JSON
    text = head + pad + "1e999}"
    _doc, error_at = loads(text)
    assert PATH_SCAN_LIMIT == 1 << 20
    assert error_at == (1 << 20) + offset
    assert out_of_range(text, error_at) == (path, 5)


@pytest.mark.parametrize("as_bytes", [False, True], ids=["text", "bytes"])
def test_a_broken_key_before_an_arbitrary_position_is_shown_as_written(as_bytes):
    # out_of_range is called at any position (never raises): a key that does not decode is
    # named with its text between the quotes.
    text = '{"a\\qb": 1e999}'
    data = text.encode() if as_bytes else text
    assert out_of_range(data, text.index("1e999")) == ('["a\\\\qb"]', 5)


@settings(max_examples=examples(300))
@given(st.binary(max_size=256), st.integers(min_value=0, max_value=300))
def test_out_of_range_never_raises(data, error_at):
    found = out_of_range(data, error_at)
    assert found is None or (type(found[0]) is str and found[1] > 0)
