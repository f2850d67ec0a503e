"""Loading a benchmark script (``benchmarks/*.py``) as a module, the way it runs: its folder on
``sys.path`` while it imports, so its ``_private`` helpers (``_stats``, ``_gateway_floors``)
resolve as they do for ``python benchmarks/bench_gateway.py``."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(name="load_benchmark", scope="session")
def load_benchmark_fixture() -> Callable[[str], ModuleType]:
    """``load_benchmark("bench_gateway")``: the script as a module."""
    return load_benchmark
