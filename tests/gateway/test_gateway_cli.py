"""``chatcontract gateway`` as a user runs it: a subprocess serving a contract file, called by
curl and by a Node client (Node's built-in fetch, no packages): nothing is Python-only."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_helpers import FULL, PROMPT, contract_for, env_for

from chatcontract import gateway
from chatcontract.cli import gateway_cmd, main

STARTUP_S = 20


class Running:
    """A gateway subprocess and its base URL (read from its banner)."""

    def __init__(
        self,
        process: subprocess.Popen[str],
        base_url: str,
        lines: queue.Queue[str],
        reader: threading.Thread,
    ) -> None:
        self.process = process
        self.base_url = base_url
        self.lines = lines
        self.reader = reader

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self.reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _contract_file(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "chatcontract.yaml"
    assert main(["init", "--path", str(path)]) == 0
    text = path.read_text()
    path.write_text(text.replace("base_url: https://api.cometapi.com/v1", f"base_url: {base_url}"))
    return path


def _start(args: list[str], env: dict[str, str]) -> Running:
    command = [sys.executable, "-m", "chatcontract", "gateway", "--admin", "off", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    first = lines.get(timeout=STARTUP_S)
    prefix = "chatcontract gateway listening on "
    running = Running(process, first.removeprefix(prefix), lines, reader)
    if not first.startswith(prefix):
        running.close()
        pytest.fail(f"the gateway did not start: {first}")
    return running


@pytest.fixture
def running(tmp_path, simulator) -> Iterator[Running]:
    path = _contract_file(tmp_path, simulator.base_url)
    env = {**os.environ, "COMETAPI_KEY": simulator.api_key}
    server = _start(["--contract", str(path), "--listen", "127.0.0.1:0"], env)
    yield server
    server.close()


def _curl(*args: str) -> str:
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "20", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _body(stream: bool) -> str:
    return json.dumps({"model": "gpt-4.1-nano", "messages": PROMPT, "stream": stream})


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_gets_the_answer_through_the_cli_gateway(running):
    out = _curl(
        "-H", "content-type: application/json", "-d", _body(False),
        f"{running.base_url}/chat/completions",
    )  # fmt: skip
    assert json.loads(out)["choices"][0]["message"]["content"] == FULL


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_streams_through_the_cli_gateway_to_done(running):
    out = _curl(
        "-N", "-H", "content-type: application/json", "-d", _body(True),
        f"{running.base_url}/chat/completions",
    )  # fmt: skip
    events = [line.removeprefix("data: ") for line in out.splitlines() if line.startswith("data:")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == FULL


NODE_CLIENT = r"""
const [baseUrl, body] = process.argv.slice(2);
const response = await fetch(baseUrl + "/chat/completions", {
  method: "POST",
  headers: {"content-type": "application/json", "authorization": "Bearer unused"},
  body,
});
let text = "", buffer = "", done = false;
const decoder = new TextDecoder();
for await (const piece of response.body) {
  buffer += decoder.decode(piece, {stream: true});
  let end;
  while ((end = buffer.indexOf("\n\n")) >= 0) {
    const event = buffer.slice(0, end); buffer = buffer.slice(end + 2);
    if (!event.startsWith("data: ")) continue;
    const data = event.slice(6);
    if (data === "[DONE]") { done = true; continue; }
    const chunk = JSON.parse(data);
    if (chunk.choices.length) text += chunk.choices[0].delta.content ?? "";
  }
}
console.log(JSON.stringify({status: response.status, route: response.headers.get("x-chatcontract-route"), text, done}));
"""


def test_a_node_client_streams_through_the_cli_gateway(running, tmp_path):
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CHATCONTRACT_REQUIRE_NODE"):
            pytest.fail("node is required here ($CHATCONTRACT_REQUIRE_NODE) but not installed")
        pytest.skip("node is not installed (.ci/run installs nodejs)")
    script = tmp_path / "client.mjs"
    script.write_text(NODE_CLIENT)
    done = subprocess.run(
        [node, str(script), running.base_url, _body(True)],
        check=False, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "status": 200,
        "route": "primary",
        "text": FULL,
        "done": True,
    }


def test_sigterm_stops_the_gateway_cleanly(running):
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(15) == 0
    running.reader.join(10)
    rest = []
    while not running.lines.empty():
        rest.append(running.lines.get())
    assert "chatcontract gateway stopped" in rest


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--listen", "0.0.0.0:0"], {}, "not a loopback address"),
        (["--listen", "127.0.0.1:0", "--keys-env", "GW_TEST_KEYS"], {}, "$GW_TEST_KEYS is not set"),
        (["--listen", "nonsense"], {}, "--listen must be HOST:PORT"),
        (["--listen", "127.0.0.1:1000080"], {}, "--listen must be HOST:PORT"),
        (["--max-body-bytes", "0"], {}, "--max-body-bytes must be a positive number"),
        (["--contract", "missing.yaml"], {}, "missing.yaml"),
        (["--max-connections", "0"], {}, "--max-connections must be a whole number from 1"),
        (["--max-connections", "lots"], {}, "raise that with ulimit -n"),
        (["--max-connections", "1000001"], {}, "from 1 to 1000000"),
    ],
    ids=[
        "public-without-keys",
        "keys-env-empty",
        "bad-listen",
        "port-out-of-range",
        "bad-limit",
        "no-contract",
        "no-connections",
        "connections-not-a-number",
        "connections-above-the-limit",
    ],
)
def test_bad_settings_exit_2_with_one_line(args, env, says, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["gateway", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and "Traceback" not in err[0]


def test_the_cli_defaults_are_the_gateway_defaults():
    assert (gateway_cmd.DEFAULT_HOST, gateway_cmd.DEFAULT_PORT) == (
        gateway.DEFAULT_HOST,
        gateway.DEFAULT_PORT,
    )
    assert gateway_cmd.DEFAULT_MAX_BODY_BYTES == gateway.DEFAULT_MAX_BODY_BYTES


def test_help_and_banner_name_every_admin_path(capsys):
    """--admin's help (and the banners, from the same tuple) list what the admin port serves."""
    from chatcontract.gateway.admin import ADMIN_PATHS

    assert set(gateway_cmd.ADMIN_PATHS) == set(ADMIN_PATHS)
    with pytest.raises(SystemExit):
        main(["gateway", "--help"])
    usage = " ".join(capsys.readouterr().out.split())
    assert f"admin port: {', '.join(gateway_cmd.ADMIN_PATHS)} (default" in usage


def test_the_embedding_example_in_the_gateway_docs_runs(tmp_path, simulator):
    docs = Path(__file__).resolve().parents[2] / "docs" / "gateway.md"
    [example] = re.findall(r"^```python\n(.*?)^```$", docs.read_text(), re.MULTILINE | re.DOTALL)
    _contract_file(tmp_path, simulator.base_url)
    env = {**os.environ, "COMETAPI_KEY": simulator.api_key}
    done = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, env=env,
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1\n", done.stdout)


def test_the_banner_names_the_key_variable_never_the_key(running):
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(15)
    running.reader.join(10)
    banner = []
    while not running.lines.empty():
        banner.append(running.lines.get())
    text = "\n".join(banner)
    assert "route primary: gpt-4.1-nano at http://127.0.0.1:" in text
    assert "(key: $COMETAPI_KEY)" in text
    assert "sk-chatcontract-local" not in text


def test_a_missing_provider_key_exits_2_naming_the_variable(
    tmp_path, simulator, capsys, monkeypatch
):
    path = _contract_file(tmp_path, simulator.base_url)
    capsys.readouterr()
    for name in ("COMETAPI_KEY", "COMETAPI_API_KEY", "COMET_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["gateway", "--contract", str(path), "--listen", "127.0.0.1:0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "$COMETAPI_KEY" in err[0]


@pytest.mark.parametrize(
    ("soft", "expected"),
    [(1024, 480), (20_000, 9_968), (100, 18), (10, 16), (3_000_000, 1_000_000)],
    ids=["debian-default", "raised", "low", "tiny", "above-the-limit"],
)
def test_the_default_connection_cap_leaves_file_descriptors_for_upstream_and_own_use(
    monkeypatch, soft, expected
):
    import resource

    from chatcontract.gateway import state

    monkeypatch.setattr(resource, "getrlimit", lambda _which: (soft, resource.RLIM_INFINITY))
    assert state.default_max_connections() == expected


def test_an_unlimited_open_file_limit_gives_the_largest_cap(monkeypatch):
    import resource

    from chatcontract.gateway import state

    unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    monkeypatch.setattr(resource, "getrlimit", lambda _which: unlimited)
    assert state.default_max_connections() == state.MAX_CONNECTIONS_LIMIT


@pytest.mark.parametrize(("text", "value"), [(None, None), ("1", 1), (" 250 ", 250)])
def test_max_connections_reads_a_whole_number_or_the_default(text, value):
    assert gateway_cmd.parse_max_connections(text) == value


@pytest.mark.parametrize("value", [0, 1_000_001])
def test_a_state_refuses_a_connection_cap_out_of_bounds(value):
    from chatcontract.gateway import GatewayState

    with pytest.raises(ValueError, match="max_connections must be from 1 to 1000000"):
        GatewayState(contract_for("http://127.0.0.1:9/v1"), environ=env_for("sk-x"),
                     max_connections=value)  # fmt: skip
