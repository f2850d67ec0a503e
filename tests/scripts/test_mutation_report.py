"""scripts/mutation_report.py: equivalents match by module, enclosing function and line."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import MutationSpec, WorkerOutcome, WorkItem, WorkResult
from cosmic_ray.work_item import TestOutcome as Outcome

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


report = _load("mutation_report")

# The same line text `return value == 1` in two functions, a method, a decorated function, a
# module-level table with a lambda and a nested function.
SOURCE = """\
from functools import lru_cache

TABLE = {
    "one": lambda value: value == 1,
}


def first(value):
    return value == 1


def second(value):
    return value == 1


class Box:
    size = 3

    def check(self, value):
        def inner():
            return value == 1

        return inner()


@lru_cache(maxsize=16)
def cached(value):
    return value
"""


def _line(text: str, occurrence: int = 0) -> int:
    numbers = [n for n, line in enumerate(SOURCE.splitlines(), 1) if line.strip() == text]
    return numbers[occurrence]


@pytest.mark.parametrize(
    ("text", "occurrence", "function"),
    [
        ('"one": lambda value: value == 1,', 0, "<module>"),
        ("return value == 1", 0, "first"),
        ("return value == 1", 1, "second"),
        ("size = 3", 0, "Box"),
        ("def check(self, value):", 0, "Box.check"),
        ("return value == 1", 2, "Box.check.inner"),
        ("return inner()", 0, "Box.check"),
        ("@lru_cache(maxsize=16)", 0, "cached"),
        ("return value", 0, "cached"),
    ],
    ids=[
        "table-lambda-is-module",
        "first-function",
        "same-text-second-function",
        "class-body",
        "method-def-line",
        "nested-function",
        "method-after-nested",
        "decorator-belongs-to-its-def",
        "decorated-body",
    ],
)
def test_function_at_names_the_innermost_def_or_class(
    text: str, occurrence: int, function: str
) -> None:
    spans = report.enclosing_functions(SOURCE)

    assert report.function_at(spans, _line(text, occurrence)) == function


def _write_equivalents(path: Path, *entries: dict[str, str]) -> Path:
    blocks = []
    for entry in entries:
        fields = "\n".join(f"{key} = {value!r}" for key, value in entry.items())
        blocks.append(f"[[equivalent]]\n{fields}\n")
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def _entry(function: str, **changes: str) -> dict[str, str]:
    entry = {
        "module": "wire/sample.py",
        "function": function,
        "before": "return value == 1",
        "after": "return value >= 1",
        "reason": "value is 0 or 1 here",
    }
    entry.update(changes)
    return entry


def test_load_equivalents_keys_by_module_function_and_lines(tmp_path: Path) -> None:
    path = _write_equivalents(tmp_path / "eq.toml", _entry("first"))

    assert report.load_equivalents(path) == {
        ("wire/sample.py", "first", "return value == 1", "return value >= 1"): (
            "value is 0 or 1 here"
        )
    }


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {k: v for k, v in _entry("first").items() if k != "function"},
            re.escape('needs function (function = "Class.method" or "<module>")'),
        ),
        (_entry("first", reason="  "), "every equivalent mutant needs a reason"),
    ],
    ids=["without-function", "without-reason"],
)
def test_load_equivalents_refuses_an_incomplete_entry(
    tmp_path: Path, entry: dict[str, str], message: str
) -> None:
    path = _write_equivalents(tmp_path / "eq.toml", entry)

    with pytest.raises(SystemExit, match=message):
        report.load_equivalents(path)


def test_load_equivalents_refuses_an_entry_listed_twice(tmp_path: Path) -> None:
    path = _write_equivalents(tmp_path / "eq.toml", _entry("first"), _entry("first"))

    with pytest.raises(SystemExit, match="listed twice"):
        report.load_equivalents(path)


def _session(folder: Path, outcomes: list[tuple[int, Outcome | None]]) -> Path:
    """A real cosmic-ray session for ``wire/sample.py``: ``==`` -> ``>=`` on each line given."""
    module = Path("src/chatcontract/wire/sample.py")
    # The scratch tree holds whatever mutant cosmic-ray is running (here: lines shifted);
    # the report reads the module as it was, kept beside the session.
    tree = folder / "tree"
    (tree / module).parent.mkdir(parents=True)
    (tree / module).write_text("\n\n\n" + SOURCE, encoding="utf-8")
    session = folder / "sample.sqlite"
    session.with_suffix(".orig").write_text(SOURCE, encoding="utf-8")
    with use_db(str(session), WorkDB.Mode.create) as db:
        for number, (line, outcome) in enumerate(outcomes):
            job = f"job{number}"
            text = SOURCE.splitlines()[line - 1]
            column = text.index("==")
            spec = MutationSpec(
                module,
                "core/ReplaceComparisonOperator_Eq_GtE",
                0,
                (line, column),
                (line, column + 2),
            )
            db.add_work_item(WorkItem.single(job, spec))
            if outcome is None:
                continue
            diff = (
                f"--- mutation diff ---\n--- a{module}\n+++ b{module}\n@@ -{line} +{line} @@\n"
                f"-{text}\n+{text.replace('==', '>=')}\n"
            )
            db.set_result(
                job,
                WorkResult(worker_outcome=WorkerOutcome.NORMAL, test_outcome=outcome, diff=diff),
            )
    return session


def test_an_equivalent_matches_only_in_its_own_function(tmp_path: Path) -> None:
    # The same mutation of the same line text survives in first() and in second(); only the
    # one in first() is listed as equivalent, so the one in second() is still a survivor.
    survived = Outcome.SURVIVED
    first, second = _line("return value == 1", 0), _line("return value == 1", 1)
    session = _session(tmp_path / "wire", [(first, survived), (second, survived)])
    equivalents = report.load_equivalents(_write_equivalents(tmp_path / "eq.toml", _entry("first")))

    tally = report.tally_sessions([session], equivalents)

    assert [(m.function, m.line) for m in tally.equivalent] == [("first", first)]
    assert [(m.function, m.line) for m in tally.survived] == [("second", second)]
    assert tally.rate == 0.0


def test_the_report_counts_killed_pending_and_names_the_survivor_function(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [_line("return value == 1", n) for n in range(3)]
    _session(
        tmp_path / "wire",
        [(lines[0], Outcome.KILLED), (lines[1], Outcome.SURVIVED), (lines[2], None)],
    )
    equivalents = _write_equivalents(tmp_path / "eq.toml", _entry("first"))

    status = report.main(
        ["wire", "--sessions", str(tmp_path), "--equivalents", str(equivalents), "--survivors"]
    )

    out = capsys.readouterr().out
    assert status == 1
    assert "INCOMPLETE (1 jobs not run)" in out
    assert f"survived wire/sample.py:{lines[1]} in second " in out
    assert "- return value == 1" in out


def test_stale_equivalents_lists_an_entry_whose_line_left_its_function(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "wire").mkdir(parents=True)
    (src / "wire" / "sample.py").write_text(SOURCE, encoding="utf-8")
    kept = _entry("second")
    moved = _entry("Box.check")  # the line is in Box.check.inner, not Box.check itself
    gone = _entry("first", before="return value != 1")
    equivalents = report.load_equivalents(
        _write_equivalents(tmp_path / "eq.toml", kept, moved, gone)
    )

    stale = report.stale_equivalents(equivalents, src)

    assert [(f, before) for _, f, before, _ in stale] == [
        ("Box.check", "return value == 1"),
        ("first", "return value != 1"),
    ]


def test_every_listed_equivalent_is_still_in_its_function() -> None:
    # The project's own list: an entry whose line moved or changed matches nothing and would
    # hide nothing, but it also no longer documents anything. Re-check it, move it or drop it
    # (scripts/mutation_report.py --stale).
    equivalents = report.load_equivalents()

    assert report.stale_equivalents(equivalents) == []


@pytest.mark.parametrize(
    "before",
    [
        'return b"\\n".join(data)',
        "return name == 'x' and kind == \"y\"",
        "return value == 1",
    ],
    ids=["backslash", "both-quotes", "plain"],
)
def test_a_toml_stub_reads_back_as_the_same_key_once_given_a_reason(
    tmp_path: Path, before: str
) -> None:
    mutant = report.Mutant(
        "wire/sample.py", 9, "Box.check", "core/Op", before, before.replace("==", "!=")
    )
    stub = report.to_toml(mutant)
    path = tmp_path / "eq.toml"

    path.write_text(stub, encoding="utf-8")
    with pytest.raises(SystemExit, match="needs a reason"):
        report.load_equivalents(path)

    path.write_text(stub.replace('reason = ""', 'reason = "why"'), encoding="utf-8")
    assert report.load_equivalents(path) == {
        ("wire/sample.py", "Box.check", mutant.before, mutant.after): "why"
    }
