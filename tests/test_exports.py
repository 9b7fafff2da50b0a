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
