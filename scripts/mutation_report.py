"""Kill rate per folder of a ``make mutate`` run; exit 1 below the bar.

Reads the cosmic-ray sessions in ``.mutation/<folder>/*.sqlite``. A surviving mutant listed in
``docs/mutation-equivalents.toml`` (same module, same enclosing function or class by qualified
name, same line before and after the mutation) is equivalent: it cannot change behaviour, so
it leaves the denominator. The kill rate is
killed / (mutants - equivalent); a folder below ``--min`` (90%) or with unfinished jobs fails.

    python scripts/mutation_report.py failures policy --survivors
"""

from __future__ import annotations

import argparse
import ast
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "docs" / "mutation-equivalents.toml"
FOLDERS = ("wire", "failures", "policy")
MODULE_SCOPE = "<module>"  # the function of a mutant at module level (a table, a constant)


@dataclass(frozen=True, slots=True)
class Mutant:
    module: str  # relative to src/chatcontract, e.g. "failures/classify.py"
    line: int
    function: str  # qualified name of the enclosing def or class, e.g. "Decoder.feed"
    operator: str
    before: str
    after: str


@dataclass
class Tally:
    total: int = 0
    killed: int = 0
    pending: int = 0
    skipped: int = 0  # in annotations (never evaluated): not mutants of behaviour
    equivalent: list[Mutant] = field(default_factory=list)
    survived: list[Mutant] = field(default_factory=list)

    @property
    def rate(self) -> float:
        judged = self.total - self.skipped - len(self.equivalent)
        return 100.0 if judged <= 0 else 100.0 * self.killed / judged


def _changed(diff: str | None) -> tuple[str, str]:
    before, after = [], []
    for line in (diff or "").splitlines():
        if line.startswith(("---", "+++")):
            continue
        text = line[1:].strip()
        if line.startswith("-") and text:
            before.append(text)
        elif line.startswith("+") and text:
            after.append(text)
    return " | ".join(before), " | ".join(after)


def enclosing_functions(source: str) -> list[tuple[int, int, str]]:
    """``(first line, last line, qualified name)`` of every def and class, outermost first.

    The span of a definition includes its decorators: ``@lru_cache(maxsize=16)`` belongs to
    the function it decorates. Lambdas and comprehensions are not scopes here: a lambda in a
    module-level table belongs to ``<module>``.
    """
    spans: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                spans.append((first, child.end_lineno or child.lineno, name))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return spans


def function_at(spans: list[tuple[int, int, str]], line: int) -> str:
    """The qualified name of the innermost def or class holding ``line``, or ``<module>``."""
    inside = [span for span in spans if span[0] <= line <= span[1]]
    # Inner spans start later (or end earlier) than the ones holding them.
    return max(inside, key=lambda span: (span[0], -span[1]))[2] if inside else MODULE_SCOPE


EquivalentKey = tuple[str, str, str, str]  # module, function, before, after


def load_equivalents(path: Path = EQUIVALENTS) -> dict[EquivalentKey, str]:
    """``(module, function, before, after) -> reason`` from the equivalents file."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    table: dict[EquivalentKey, str] = {}
    for entry in data.get("equivalent", []):
        missing = [k for k in ("module", "function", "before", "after") if k not in entry]
        if missing:
            raise SystemExit(
                f"{path}: an equivalent mutant needs {', '.join(missing)} "
                f'(function = "Class.method" or "{MODULE_SCOPE}"): {entry}'
            )
        reason = str(entry.get("reason", "")).strip()
        if not reason:
            raise SystemExit(f"{path}: every equivalent mutant needs a reason: {entry}")
        key = (entry["module"], entry["function"], entry["before"].strip(), entry["after"].strip())
        if key in table:
            raise SystemExit(f"{path}: listed twice: {entry}")
        table[key] = reason
    return table


def stale_equivalents(
    equivalents: dict[EquivalentKey, str], src: Path = ROOT / "src" / "chatcontract"
) -> list[EquivalentKey]:
    """The entries whose line before the mutation is no longer in their function of ``src``.

    Such an entry matches nothing (the code moved or changed): it should be re-checked, moved
    to the new function, or dropped.
    """
    stale: list[EquivalentKey] = []
    # module -> [(line number, function, stripped text)]
    located: dict[str, list[tuple[int, str, str]]] = {}
    for key in equivalents:
        module, function, before, _ = key
        if module not in located:
            path = src / module
            text = path.read_text(encoding="utf-8") if path.is_file() else ""
            spans = enclosing_functions(text)
            located[module] = [
                (number, function_at(spans, number), line.strip())
                for number, line in enumerate(text.splitlines(), start=1)
            ]
        # A mutation spanning lines is listed as "first | second": its first line is enough.
        wanted = {before, before.split(" | ", 1)[0]}
        if not any(f == function and t in wanted for _, f, t in located[module]):
            stale.append(key)
    return stale


def tally(folder: str, sessions: Path, equivalents: dict[EquivalentKey, str]) -> Tally:
    """Count one folder's sessions."""
    files = sorted((sessions / folder).glob("*.sqlite"))
    if not files:
        raise SystemExit(f"no sessions in {sessions / folder}: run make mutate first")
    return tally_sessions(files, equivalents)


def _mutated_source(session: Path, module_path: Path) -> str:
    """The text cosmic-ray mutated, as it was before any mutation.

    ``mutate.py`` keeps it beside the session (``<module>.orig``) when it creates the session:
    the scratch tree cannot be read while a run is going on (cosmic-ray rewrites the module
    there for each mutant). Without that copy, the work tree's module is read.
    """
    kept = session.with_suffix(".orig")
    if kept.is_file():
        return kept.read_text(encoding="utf-8")
    if (ROOT / module_path).is_file():
        return (ROOT / module_path).read_text(encoding="utf-8")
    raise SystemExit(f"{session}: the mutated module {module_path} is gone")


class MutantReader:
    """Turns a session's stored mutant and result into a :class:`Mutant` (with its function)."""

    def __init__(self, session: Path) -> None:
        self._session = session
        self._spans: dict[Path, list[tuple[int, int, str]]] = {}

    def mutant(self, spec: Any, diff: str | None) -> Mutant:
        module = Path(spec.module_path).as_posix().split("src/chatcontract/", 1)[-1]
        before, after = _changed(diff)
        if spec.module_path not in self._spans:
            source = _mutated_source(self._session, Path(spec.module_path))
            self._spans[spec.module_path] = enclosing_functions(source)
        line = spec.start_pos[0]
        function = function_at(self._spans[spec.module_path], line)
        return Mutant(module, line, function, spec.operator_name, before, after)


def key_of(mutant: Mutant) -> EquivalentKey:
    return (mutant.module, mutant.function, mutant.before, mutant.after)


def tally_sessions(files: list[Path], equivalents: dict[EquivalentKey, str]) -> Tally:
    """Count some sessions (one per module)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    result = Tally()
    for session in files:
        reader = MutantReader(session)
        with use_db(str(session), WorkDB.Mode.open) as db:
            result.total += db.num_work_items
            done = db.completed_work_items
            result.pending += db.num_work_items - len(done)
            for item, outcome in done:
                mutant = reader.mutant(item.mutations[0], outcome.diff)
                if outcome.worker_outcome is WorkerOutcome.SKIPPED:
                    result.skipped += 1
                elif outcome.test_outcome is TestOutcome.SURVIVED:
                    if key_of(mutant) in equivalents:
                        result.equivalent.append(mutant)
                    else:
                        result.survived.append(mutant)
                else:
                    result.killed += 1
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", metavar="FOLDER", help=f"of {', '.join(FOLDERS)}")
    parser.add_argument("--sessions", type=Path, default=ROOT / ".mutation")
    parser.add_argument("--min", type=float, default=90.0, help="lowest kill rate, percent")
    parser.add_argument("--survivors", action="store_true", help="list surviving mutants")
    parser.add_argument("--modules", action="store_true", help="also one line per module")
    parser.add_argument(
        "--toml",
        action="store_true",
        help="print the survivors as equivalents-file entries with an empty reason, to review",
    )
    parser.add_argument(
        "--stale",
        action="store_true",
        help="only list the equivalents whose line is no longer in their function (exit 1 if any)",
    )
    parser.add_argument("--equivalents", type=Path, default=EQUIVALENTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    folders = args.folders or [f for f in FOLDERS if (args.sessions / f).is_dir()]
    equivalents = load_equivalents(args.equivalents)
    if args.stale:
        stale = stale_equivalents(equivalents)
        for module, function, before, after in stale:
            print(f"stale {module} in {function}: {before!r} -> {after!r}")
        print(f"{len(stale)} of {len(equivalents)} equivalents no longer in their function")
        return 1 if stale else 0
    failed = False
    print(
        f"{'folder':<10} {'mutants':>8} {'skipped':>8} {'killed':>7} {'survived':>9} "
        f"{'equivalent':>11} {'kill rate':>10}"
    )
    tallies = {folder: tally(folder, args.sessions, equivalents) for folder in folders}
    for folder, t in tallies.items():
        verdict = "ok"
        if t.pending:
            verdict, failed = f"INCOMPLETE ({t.pending} jobs not run)", True
        elif t.rate < args.min:
            verdict, failed = f"BELOW {args.min:g}%", True
        print(
            f"{folder:<10} {t.total:>8} {t.skipped:>8} {t.killed:>7} {len(t.survived):>9} "
            f"{len(t.equivalent):>11} {t.rate:>9.1f}%  {verdict}"
        )
    if args.modules:
        for folder in folders:
            for session in sorted((args.sessions / folder).glob("*.sqlite")):
                t = tally_sessions([session], equivalents)
                state = f"{t.pending} jobs not run" if t.pending else "done"
                name = f"{folder}/{session.stem}.py"
                print(
                    f"  {name:<26} {t.total:>6} {t.skipped:>8} {t.killed:>7} "
                    f"{len(t.survived):>9} {len(t.equivalent):>11} {t.rate:>9.1f}%  {state}"
                )
    if args.survivors:
        for t in tallies.values():
            for m in sorted(t.survived, key=lambda m: (m.module, m.line)):
                print(f"  survived {m.module}:{m.line} in {m.function} {m.operator}")
                print(f"    - {m.before}\n    + {m.after}")
    if args.toml:
        for t in tallies.values():
            for m in sorted(t.survived, key=lambda m: (m.module, m.line)):
                print(to_toml(m))
    return 1 if failed else 0


def _toml_string(text: str) -> str:
    # A literal string keeps backslashes and quotes as written, when it can hold the text.
    if "'" not in text and "\n" not in text and "\r" not in text:
        return f"'{text}'"
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def to_toml(mutant: Mutant) -> str:
    """An equivalents-file entry for ``mutant``; its reason is left empty to be written."""
    return (
        "[[equivalent]]\n"
        f"module = {_toml_string(mutant.module)}\n"
        f"function = {_toml_string(mutant.function)}\n"
        f"before = {_toml_string(mutant.before)}\n"
        f"after = {_toml_string(mutant.after)}\n"
        'reason = ""\n'
    )


if __name__ == "__main__":
    sys.exit(main())
