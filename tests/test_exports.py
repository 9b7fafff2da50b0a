"""The public surface: every name in ``__all__`` is importable, sorted, and nothing public is left out."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tokencost


def test_all_is_sorted_and_importable() -> None:
    """__all__ is sorted and each name resolves to an object."""
    assert tokencost.__all__ == sorted(tokencost.__all__)
    for name in tokencost.__all__:
        assert getattr(tokencost, name) is not None


def test_public_objects_are_exported() -> None:
    """Every public class and function of the public modules that a user needs is in __all__."""
    from tokencost import budgets, errors

    for module in (errors, budgets):
        for name in module.__all__:
            if name[0].isupper() or name in {"budget", "scope"}:
                assert name in tokencost.__all__ or name in {"current_scope", "budget_lines"}, name


def test_unknown_attribute_raises() -> None:
    """A name tokencost does not have raises AttributeError, as for any module."""
    with pytest.raises(AttributeError, match="NotAThing"):
        _ = tokencost.NotAThing  # type: ignore[attr-defined]


def test_import_tokencost_does_not_import_litellm() -> None:
    """Importing the package alone does not import litellm (it loads when a name needs it)."""
    code = "import sys, tokencost; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# Modules only some trackers need: a default tracker (and the import) must not load them.
_FEATURE_MODULES = {
    "tokencost.webhooks": "alert_webhook=",
    "tokencost.worst_case": "a strict budget, estimate_cost() or can_afford()",
    "tokencost.budget_line": "budget_lines() and reports",
    "tokencost.stores.reservation": "listing reservations",
}


def test_a_default_tracker_loads_no_module_of_a_feature_it_does_not_use() -> None:
    """``CostTracker(budget=...)`` and one track() import neither webhooks, worst_case, budget_line nor
    stores.reservation: each is imported when its feature is first used."""
    code = (
        "import sys, tokencost; t = tokencost.CostTracker(budget=5, print_summary=False); "
        "t.track('gpt-4o', 10, 5, metadata={'user': 'a'}); t.close(); "
        f"print(sorted(m for m in {sorted(_FEATURE_MODULES)!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", {m: _FEATURE_MODULES[m] for m in _FEATURE_MODULES}


def test_the_features_load_their_modules() -> None:
    """The laziness keeps each feature working: a strict budget, an alert webhook, budget lines and reservations."""
    code = (
        "import sys, tokencost\n"
        "t = tokencost.CostTracker(budgets=[tokencost.Budget(limit_usd=5, strict=True)], print_summary=False,\n"
        "    alert_at=(0.5,), alert_webhook='http://127.0.0.1:9/hook')\n"
        "t.budget_lines(); t.store.reservations(t.name); t.can_afford('gpt-4o', 'hi', 10); t.close()\n"
        f"print(sorted(m for m in {sorted(_FEATURE_MODULES)!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == repr(sorted(_FEATURE_MODULES))
