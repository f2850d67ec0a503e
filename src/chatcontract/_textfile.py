"""Reading a file a user names (contract, run record, captured body): bounded, never blocking.

One reader, so every command treats a directory, a FIFO, ``/dev/zero``, a huge file or a file
that is not UTF-8 the same way: at most ``limit`` bytes are read (a larger file is refused, not
cut), a FIFO without a writer reads as empty instead of waiting forever, and a decoding problem
is one sentence saying how to save the file, never a traceback.
"""

from __future__ import annotations

import codecs
import os
import stat

__all__ = ["FileProblemError", "FileTooLargeError", "read_limited", "read_text"]

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class FileProblemError(Exception):
    """The file exists but cannot be used; ``str()`` is the reason without the path."""


class FileTooLargeError(FileProblemError):
    """The file holds more than the reader's limit (nothing was kept)."""


def _size_words(limit: int) -> str:
    mib = limit / (1024 * 1024)
    return f"{mib:g} MiB" if mib >= 1 else f"{limit} bytes"


def read_limited(path: str | os.PathLike[str], *, limit: int) -> bytes:
    """The bytes of ``path``, at most ``limit`` of them.

    Opened non-blocking, so a FIFO with no writer reads as empty at once (a pipe with a writer,
    ``<(command)``, is read normally); reading stops after ``limit + 1`` bytes, so
    ``/dev/zero`` or a 100 GB file costs at most ``limit`` bytes of memory.

    Raises:
        FileNotFoundError: there is no file (the caller says what that means).
        FileProblemError: a directory or an unreadable file; ``FileTooLargeError``: more than
            ``limit`` bytes.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise FileProblemError(f"cannot be read ({exc.strerror or type(exc).__name__})") from exc
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise FileProblemError("is a directory; give a file")
        os.set_blocking(fd, True)  # a pipe with a writer: wait for its bytes, as cat would
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise FileProblemError(f"cannot be read ({exc.strerror or type(exc).__name__})") from exc
    finally:
        os.close(fd)
    if size > limit:
        raise FileTooLargeError(
            f"is larger than {_size_words(limit)}, the most chatcontract reads here; "
            "give the right file (or a smaller one)"
        )
    return b"".join(chunks)


def read_text(path: str | os.PathLike[str], *, limit: int) -> str:
    """The UTF-8 text of ``path`` (a UTF-8 byte order mark is dropped), via ``read_limited``.

    Raises:
        FileNotFoundError: there is no file.
        FileProblemError: as ``read_limited``, or the bytes are not UTF-8 (UTF-16 is named).
    """
    data = read_limited(path, limit=limit)
    if data.startswith(_UTF16_BOMS):
        raise FileProblemError("is UTF-16 text; save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FileProblemError(
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); save it as UTF-8"
        ) from None
