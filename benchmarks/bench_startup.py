"""Benchmark: what loading a contract costs at start-up, with and without the declaration library.

Each workload runs in a fresh interpreter (``python -c ...``), the workloads interleaved in
each round so they share the machine's state; the median wall time of ``--rounds`` runs is
printed with the cost above the bare interpreter measured in the same run:

- ``interpreter``: ``python -c pass``, the floor.
- ``yaml``: read and parse the contract file with PyYAML, no validation: a loader without
  any declaration library pays at least this.
- ``msgspec``: ``import msgspec``, the library the contract is declared with.
- ``pydantic``: ``from pydantic import BaseModel``, the alternative, for reference.
- ``contract model``: ``import chatcontract.contract`` (the declaration, loader, schema).
- ``load``: ``chatcontract.contract.load(path)`` of a file ``init`` wrote, imports included.

The ``load`` child also prints the time of ``load()`` alone after the imports (median over
the rounds). Importing ``chatcontract.contract`` runs the package ``__init__``, so the
``contract model`` and ``load`` rows include whatever that imports.

The children run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed from their
environment; the warm-up writes the ``.pyc`` files), as an installed package has its ``.pyc``
files: otherwise chatcontract's modules would be compiled on every run while the libraries'
come precompiled. Run with::

    .venv/bin/python benchmarks/bench_startup.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chatcontract.contract import dump, load_preset

WORKLOADS = {
    "interpreter": "pass",
    "yaml": "import yaml, pathlib, sys; yaml.safe_load(pathlib.Path(sys.argv[1]).read_text())",
    "msgspec": "import msgspec",
    "pydantic": "from pydantic import BaseModel",
    "contract model": "import chatcontract.contract",
    "load": (
        "import sys, time\n"
        "from chatcontract.contract import load\n"
        "start = time.perf_counter()\n"
        "load(sys.argv[1])\n"
        "print((time.perf_counter() - start) * 1000)\n"
    ),
}


#: The children's environment: bytecode cached, as installed (see the module docstring).
CHILD_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def _run(code: str, path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        check=True,
        capture_output=True,
        text=True,
        env=CHILD_ENV,
    )
    return (time.perf_counter() - start) * 1000, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "chatcontract.yaml"
        path.write_text(dump(load_preset("cometapi")), encoding="utf-8")
        times: dict[str, list[float]] = {name: [] for name in WORKLOADS}
        load_only: list[float] = []
        for code in WORKLOADS.values():  # warm the file cache once
            _run(code, path)
        for _ in range(args.rounds):
            for name, code in WORKLOADS.items():
                elapsed, out = _run(code, path)
                times[name].append(elapsed)
                if name == "load":
                    load_only.append(float(out))
    floor = statistics.median(times["interpreter"])
    print(
        f"fresh interpreters, median of {args.rounds}, interleaved (python {sys.version[:6]}, "
        f".pyc cached, load average {os.getloadavg()[0]:.2f})"
    )
    print(f"{'workload':<16} {'median ms':>10} {'above interpreter':>18}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<16} {median:>10.1f} {median - floor:>+17.1f}")
    print(f"load() alone, after imports: {statistics.median(load_only):.2f} ms (median)")
    msgspec_cost = statistics.median(times["msgspec"]) - floor
    pydantic_cost = statistics.median(times["pydantic"]) - floor
    print(
        f"declaration library import: msgspec {msgspec_cost:+.1f} ms, "
        f"pydantic (not used) {pydantic_cost:+.1f} ms"
    )


if __name__ == "__main__":
    main()
