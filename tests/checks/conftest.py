import pytest


@pytest.fixture(autouse=True)
def _run_in_a_scratch_directory(tmp_path, monkeypatch):
    """validate records .chatcontract/last-validate.json in the working directory."""
    monkeypatch.chdir(tmp_path)
