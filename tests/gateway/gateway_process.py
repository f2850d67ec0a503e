"""``chatcontract gateway`` as a subprocess for the admin and workers tests: start it on free
ports, read its banner (URLs, pids), call it, stop it, and make sure nothing is left running."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gateway_helpers import PROMPT, raw_request

from chatcontract.cli import main

STARTUP_S = 60.0
_LISTENING = "chatcontract gateway listening on "


class GatewayProcess:
    """A running ``chatcontract gateway`` and what its banner says."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "chatcontract", "gateway", *args]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # its own process group, as a terminal would give it
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()
        self.root_url = ""
        self.admin_url = ""
        self.worker_pids: list[int] = []
        self.banner = self._read_banner()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_line(self, timeout: float = STARTUP_S) -> str:
        line = self.lines.get(timeout=timeout)
        self.seen.append(line)
        return line

    def _read_banner(self) -> list[str]:
        banner: list[str] = []
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                line = self.next_line(max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                self.close()
                raise AssertionError(f"the gateway did not start: {banner}") from None
            banner.append(line)
            if line.startswith(_LISTENING):
                self.root_url = line.removeprefix(_LISTENING).removesuffix("/v1")
            elif line.startswith("  admin: "):
                self.admin_url = line.split()[1]
            elif line.startswith("  workers: "):
                found = re.search(r"pids ([\d, ]+)\)", line)
                assert found is not None, line
                self.worker_pids = [int(pid) for pid in found.group(1).split(", ")]
            elif line == "Press Ctrl-C to stop.":
                return banner
            elif not line.startswith("  "):
                self.close()
                raise AssertionError(f"the gateway did not start: {banner}")

    def chat(self, **extra: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
        """One non-streamed chat call on a new connection: status, headers, JSON body."""
        body = json.dumps({"model": "gpt-4.1-nano", "messages": PROMPT, **extra}).encode()
        status, headers, data = raw_request(
            self.root_url,
            "POST",
            "/v1/chat/completions",
            body,
            {"content-type": "application/json", "connection": "close"},
        )
        return status, headers, json.loads(data)

    def admin(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        assert self.admin_url, "this gateway has no admin port"
        return raw_request(self.admin_url, method, path, body)

    def admin_json(self, method: str, path: str, doc: Any = None) -> tuple[int, Any]:
        body = None if doc is None else json.dumps(doc).encode()
        status, _, data = self.admin(method, path, body)
        return status, json.loads(data)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0, *, group: bool = False) -> int:
        """Signal the gateway (``group``: its whole process group, as Ctrl-C in a terminal
        does) and wait (bounded) for it to exit; its exit code."""
        if group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self.reader.join(10)
        return code

    def rest(self) -> list[str]:
        """The lines printed since the banner (after the process ended)."""
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.seen

    def close(self) -> None:
        # SIGTERM first, as an operator stops it: a killed supervisor leaves its shared
        # store's directory (``/tmp/chatcontract-gateway-*``) behind. SIGKILL after 10 s.
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait(10)
        for pid in self.worker_pids:  # never leave a worker behind, even when a test failed
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def eventually(condition: Callable[[], bool], within_s: float = 30.0) -> bool:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def contract_file(
    tmp_path: Path, base_url: str, replacements: Sequence[tuple[str, str]] = ()
) -> Path:
    """``chatcontract init``'s file aimed at ``base_url``, with ``(old, new)`` text
    replacements applied in order."""
    path = tmp_path / "chatcontract.yaml"
    assert main(["init", "--path", str(path)]) == 0
    text = path.read_text()
    text = text.replace("base_url: https://api.cometapi.com/v1", f"base_url: {base_url}")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return path


def metric(text: str, name: str, **labels: str) -> float | None:
    """A sample's value in a Prometheus text exposition (the sum over label sets matching
    ``labels``), or None when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    found: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                found = (found or 0.0) + sample.value
    return found
