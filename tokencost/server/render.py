"""The dashboard's HTML: the page and the fragment it refreshes, filled from the templates shipped as package data.

``templates/*.html`` are ``string.Template`` files; ``static/dashboard.css`` and ``static/dashboard.js`` are
inlined into the page (one request, nothing else to serve). The Content-Security-Policy (``security_headers``)
lets only the page's own script run, by a nonce drawn per page, and allows inline styles (the legend swatches).
Every text the ledger holds is escaped before it reaches a template (``fill`` escapes what it is given as text).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from importlib import resources
from string import Template

from tokencost.events import Event
from tokencost.money import format_usd, from_units
from tokencost.server.charts import PALETTE, escape, short, svg_bars, svg_daily, svg_gauges
from tokencost.server.dashboard import DashboardData

__all__ = ["asset", "down_fragment", "fill", "render_fragment", "render_page", "security_headers"]


@functools.cache
def asset(path: str) -> str:
    """Return a file of the package's ``templates/`` or ``static/`` (read once), without its final newline."""
    text = resources.files("tokencost.server").joinpath(path).read_text(encoding="utf-8")
    return text[:-1] if text.endswith("\n") else text


@functools.cache
def _template(name: str) -> Template:
    return Template(asset(f"templates/{name}"))


def fill(template: str, markup: Mapping[str, str] | None = None, /, **text: object) -> str:
    """Fill ``templates/<template>``: ``text`` values are escaped, ``markup`` values (already-built HTML) are not."""
    values = {key: escape(value) for key, value in text.items()}
    values.update(markup or {})
    return _template(template).substitute(values)


def _recent_table(events: Sequence[Event]) -> str:
    if not events:
        return '<p class="empty">No calls recorded yet.</p>'
    rows = []
    for event in events:
        meta = event.metadata
        rows.append(
            fill(
                "recent_row.html",
                when=dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc).strftime("%m-%d %H:%M:%S"),
                model=event.model,
                model_short=short(event.model, 40),
                provider=event.provider,
                endpoint=short(str(meta.get("endpoint", "")), 32),
                user=short(str(meta.get("user", "")), 24),
                prompt_tokens=f"{event.usage.prompt_tokens:,}",
                completion_tokens=f"{event.usage.completion_tokens:,}",
                cost="unpriced" if event.cost is None else format_usd(event.cost),
            )
        )
    return fill("recent.html", {"rows": "".join(rows)})


def render_fragment(data: DashboardData) -> str:
    """Return the dashboard's charts as HTML with inline SVG (every text escaped)."""
    priced = (g for g in data.by_model if g.cost_units > 0)
    colors = {g.key: color for g, color in zip(priced, PALETTE, strict=False)}
    totals = data.totals
    stamp = dt.datetime.fromtimestamp(data.now, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    cards = (
        ("Total spend", format_usd(from_units(totals.cost_units))),
        ("Calls", f"{totals.requests:,}"),
        ("Unpriced calls", f"{totals.unpriced:,}"),
        ("Saved by cache", format_usd(from_units(totals.saved_units))),
    )
    markup = {
        "stats": "".join(fill("stat.html", name=k, value=v) for k, v in cards),
        "daily": svg_daily(data, colors),
        "by_model": svg_bars(data.by_model, colors, "Spend by model"),
        "by_endpoint": svg_bars(data.by_endpoint, None, "Spend by endpoint"),
        "budgets": svg_gauges(data.budgets),
        "recent": _recent_table(data.recent),
    }
    return fill("fragment.html", markup, requests=totals.requests, stamp=stamp, days=len(data.days))


def render_page(ledger: str, fragment: str, *, days: int, refresh: int, nonce: str) -> str:
    """Return the dashboard page around a first ``fragment`` (so it shows data even without JavaScript)."""
    script = asset("static/dashboard.js")
    if "</script" in script.lower():  # pragma: no cover - a packaging mistake, not a runtime condition
        raise RuntimeError("static/dashboard.js must not contain </script: it is inlined into the page")
    return fill(
        "dashboard.html",
        {"fragment": fragment, "style": asset("static/dashboard.css") + "\n", "script": script + "\n"},
        ledger=ledger,
        refresh=refresh,
        src=f"dashboard/fragment?days={days}",
        nonce=nonce,
    )


def down_fragment() -> str:
    """Return what the dashboard shows while the store is unreachable."""
    return asset("templates/down.html")


def security_headers(nonce: str | None) -> dict[str, str]:
    """Return the headers of a dashboard response: only the script carrying ``nonce`` may run (none without)."""
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src {script}; style-src 'unsafe-inline'; connect-src 'self'; "
            "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
