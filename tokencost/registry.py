"""The live trackers of this process, and which of them are registered in litellm's callback lists.

Every tracker adds itself here when built (``add``) and leaves when closed (``discard``); the set holds them
weakly. A tracker seen in litellm's lists is also held (``attached``) until it is closed, so that one a framework
took out of ``litellm.callbacks`` can be put back. ``lock`` guards both, and the litellm glue's install state.

Trackers are typed ``Any`` here: this module sits below every part of a tracker (``budget()`` blocks use it to
find the one registered tracker) and names none of them.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import litellm

__all__ = ["TRACKERS", "active", "add", "attached", "discard", "live", "lock", "registered_tracker"]

TRACKERS: weakref.WeakSet[Any] = weakref.WeakSet()  # every live tracker
# Trackers seen in litellm's callback lists, held until close(); ids to trackers.
attached: dict[int, Any] = {}
lock = threading.RLock()  # guards TRACKERS, attached, and the litellm glue's install state


def add(tracker: Any) -> None:
    """Count ``tracker`` as live (call with ``lock`` held)."""
    TRACKERS.add(tracker)


def discard(tracker: Any) -> None:
    """Forget a closing tracker (call with ``lock`` held)."""
    attached.pop(id(tracker), None)
    TRACKERS.discard(tracker)


def live() -> list[Any]:
    """Every tracker not yet closed, registered in litellm or not."""
    return [t for t in list(TRACKERS) if not t.closed]


def active() -> list[Any]:
    """The live trackers registered in litellm (in its lists now, or once and not closed), in order."""
    out: list[Any] = []
    for name in ("callbacks", "success_callback", "_async_success_callback"):
        for cb in getattr(litellm, name, []) or []:
            if cb in TRACKERS and not cb.closed and cb not in out:
                out.append(cb)
    if any(attached.get(id(t)) is not t for t in out):  # a tracker seen in the lists for the first time
        with lock:
            for t in out:
                attached.setdefault(id(t), t)
    # No lock for reading: every call's hooks ask, from every thread (a copy of the values is taken at once).
    out.extend(t for t in list(attached.values()) if not t.closed and t not in out)
    return out


def registered_tracker() -> Any:
    """Return the one tracker registered in litellm's callbacks.

    Raises:
        ValueError: when none or several are registered.
    """
    found = active()
    if len(found) != 1:
        raise ValueError(f"{len(found)} CostTrackers are registered in litellm; pass tracker= to say which one to use")
    return found[0]
