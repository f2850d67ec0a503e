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
