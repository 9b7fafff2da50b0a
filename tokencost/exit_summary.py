"""At interpreter exit: record the streams still open as broken off, let price lookups land, flush the store,
give queued budget alerts a moment to reach their webhook, and print the tracker's summary on stderr.

Also run when litellm's proxy shuts down (its process then ends without running atexit); the summary of a
tracker is printed once.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokencost.engine import Tracking

__all__ = ["at_exit"]

_summarized: weakref.WeakSet[Tracking] = weakref.WeakSet()  # trackers whose summary was printed


def at_exit(tracker: Tracking) -> None:
    """Finish one tracker at exit (litellm's logging pool already drained); never raises (an error is logged)."""
    try:
        for call_id in tracker.calls.unfinished_streams():
            tracker.calls.stream_gone(call_id)
        for source in tracker.prices.sources:
            wait = getattr(source, "wait", None)
            if callable(wait):
                wait(2.0)
        tracker.ledger.safe("flush", lambda: tracker.store.flush(5.0))
        tracker.engine.finish_alerts(2.0)
        if tracker.print_summary and tracker not in _summarized and (tracker.request_count or tracker.ledger.budgets):
            _summarized.add(tracker)
            from rich.console import Console

            Console(stderr=True).print(tracker.summary())
    except Exception as exc:
        tracker.ledger.bug("exit summary", exc)
