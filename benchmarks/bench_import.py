"""Benchmark: start-up. What ``import chatcontract`` and the CLI's ``--version`` / ``--help`` cost.

Every sample is a fresh interpreter (``python -c ...``), so nothing is
cached in ``sys.modules``; the cases run interleaved, in a new random order each round, so a
busy neighbour slows every case alike. Import cases time the import inside the child
(``time.perf_counter`` around the statement: the interpreter's own start-up is left out); CLI
cases time the whole process from the parent, as a user waits for it.

Cases:

- ``import httpx2``: the baseline, the HTTP client chatcontract is built on.
- ``import chatcontract``: target at most 30 ms more than ``import httpx2`` (median of the
  per-round differences).
- ``from chatcontract import ChatClient`` and ``from chatcontract import instrument``: what the
  first use of the library loads (httpx2, the contract loader, the wire parsers). Reported, no
  target: this is where a contract library (pydantic, msgspec) shows up.
- ``chatcontract --version`` and ``chatcontract --help``: target at most 100 ms (median wall
  time of the whole process, interpreter start-up included). ``python -c pass``, timed the same
  way, is printed beside them: the floor no CLI gets under, and a gauge of how busy the machine
  is (on a busy one, read the CLI's margin over the floor).

CLI cases also report the child's CPU time (user + system): unlike the wall time it hardly
moves when other processes share the machine, so it shows what the start-up itself costs.

The children run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed from their
environment; the warm-up round writes the ``.pyc`` files), as an installed package has its
``.pyc`` files from ``pip install``: otherwise chatcontract's own modules would be compiled
on every run while httpx2's come precompiled. ``--as-is`` keeps the environment unchanged.

Run with::

    .venv/bin/python benchmarks/bench_import.py [--rounds 30] [--as-is]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

IMPORT_OVER_HTTPX2_TARGET_MS = 30.0
CLI_TARGET_MS = 100.0

IMPORTS = {
    "import httpx2": "import httpx2",
    "import chatcontract": "import chatcontract",
    "from chatcontract import ChatClient": "from chatcontract import ChatClient",
    "from chatcontract import instrument": "from chatcontract import instrument",
}
TIMED_IMPORT = (
    "import time\n_t = time.perf_counter()\n{statement}\nprint((time.perf_counter() - _t) * 1000)"
)


def _cli() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m chatcontract``."""
    script = shutil.which("chatcontract", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "chatcontract"]


#: The children's environment (see the module docstring); ``--as-is`` sets it to os.environ.
CHILD_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def time_import(statement: str) -> float:
    result = subprocess.run(
        [sys.executable, "-c", TIMED_IMPORT.format(statement=statement)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=CHILD_ENV,
    )
    return float(result.stdout.strip().splitlines()[-1])


#: CPU milliseconds (user + system) of each process ``time_process`` ran, by its argv.
CPU_MS: dict[tuple[str, ...], list[float]] = {}


def _children_cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1000


def time_process(argv: list[str]) -> float:
    cpu_before = _children_cpu_ms()
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True, timeout=60, env=CHILD_ENV)
    wall = (time.perf_counter() - started) * 1000
    CPU_MS.setdefault(tuple(argv), []).append(_children_cpu_ms() - cpu_before)
    return wall


def summary(samples: list[float]) -> str:
    quartiles = statistics.quantiles(samples, n=4)
    return (
        f"median {statistics.median(samples):7.1f} ms   "
        f"IQR {quartiles[0]:6.1f}-{quartiles[2]:6.1f}   "
        f"min {min(samples):6.1f}   max {max(samples):6.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument(
        "--as-is", action="store_true", help="keep PYTHONDONTWRITEBYTECODE in the children"
    )
    options = parser.parse_args()
    if options.as_is:
        CHILD_ENV.clear()
        CHILD_ENV.update(os.environ)

    cli = _cli()
    cases = {
        **{name: (lambda s=statement: time_import(s)) for name, statement in IMPORTS.items()},
        "python -c pass": lambda: time_process([sys.executable, "-c", "pass"]),
        "chatcontract --version": lambda: time_process([*cli, "--version"]),
        "chatcontract --help": lambda: time_process([*cli, "--help"]),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for case in cases.values():  # one warm-up each: the first run pays for the disk cache
        case()
    CPU_MS.clear()
    for _ in range(options.rounds):
        order = list(cases)
        random.shuffle(order)
        for name in order:
            samples[name].append(cases[name]())

    bytecode = "as-is" if options.as_is else "bytecode cached (.pyc), as installed"
    print(f"start-up, {options.rounds} interleaved rounds, a fresh interpreter per sample")
    print(f"  CLI: {' '.join(cli)}; {bytecode}; load average {os.getloadavg()[0]:.2f}")
    width = max(map(len, cases))
    for name, values in samples.items():
        print(f"  {name:<{width}}  {summary(values)}")
    print("  process CPU time (user + system), the same runs:")
    processes = {
        "python -c pass": (sys.executable, "-c", "pass"),
        "chatcontract --version": (*cli, "--version"),
        "chatcontract --help": (*cli, "--help"),
    }
    for name, argv in processes.items():
        print(f"  {name:<{width}}  {summary(CPU_MS[argv])}")

    over = [
        chatcontract - httpx2
        for chatcontract, httpx2 in zip(
            samples["import chatcontract"], samples["import httpx2"], strict=True
        )
    ]
    extra = statistics.median(over)
    verdict = "met" if extra <= IMPORT_OVER_HTTPX2_TARGET_MS else "MISSED"
    print(
        f"\n  import chatcontract - import httpx2 (per round): {summary(over)}\n"
        f"  target: <= {IMPORT_OVER_HTTPX2_TARGET_MS:.0f} ms more than httpx2: {verdict}"
    )
    for name in ("chatcontract --version", "chatcontract --help"):
        median = statistics.median(samples[name])
        verdict = "met" if median <= CLI_TARGET_MS else "MISSED"
        floor = statistics.median(samples["python -c pass"])
        print(
            f"  target: {name} <= {CLI_TARGET_MS:.0f} ms: {verdict} ({median:.1f} ms; "
            f"{median - floor:+.1f} ms over a bare interpreter)"
        )
    first_use = statistics.median(samples["from chatcontract import instrument"])
    print(
        f"  first use (no target): from chatcontract import instrument {first_use:.1f} ms, "
        f"{first_use - statistics.median(samples['import httpx2']):+.1f} ms against httpx2"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
