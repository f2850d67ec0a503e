"""Reading one ``POST /v1/chat/completions`` request: the body, the gateway's own controls.

Sans-IO: bytes and header values in, a :class:`GatewayRequest` (or a ``GatewayError`` saying
what to write instead) out. What the contract's required fields say is checked later, by the
client core, before anything is sent.

The gateway's controls, none of which is forwarded upstream:

- ``model``: a model or a route name the contract declares (``GET /v1/models``); the call
  starts on that route. Missing: the primary route.
- ``fallbacks``: the routes to fall back to, in order, each a model or route name the contract
  declares (as LiteLLM accepts it); ``[]``: none. Missing: the contract's other routes.
- ``x-chatcontract-deadline-ms`` (header): the call's one deadline, in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from msgspec import Struct

from chatcontract.client._routes import Route

from .errors import GatewayError

__all__ = [
    "DEADLINE_HEADER",
    "MAX_DEADLINE_MS",
    "MIN_DEADLINE_MS",
    "GatewayRequest",
    "RouteTable",
    "parse_deadline",
    "parse_request",
]

#: The request header carrying the call's deadline in milliseconds.
DEADLINE_HEADER = "x-chatcontract-deadline-ms"
MIN_DEADLINE_MS = 100
MAX_DEADLINE_MS = 600_000

#: Body fields the gateway reads itself; the others go upstream as they came.
_OWN_FIELDS = frozenset({"model", "messages", "stream", "fallbacks"})


class GatewayRequest(Struct, frozen=True, kw_only=True):
    """One chat request, read and checked.

    ``params``: every other body field, forwarded as is (``stream_options`` made to ask for
    usage on a stream). ``client_usage``: the client asked for the usage chunk itself.
    ``as_is_model``: the body is already the one a route of this model is sent (the client
    named the model, and no field needs a change): its bytes go upstream as they came to
    that route, instead of being encoded again; None: nothing to reuse.
    """

    routes: tuple[Route, ...]
    messages: list[Any]
    params: dict[str, Any]
    stream: bool
    client_usage: bool
    deadline_s: float | None
    as_is_model: str | None = None


class RouteTable:
    """The contract's routes by name and by model: what ``model`` and ``fallbacks`` may name."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)
        found: dict[str, Route] = {}
        for route in self.routes:  # a model served by several routes starts on the first
            found.setdefault(route.model, route)
        for route in self.routes:  # a route name wins over a model of the same spelling
            found[route.name] = route
        self._by_name = found
        #: By each route's identity, the call's routes when the request names no fallbacks:
        #: that route, then every other one.
        self._with_others = {
            id(route): (route, *(other for other in self.routes if other is not route))
            for route in self.routes
        }

    def get(self, name: str) -> Route | None:
        """The route a model or route name means, else None."""
        return self._by_name.get(name)

    @property
    def models(self) -> tuple[str, ...]:
        """The models the routes declare, in route order, once each."""
        return tuple(dict.fromkeys(route.model for route in self.routes))

    def names(self) -> str:
        """Every acceptable name, for messages."""
        return ", ".join(dict.fromkeys([*self.models, *(r.name for r in self.routes)]))

    def for_call(self, model: object, fallbacks: object) -> tuple[Route, ...]:
        """The call's routes: the one ``model`` names, then ``fallbacks`` (or every other
        route, in the contract's order, when the request names none)."""
        if model is None:
            first = self.routes[0]
        elif not isinstance(model, str):
            raise _invalid("model must be a string naming a model or route", "model")
        else:
            found = self.get(model)
            if found is None:
                raise GatewayError(
                    404,
                    "not_found_error",
                    "model_not_found",
                    f"model {model[:100]!r} is not served by this gateway: write one of "
                    f"{self.names()} (GET /v1/models lists them)",
                    "model",
                )
            first = found
        if fallbacks is None:
            return self._with_others[id(first)]
        if not isinstance(fallbacks, list) or not all(isinstance(f, str) for f in fallbacks):
            raise _invalid(
                'fallbacks must be a list of model or route names, e.g. ["backup"]', "fallbacks"
            )
        chosen = [first]
        for name in fallbacks:
            route = self.get(name)
            if route is None:
                raise GatewayError(
                    400,
                    "invalid_request_error",
                    "fallback_not_allowed",
                    f"fallback {name[:100]!r} is not a route of the contract: write only "
                    f"{self.names()}",
                    "fallbacks",
                )
            if route not in chosen:
                chosen.append(route)
        return tuple(chosen)


def _invalid(message: str, param: str | None, code: str = "invalid_request") -> GatewayError:
    return GatewayError(400, "invalid_request_error", code, message, param)


def parse_deadline(value: str | None) -> float | None:
    """The deadline header's value in seconds (None when absent)."""
    if value is None:
        return None
    text = value.strip()
    whole = text.isascii() and text.isdigit() and len(text) <= 9
    if not whole or not MIN_DEADLINE_MS <= int(text) <= MAX_DEADLINE_MS:
        raise _invalid(
            f"{DEADLINE_HEADER} must be a whole number of milliseconds from {MIN_DEADLINE_MS} "
            f"to {MAX_DEADLINE_MS}, e.g. {DEADLINE_HEADER}: 30000; got {value[:40]!r}",
            DEADLINE_HEADER,
            "invalid_deadline",
        )
    return int(text) / 1000.0


def parse_request(body: bytes, table: RouteTable, *, deadline: str | None) -> GatewayRequest:
    """Read a chat request body; ``GatewayError`` (400/404) says what to write instead."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _invalid(
            f"the body is not valid JSON ({exc.args[0] if exc.args else 'parse error'}): "
            'send a JSON object such as {"model": "...", "messages": [...]}',
            None,
            "invalid_json",
        ) from None
    if not isinstance(doc, dict):
        raise _invalid(
            'the body must be a JSON object such as {"model": "...", "messages": [...]}',
            None,
            "invalid_json",
        )
    messages = doc.get("messages")
    if not isinstance(messages, list):
        raise _invalid("messages must be a list of message objects", "messages")
    stream = doc.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _invalid("stream must be true or false", "stream")
    model = doc.get("model")
    routes = table.for_call(model, doc.get("fallbacks"))
    params = dict(doc)
    for key in _OWN_FIELDS.intersection(doc):  # the few present, found in one C pass
        del params[key]
    client_usage = False
    # What goes upstream is {"model": route.model, "messages": ..., **params} (and "stream":
    # true on a stream): the client's own body when it has no "fallbacks", asks for usage on
    # a stream (or says nothing of streaming otherwise) and names each field the gateway
    # decides on once, so that an upstream keeping a repeated key's first value (not the last,
    # as the gateway's parser does) reads the model, stream and usage the gateway routed on.
    # A key spelled with an escape ("mod\u0065l") would hide a repeat from these counts:
    # any escape sends the body the long way, encoded again from what the gateway read.
    as_is = (
        isinstance(model, str)
        and "fallbacks" not in doc
        and (doc.get("stream") is True if stream else "stream" not in doc)
        and body.count(b'"model"') == 1
        and body.find(b"\\u") < 0
    )
    if stream:
        options = params.get("stream_options")
        if options is None:
            options = {}
        if type(options) is not dict and not isinstance(options, Mapping):
            raise _invalid('stream_options must be an object, e.g. {"include_usage": true}',
                           "stream_options")  # fmt: skip
        client_usage = options.get("include_usage") is True
        as_is = (
            as_is
            and client_usage
            and body.count(b'"stream"') == 1
            and body.count(b'"stream_options"') == 1
            and body.count(b'"include_usage"') == 1
        )
        # Usage is always asked for upstream (budgets and the ledger need it); the client's
        # stream gets the usage chunk only if it asked.
        params["stream_options"] = {**options, "include_usage": True}
    return GatewayRequest(
        routes=routes,
        messages=messages,
        params=params,
        stream=stream,
        client_usage=client_usage,
        deadline_s=parse_deadline(deadline),
        as_is_model=model if as_is else None,
    )
