"""Frameworks whose own settings send calls around litellm, where no tracker can see them: said once.

DSPy 3.4's ``dspy.LM`` takes an ``engine``: ``"litellm"`` calls litellm; ``"auto"`` (its default) sends every call
its native lm15 client can represent straight to the provider, and ``"lm15"`` all of them, so tokencost neither
counts nor budgets those calls. When DSPy is imported and the LM configured with ``dspy.configure(lm=...)`` uses such
an engine, :func:`check_frameworks` logs it once (logger ``tokencost``, level WARNING). Trackers run it when they
are built and again at exit, before the summary (the LM is often configured after the tracker). An LM handed to a
module directly rather than configured is not seen.

Only public names are read (``sys.modules["dspy"].settings.lm`` and ``LM.engine``, which DSPy before 3.4 lacks),
nothing is imported, and a check that fails says nothing.
"""

from __future__ import annotations

import logging
import sys
import threading

__all__ = ["BYPASSING_ENGINES", "check_frameworks", "forget_warnings"]

log = logging.getLogger("tokencost")

# dspy.LM engines that may send calls past litellm.
BYPASSING_ENGINES = frozenset({"auto", "lm15"})

_warned: set[str] = set()
_lock = threading.Lock()


def check_frameworks() -> list[str]:
    """Warn once about each framework setting found sending calls around litellm; return what was found now."""
    found: list[str] = []
    engine = _dspy_engine()
    if engine is not None:
        found.append(f"dspy:{engine}")
        with _lock:
            new = f"dspy:{engine}" not in _warned
            _warned.add(f"dspy:{engine}")
        if new:
            log.warning(
                "tokencost: DSPy's configured LM (dspy.settings.lm) uses engine=%r, which sends the calls DSPy's own "
                "client can make straight to the provider, past litellm: tokencost neither counts nor budgets them. "
                'Pass engine="litellm" to dspy.LM(...).',
                engine,
            )
    return found


def _dspy_engine() -> str | None:
    """The engine of DSPy's configured LM when it may bypass litellm, else None (DSPy not imported, no LM...)."""
    dspy = sys.modules.get("dspy")
    if dspy is None:
        return None
    try:
        engine = getattr(dspy.settings.lm, "engine", None)
    except Exception:
        return None
    return engine if isinstance(engine, str) and engine in BYPASSING_ENGINES else None


def forget_warnings() -> None:
    """Let :func:`check_frameworks` warn again about what it already warned about (for tests)."""
    with _lock:
        _warned.clear()
