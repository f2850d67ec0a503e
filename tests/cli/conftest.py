import pytest

from chatcontract.cli import main


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""

    def run(*argv: str):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("COMETAPI_KEY", "COMETAPI_API_KEY", "COMET_API_KEY", "OPENAI_API_KEY",
                 "CHATCONTRACT_MODEL", "CHATCONTRACT_KILL_SWITCH"):
        monkeypatch.delenv(name, raising=False)
