"""Kill rate per folder of a ``make mutate`` run; exit 1 below the bar.

Reads the cosmic-ray sessions in ``.mutation/<folder>/*.sqlite``. A surviving mutant listed in
``docs/mutation-equivalents.toml`` (same module, same line before and after the mutation)
is equivalent: it cannot change behaviour, so it leaves the denominator. The kill rate is
killed / (mutants - equivalent); a folder below ``--min`` (90%) or with unfinished jobs fails.

    python scripts/mutation_report.py failures policy --survivors
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "docs" / "mutation-equivalents.toml"
FOLDERS = ("wire", "failures", "policy")


@dataclass(frozen=True, slots=True)
class Mutant:
    module: str  # relative to src/chatcontract, e.g. "failures/classify.py"
    line: int
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


def load_equivalents(path: Path = EQUIVALENTS) -> dict[tuple[str, str, str], str]:
    """``(module, before, after) -> reason`` from the equivalents file."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    table: dict[tuple[str, str, str], str] = {}
    for entry in data.get("equivalent", []):
        reason = str(entry.get("reason", "")).strip()
        if not reason:
            raise SystemExit(f"{path}: every equivalent mutant needs a reason: {entry}")
        table[(entry["module"], entry["before"].strip(), entry["after"].strip())] = reason
    return table


def tally(folder: str, sessions: Path, equivalents: dict[tuple[str, str, str], str]) -> Tally:
    """Count one folder's sessions."""
    files = sorted((sessions / folder).glob("*.sqlite"))
    if not files:
        raise SystemExit(f"no sessions in {sessions / folder}: run make mutate first")
    return tally_sessions(files, equivalents)


def tally_sessions(files: list[Path], equivalents: dict[tuple[str, str, str], str]) -> Tally:
    """Count some sessions (one per module)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    result = Tally()
    for session in files:
        with use_db(str(session), WorkDB.Mode.open) as db:
            result.total += db.num_work_items
            done = db.completed_work_items
            result.pending += db.num_work_items - len(done)
            for item, outcome in done:
                spec = item.mutations[0]
                module = Path(spec.module_path).as_posix().split("src/chatcontract/", 1)[-1]
                before, after = _changed(outcome.diff)
                mutant = Mutant(module, spec.start_pos[0], spec.operator_name, before, after)
                if outcome.worker_outcome is WorkerOutcome.SKIPPED:
                    result.skipped += 1
                elif outcome.test_outcome is TestOutcome.SURVIVED:
                    if (module, before, after) in equivalents:
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
    args = parser.parse_args(argv)
    folders = args.folders or [f for f in FOLDERS if (args.sessions / f).is_dir()]
    equivalents = load_equivalents()
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
                print(f"  survived {m.module}:{m.line} {m.operator}")
                print(f"    - {m.before}\n    + {m.after}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
