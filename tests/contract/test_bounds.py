"""Every value a user writes in a contract is bounded; a bad one is one line saying what to write."""

import copy

import pytest

from chatcontract.contract import check_document, json_schema, lint_document, load_preset
from chatcontract.contract._declare import number_bounds
from chatcontract.contract.model import (
    Auth,
    Contract,
    Endpoint,
    FallbackRoute,
    check_base_url,
    check_model_name,
    check_secret,
    redact_url,
)
from chatcontract.contract.presets import preset_document
from chatcontract.errors import ConfigError

LIMITS = number_bounds(Contract)


def _with(path: str, value: object) -> dict:
    document = copy.deepcopy(preset_document("cometapi"))
    *parents, leaf = path.split(".")
    node = document
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return document


def _problems(path: str, value: object) -> list[str]:
    return check_document(_with(path, value))


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "policy.retry.max_attempts",
            1_000_000_000,
            "policy.retry.max_attempts: expected an integer from 1 to 10, got 1000000000",
        ),
        (
            "policy.timeouts.total_ms",
            10**30,
            "policy.timeouts.total_ms: expected an integer from 1 to 3600000, got " + str(10**30),
        ),
        (
            "policy.timeouts.connect_ms",
            0,
            "policy.timeouts.connect_ms: expected an integer from 1 to 3600000, got 0",
        ),
        (
            "policy.retry.backoff_initial_ms",
            10**12,
            "policy.retry.backoff_initial_ms: expected an integer from 0 to 600000",
        ),
        (
            "policy.retry.backoff_max_ms",
            -1,
            "policy.retry.backoff_max_ms: expected an integer from 0 to 600000, got -1",
        ),
        (
            "policy.retry.backoff_multiplier",
            1e9,
            "policy.retry.backoff_multiplier: expected a number from 0.01 to 100",
        ),
        ("policy.retry.jitter", 5.0, "policy.retry.jitter: expected a number from 0 to 1, got 5"),
        (
            "policy.retry.jitter",
            float("nan"),
            "policy.retry.jitter: expected a number from 0 to 1, got nan",
        ),
        (
            "policy.retry.retry_after_cap_ms",
            10**15,
            "policy.retry.retry_after_cap_ms: expected an integer from 0 to 3600000",
        ),
        (
            "policy.fallback_reserve_ms",
            10**20,
            "policy.fallback_reserve_ms: expected an integer from 0 to 3600000",
        ),
        (
            "policy.caps.max_tokens_per_call",
            10**12,
            "policy.caps.max_tokens_per_call: expected an integer from 1 to 10000000",
        ),
        (
            "policy.caps.max_cost_per_day_usd",
            float("inf"),
            "policy.caps.max_cost_per_day_usd: expected a number above 0, at most 1000000",
        ),
        (
            "policy.caps.max_cost_per_call_usd",
            0,
            "policy.caps.max_cost_per_call_usd: expected a number above 0, at most 1000000, got 0",
        ),
        (
            "policy.prices.m",
            {"input_per_million": 1e12, "output_per_million": 1},
            "policy.prices.m.input_per_million: expected a number from 0 to 100000",
        ),
        (
            "policy.probe.interval_s",
            10**9,
            "policy.probe.interval_s: expected an integer from 1 to 86400, got 1000000000",
        ),
        (
            "policy.probe.max_tokens",
            0,
            "policy.probe.max_tokens: expected an integer from 1 to 1000000, got 0",
        ),
        (
            "policy.probe.daily_cost_cap_usd",
            -0.5,
            "policy.probe.daily_cost_cap_usd: expected a number from 0 to 1000000, got -0.5",
        ),
        (
            "review_every_days",
            0,
            "review_every_days: expected an integer from 1 to 3650, got 0",
        ),
        (
            "review_every_days",
            36_500,
            "review_every_days: expected an integer from 1 to 3650, got 36500",
        ),
        (
            "policy.timeouts.idle_ms",
            0,
            "policy.timeouts.idle_ms: expected an integer from 1 to 3600000, got 0",
        ),
        (
            "policy.breaker.failures",
            0,
            "policy.breaker.failures: expected an integer from 1 to 100, got 0",
        ),
        (
            "policy.breaker.cooldown_ms",
            10**9,
            "policy.breaker.cooldown_ms: expected an integer from 100 to 3600000",
        ),
        (
            "context_window",
            0,
            "context_window: expected an integer from 1 to 100000000, got 0",
        ),
        (
            "fallbacks",
            [{"name": "big", "model": "gpt-4o", "context_window": 10**12}],
            "fallbacks[big].context_window: expected an integer from 1 to 100000000",
        ),
    ],
    ids=[
        "attempts-1e9",
        "total-1e30",
        "connect-zero",
        "backoff-initial",
        "backoff-max-negative",
        "multiplier",
        "jitter-above-one",
        "jitter-nan",
        "retry-after-cap",
        "reserve",
        "tokens-cap",
        "day-cap-infinite",
        "call-cap-zero",
        "price",
        "probe-interval",
        "probe-max-tokens",
        "probe-cost-cap-negative",
        "review-every-zero-days",
        "review-every-century",
        "idle-zero",
        "breaker-failures-zero",
        "breaker-cooldown-huge",
        "primary-context-window-zero",
        "fallback-context-window-huge",
    ],
)
def test_a_number_out_of_bounds_says_the_range_to_write(path, value, expected):
    problems = _problems(path, value)
    assert len(problems) == 1
    assert problems[0].startswith(expected)


def test_every_bound_is_tested_above():
    # A new number in the contract must get a row in LIMITS (and a row in the test above).
    assert len(LIMITS) == 25
    for field, (low, high) in LIMITS.items():
        assert low < high, field


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (":87a7", "':87a7' is not an http(s) URL"),
        ("http://[::1", "'http://[::1' is not a valid URL (Invalid IPv6 URL)"),
        ("http://host:99999", "is not a valid URL (Port out of range"),
        ("http://host:8o", "is not a valid URL"),
        ("ftp://x", "'ftp://x' is not an http(s) URL"),
        ("https://", "has no host"),
        ("http://host:0/v1", "port 0 is not a port"),
        ("https://api.example.com/v1\r\nX-Evil: 1", "line break or control character"),
        ("https://api.example.com/v 1", "contains a space"),
        ("https://api.example.com/v1?key=1", "has a query or fragment"),
        ("https://" + "a" * 3000 + ".com", "write at most 2048"),
    ],
    ids=[
        "colon-garbage",
        "open-ipv6",
        "port-too-big",
        "port-not-a-number",
        "ftp",
        "no-host",
        "port-zero",
        "crlf",
        "space",
        "query",
        "too-long",
    ],
)
def test_a_malformed_base_url_is_one_line_saying_what_to_write(url, expected):
    with pytest.raises(ConfigError) as raised:
        Endpoint(base_url=url)
    message = str(raised.value)
    assert message.startswith("endpoint.base_url: ")
    assert expected in message
    assert "\n" not in message and "\r" not in message


@pytest.mark.parametrize(
    "url",
    [
        "https://user:s3cret-pw@api.example.com/v1",
        "https://s3cret-pw@api.example.com/v1",
        "https://user:s3cret/pw@api.example.com/v1",
        "https://user:s3cret-pw@[::1]:99999/v1",
    ],
    ids=["user-password", "token-only", "slash-in-password", "also-bad-port"],
)
def test_credentials_in_a_base_url_are_refused_without_printing_them(url):
    with pytest.raises(ConfigError) as raised:
        check_base_url("endpoint.base_url", url)
    message = str(raised.value)
    assert "s3cret" not in message
    assert "***@" in message and "carries credentials" in message


@pytest.mark.parametrize(
    "url",
    ["sk-proj-AbCdEf0123456789AbCdEf0123", "ftp://sk-proj-AbCdEf0123456789AbCdEf0123/v1"],
    ids=["a-key-alone", "a-key-in-a-url"],
)
def test_a_key_pasted_as_the_base_url_is_refused_without_printing_it(url):
    with pytest.raises(ConfigError) as raised:
        check_base_url("endpoint.base_url", url)
    message = str(raised.value)
    assert "AbCdEf" not in message
    assert message == (
        "endpoint.base_url: text that looks like a secret (not shown) is not an http(s) URL; "
        "write e.g. https://api.cometapi.com/v1"
    )


def test_redact_url_hides_everything_before_the_last_at():
    assert redact_url("https://u:p@w@host:1/v1") == "https://***@host:1/v1"
    assert redact_url("https://host/v1") == "https://host/v1"


def test_credentials_in_a_fallback_url_are_refused_too():
    with pytest.raises(ConfigError, match=r"fallbacks\[backup\]\.base_url: 'https://\*\*\*@h/v1'"):
        FallbackRoute(name="backup", base_url="https://k:pw@h/v1")


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: Auth(env=("KEY",), header="Authorization\r\nX-Evil: 1"), "auth.header"),
        (lambda: Auth(env=("KEY",), header="Authorization\n"), "auth.header"),
        (lambda: Auth(env=("KEY",), scheme="Bearer\r\n"), "auth.scheme"),
        (lambda: Auth(env=("KEY",), scheme="Bearer x"), "auth.scheme"),
        (lambda: Auth(env=("KEY\n",)), "auth.env"),
        (lambda: Endpoint(base_url="https://h", path="/chat\r\n"), "endpoint.path"),
        (lambda: FallbackRoute(name="b", model="gpt\nx"), "fallbacks[b].model"),
    ],
    ids=[
        "header-crlf",
        "header-trailing-newline",
        "scheme-crlf",
        "scheme-space",
        "env-trailing-newline",
        "path-crlf",
        "fallback-model-newline",
    ],
)
def test_a_line_break_in_a_header_scheme_or_name_is_refused(build, words):
    with pytest.raises(ConfigError) as raised:
        build()
    assert str(raised.value).startswith(words)


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ("gpt-4o\nX-Evil: 1", "has a line break"),
        ("gpt-4o\r", "has a line break"),
        ("gpt\x00", "control character"),
        ("m" * 300, "write at most 256"),
    ],
    ids=["newline", "carriage-return", "nul", "too-long"],
)
def test_a_bad_model_name_is_refused_in_the_file_the_flag_and_the_variable(model, words):
    assert any(words in p for p in _problems("model", model))
    with pytest.raises(ConfigError, match=r"^--model: "):
        load_preset("cometapi").resolved_model(model)
    with pytest.raises(ConfigError, match=r"^\$CHATCONTRACT_MODEL: "):
        load_preset("cometapi").resolved_model(environ={"CHATCONTRACT_MODEL": f"a\n{model}"})


def test_a_blank_model_name_in_the_file_is_refused():
    assert _problems("model", "   ") == [
        "model: must not be empty; write the model id, e.g. gpt-4o-mini"
    ]


def test_a_model_name_with_a_slash_or_colon_is_fine():
    assert check_model_name("model", "meta-llama/Llama-3.1-8B:free") == (
        "meta-llama/Llama-3.1-8B:free"
    )


@pytest.mark.parametrize(
    "secret",
    ["sk-abc\r\nX-Evil: 1", "sk-abc def", "sk-\x00abc", "sk-ключ"],
    ids=["crlf", "space", "nul", "non-ascii"],
)
def test_a_key_that_would_corrupt_the_header_is_refused_without_showing_it(secret):
    auth = Auth(env=("THE_KEY",))
    with pytest.raises(ConfigError) as raised:
        auth.resolve({"THE_KEY": secret})
    message = str(raised.value)
    assert message.startswith("$THE_KEY: the key")
    assert "abc" not in message and "ключ" not in message


def test_a_plain_key_is_returned_as_is():
    assert check_secret("K", "sk-abc_DEF.123") == "sk-abc_DEF.123"
    assert Auth(env=("K",)).resolve({"K": " sk-abc \n"}) == ("K", "sk-abc")


def test_lint_lists_every_bad_value_with_what_to_write():
    document = _with("policy.retry.max_attempts", 10**9)
    document["policy"]["timeouts"]["total_ms"] = 10**30
    document["endpoint"]["base_url"] = "https://user:pw@h/v1"
    document["model"] = "gpt\nx"
    findings = [f.message for f in lint_document(document) if f.level == "error"]
    assert findings == [
        "endpoint.base_url: 'https://***@h/v1' carries credentials; remove 'user:password@' "
        "and put the key in the environment variable named under auth.env",
        "model: 'gpt\\nx' has a line break, control character or surrounding space; write "
        "the model id alone, e.g. gpt-4o-mini",
        "policy.timeouts.total_ms: expected an integer from 1 to 3600000, got 1" + "0" * 30,
        "policy.retry.max_attempts: expected an integer from 1 to 10, got 1000000000",
    ]


def _schema_leaf(schema: dict, dotted: str) -> dict:
    node = schema
    for key in dotted.split("."):
        if key.endswith("[]"):
            node = node["properties"][key[:-2]]["items"]
        else:
            node = node["additionalProperties"] if key == "*" else node["properties"][key]
    return node.get("anyOf", [node])[0]


@pytest.mark.parametrize("field", sorted(LIMITS), ids=sorted(LIMITS))
def test_the_json_schema_carries_every_bound_for_editors(field):
    low, high = LIMITS[field]
    leaf = _schema_leaf(json_schema(), field)
    assert leaf["maximum"] == high
    assert leaf.get("minimum", leaf.get("exclusiveMinimum")) == low


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("name", "chat\nX-Evil: 1", "name: 'chat\\nX-Evil: 1' has a line break"),
        ("provider", "p" * 201, "provider: is 201 characters long; write at most 200"),
        ("owner", "team\r", "owner: 'team\\r' has a line break"),
        ("reference_url", "https://x\n", "reference_url: 'https://x\\n' has a line break"),
        (
            "errors.rules",
            [{"name": "r", "category": "quota", "code": "a\nb"}],
            "errors.rules[r].code: 'a\\nb' has a line break",
        ),
        (
            "errors.rules",
            [{"name": "r\n", "category": "quota"}],
            "errors.rules[0].name: 'r\\n' has a line break",
        ),
    ],
    ids=["name", "provider-too-long", "owner", "reference-url", "rule-code", "rule-name"],
)
def test_names_and_labels_are_one_bounded_line(path, value, expected):
    problems = _problems(path, value)
    assert len(problems) == 1
    assert problems[0].startswith(expected)


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1]:8080/v1",
        "http://localhost:8000/v1",
        "https://api.cometapi.com/v1/",
        "http://127.0.0.1:1",
        "https://bücher.example/v1",
    ],
    ids=["ipv6-with-port", "localhost", "trailing-slash", "lowest-port", "idn-host"],
)
def test_an_ordinary_base_url_is_accepted(url):
    assert Endpoint(base_url=url).url == url.rstrip("/") + "/chat/completions"
