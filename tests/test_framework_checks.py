"""``tokencost.frameworks``: a framework set to send its calls around litellm is warned about once, and the check
never breaks the program. DSPy is stood in for by a module object (the real DSPy is driven in tests/frameworks)."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from tokencost.frameworks import check_frameworks, forget_warnings
from tokencost.testing import recording_tracker


class _Settings:
    def __init__(self, lm: Any) -> None:
        self._lm = lm

    @property
    def lm(self) -> Any:
        if isinstance(self._lm, Exception):
            raise self._lm
        return self._lm


def _dspy(lm: Any) -> types.ModuleType:
    module = types.ModuleType("dspy")
    module.settings = _Settings(lm)  # type: ignore[attr-defined]
    return module


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    forget_warnings()
    yield
    forget_warnings()


@pytest.mark.parametrize("engine", ["auto", "lm15"])
def test_a_configured_lm_on_an_engine_past_litellm_is_warned_about_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, engine: str
) -> None:
    """Building trackers with such an LM configured: one warning, naming the engine and the remedy."""
    monkeypatch.setitem(sys.modules, "dspy", _dspy(types.SimpleNamespace(engine=engine)))
    with caplog.at_level(logging.WARNING, logger="tokencost"):
        with recording_tracker(), recording_tracker():
            pass
        assert check_frameworks() == [f"dspy:{engine}"]  # still found, not said again
    (record,) = caplog.records
    assert f"engine={engine!r}" in record.getMessage()
    assert 'engine="litellm"' in record.getMessage()


@pytest.mark.parametrize(
    "lm",
    [
        None,  # nothing configured
        types.SimpleNamespace(engine="litellm"),
        types.SimpleNamespace(engine=object()),  # a custom engine object: may well call litellm
        types.SimpleNamespace(),  # DSPy before 3.4: no engine
        RuntimeError("settings cannot be read here"),
    ],
    ids=["no-lm", "litellm", "custom-engine", "no-engine", "settings-raise"],
)
def test_nothing_is_said_when_the_calls_go_through_litellm_or_cannot_be_told(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, lm: Any
) -> None:
    monkeypatch.setitem(sys.modules, "dspy", _dspy(lm))
    with caplog.at_level(logging.WARNING, logger="tokencost"):
        assert check_frameworks() == []
        with recording_tracker():
            pass
    assert caplog.records == []


def test_dspy_not_imported_is_not_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without DSPy in sys.modules the check finds nothing and imports nothing."""
    monkeypatch.delitem(sys.modules, "dspy", raising=False)
    assert check_frameworks() == []
    assert "dspy" not in sys.modules
