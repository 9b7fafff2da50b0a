"""The dashboard's HTML: the page, the fragment it refreshes and the calls view, filled from the templates shipped
as package data.

``templates/*.html`` are ``string.Template`` files; ``static/dashboard.css`` and ``static/dashboard.js`` are
inlined into the page (one request, nothing else to serve). The Content-Security-Policy (``security_headers``)
lets only the page's own script run, by a nonce drawn per page, allows inline styles (the legend swatches) and
forms sent to this server only (the filters). Every text the ledger holds is escaped before it reaches a
template (``fill`` escapes what it is given as text). Money is ``format_usd``'s: every digit, never rounded.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from string import Template

from tokencost.events import Event
from tokencost.money import format_usd
from tokencost.reports import Summary
from tokencost.server.budget_charts import budget_blocks
from tokencost.server.charts import PALETTE, escape, short, svg_bars, svg_daily
from tokencost.server.dashboard import DashboardData
from tokencost.server.view import DEFAULT_DAYS, NAMED_FILTERS, View
from tokencost.stores.base import NONE_KEY

__all__ = [
    "asset",
    "down_fragment",
    "error_fragment",
    "fill",
    "render_calls",
    "render_filters",
    "render_fragment",
    "render_page",
    "security_headers",
]


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


def _tags(event: Event) -> str:
    tags = event.metadata.get("tags")
    return ", ".join(str(t) for t in tags) if isinstance(tags, (list, tuple)) else ""


def _calls_table(events: Sequence[Event], *, stamp: str = "%m-%d %H:%M:%S") -> str:
    """The calls as a table that scrolls sideways in its card, the cost column kept in view."""
    if not events:
        return '<p class="empty">No calls recorded yet.</p>'
    rows = []
    for event in events:
        meta = event.metadata
        rows.append(
            fill(
                "recent_row.html",
                when=dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc).strftime(stamp),
                model=event.model,
                model_short=short(event.model, 40),
                provider=event.provider,
                endpoint=short(str(meta.get("endpoint", "")), 32),
                user=short(str(meta.get("user", "")), 24),
                tags=short(_tags(event), 32),
                prompt_tokens=f"{event.usage.prompt_tokens:,}",
                completion_tokens=f"{event.usage.completion_tokens:,}",
                cost="unpriced" if event.cost is None else format_usd(event.cost),
            )
        )
    return fill("recent.html", {"rows": "".join(rows)})


def _stats(summary: Summary) -> str:
    cards = (
        ("Spend", format_usd(summary.total_usd)),
        ("Calls", f"{summary.requests:,}"),
        ("Unpriced calls", f"{summary.unpriced:,}"),
        ("Saved by cache", format_usd(summary.saved_by_cache_usd)),
    )
    return "".join(fill("stat.html", name=k, value=v) for k, v in cards)


def _range_text(view: View) -> str:
    return view.describe() + (f" · {view.where}" if view.where else "")


def _drill(view: View, key: str) -> Callable[[str], str]:
    """Where a bar of the spend by ``key`` leads: the calls of this view with ``key`` set to the bar's value."""
    return lambda value: view.narrowed(**{key: value}).link("calls")


def render_fragment(data: DashboardData) -> str:
    """Return the dashboard's charts as HTML with inline SVG (every text escaped)."""
    view = data.view
    priced = (row for row in data.summary.rows if row.cost_usd > 0)
    colors = {row.key: color for row, color in zip(priced, PALETTE, strict=False)}
    stamp = dt.datetime.fromtimestamp(data.now, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    bars = {
        key: svg_bars(data.breakdowns[key], colors if key == "model" else None, f"Spend by {key}", _drill(view, key))
        for key in data.breakdowns
    }

    def day_link(day: str, model: str | None) -> str:
        return view.narrowed(day, **({} if model is None else {"model": model})).link("calls")

    markup = {
        "stats": _stats(data.summary),
        "daily": svg_daily(data.days, data.per_day, colors, day_link),
        **{f"by_{key}": chart for key, chart in bars.items()},
        "budgets": budget_blocks(data.budgets),
        "recent": _calls_table(data.recent),
    }
    return fill(
        "fragment.html",
        markup,
        requests=data.summary.requests,
        stamp=stamp,
        range=_range_text(view),
        calls=view.link("calls"),
    )


def render_filters(view: View, action: str, *, options: Mapping[str, Sequence[str]] | None = None, **keep: str) -> str:
    """The filter form (sent to ``action`` by GET, so the URL holds the view) and a chip per filter that removes
    it; ``options`` fill the suggestions of the model, user and tag fields; ``keep`` are kept as they are."""
    others = [(k, v) for k, v in view.where if k not in NAMED_FILTERS]
    wheres = "".join(
        f'<label>where <input name="where" value="{escape(f"{k}={v}")}" size="16"></label>' for k, v in others
    )
    wheres += '<label>where <input name="where" value="" placeholder="endpoint=/chat" size="16"></label>'
    hidden = dict(keep)
    if view.since is None and view.days != DEFAULT_DAYS:
        hidden["days"] = str(view.days)
    hidden_html = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in hidden.items() if v
    )
    lists = "".join(
        f'<datalist id="{escape(name)}">'
        + "".join(f'<option value="{escape(value)}">' for value in values if value != NONE_KEY)
        + "</datalist>"
        for name, values in (options or {}).items()
    )
    chips = "".join(
        f'<a class="chip" href="{escape(view.without(k).link(action))}" title="remove this filter">'
        f"{escape(short(f'{k}={v}', 48))} ×</a>"
        for k, v in view.where
    )
    return fill(
        "filters.html",
        {
            "where": wheres,
            "hidden": hidden_html,
            "datalists": lists,
            "chips": f'<div class="chips">{chips}</div>' if chips else "",
        },
        action=action,
        since=view.since or "",
        until=view.until or "",
        **{name: view.where.get(name) or "" for name in NAMED_FILTERS},
    )


def render_page(
    ledger: str,
    fragment: str,
    *,
    view: View,
    refresh: int,
    nonce: str,
    options: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Return the dashboard page around a first ``fragment`` (so it shows data even without JavaScript); its
    refreshes ask for the same view."""
    script = asset("static/dashboard.js")
    if "</script" in script.lower():  # pragma: no cover - a packaging mistake, not a runtime condition
        raise RuntimeError("static/dashboard.js must not contain </script: it is inlined into the page")
    return fill(
        "dashboard.html",
        {
            "fragment": fragment,
            "filters": render_filters(view, "./", options=options, refresh=str(refresh) if refresh != 5 else ""),
            "style": asset("static/dashboard.css") + "\n",
            "script": script + "\n",
        },
        ledger=ledger,
        refresh=refresh,
        src=view.link("dashboard/fragment"),
        nonce=nonce,
    )


def render_calls(ledger: str, view: View, summary: Summary | None, events: Sequence[Event], error: str = "") -> str:
    """Return the calls view: the calls of ``view`` (newest first), with their totals (``summary``)."""
    if error or summary is None:
        body = error_fragment(error or "the store is unreachable")
    else:
        shown = f"Showing the newest {len(events):,} of {summary.requests:,} calls."
        if len(events) >= summary.requests:
            shown = f"All {summary.requests:,} calls of this view."
        body = fill(
            "calls_body.html",
            {"stats": _stats(summary), "table": _calls_table(events, stamp="%Y-%m-%d %H:%M:%S")},
            requests=summary.requests,
            range=_range_text(view),
            shown=shown,
        )
    return fill(
        "calls.html",
        {"body": body, "filters": render_filters(view, "calls"), "style": asset("static/dashboard.css") + "\n"},
        ledger=ledger,
        back=view.link("./"),
    )


def down_fragment() -> str:
    """Return what the dashboard shows while the store is unreachable."""
    return asset("templates/down.html")


def error_fragment(message: str) -> str:
    """Return what the dashboard shows for a view it cannot read (a bad date or filter), naming the parameter."""
    return fill("error.html", message=message)


def security_headers(nonce: str | None) -> dict[str, str]:
    """Return the headers of a dashboard response: only the script carrying ``nonce`` may run (none without)."""
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src {script}; style-src 'unsafe-inline'; connect-src 'self'; "
            "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
