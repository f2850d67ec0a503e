"""``chatcontract._jsonfile.read_json_file``: one wording for an unreadable or malformed file."""

from pathlib import Path

import pytest

from chatcontract._jsonfile import read_json_file
from chatcontract.errors import ConfigError


def test_a_json_file_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_text('{"report": {"verdict": "pass"}}', encoding="utf-8")

    assert read_json_file(path) == {"report": {"verdict": "pass"}}


def test_a_missing_file_is_left_to_the_caller(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_json_file(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("remedy", "tail"),
    [
        ("run 'chatcontract validate' again", "; run 'chatcontract validate' again"),
        (None, ": Expecting property name enclosed in double quotes"),
    ],
    ids=["with-remedy", "decoder-words"],
)
def test_malformed_json_names_the_file_and_line(
    tmp_path: Path, remedy: str | None, tail: str
) -> None:
    path = tmp_path / "record.json"
    path.write_text("\n{oops", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        read_json_file(path, remedy=remedy)

    assert str(caught.value).startswith(f"{path}: not valid JSON (line 2)")
    assert str(caught.value).endswith(tail)


def test_an_unreadable_path_says_why(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r": is a directory; give a file"):
        read_json_file(tmp_path)  # a directory


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"n": ' + "1" * 10_000 + "}", "a number too long"),
    ],
    ids=["100k-levels", "10k-digit-number"],
)
def test_json_python_cannot_hold_is_one_config_error(
    tmp_path: Path, content: str, reason: str
) -> None:
    path = tmp_path / "record.json"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(ConfigError, match=rf"not usable JSON \({reason}\); again$"):
        read_json_file(path, remedy="again")


def test_a_record_that_is_not_utf8_is_one_config_error(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_bytes('{"a": 1}'.encode("utf-16"))

    with pytest.raises(ConfigError, match=r"record.json: is UTF-16 text; save it as UTF-8"):
        read_json_file(path)


def test_a_record_with_a_utf8_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}')

    assert read_json_file(path) == {"a": 1}


def test_an_endless_file_is_refused_not_read() -> None:
    with pytest.raises(ConfigError, match=r"/dev/zero: is larger than 64 MiB"):
        read_json_file("/dev/zero")
