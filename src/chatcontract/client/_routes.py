"""Routes: the primary endpoint and the contract's named fallbacks, resolved once.

A fallback with its own ``base_url`` reads its key from its own ``auth_env`` — the primary's
key is never sent to another host. A fallback without ``base_url`` shares the primary's
endpoint and key with another model. The secret stays out of every ``repr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from chatcontract.contract import Auth, Contract
from chatcontract.contract.model import Continuation
from chatcontract.errors import ConfigError

__all__ = ["Route", "build_routes"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """Where one attempt goes: name, model, URL and the auth header (secret hidden)."""

    name: str
    model: str
    url: str
    base_url: str
    auth_header: str
    auth_value: str = field(repr=False)
    secret: str = field(repr=False)
    secret_source: str = ""
    #: How this route continues a broken stream (``none``: it does not).
    continuation: Continuation = "none"
    #: The route's context window in tokens (``None``: unknown).
    context_window: int | None = None


def _resolve(auth: Auth, environ: Mapping[str, str], where: str) -> tuple[str, str]:
    found = auth.resolve(environ)
    if found is None:
        names = ", ".join("$" + name for name in auth.env)
        raise ConfigError(f"{where}: no API key found; set one of {names}")
    return found


def build_routes(
    contract: Contract, *, model: str | None, environ: Mapping[str, str]
) -> tuple[Route, ...]:
    """The primary route and every fallback, in the contract's order.

    Raises ``ConfigError`` when a key is missing, or when a fallback with its own
    ``base_url`` names no ``auth_env`` (the primary key must not go to another host).
    """
    auth = contract.auth
    primary_model = contract.resolved_model(model, environ)
    variable, secret = _resolve(auth, environ, "auth.env")
    endpoint = contract.endpoint
    routes = [
        Route(
            name="primary",
            model=primary_model,
            url=endpoint.url,
            base_url=endpoint.base_url,
            auth_header=auth.header,
            auth_value=auth.header_value(secret),
            secret=secret,
            secret_source=variable,
            continuation=contract.continuation,
            context_window=contract.context_window,
        )
    ]
    for fallback in contract.fallbacks:
        where = f"fallbacks[{fallback.name}]"
        route_model = fallback.model or primary_model
        if fallback.base_url is None:  # the primary's endpoint and key, another model
            same_endpoint = replace(
                routes[0],
                name=fallback.name,
                model=route_model,
                continuation=fallback.continuation,
                context_window=fallback.context_window,
            )
            routes.append(same_endpoint)
            continue
        if not fallback.auth_env:
            raise ConfigError(
                f"{where}.auth_env: a route with its own base_url needs its own key; "
                "write auth_env: [VARIABLE_NAME] (the primary key is never sent to another host)"
            )
        route_auth = Auth(header=auth.header, scheme=auth.scheme, env=fallback.auth_env)
        route_variable, route_secret = _resolve(route_auth, environ, f"{where}.auth_env")
        base_url = fallback.base_url.rstrip("/")
        routes.append(
            Route(
                name=fallback.name,
                model=route_model,
                url=base_url + endpoint.path,
                base_url=base_url,
                auth_header=auth.header,
                auth_value=route_auth.header_value(route_secret),
                secret=route_secret,
                secret_source=route_variable,
                continuation=fallback.continuation,
                context_window=fallback.context_window,
            )
        )
    return tuple(routes)
