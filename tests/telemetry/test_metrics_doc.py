"""docs/metrics.md and PrometheusSink list the same families, types and labels."""

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from chatcontract.telemetry import PrometheusSink

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
_HEADING = re.compile(r"^### `(llm_[a-z_]+)`\s*$")
_ROW = re.compile(r"^\| (counter|histogram) \| [^|]+ \| ([^|]+) \|\s*$")


def _documented():
    """{family: (type, labels)} from the headings and the table row under each."""
    families = {}
    current = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = heading.group(1)
            families[current] = None
            continue
        row = _ROW.match(line)
        if row and current and families[current] is None:
            labels = tuple(label.strip() for label in row.group(2).split(","))
            families[current] = (row.group(1), labels)
    return families


def _registered():
    """{exposed family name: (type, labels)} as PrometheusSink registers them."""
    registry = CollectorRegistry()
    sink = PrometheusSink(registry)
    families = {}
    for name, metric in vars(sink).items():
        if name.startswith("_") or not hasattr(metric, "_labelnames"):
            continue
        kind = metric._type
        exposed = metric._name + "_total" if kind == "counter" else metric._name
        families[exposed] = (kind, tuple(metric._labelnames))
    return families


def test_every_registered_family_is_documented():
    assert set(_registered()) - set(_documented()) == set()


def test_every_documented_family_is_registered():
    assert set(_documented()) - set(_registered()) == set()


@pytest.mark.parametrize("family", sorted(_registered()), ids=str)
def test_documented_type_and_labels_match_the_code(family):
    assert _documented()[family] == _registered()[family]


def test_the_sink_lists_what_it_registers():
    assert sorted(PrometheusSink(CollectorRegistry()).family_names) == sorted(_registered())
