"""Error-rule and request-id regexes that could backtrack without bound are refused."""

import pytest

from chatcontract.contract import load_preset
from chatcontract.contract._regex import MAX_PATTERN_LENGTH, backtracking_problem, sre_parse
from chatcontract.contract.model import ErrorRule, ErrorTable
from chatcontract.contract.presets import PRESETS, preset_document
from chatcontract.errors import ConfigError


def test_the_private_parser_still_has_the_shape_this_check_reads():
    # The check reads re._parser's tree; an upgrade that changes it must fail here, loudly.
    parsed = sre_parse.parse(r"(a+)+b|[^x]")
    assert hasattr(parsed, "data")
    ops = {str(op) for op, _ in parsed.data}
    assert ops == {"BRANCH"}
    assert backtracking_problem(r"(a+)+$") is not None


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"(a+)+$", "nests a repeat inside a repeat"),
        (r"(a*)*b", "nests a repeat inside a repeat"),
        (r"(.*a){20}", "nests a repeat inside a repeat"),
        (r"(a?){12}a{12}", "nests a repeat inside a repeat"),
        (r"(\d+\.){3}", "nests a repeat inside a repeat"),
        (r"(a|aa)+$", "nests a repeat inside a repeat"),
        (r"(ab|a)*c", "nests a repeat inside a repeat"),
        (r"(a|ab|b)+$", "alternatives that can start with the same character"),
        (r"(?:\w|_x)+$", "alternatives that can start with the same character"),
        (r".*a.*b", "two unbounded repeats over the same characters"),
        (r"\w+\s*\w+!", "two unbounded repeats over the same characters"),
        ("x" * (MAX_PATTERN_LENGTH + 1), f"write at most {MAX_PATTERN_LENGTH}"),
    ],
    ids=[
        "nested-plus",
        "nested-star",
        "wildcard-counted",
        "optional-counted",
        "ip-address-groups",
        "prefix-alternation",
        "prefix-alternation-star",
        "overlapping-alternatives",
        "word-class-alternatives",
        "two-wildcards",
        "two-word-runs",
        "too-long",
    ],
)
def test_a_pattern_that_can_backtrack_without_bound_is_named(pattern, words):
    problem = backtracking_problem(pattern)
    assert problem is not None and words in problem


@pytest.mark.parametrize(
    "pattern",
    [
        r"\(request id: ([^)\s]+)\)",
        "quota is exhausted",
        r"^invalid request",
        r"model.*not found",
        r"model (not found|does not exist)",
        r"(?:ab|cd)+",
        r"(\w|\d)+",
        r"(a{2}){3}",
        r"(a++)+$",
        r"(?>a+)+$",
        r"rate[ _-]?limit",
    ],
    ids=[
        "request-id",
        "phrase",
        "anchored",
        "one-wildcard",
        "alternatives-in-group",
        "distinct-alternatives-repeated",
        "one-class-repeated",
        "fixed-counts",
        "possessive",
        "atomic",
        "optional-separator",
    ],
)
def test_a_pattern_with_bounded_matching_is_accepted(pattern):
    assert backtracking_problem(pattern) is None


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_pattern_passes_the_check(preset):
    document = preset_document(preset)
    patterns = [rule["message"] for rule in document["errors"]["rules"] if rule.get("message")]
    patterns.append(document["errors"]["request_id_pattern"])
    assert all(backtracking_problem(p) is None for p in patterns)
    assert load_preset(preset).errors.rules


@pytest.mark.parametrize(
    "build",
    [
        lambda: ErrorRule(name="slow", category="quota", message=r"(a+)+$"),
        lambda: ErrorTable(request_id_pattern=r"id: ((\w+)+)"),
        lambda: ErrorTable(request_id_pattern=r"id: (.*)-.*$"),
    ],
    ids=["rule-message", "request-id-nested", "request-id-two-wildcards"],
)
def test_the_contract_refuses_a_slow_pattern_and_says_what_to_write(build):
    with pytest.raises(ConfigError) as raised:
        build()
    message = str(raised.value)
    assert message.startswith(("errors.rules[slow].message:", "errors.request_id_pattern:"))
    assert "write" in message or "keep at most one" in message
    assert "\n" not in message
