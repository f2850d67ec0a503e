import chatcontract


def test_public_names_are_exactly_the_documented_list():
    assert chatcontract.__all__ == [
        "AsyncChatClient",
        "AsyncChatStream",
        "AsyncInstrumentedTransport",
        "BudgetExceededError",
        "CallFailedError",
        "ChatClient",
        "ChatContractError",
        "ChatResult",
        "ChatStream",
        "ConfigError",
        "Contract",
        "ContractFileError",
        "DeadlineExhaustedError",
        "Exchange",
        "Failure",
        "InstrumentedTransport",
        "JsonEventLog",
        "KillSwitchError",
        "NonRetryableError",
        "OpenTelemetrySink",
        "PrometheusSink",
        "RetriesExhaustedError",
        "SimulatorError",
        "StackedRetriesWarning",
        "StreamDelta",
        "StreamInterrupted",
        "UsageError",
        "__version__",
        "ainstrument",
        "check_sdk_client",
        "classify",
        "flush",
        "instrument",
        "load_contract",
        "load_preset",
    ]


def test_all_is_sorted_and_every_name_resolves():
    names = [n for n in chatcontract.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in chatcontract.__all__:
        assert getattr(chatcontract, name) is not None


def test_version_comes_from_the_installed_metadata():
    from importlib.metadata import version

    assert chatcontract.__version__ == version("chatcontract")


def test_every_source_folder_is_a_regular_package():
    """setuptools' find_packages skips folders without __init__.py: a wheel would lose them."""
    from pathlib import Path

    root = Path(chatcontract.__file__).parent
    folders = {p.parent for p in root.rglob("*.py") if "__pycache__" not in p.parts}
    missing = sorted(str(f.relative_to(root)) for f in folders if not (f / "__init__.py").exists())
    assert missing == []


# --- packaging -----------------------------------------------------------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _sdist(tmp_path):
    """Build the sdist from a clean copy of this checkout, offline; its members and PKG-INFO.

    A copy, because setuptools also packs whatever a left-over ``*.egg-info/SOURCES.txt``
    lists: built in place, a forgotten MANIFEST.in line would go unnoticed.
    """
    import shutil
    import subprocess
    import sys
    import tarfile

    source = tmp_path / "checkout"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "*.egg-info", "build", "dist", "__pycache__", ".*_cache", ".hypothesis"
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=source,
        capture_output=True,
        check=True,
        timeout=300,
    )
    (archive,) = tmp_path.glob("chatcontract-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        pkg_info = tar.extractfile(f"{top}/PKG-INFO").read().decode()
    return {name.split("/", 1)[1] for name in names if "/" in name}, pkg_info


def test_sdist_contains_the_whole_test_suite_and_its_data(tmp_path):
    members, pkg_info = _sdist(tmp_path)

    expected = {
        path.relative_to(ROOT).as_posix()
        for folder in ("tests", "docs", "benchmarks")
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert expected - members == set()
    assert {"LICENSE", "README.md", "pyproject.toml", "tests/conftest.py"} <= members
    assert "License-Expression: Apache-2.0" in pkg_info


def _extra(requirements: list[str], name: str) -> list[str]:
    found = [r for r in requirements if f'extra == "{name}"' in r]
    return [r.split(";")[0].split(">")[0].strip() for r in found]


def test_metadata_advertises_otel_and_gateway_extras_and_no_dev_extra():
    from importlib.metadata import metadata

    meta = metadata("chatcontract")
    requirements = meta.get_all("Requires-Dist") or []

    assert meta.get_all("Provides-Extra") == ["otel", "gateway"]
    assert _extra(requirements, "otel") == ["opentelemetry-api"]
    # The gateway's measured stack (docs/gateway-performance.md).
    assert _extra(requirements, "gateway") == ["aiohttp", "httptools", "uvloop"]
    assert meta["License-Expression"] == "Apache-2.0"


def test_license_file_is_the_apache_2_text():
    text = (ROOT / "LICENSE").read_text()

    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert "APPENDIX: How to apply the Apache License to your work." in text


def test_otel_sink_runs_on_the_api_alone():
    """The otel extra installs only opentelemetry-api: the sink may not import the SDK."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class NoSDK:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'opentelemetry.sdk' or name.startswith('opentelemetry.sdk.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, NoSDK())\n"
        "from chatcontract import OpenTelemetrySink\n"
        "OpenTelemetrySink()\n"
        "assert not any(m.startswith('opentelemetry.sdk') for m in sys.modules)\n"
        "assert 'opentelemetry.metrics' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
