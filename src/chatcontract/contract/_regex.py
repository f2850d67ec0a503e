"""A static check that a user-written regular expression cannot backtrack catastrophically.

Error rules (``errors.rules[].message``) and ``errors.request_id_pattern`` are searched in
text the provider sends. Python's ``re`` backtracks: ``(a+)+$`` takes exponential time, and
``.*a.*b`` takes cubic time under ``search``, so a few kilobytes of hostile or merely long
error message can stall a request. The contract refuses such patterns up front.

Rejected (each is a known way to backtrack without bound):

- a repeat inside a repeat, where the inner one can match a varying number of times
  (``(a+)+``, ``(.*a){20}``, ``(a?){10}``);
- alternatives under a repeat that can start with the same character (``(a|aa)+``);
- two unbounded repeats over overlapping characters (``.*a.*b``, ``\\w+\\s*\\w+``).

This is the one module that reads the private ``re._parser`` tree (the stdlib has no public
parse API); ``tests/contract/test_regex_safety.py`` fails loudly if an upgrade changes it.
Possessive repeats and atomic groups do not backtrack and are accepted.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from typing import Any

# No public parse API and no type stubs for it: the two private modules, loaded by name.
sre: Any = importlib.import_module("re._constants")
sre_parse: Any = importlib.import_module("re._parser")

__all__ = ["MAX_PATTERN_LENGTH", "backtracking_problem"]

#: The longest pattern a contract accepts: rules match short, distinctive phrases.
MAX_PATTERN_LENGTH = 200

_CharTest = Callable[[str], bool]

# Characters tried when asking whether two character sets overlap: ASCII, Latin-1 and the
# Latin extensions, plus a few digits, spaces and letters from other scripts.
_SAMPLE = (
    *(chr(code) for code in range(0x250)),
    "\u0660",  # ARABIC-INDIC DIGIT ZERO (\d)
    "\u2003",  # EM SPACE (\s)
    "\u4e00",  # a CJK letter (\w)
    "\u0416",  # a Cyrillic letter (\w)
)

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)
_CATEGORIES: dict[Any, _CharTest] = {
    sre.CATEGORY_DIGIT: str.isdecimal,
    sre.CATEGORY_NOT_DIGIT: lambda c: not c.isdecimal(),
    sre.CATEGORY_SPACE: str.isspace,
    sre.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
    sre.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    sre.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
}


def _anything(_char: str) -> bool:
    return True


def _nothing(_char: str) -> bool:
    return False


def _union(first: _CharTest, second: _CharTest) -> _CharTest:
    return lambda c: first(c) or second(c)


def _in_range(low: int, high: int) -> _CharTest:
    return lambda c: low <= ord(c) <= high


def _set_test(items: list[tuple[Any, Any]]) -> _CharTest:
    """The test for a ``[...]`` set."""
    negate = False
    tests: list[_CharTest] = []
    for op, av in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            tests.append(_in_range(av, av))
        elif op is sre.RANGE:
            tests.append(_in_range(av[0], av[1]))
        elif op is sre.CATEGORY:
            tests.append(_CATEGORIES.get(av, _anything))
        else:  # anything unexpected counts as "any character": refusing more is safe
            tests.append(_anything)

    def test(char: str) -> bool:
        found = any(item(char) for item in tests)
        return not found if negate else found

    return test


def _item_chars(op: Any, av: Any) -> _CharTest | None:
    """The characters one consuming item matches, or None if the item is not one."""
    if op is sre.LITERAL:
        return lambda c: ord(c) == av
    if op is sre.NOT_LITERAL:
        return lambda c: ord(c) != av
    if op is sre.ANY:
        return _anything
    if op is sre.IN:
        return _set_test(av)
    return None


def _children(op: Any, av: Any) -> Iterator[Any]:
    """The sub-patterns nested in one item."""
    if op in _REPEATS or op is sre.POSSESSIVE_REPEAT:
        yield av[2]
    elif op is sre.SUBPATTERN:
        yield av[3]
    elif op is sre.BRANCH:
        yield from av[1]
    elif op is sre.ATOMIC_GROUP:
        yield av
    elif op in (sre.ASSERT, sre.ASSERT_NOT):
        yield av[1]
    elif op is sre.GROUPREF_EXISTS:
        yield av[1]
        if av[2] is not None:
            yield av[2]


def _all_chars(pattern: Any) -> _CharTest:
    """Every character any part of ``pattern`` can consume (a superset)."""
    test: _CharTest = _nothing
    for op, av in pattern:
        own = _item_chars(op, av)
        if own is not None:
            test = _union(test, own)
        elif op is sre.GROUPREF:
            test = _anything
        for child in _children(op, av):
            test = _union(test, _all_chars(child))
    return test


def _first_chars(pattern: Any) -> tuple[_CharTest, bool]:
    """The characters a match of ``pattern`` can start with, and whether it can be empty."""
    test: _CharTest = _nothing
    for op, av in pattern:
        own = _item_chars(op, av)
        if own is not None:
            return _union(test, own), False
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            continue  # zero-width
        if op is sre.GROUPREF:
            return _anything, True
        if op in _REPEATS or op is sre.POSSESSIVE_REPEAT:
            inner, nullable = _first_chars(av[2])
            test = _union(test, inner)
            if av[0] > 0 and not nullable:
                return test, False
            continue
        if op is sre.BRANCH:
            any_nullable = False
            for branch in av[1]:
                inner, nullable = _first_chars(branch)
                test = _union(test, inner)
                any_nullable = any_nullable or nullable
            if not any_nullable:
                return test, False
            continue
        children = list(_children(op, av))
        if children:
            inner, nullable = _first_chars(children[0])
            test = _union(test, inner)
            if not nullable:
                return test, False
    return test, True


def _overlap(first: _CharTest, second: _CharTest) -> bool:
    for char in _SAMPLE:
        # rules match case-insensitively; a case mapping may give two characters ("SS")
        variants = {v for v in (char, char.lower(), char.upper()) if len(v) == 1}
        if any(first(v) for v in variants) and any(second(v) for v in variants):
            return True
    return False


def _is_variable_repeat(op: Any, av: Any) -> bool:
    return op in _REPEATS and av[0] != av[1]


def _contains_variable_repeat(pattern: Any) -> bool:
    for op, av in pattern:
        if op in (sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP):
            continue  # never gives back what it matched
        if _is_variable_repeat(op, av):
            return True
        # the parser turns a|aa into a(?:|a): an alternative that can be empty is a "?"
        if op is sre.BRANCH and any(_first_chars(branch)[1] for branch in av[1]):
            return True
        if any(_contains_variable_repeat(child) for child in _children(op, av)):
            return True
    return False


def _overlapping_branch(pattern: Any) -> bool:
    for op, av in pattern:
        if op in (sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP):
            continue
        if op is sre.BRANCH:
            starts = [_first_chars(branch)[0] for branch in av[1]]
            for index, first in enumerate(starts):
                if any(_overlap(first, other) for other in starts[index + 1 :]):
                    return True
        if any(_overlapping_branch(child) for child in _children(op, av)):
            return True
    return False


def _unbounded(pattern: Any) -> Iterator[_CharTest]:
    """The character sets of every unbounded, backtracking repeat (``*``, ``+``, ``{n,}``)."""
    for op, av in pattern:
        if op in (sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP):
            continue
        if op in _REPEATS and av[1] == sre.MAXREPEAT:
            yield _all_chars(av[2])
        for child in _children(op, av):
            yield from _unbounded(child)


def _walk(pattern: Any) -> str | None:
    for op, av in pattern:
        if op in (sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP):
            continue
        if op in _REPEATS and av[1] > 1:
            if _contains_variable_repeat(av[2]):
                return (
                    "nests a repeat inside a repeat (like (a+)+ or (.*x){20}), which can take "
                    "exponential time on provider text; write one flat repeat, e.g. a+ or "
                    "(?:ab)+, or match the distinctive words only"
                )
            if _overlapping_branch(av[2]):
                return (
                    "repeats alternatives that can start with the same character (like "
                    "(a|aa)+), which can take exponential time on provider text; make each "
                    "alternative start differently, or drop the repeat"
                )
        for child in _children(op, av):
            found = _walk(child)
            if found:
                return found
    return None


def backtracking_problem(pattern: str) -> str | None:
    """Why ``pattern`` could backtrack without bound on long text, or None if it cannot.

    The pattern must already compile; the answer says what to write instead.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        return (
            f"is {len(pattern)} characters long; write at most {MAX_PATTERN_LENGTH} "
            "(match a short, distinctive phrase of the message)"
        )
    parsed = sre_parse.parse(pattern, re.IGNORECASE)
    found = _walk(parsed.data)
    if found:
        return found
    unbounded = list(_unbounded(parsed.data))
    for index, first in enumerate(unbounded):
        if any(_overlap(first, other) for other in unbounded[index + 1 :]):
            return (
                "has two unbounded repeats over the same characters (like .*a.*b), which "
                "take polynomial time on a long message; keep at most one, e.g. write "
                "'not found' rather than 'model.*not.*found'"
            )
    return None
