"""The wire layer's public names: explicit, sorted, importable."""

import ast
from pathlib import Path

import chatcontract.wire as wire


def test_all_is_sorted_and_unique():
    assert wire.__all__ == sorted(set(wire.__all__))


def test_every_public_name_exists():
    for name in wire.__all__:
        assert getattr(wire, name) is not None


def test_the_public_api():
    assert wire.__all__ == [
        "BodyKind",
        "Completion",
        "CompletionResult",
        "ErrorBody",
        "ErrorShape",
        "Fingerprint",
        "RequestCheck",
        "SSEDecoder",
        "SSEEvent",
        "StreamAssembler",
        "StreamParser",
        "StreamResult",
        "StreamVerdict",
        "ToolCall",
        "Usage",
        "Violation",
        "ViolationKind",
        "check_request",
        "check_request_bytes",
        "error_from_document",
        "fingerprint_bytes",
        "is_error_envelope",
        "parse_completion",
        "parse_error_body",
        "parse_stream",
        "shape_fingerprint",
        "shape_paths",
        "union_of_shape_paths",
    ]


def test_the_wire_layer_imports_nothing_that_does_io():
    forbidden = (
        "httpx",
        "httpx2",
        "httpcore",
        "socket",
        "asyncio",
        "starlette",
        "uvicorn",
        "sqlite3",
    )
    package = Path(wire.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
