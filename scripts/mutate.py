"""Mutation testing of the pure decision layers with cosmic-ray (``make mutate``).

Each module of ``src/chatcontract/<folder>/`` is mutated (module-level tables included) and
judged by its own test folder ``tests/<folder>/`` only. Every folder runs in a scratch copy
of the tree under ``.mutation/<folder>/tree`` (imported through ``PYTHONPATH``), so the work
tree is never modified and folders can run side by side (``--jobs``). Sessions are cosmic-ray
SQLite files in ``.mutation/<folder>/``; ``--resume`` continues them instead of starting over,
and ``--retest-survivors`` (with an unchanged ``src/``) runs only the survivors again after
tests were added.
Then ``scripts/mutation_report.py`` prints the kill rate per folder and fails below 90%.

    python scripts/mutate.py failures policy --jobs 2
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("wire", "failures", "policy")
# A mutant whose tests run longer than this is counted as killed (it hangs).
TIMEOUT_S = 120.0


def _command(folder: str, paths: tuple[str, ...] = ()) -> str:
    # Plain asserts and no cache: nothing is rewritten or written per run (cosmic-ray forbids
    # bytecode writes), which halves the cost of each mutant; the exit status is all we read.
    targets = " ".join(paths) or f"tests/{folder}"
    return f"{sys.executable} -m pytest -q -x -p no:cacheprovider --assert=plain {targets}"


def ordered_tests(tree: Path, folder: str, stem: str) -> tuple[str, ...]:
    """Every test file of ``tests/<folder>``, those named after the module first.

    ``tests/wire/test_stream*.py`` run first for ``stream.py``, so with ``-x`` a mutant they
    kill costs one file, not the folder; a survivor still runs the whole folder. (pytest
    merges a file given before its own folder back into the folder's order, so the files
    are listed one by one.)
    """
    files = sorted((tree / "tests" / folder).rglob("test_*.py"))
    own = f"test_{stem.lstrip('_')}"
    first = [path for path in files if path.stem.startswith(own)]
    rest = [path for path in files if path not in first]
    return tuple(path.relative_to(tree).as_posix() for path in (*first, *rest))


def _config(module: Path, folder: str, paths: tuple[str, ...] = ()) -> str:
    command = _command(folder, paths)
    return (
        "[cosmic-ray]\n"
        f'module-path = "{module.as_posix()}"\n'
        f"timeout = {TIMEOUT_S}\n"
        "excluded-modules = []\n"
        f'test-command = "{command}"\n\n'
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )


def _copy_tree(work: Path) -> Path:
    tree = work / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    shutil.copytree(ROOT / "src", tree / "src", ignore=ignore)
    shutil.copytree(ROOT / "tests", tree / "tests", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):  # tests read both
        shutil.copy2(ROOT / name, tree / name)
    # Byte-compile the copy once: each run then compiles only the mutated module.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "src", "tests"], cwd=tree, check=True)
    return tree


def _annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    spans = []
    for node in ast.walk(ast.parse(source)):
        annotations: list[ast.expr | None] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            every = [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
            annotations += [arg.annotation for arg in every if arg is not None]
            annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        for annotation in annotations:
            if annotation is not None and annotation.end_lineno is not None:
                start = (annotation.lineno, annotation.col_offset)
                end = (annotation.end_lineno, annotation.end_col_offset or 0)
                spans.append((start, end))
    return spans


def skip_annotations(session: Path, module: Path) -> int:
    """Mark mutants inside annotations as skipped; how many.

    Every module here starts with ``from __future__ import annotations``: annotations are
    strings never evaluated, so ``int | None`` -> ``int - None`` cannot change behaviour.
    """
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    spans = _annotation_spans(module.read_text(encoding="utf-8"))
    skipped = 0
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in db.pending_work_items:
            position = tuple(item.mutations[0].start_pos)
            if any(start <= position < end for start, end in spans):
                result = WorkResult(
                    output="in an annotation: not evaluated",
                    worker_outcome=WorkerOutcome.SKIPPED,
                )
                db.set_result(item.job_id, result)
                skipped += 1
    return skipped


def forget_survivors(
    session: Path, equivalents: dict[tuple[str, str, str, str], str] | None = None
) -> int:
    """Drop the results of surviving mutants so that ``exec`` runs them again; how many.

    A survivor listed in ``docs/mutation-equivalents.toml`` keeps its result: it cannot be
    killed, and running the whole folder for it again would only cost time.
    """
    from cosmic_ray.work_db import WorkDB, WorkResultStorage, use_db
    from cosmic_ray.work_item import TestOutcome

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from mutation_report import MutantReader, key_of, load_equivalents

    if equivalents is None:
        equivalents = load_equivalents()
    reader = MutantReader(session)
    with use_db(str(session), WorkDB.Mode.open) as db:
        survivors = [
            item.job_id
            for item, result in db.completed_work_items
            if result.test_outcome is TestOutcome.SURVIVED
            and key_of(reader.mutant(item.mutations[0], result.diff)) not in equivalents
        ]
        # WorkDB has no public way to drop one result: its own SQLAlchemy session does it.
        with db._session_maker.begin() as orm:
            rows = orm.query(WorkResultStorage).filter(WorkResultStorage.job_id.in_(survivors))
            rows.delete()
    return len(survivors)


def run_folder(
    folder: str,
    *,
    sessions: Path,
    resume: bool,
    retest: bool = False,
    only: frozenset[str] = frozenset(),
) -> int:
    """Mutate every module of one folder; the worst cosmic-ray exit status."""
    work = sessions / folder
    work.mkdir(parents=True, exist_ok=True)
    tree = _copy_tree(work)
    env = {
        **os.environ,
        "PYTHONPATH": str(tree / "src"),
        "PYTHONDONTWRITEBYTECODE": "1",
        # Property tests draw a few reproducible examples per mutant (tests/conftest.py):
        # a mutant is killed by the direct tests, and tests/wire takes seconds, not minutes.
        "HYPOTHESIS_PROFILE": "mutation",
    }
    cosmic = [sys.executable, "-m", "cosmic_ray.cli"]
    status = 0
    # Largest modules first: an interrupted run (resumed later) has judged the most code.
    modules = sorted(
        (tree / "src" / "chatcontract" / folder).glob("*.py"),
        key=lambda path: (-path.stat().st_size, path.name),
    )
    for module in modules:
        if module.name == "__init__.py":  # re-exports only: nothing decides there
            continue
        if only and module.stem not in only:
            continue
        relative = module.relative_to(tree)
        config = work / f"{module.stem}.toml"
        session = work / f"{module.stem}.sqlite"
        paths = ordered_tests(tree, folder, module.stem)
        # Baseline, in this module's test order: the unmutated copy must pass, or every
        # mutant would count as killed.
        command = _command(folder, paths).split()
        if subprocess.run(command, cwd=tree, env=env, check=False).returncode != 0:
            print(
                f"mutate: tests/{folder} (in the order for {module.name}) fail on the "
                "unmutated tree; fix them first",
                flush=True,
            )
            return 2
        config.write_text(_config(relative, folder, paths), encoding="utf-8")
        if retest and session.exists():
            forget_survivors(session)
        elif not (resume and session.exists()):
            session.unlink(missing_ok=True)
            subprocess.run(
                [*cosmic, "init", str(config), str(session)], cwd=tree, env=env, check=True
            )
            skip_annotations(session, module)
            # The module as mutated, for the report (the tree is rewritten during a run).
            shutil.copy2(module, session.with_suffix(".orig"))
        print(f"mutate: {folder}/{module.name}", flush=True)
        done = subprocess.run(
            [*cosmic, "exec", str(config), str(session)], cwd=tree, env=env, check=False
        )
        status = max(status, done.returncode)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", metavar="FOLDER", help=f"of {', '.join(FOLDERS)}")
    parser.add_argument("--jobs", type=int, default=1, help="folders run side by side")
    parser.add_argument("--resume", action="store_true", help="continue existing sessions")
    parser.add_argument(
        "--retest-survivors",
        action="store_true",
        help="run the surviving mutants of existing sessions again (src/ unchanged)",
    )
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="NAME",
        help="mutate only this module of the folders (e.g. sse); repeatable",
    )
    parser.add_argument("--sessions", type=Path, default=ROOT / ".mutation")
    parser.add_argument("--no-report", action="store_true", help="run only, do not judge")
    args = parser.parse_args(argv)
    folders = args.folders or list(FOLDERS)
    unknown = sorted(set(folders) - set(FOLDERS))
    if unknown:
        parser.error(f"unknown folder {', '.join(unknown)}; use any of {', '.join(FOLDERS)}")
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        statuses = list(
            pool.map(
                lambda f: run_folder(
                    f,
                    sessions=args.sessions,
                    resume=args.resume,
                    retest=args.retest_survivors,
                    only=frozenset(name.removesuffix(".py") for name in args.module),
                ),
                folders,
            )
        )
    if any(statuses):
        print("mutate: cosmic-ray failed; see its output above", file=sys.stderr)
        return 2
    if args.no_report:
        return 0
    report = [sys.executable, str(ROOT / "scripts" / "mutation_report.py")]
    return subprocess.run(
        [*report, "--sessions", str(args.sessions), *folders], check=False
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
