"""The ``frameworks`` test group: every test here is marked ``frameworks``; a module whose framework is missing is
skipped locally, with the reason, and fails under ``CI=true`` (CI installs the extra ``frameworks``).

A missing framework is found before its module is imported, so the module is never collected (its imports would
be a collection error, which no ``-m "not frameworks"`` could deselect): it is replaced by one placeholder test,
marked like the others, that skips or fails when it runs.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tokencost.testing import FakeProvider

from . import CACHED_TOKENS, COMPLETION_TOKENS, MODEL, PROMPT_TOKENS, ExitRuns, run_to_exit

HERE = Path(__file__).resolve().parent
IN_CI = os.environ.get("CI", "").lower() == "true"
INSTALL = "pip install -e '.[frameworks]'"

# Each test module and the module it cannot run without (the extra `frameworks` in pyproject.toml pins them).
REQUIRES = {
    "test_dspy.py": "dspy",
    "test_langchain_litellm.py": "langchain_litellm",
    "test_openai_agents.py": "agents.extensions.models.litellm_model",
    "test_smolagents.py": "smolagents",
}


def _import_problem(module: str) -> str | None:
    """Why ``module`` cannot be imported, or None when it can."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # not installed, or installed but broken: either way the module cannot run
        return f"{type(exc).__name__}: {exc}"
    return None


class MissingFramework(pytest.File):
    """A test module whose framework is missing: one placeholder test instead of the module's tests."""

    reason: str

    def collect(self) -> Iterable[pytest.Item]:
        yield MissingFrameworkItem.from_parent(self, name="framework_is_installed", reason=self.reason)


class MissingFrameworkItem(pytest.Item):
    """Skips (locally) or fails (under CI=true) with the reason the framework could not be imported."""

    def __init__(self, *, reason: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason = reason

    def runtest(self) -> None:
        if IN_CI:
            pytest.fail(f"{self.reason}; CI=true requires the frameworks ({INSTALL})", pytrace=False)
        pytest.skip(f"{self.reason} ({INSTALL})")

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.path.name}: framework missing"


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect a test module of this folder only when its framework imports; else its placeholder."""
    required = REQUIRES.get(module_path.name) if module_path.parent == HERE else None
    problem = _import_problem(required) if required else None
    if problem is None:
        return None  # pytest's own module collection
    missing = MissingFramework.from_parent(parent, path=module_path)
    missing.reason = f"{required} cannot be imported ({problem})"
    return missing


@pytest.hookimpl(tryfirst=True)  # before -m selects: the marker must be there when it does
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``frameworks``."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.frameworks)


@pytest.fixture
def priced(fake: FakeProvider) -> Iterator[FakeProvider]:
    """The fake, reporting the frameworks' usage for MODEL (see ``call_cost()``) and answering with its default text
    until a test sets a reply function."""
    fake.set_openai_usage(
        MODEL, prompt_tokens=PROMPT_TOKENS, completion_tokens=COMPLETION_TOKENS, cached_tokens=CACHED_TOKENS
    )
    yield fake
    fake.reset()


@pytest.fixture(scope="session", autouse=True)
def exit_runs(request: pytest.FixtureRequest) -> Iterator[ExitRuns]:
    """The ``EXIT_SCRIPT`` of every test module with a selected test, each run to its exit in a fresh interpreter,
    all started with the group's first test (each spends seconds importing litellm and its framework)."""
    scripts = {
        item.module.__name__: item.module.EXIT_SCRIPT
        for item in request.session.items
        if isinstance(item, pytest.Function) and hasattr(item.module, "EXIT_SCRIPT")
    }
    with ThreadPoolExecutor(max_workers=max(1, len(scripts))) as pool:
        yield {name: pool.submit(run_to_exit, script) for name, script in scripts.items()}
