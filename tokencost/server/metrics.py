"""``GET /metrics``: the ledger in Prometheus' text format, through ``prometheus-client`` (extra ``[server]``).

Each scrape reads the ledger the way ``GET /summary`` and ``GET /budgets`` do (``reports.build_summary`` by
model, user and tag; its budget lines are ``/budgets``') and builds a collector of its own over what it read, in
a registry of its own: nothing is kept in ``prometheus_client``'s process-wide registry, so two apps (or two
ledgers) never share or leak series. ``prometheus_client`` is imported on the first scrape.

Every series carries the ``ledger`` label. Money is USD (a float, as Prometheus holds every value; the text
format writes the shortest decimal that reads back as the same float). Token counts are split by ``kind``
into buckets that add up: ``input`` (uncached), ``cache_read``, ``cache_write``, ``output`` (without
reasoning), ``reasoning``; a prompt is input + cache_read + cache_write, a completion output + reasoning.

* ``tokencost_spend_usd_total``, ``tokencost_calls_total``, ``tokencost_unpriced_calls_total``,
  ``tokencost_saved_by_cache_usd_total``, ``tokencost_cache_hits_total``, ``tokencost_tokens_total{kind}``:
  the ledger's totals (counters: they only grow, until the ledger is reset).
* ``tokencost_{model,user,tag}_spend_usd_total``, ``..._calls_total``, ``..._unpriced_calls_total``,
  ``..._tokens_total{kind}``: the same per model, per user and per tag (label ``model``, ``user`` or ``tag``;
  calls without a user or tag are under ``(none)``; a call with two tags counts under each).
* ``tokencost_budget_{spent,reserved}_usd``, ``tokencost_budget_{limit,remaining}_usd`` (money limits),
  ``tokencost_budget_tokens``, ``tokencost_budget_max_tokens`` (token limits), ``tokencost_budget_exceeded``
  (0 or 1): gauges per budget scope in its current window (labels ``scope``, ``window`` and ``budget``, the
  budget's own limits, which tell apart two budgets over one scope).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tokencost.budget_line import BudgetLine
from tokencost.money import usd_text
from tokencost.reports import Summary, SummaryRow, build_summary
from tokencost.stores import Store

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["DIMENSIONS", "TOKEN_KINDS", "LedgerMetrics", "metrics_text", "read_metrics"]

# The keys spend is broken down by, each its own metric family (one call is under one model, but perhaps
# several tags: families of different keys must not be summed together).
DIMENSIONS = ("model", "user", "tag")
TOKEN_KINDS = ("input", "cache_read", "cache_write", "output", "reasoning")


@dataclass(frozen=True)
class LedgerMetrics:
    """What one scrape read: the ledger's summary by model (totals and budgets) and its rows by user and tag."""

    ledger: str
    summary: Summary
    rows: dict[str, tuple[SummaryRow, ...]]


def read_metrics(store: Store, ledger: str, now: float | None = None) -> LedgerMetrics:
    """Read the ledger as ``/summary?by=model|user|tag`` and ``/budgets`` do (a failure is the store's)."""
    now = time.time() if now is None else now
    by_model = build_summary(store, ledger, by="model", now=now)
    rows = {"model": by_model.rows}
    for key in DIMENSIONS[1:]:
        # budgets=(): the budget lines were read once, with the model summary.
        rows[key] = build_summary(store, ledger, by=key, budgets=(), now=now).rows
    return LedgerMetrics(ledger, by_model, rows)


def _usd(amount: Decimal) -> float:
    return float(amount)


def _row_tokens(row: SummaryRow) -> dict[str, int]:
    return {
        "input": row.input_tokens,
        "cache_read": row.cache_read_tokens,
        "cache_write": row.cache_write_tokens,
        "output": row.output_tokens,
        "reasoning": row.reasoning_tokens,
    }


def budget_label(line: BudgetLine) -> str:
    """The budget's own limits as one label value: ``limit_usd=5.00``, ``max_tokens=1000000,strict``."""
    parts = []
    if line.limit_usd is not None:
        parts.append(f"limit_usd={usd_text(line.limit_usd)}")
    if line.max_tokens is not None:
        parts.append(f"max_tokens={line.max_tokens}")
    if line.strict:
        parts.append("strict")
    return ",".join(parts) or "none"


class _Collector:
    """The metric families of one scrape (``prometheus_client`` calls ``collect()``)."""

    def __init__(self, data: LedgerMetrics) -> None:
        self.data = data

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily

        data, summary = self.data, self.data.summary
        ledger = [data.ledger]

        def counter(name: str, doc: str, value: float) -> Metric:
            family = CounterMetricFamily(name, doc, labels=["ledger"])
            family.add_metric(ledger, value)
            return family

        yield counter("tokencost_spend_usd", "USD spent by the ledger's priced calls.", _usd(summary.total_usd))
        yield counter("tokencost_calls", "Calls recorded (priced or not).", summary.requests)
        yield counter("tokencost_unpriced_calls", "Calls recorded without a known cost.", summary.unpriced)
        yield counter(
            "tokencost_saved_by_cache_usd",
            "USD saved by prompt-cache reads and response-cache hits against full price.",
            _usd(summary.saved_by_cache_usd),
        )
        yield counter("tokencost_cache_hits", "Calls answered from a response cache.", summary.cache_hits)
        tokens = CounterMetricFamily(
            "tokencost_tokens", "Tokens of the ledger's calls, by billing bucket.", labels=["ledger", "kind"]
        )
        for kind in TOKEN_KINDS:
            tokens.add_metric([data.ledger, kind], summary.tokens[kind])
        yield tokens
        for key in DIMENSIONS:
            yield from self._per(key, data.rows[key])
        yield from self._budgets(summary.budgets)

    def _per(self, key: str, rows: Sequence[SummaryRow]) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily

        labels = ["ledger", key]
        spend = CounterMetricFamily(f"tokencost_{key}_spend_usd", f"USD spent per {key}.", labels=labels)
        calls = CounterMetricFamily(f"tokencost_{key}_calls", f"Calls recorded per {key}.", labels=labels)
        unpriced = CounterMetricFamily(
            f"tokencost_{key}_unpriced_calls", f"Calls without a known cost per {key}.", labels=labels
        )
        tokens = CounterMetricFamily(
            f"tokencost_{key}_tokens", f"Tokens per {key}, by billing bucket.", labels=[*labels, "kind"]
        )
        for row in rows:
            values = [self.data.ledger, row.key]
            spend.add_metric(values, _usd(row.cost_usd))
            calls.add_metric(values, row.requests)
            unpriced.add_metric(values, row.unpriced)
            for kind, count in _row_tokens(row).items():
                tokens.add_metric([*values, kind], count)
        yield from (spend, calls, unpriced, tokens)

    def _budgets(self, lines: Sequence[BudgetLine]) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["ledger", "scope", "window", "budget"]

        def gauge(name: str, doc: str) -> Any:
            return GaugeMetricFamily(name, doc, labels=labels)

        spent = gauge("tokencost_budget_spent_usd", "USD spent in the budget scope's current window.")
        reserved = gauge("tokencost_budget_reserved_usd", "USD held by strict reservations of calls in flight.")
        limit = gauge("tokencost_budget_limit_usd", "The budget's USD limit per window.")
        remaining = gauge("tokencost_budget_remaining_usd", "USD left in the current window (never negative).")
        used = gauge("tokencost_budget_tokens", "Tokens used in the budget scope's current window.")
        max_tokens = gauge("tokencost_budget_max_tokens", "The budget's token limit per window.")
        exceeded = gauge("tokencost_budget_exceeded", "1 when the scope is spent (money or tokens), else 0.")
        seen: set[tuple[str, ...]] = set()
        for line in lines:
            values = [self.data.ledger, line.label, line.window, budget_label(line)]
            if tuple(values) in seen:
                continue  # two identical budgets: one counter, one series
            seen.add(tuple(values))
            spent.add_metric(values, _usd(line.spent_usd))
            reserved.add_metric(values, _usd(line.reserved_usd))
            used.add_metric(values, line.tokens)
            exceeded.add_metric(values, 1 if line.exceeded else 0)
            if line.limit_usd is not None:
                limit.add_metric(values, _usd(line.limit_usd))
            if line.remaining_usd is not None:
                remaining.add_metric(values, _usd(line.remaining_usd))
            if line.max_tokens is not None:
                max_tokens.add_metric(values, line.max_tokens)
        yield from (spent, reserved, limit, remaining, used, max_tokens, exceeded)


def metrics_text(data: LedgerMetrics) -> tuple[bytes, str]:
    """Return the exposition of ``data`` and its content type (the text format, version 0.0.4).

    Raises:
        MissingExtraError: when ``prometheus-client`` is not installed.
    """
    try:
        from prometheus_client import exposition
        from prometheus_client.registry import CollectorRegistry
    except ImportError as exc:
        from tokencost.errors import MissingExtraError

        raise MissingExtraError("server", "prometheus-client") from exc
    registry = CollectorRegistry(auto_describe=False)  # this scrape's alone
    registry.register(_Collector(data))
    content_type = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", exposition.CONTENT_TYPE_LATEST)
    return exposition.generate_latest(registry), str(content_type)
