"""``chatcontract._textfile``: a user's file is read bounded, without blocking, as UTF-8."""

import codecs
import os
from pathlib import Path

import pytest

from chatcontract._textfile import FileProblemError, FileTooLargeError, read_limited, read_text


def test_a_file_at_the_limit_is_read_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    assert read_limited(path, limit=10) == b"x" * 10
    with pytest.raises(FileTooLargeError, match="larger than 9 bytes"):
        read_limited(path, limit=9)


def test_an_endless_device_is_refused_after_the_limit() -> None:
    with pytest.raises(FileTooLargeError, match="larger than 1 MiB"):
        read_limited("/dev/zero", limit=1024 * 1024)


def test_a_fifo_without_a_writer_reads_as_empty_instead_of_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert read_text(fifo, limit=100) == ""


def test_a_pipe_with_a_writer_is_read_in_full() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"version: 1\n")
    os.close(write_end)
    try:
        assert read_text(f"/dev/fd/{read_end}", limit=100) == "version: 1\n"
    finally:
        os.close(read_end)


def test_a_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileProblemError, match="is a directory; give a file"):
        read_text(tmp_path, limit=100)


def test_a_missing_file_is_left_to_the_caller(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "absent", limit=100)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("version: 1\n".encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
        (codecs.BOM_UTF16_BE + "v".encode("utf-16-be"), "is UTF-16 text; save it as UTF-8"),
        (b"version: 1\nname: \xc3\x28\n", r"is not UTF-8 text \(byte 0xc3 on line 2\); save"),
    ],
    ids=["utf-16-le", "utf-16-be", "latin-garbage"],
)
def test_text_that_is_not_utf8_says_how_to_save_it(
    tmp_path: Path, data: bytes, message: str
) -> None:
    path = tmp_path / "f"
    path.write_bytes(data)
    with pytest.raises(FileProblemError, match=message):
        read_text(path, limit=100)


def test_a_utf8_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(codecs.BOM_UTF8 + b'{"a": 1}')
    assert read_text(path, limit=100) == '{"a": 1}'
