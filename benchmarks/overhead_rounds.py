"""Isolated, interleaved rounds of mock completions: one logger registered at a time, each call's event landed.

Imports litellm but not tokencost, so ``bench_tracker.py`` also runs it, as a script, from a virtual environment
holding another tracker (``llm-tokencost``, which ships a top-level ``tokencost`` package of its own):

    python benchmarks/overhead_rounds.py --side llm-tokencost --calls 3000 --rounds 10

How a round keeps to its own logger, and proves it:

* before the round every logger is taken out of every litellm list
  (``litellm.logging_callback_manager.remove_callback_from_all_lists`` and an identity sweep of every
  ``*_callback(s)`` list), then ``litellm.callbacks = [logger]``; the round checks that the lists hold that
  logger alone, and that the counts of the other sides' loggers did not move while it ran;
* a tracker is created for its round and closed after it (a live tokencost tracker puts itself back into
  litellm's lists when they are replaced, which is what a framework needs and what a baseline must not have);
* every call's time includes its own event landing: a logger's success event delivered (``Landing.wait``),
  or for tokencost the tracker current at return (its ``calls.await_returned()``, what every view waits for).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from litellm.integrations.custom_logger import CustomLogger

MESSAGES = [{"role": "user", "content": "hi"}]
WARMUP = 20  # untimed calls at the start of each round (first price lookups, new store files)


class Landing:
    """Count the success events a logger was delivered, and let a caller wait for its own call's."""

    def __init__(self) -> None:
        self.landed = threading.Condition()
        self.ids: set[str] = set()
        self.count = 0

    def landed_event(self, kwargs: Any) -> None:
        with self.landed:
            self.ids.add(str(kwargs.get("litellm_call_id")))
            self.count += 1
            self.landed.notify_all()

    def wait(self, call_id: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self.landed:
            while call_id not in self.ids:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"the success event of {call_id} never landed")
                self.landed.wait(left)
            self.ids.discard(call_id)


class NoOp(CustomLogger, Landing):  # type: ignore[misc]
    """The baseline: a logger that only notes its success event landed."""

    def __init__(self) -> None:
        CustomLogger.__init__(self)
        Landing.__init__(self)

    def log_success_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]
        self.landed_event(kwargs)


@dataclass
class Side:
    """One way of logging the calls: how to make its logger, wait for a call's event, count, close."""

    name: str
    make: Callable[[], Any]
    land: Callable[[Any, str], None]  # (logger, call id): return once that call's event has landed
    count: Callable[[Any], int]
    close: Callable[[Any], None] = lambda logger: None
    context: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
    last: Any = field(default=None, repr=False)  # the logger of its latest round (checked by the others)


def noop_side() -> Side:
    return Side("no-op", NoOp, lambda logger, call_id: logger.wait(call_id), lambda logger: logger.count)


def _lists() -> list[list[Any]]:
    names = [name for name in dir(litellm) if name.endswith(("_callback", "_callbacks"))] + ["callbacks"]
    found = [getattr(litellm, name, None) for name in names]
    found.append(getattr(sys.modules.get("litellm.utils"), "callback_list", None))
    return [x for x in found if isinstance(x, list)]


def isolate(logger: Any, others: list[Any]) -> None:
    """Take every logger out of litellm's lists, register ``logger`` alone, and check it is alone."""
    for other in [*others, logger]:
        if other is not None:
            litellm.logging_callback_manager.remove_callback_from_all_lists(other, require_self=False)
    for found in _lists():
        found[:] = [cb for cb in found if not isinstance(cb, CustomLogger)]
    litellm.callbacks = [logger]
    for found in _lists():
        strangers = [cb for cb in found if isinstance(cb, CustomLogger) and cb is not logger]
        if strangers:
            raise RuntimeError(f"another logger is still registered: {strangers}")


def _one_call(side: Side, logger: Any) -> None:
    response = litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
    side.land(logger, response._hidden_params["litellm_call_id"])


def run_round(side: Side, others: list[Side], calls: int, threads: int = 1) -> float:
    """Run ``calls`` mock completions with ``side``'s logger alone; return seconds per call (wall / calls)."""
    logger = side.make()
    try:
        isolate(logger, [o.last for o in others])
        with side.context():
            for _ in range(WARMUP):
                _one_call(side, logger)
            before = side.count(logger)
            watched = [(o, o.last, o.count(o.last)) for o in others if o.last is not None]
            per_thread = calls // threads

            def work() -> None:
                with side.context():
                    for _ in range(per_thread):
                        _one_call(side, logger)

            start = time.perf_counter()
            if threads == 1:
                work()
            else:
                pool = [threading.Thread(target=work) for _ in range(threads)]
                for t in pool:
                    t.start()
                for t in pool:
                    t.join()
            elapsed = time.perf_counter() - start
            done = side.count(logger) - before
        if done != per_thread * threads:
            raise RuntimeError(f"{side.name}: {done} events landed for {per_thread * threads} calls")
        for other, other_logger, count in watched:
            if other.count(other_logger) != count:
                raise RuntimeError(f"{other.name}'s logger counted events during {side.name}'s round")
    finally:
        side.close(logger)
        side.last = logger
    return elapsed / (per_thread * threads)


@dataclass
class Result:
    name: str
    per_call: list[float]  # seconds per call, one a round
    ratios: list[float]  # to the baseline's time in the same round

    def line(self) -> str:
        lo, med, hi = min(self.ratios), statistics.median(self.ratios), max(self.ratios)
        us = statistics.median(self.per_call) * 1e6
        return f"{self.name:<26} {us:8.1f} us/call  ratio {med:.3f} (rounds {lo:.3f}-{hi:.3f})"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "per_call": self.per_call, "ratios": self.ratios}


def interleave(sides: list[Side], calls: int, rounds: int, threads: int = 1) -> list[Result]:
    """Run every side once a round, the first side (the baseline) first, the others in a rotating order."""
    times: dict[str, list[float]] = {s.name: [] for s in sides}
    ratios: dict[str, list[float]] = {s.name: [] for s in sides}
    base, rest = sides[0], sides[1:]
    for r in range(rounds):
        order = rest[r % len(rest) :] + rest[: r % len(rest)] if rest else []
        # The baseline runs before and after the others: each side's ratio is to the mean of the two.
        first = run_round(base, sides[1:], calls // rounds, threads)
        mine = {s.name: run_round(s, [o for o in sides if o is not s], calls // rounds, threads) for s in order}
        second = run_round(base, sides[1:], calls // rounds, threads)
        baseline = (first + second) / 2
        times[base.name].append(baseline)
        ratios[base.name].append(1.0)
        for name, t in mine.items():
            times[name].append(t)
            ratios[name].append(t / baseline)
    return [Result(s.name, times[s.name], ratios[s.name]) for s in sides]


def warm_up(calls: int = 200) -> None:
    noop = NoOp()
    isolate(noop, [])
    for _ in range(calls):
        response = litellm.completion(model="gpt-4o", messages=MESSAGES, mock_response="ok")
        noop.wait(response._hidden_params["litellm_call_id"])
    litellm.logging_callback_manager.remove_callback_from_all_lists(noop, require_self=False)
    litellm.callbacks = []


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def llm_tokencost_side() -> Side:
    """The ``llm-tokencost`` package's CostTracker, noting each event landed after its own callback ran."""
    from tokencost import CostTracker as Theirs  # the other package's: run this from its own environment

    class Tracked(Theirs, Landing):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            Theirs.__init__(self, print_summary=False)
            Landing.__init__(self)

        def log_success_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]
            super().log_success_event(kwargs, response_obj, start_time, end_time)
            self.landed_event(kwargs)

    return Side(
        "llm-tokencost 0.7.0",
        Tracked,
        lambda logger, call_id: logger.wait(call_id),
        lambda logger: int(logger.request_count),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="one side against the no-op logger, as JSON")
    parser.add_argument("--side", choices=["llm-tokencost"], required=True)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with _quiet():
        warm_up()
        results = interleave([noop_side(), llm_tokencost_side()], args.calls, args.rounds, args.threads)
    print(json.dumps([r.as_dict() for r in results]))


if __name__ == "__main__":
    main()
