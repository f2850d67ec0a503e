"""The README's "Failure classification" example runs exactly as written and says what it shows."""

import ast
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Failure classification", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the section lost its python example"
    return match.group(1)


def test_the_readme_classification_example_runs_and_its_comment_is_the_result():
    code = _example()
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    last = code.strip().splitlines()[-1]
    expression, _, comment = last.partition("#")
    assert eval(expression, namespace) == ast.literal_eval(comment.strip())
