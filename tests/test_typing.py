"""Honest types for users: README-style code and the README's own samples pass ``mypy --strict``.

``tests/typing/readme_usage.py`` uses the public API as the README does and pins the types it promises with
``assert_type``. Every ```` ```python ```` block of README.md is checked as well, as written, after a prelude that
stands in for the names a sample leaves to the reader (``messages``, ``run_agent``...). mypy runs once, in a
subprocess, with the project's ``[tool.mypy]`` settings (litellm and the SDKs are not followed).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tokencost.budgets import Budget

ROOT = Path(__file__).resolve().parent.parent
USAGE = ROOT / "tests" / "typing" / "readme_usage.py"
README = ROOT / "README.md"

# Names README samples use without defining them; typed as a reader would have them.
README_PRELUDE = """\
from __future__ import annotations

from decimal import Decimal
from typing import Any

import litellm

import tokencost
from tokencost import Budget, BudgetExceededError, CostTracker

messages: list[dict[str, str]] = [{"role": "user", "content": "hi"}]
msgs = messages
anthropic_client: Any = None
tracker = CostTracker()


def alert_ops(spent: Decimal) -> None: ...


def run_agent() -> None: ...
"""


def readme_blocks() -> list[tuple[int, str]]:
    """Return each ```python block of README.md with the line it starts on."""
    text = README.read_text(encoding="utf-8")
    return [
        (text[: m.start()].count("\n") + 2, m.group(1))
        for m in re.finditer(r"^```python\n(.*?)^```", text, re.M | re.S)
    ]


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Run ``mypy --strict`` once over the usage file and the README samples; return the error lines per file."""
    if importlib.util.find_spec("mypy") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("mypy is not installed; CI=true requires it (pip install -e '.[dev]')")
        pytest.skip("mypy is not installed")
    samples = tmp_path_factory.mktemp("readme") / "readme_samples.py"
    parts = [README_PRELUDE]
    for line, code in readme_blocks():
        parts.append(f"\n# README.md line {line}\n{code}")
    samples.write_text("".join(parts), encoding="utf-8")
    cmd = [sys.executable, "-m", "mypy", "--strict", "--config-file", str(ROOT / "pyproject.toml")]
    proc = subprocess.run(
        [*cmd, str(USAGE), str(samples)], cwd=ROOT, capture_output=True, text=True, timeout=540, check=False
    )
    output = proc.stdout + proc.stderr
    if proc.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        pytest.fail(f"mypy exited {proc.returncode}:\n{output}")
    errors: dict[str, list[str]] = {"usage": [], "readme": [], "other": []}
    numbered = samples.read_text(encoding="utf-8").splitlines()
    for row in output.splitlines():
        if ": error:" not in row and ": note:" not in row:
            continue
        if row.startswith(str(USAGE)) or row.startswith(os.path.relpath(USAGE, ROOT)):
            errors["usage"].append(row)
        elif row.startswith(str(samples)):
            lineno = int(row.split(":")[1])
            errors["readme"].append(f"{row}\n    > {numbered[lineno - 1].strip()}  ({_readme_line(numbered, lineno)})")
        else:
            errors["other"].append(row)
    if proc.returncode == 1 and not any(errors.values()):
        errors["other"].append(output)
    return errors


def _readme_line(lines: list[str], lineno: int) -> str:
    """Map a line of the generated samples file back to README.md."""
    for back in range(lineno - 1, -1, -1):
        m = re.match(r"# README.md line (\d+)$", lines[back])
        if m:
            return f"README.md:{int(m.group(1)) + lineno - back - 2}"
    return "prelude"


@pytest.mark.timeout(600)
def test_readme_style_usage_type_checks(mypy_output: dict[str, list[str]]) -> None:
    """tests/typing/readme_usage.py passes mypy --strict, assert_type checks included."""
    problems = mypy_output["usage"] + mypy_output["other"]
    assert not problems, "mypy --strict on tests/typing/readme_usage.py:\n" + "\n".join(problems)


@pytest.mark.timeout(600)
def test_readme_samples_type_check(mypy_output: dict[str, list[str]]) -> None:
    """Every ```python block of README.md passes mypy --strict as written."""
    assert readme_blocks(), "README.md has no python blocks?"
    assert not mypy_output["readme"], "mypy --strict on README.md's python blocks:\n" + "\n".join(mypy_output["readme"])


def test_budget_init_stub_matches_the_fields() -> None:
    """The ``__init__`` type checkers see on Budget (under TYPE_CHECKING) is the generated one, amounts widened.

    It takes the same parameters in the same order with the same defaults and annotations as the dataclass
    fields, except ``limit_usd``, which accepts any ``Money`` and is a ``Decimal`` once built.
    """
    tree = ast.parse(inspect.getsource(Budget))
    stub = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "__init__"  # only the TYPE_CHECKING one exists
    )
    args = stub.args.args[1:]
    fields = dataclasses.fields(Budget)
    assert [a.arg for a in args] == [f.name for f in fields]
    assert [ast.literal_eval(d) for d in stub.args.defaults] == [f.default for f in fields]
    annotations = {a.arg: ast.unparse(a.annotation) for a in args if a.annotation is not None}
    expected = {f.name: str(f.type) for f in fields}
    expected["limit_usd"] = "Money | None"
    assert annotations == expected
    # At runtime the generated __init__ is the one used: amounts become Decimal.
    assert list(inspect.signature(Budget).parameters) == [f.name for f in fields]
    assert Budget(limit_usd=2).limit_usd == Budget(limit_usd="2").limit_usd
