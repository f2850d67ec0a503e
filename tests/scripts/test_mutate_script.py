"""scripts/mutate.py: annotations are skipped, survivors can be run again."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import MutationSpec, WorkerOutcome, WorkItem, WorkResult
from cosmic_ray.work_item import TestOutcome as Outcome

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


mutate = _load("mutate")

SOURCE = """\
from __future__ import annotations

LIMIT: int | None = 3


def clip(value: int | None, *, top: int = 4) -> int | None:
    return None if value is None else min(value, top)
"""


def _position(text: str, line: int) -> tuple[int, int]:
    return (line, SOURCE.splitlines()[line - 1].index(text))


def _session(path: Path, positions: list[tuple[int, int]]) -> Path:
    with use_db(str(path), WorkDB.Mode.create) as db:
        for number, (line, column) in enumerate(positions):
            spec = MutationSpec("m.py", "core/SomeOperator", 0, (line, column), (line, column + 1))
            db.add_work_item(WorkItem.single(f"job{number}", spec))
    return path


def test_mutants_inside_annotations_are_skipped_and_the_rest_stay_pending(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(SOURCE, encoding="utf-8")
    positions = [
        _position("| None = 3", 3),  # the annotation of LIMIT
        _position("3", 3),  # its value
        _position("| None, *", 6),  # a parameter annotation
        _position("4", 6),  # a default value
        _position("| None:", 6),  # the return annotation
        _position("min", 7),  # the body
    ]
    session = _session(tmp_path / "m.sqlite", positions)

    assert mutate.skip_annotations(session, module) == 3

    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = sorted(item.job_id for item in db.pending_work_items)
        skipped = sorted(
            item.job_id
            for item, result in db.completed_work_items
            if result.worker_outcome is WorkerOutcome.SKIPPED
        )
    assert pending == ["job1", "job3", "job5"]
    assert skipped == ["job0", "job2", "job4"]


def test_forget_survivors_makes_only_the_unlisted_survivors_pending_again(
    tmp_path: Path,
) -> None:
    module = Path("src/chatcontract/wire/m.py")
    line = SOURCE.splitlines()[6]
    session = tmp_path / "m.sqlite"
    session.with_suffix(".orig").write_text(SOURCE, encoding="utf-8")
    outcomes = {
        "job0": (Outcome.KILLED, line.replace("is None", "is not None")),
        "job1": (Outcome.SURVIVED, line.replace("min(", "max(")),
        "job2": (Outcome.SURVIVED, line.replace("is None", "== None")),
        "job3": (None, line),
    }
    with use_db(str(session), WorkDB.Mode.create) as db:
        for job, (outcome, after) in outcomes.items():
            spec = MutationSpec(module, "core/SomeOperator", 0, (7, 4), (7, 8))
            db.add_work_item(WorkItem.single(job, spec))
            if outcome is not None:
                diff = f"--- a\n+++ b\n@@ -7 +7 @@\n-{line}\n+{after}\n"
                db.set_result(
                    job,
                    WorkResult(
                        worker_outcome=WorkerOutcome.NORMAL, test_outcome=outcome, diff=diff
                    ),
                )
    listed = {
        ("wire/m.py", "clip", line.strip(), line.replace("is None", "== None").strip()): "why"
    }

    assert mutate.forget_survivors(session, listed) == 1

    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = sorted(item.job_id for item in db.pending_work_items)
        done = sorted(item.job_id for item, _ in db.completed_work_items)
    assert pending == ["job1", "job3"]
    assert done == ["job0", "job2"]


def test_the_tests_named_after_a_module_run_first_then_the_rest_of_the_folder(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "tests" / "wire"
    (folder / "deep").mkdir(parents=True)
    for name in ("test_a.py", "test_stream.py", "test_stream_exact.py", "test_z.py", "_help.py"):
        (folder / name).write_text("", encoding="utf-8")
    (folder / "deep" / "test_b.py").write_text("", encoding="utf-8")

    assert mutate.ordered_tests(tmp_path, "wire", "stream") == (
        "tests/wire/test_stream.py",
        "tests/wire/test_stream_exact.py",
        "tests/wire/deep/test_b.py",
        "tests/wire/test_a.py",
        "tests/wire/test_z.py",
    )
    assert mutate.ordered_tests(tmp_path, "wire", "_json")[0] == "tests/wire/deep/test_b.py"
