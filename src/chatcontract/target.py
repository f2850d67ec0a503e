"""Which endpoint a command talks to: the contract's, or the embedded simulator.

Rules (the same for every command that sends requests):

- ``simulate=True`` → the embedded simulator, with the contract (or the cometapi preset).
- a contract file (``--contract`` or ``./chatcontract.yaml``) → its endpoint and the secret
  from its ``auth.env`` list; no secret there is a configuration error that says what to set.
- no contract file but a secret in the cometapi preset's variables → the cometapi preset.
- no contract file and no secret → the embedded simulator, and the report says so.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from chatcontract.contract import DEFAULT_PATH, Contract, Endpoint, load, load_preset
from chatcontract.contract.model import check_base_url, check_model_name
from chatcontract.errors import ConfigError

__all__ = ["Target", "open_target"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A resolved endpoint: contract (with overrides applied), secret, model, and provenance."""

    contract: Contract
    contract_path: str | None
    secret: str
    secret_source: str
    model: str
    simulated: bool
    scenario: str | None = None

    @property
    def base_url(self) -> str:
        return self.contract.endpoint.base_url

    def auth_headers(self) -> dict[str, str]:
        """The auth header for this target (never logged: callers redact)."""
        return {self.contract.auth.header: self.contract.auth.header_value(self.secret)}

    def __repr__(self) -> str:  # the secret stays out of reprs and tracebacks
        return (
            f"Target(base_url={self.base_url!r}, model={self.model!r}, "
            f"simulated={self.simulated}, secret_source={self.secret_source!r})"
        )


def _flavor(contract: Contract) -> str:
    return "openai" if contract.provider == "openai" else "cometapi"


@contextlib.contextmanager
def open_target(
    *,
    contract_path: str | None = None,
    simulate: bool = False,
    scenario: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Iterator[Target]:
    """Resolve the target, starting the embedded simulator when needed (stopped on exit).

    Every value is checked before anything starts or is sent: ``--base-url`` (no
    credentials, no line break, a real http(s) URL), ``--model`` and ``$CHATCONTRACT_MODEL``
    (no line break or control character), and the key (no line break). A bad one is a
    ``ConfigError`` naming the flag or variable, never showing a credential.
    """
    env = os.environ if environ is None else environ
    if base_url is not None:
        check_base_url("--base-url", base_url)
    if model is not None:
        check_model_name("--model", model)
    path = contract_path or (DEFAULT_PATH if Path(DEFAULT_PATH).exists() else None)
    if contract_path and not Path(contract_path).exists():
        raise ConfigError(
            f"{contract_path}: no such file; create one with 'chatcontract init --path "
            f"{contract_path}' or drop --contract to use the embedded simulator"
        )
    contract = load(path) if path else load_preset("cometapi")
    resolved_model = contract.resolved_model(model, env)  # checks $CHATCONTRACT_MODEL too
    if scenario and not simulate:
        raise ConfigError("--scenario works with the simulator only; add --simulate")
    found = None if simulate else contract.auth.resolve(env)
    if found is None and not simulate and path is not None:
        names = ", ".join("$" + name for name in contract.auth.env)
        raise ConfigError(
            f"no API key: set one of {names} (the contract {path} reads them), "
            "or pass --simulate to use the embedded simulator"
        )
    if found is None:
        yield from _simulated(contract, path, scenario=scenario, model=resolved_model)
        return
    variable, secret = found
    if base_url:
        contract = replace(contract, endpoint=replace(contract.endpoint, base_url=base_url))
    yield Target(
        contract=contract,
        contract_path=path,
        secret=secret,
        secret_source=f"${variable}",
        model=resolved_model,
        simulated=False,
    )


def _simulated(
    contract: Contract,
    path: str | None,
    *,
    scenario: str | None,
    model: str,
) -> Iterator[Target]:
    from chatcontract.simulator import SimulatorServer  # the server layer, only when simulating

    with SimulatorServer(flavor=_flavor(contract), scenario=scenario or "ok") as server:
        endpoint = Endpoint(
            base_url=server.base_url,
            path=contract.endpoint.path,
            method=contract.endpoint.method,
            models_path=contract.endpoint.models_path,
        )
        yield Target(
            contract=replace(contract, endpoint=endpoint),
            contract_path=path,
            secret=server.api_key,
            secret_source="embedded simulator key",  # noqa: S106 - a description, not a secret
            model=model,
            simulated=True,
            scenario=scenario,
        )
