"""The dashboard over HTTP, on a ledger of known spend at a known time (the app's ``clock``): the view's range and
filters come from the URL and survive the refresh, bars lead to their calls, costs keep every digit, and each
budget says when it runs out at the average daily spend of its window so far."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the [server] extra is not installed")

from fastapi.testclient import TestClient

from tokencost import Budget, CostTracker, register_price
from tokencost.forecast import forecast
from tokencost.server import create_app
from tokencost.server.dashboard import collect
from tokencost.server.view import read_view
from tokencost.stores import store_from_url
from tokencost.where import Where

UTC = dt.timezone.utc
FLAT = "dashboard-flat-test"  # $1 per input token, $0.25 per output token: round spend


def ts(*args: int) -> float:
    return dt.datetime(*args, tzinfo=UTC).timestamp()


NOW = ts(2026, 11, 10, 12)
# (time, model, prompt, completion, metadata): $4.75 of FLAT in November, $0.0139875 of gpt-4o in October.
CALLS = [
    (ts(2026, 10, 30, 9), "gpt-4o", 1535, 1015, {"user": "carol", "endpoint": "/chat", "tags": ["batch"]}),
    (ts(2026, 11, 1, 10), FLAT, 2, 1, {"user": "alice", "endpoint": "/chat", "tags": ["batch"]}),  # $2.25
    (ts(2026, 11, 5, 10), FLAT, 1, 0, {"user": "bob", "endpoint": "/search"}),  # $1.00
    (ts(2026, 11, 9, 10), FLAT, 1, 2, {"user": "alice", "tags": ["eu"], "team": "x"}),  # $1.50
]
BUDGETS = [
    Budget(limit_usd=10, window="month"),
    Budget(limit_usd=100, window="month", per="user"),
    Budget(limit_usd=20),
]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite ledger holding ``CALLS``, its trackers' ``BUDGETS`` saved with it."""
    register_price(FLAT, input_per_mtok=1_000_000, output_per_mtok=250_000)
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'costs.db'}"
    now = [CALLS[0][0]]
    tracker = CostTracker(store=url, print_summary=False, linkup_api_key=False, budgets=BUDGETS, clock=lambda: now[0])
    for when, model, prompt, completion, meta in CALLS:
        now[0] = when
        tracker.track(model=model, prompt_tokens=prompt, completion_tokens=completion, metadata=meta)
    tracker.flush()
    tracker.close()
    return url


@pytest.fixture
def client(ledger: str) -> Iterator[TestClient]:
    with TestClient(create_app(ledger, clock=lambda: NOW)) as test_client:
        yield test_client


def spend(page: str) -> str:
    """The Spend card's value."""
    found = re.search(r'<div class="k">Spend</div><div class="v">([^<]+)</div>', page)
    assert found is not None, page[:500]
    return found.group(1)


def section(page: str, name: str) -> str:
    """The HTML of one dashboard section."""
    found = re.search(rf'<section class="card[^"]*" id="{name}">(.*?)</section>', page, re.S)
    assert found is not None, name
    return found.group(1)


def links(fragment: str) -> list[str]:
    """The drill-down links of a piece of the page, unescaped."""
    return [html.unescape(href) for href in re.findall(r"<a [^>]*href=\"([^\"]+)\"", fragment)]


def calls_rows(page: str) -> list[list[str]]:
    """The cells of each row of a calls table."""
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.S)
    if body is None:
        return []
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1))
    ]


# -- filters ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "shown"),
    [
        ({}, "$4.7639875"),  # the last 14 days: everything
        ({"model": FLAT}, "$4.75"),
        ({"model": "gpt-4o"}, "$0.0139875"),
        ({"user": "alice"}, "$3.75"),
        ({"user": "(none)"}, "$0.00"),
        ({"tag": "batch"}, "$2.2639875"),
        ({"where": "endpoint=/search"}, "$1.00"),
        ({"where": "team=x"}, "$1.50"),
        ({"tag": "batch", "user": "alice"}, "$2.25"),
        ({"since": "2026-11-05", "until": "2026-11-09"}, "$2.50"),  # a date alone as until: through its end
        ({"since": "2026-11-05", "until": "2026-11-08"}, "$1.00"),
        ({"since": "2d"}, "$1.50"),  # relative to the server's clock: from 2026-11-08 12:00
        ({"since": "yesterday"}, "$1.50"),
        ({"days": 3}, "$1.50"),  # 2026-11-08 to today
        ({"days": 10}, "$4.75"),
        ({"since": "2026-11-01", "tag": "batch"}, "$2.25"),
    ],
)
def test_filters_in_the_url_select_the_calls(client: TestClient, params: dict[str, str], shown: str) -> None:
    """Every filter is a query parameter: the page and the fragment it refreshes show the same view."""
    page = client.get("/", params=params)
    assert page.status_code == 200
    assert spend(page.text) == shown
    src = html.unescape(re.search(r'data-src="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
    fragment = client.get("/" + src)
    assert fragment.status_code == 200
    assert spend(fragment.text) == shown


def test_the_refresh_asks_for_the_same_view(client: TestClient) -> None:
    """The fragment URL the page re-fetches carries every parameter of the view; the form shows them."""
    page = client.get(
        "/", params={"since": "7d", "model": FLAT, "user": "alice", "where": ["team=x"], "refresh": 9}
    ).text
    src = html.unescape(re.search(r'data-src="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    assert src == f"dashboard/fragment?since=7d&model={FLAT}&user=alice&where=team%3Dx"
    assert 'data-refresh="9"' in page
    assert 'name="since" value="7d"' in page
    assert f'name="model" value="{FLAT}"' in page
    assert 'name="where" value="team=x"' in page
    assert '<input type="hidden" name="refresh" value="9">' in page
    # A chip per filter removes it and keeps the rest.
    chips = links(re.search(r'<div class="chips">(.*?)</div>', page).group(1))  # type: ignore[union-attr]
    assert "./?since=7d&user=alice&where=team%3Dx" in chips
    assert f"./?since=7d&model={FLAT}&where=team%3Dx" in chips
    assert f"./?since=7d&model={FLAT}&user=alice" in chips
    # The model, user and tag fields suggest the values of the view.
    assert f'<datalist id="models"><option value="{FLAT}"></datalist>' in page


def test_the_range_and_filters_are_said(client: TestClient) -> None:
    page = client.get("/", params={"since": "2026-11-05", "until": "2026-11-09", "tag": "eu"}).text
    assert "from 2026-11-05 until 2026-11-09 · tag=eu, UTC" in section(page, "daily")
    assert len(re.findall(r'<text class="axis day', section(page, "daily"))) == 5  # one label per day shown
    assert "last 14 days" in section(client.get("/").text, "daily")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "bogus"}, "since: cannot read"),
        ({"until": "soon"}, "until: cannot read"),
        ({"since": "2026-11-09", "until": "2026-11-01"}, "must be later than since"),
        ({"where": "team"}, "where: a filter is key=value"),
        ({"where": "day=2026-11-01"}, "select dates with since/until"),
        ({"model": FLAT, "where": f"model={FLAT}"}, "given twice"),
    ],
)
def test_a_view_that_cannot_be_read_says_why(client: TestClient, params: dict[str, str], message: str) -> None:
    """A bad date or filter gets 422 and a message naming the parameter, on each dashboard route."""
    for path in ("/", "/dashboard/fragment", "/calls"):
        response = client.get(path, params=params)
        assert response.status_code == 422, path
        assert message in html.unescape(response.text), path


def test_summary_takes_the_same_filters(client: TestClient) -> None:
    """GET /summary?tag=... groups only the calls the filters match (the dashboard's own grouping)."""
    summary = client.get("/summary", params={"by": "user", "tag": "batch"}).json()
    assert {g["key"]: g["cost"] for g in summary["groups"]} == {"alice": "2.25", "carol": "0.0139875"}
    assert summary["cost"] == "2.2639875"
    assert client.get("/summary", params={"where": "team=x"}).json()["cost"] == "1.50"
    assert client.get("/summary", params={"since": "2d"}).json()["cost"] == "1.50"  # on the server's clock
    bad = client.get("/summary", params={"where": "nokey"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "where"]


# -- drill-down ---------------------------------------------------------------------------------------------------
def test_a_day_bar_leads_to_that_days_calls_of_its_model(client: TestClient) -> None:
    daily = section(client.get("/").text, "daily")
    targets = set(links(daily))
    assert f"calls?since=2026-11-05&until=2026-11-05&model={FLAT}" in targets  # the stack segment
    assert "calls?since=2026-11-05&until=2026-11-05" in targets  # the day's label
    rows = calls_rows(client.get(f"/calls?since=2026-11-05&until=2026-11-05&model={FLAT}").text)
    assert [(row[0], row[1], row[4]) for row in rows] == [("2026-11-05 10:00:00", FLAT, "bob")]
    assert len(calls_rows(client.get("/calls?since=2026-10-30&until=2026-10-30").text)) == 1


@pytest.mark.parametrize(
    ("chart", "target", "count"),
    [
        ("by-model", f"calls?model={FLAT}", 3),
        ("by-model", "calls?model=gpt-4o", 1),
        ("by-user", "calls?user=alice", 2),
        ("by-tag", "calls?tag=batch", 2),
        ("by-tag", "calls?tag=%28none%29", 1),
        ("by-endpoint", "calls?where=endpoint%3D%2Fsearch", 1),
        ("by-endpoint", "calls?where=endpoint%3D%28none%29", 1),
    ],
)
def test_a_bar_leads_to_its_calls(client: TestClient, chart: str, target: str, count: int) -> None:
    bars = links(section(client.get("/").text, chart))
    assert target in bars
    page = client.get("/" + target)
    assert page.status_code == 200
    assert len(calls_rows(page.text)) == count
    assert f"All {count} calls of this view." in page.text


def test_drilling_down_keeps_the_view(client: TestClient) -> None:
    """From a filtered view, a bar narrows it: the range and filters stay, the bar's own is added."""
    page = client.get("/", params={"since": "2026-11-01", "tag": "batch"}).text
    assert f"calls?since=2026-11-01&model={FLAT}&tag=batch" in links(section(page, "by-model"))
    assert "calls?since=2026-11-01&user=alice&tag=batch" in links(section(page, "by-user"))
    calls = client.get("/calls", params={"since": "2026-11-01", "tag": "batch", "user": "alice"}).text
    assert [row[4] for row in calls_rows(calls)] == ["alice"]
    assert 'href="./?since=2026-11-01&amp;user=alice&amp;tag=batch"' in calls  # back to the dashboard view
    assert 'href="calls?since=2026-11-01&amp;tag=batch"' in section(page, "recent")


def test_the_calls_view_is_newest_first_and_bounded(client: TestClient) -> None:
    page = client.get("/calls", params={"limit": 2}).text
    rows = calls_rows(page)
    assert [row[0] for row in rows] == ["2026-11-09 10:00:00", "2026-11-05 10:00:00"]
    assert "Showing the newest 2 of 4 calls." in page
    assert spend(page) == "$4.7639875"
    assert client.get("/calls", params={"limit": 1001}).status_code == 422


# -- precision ----------------------------------------------------------------------------------------------------
def test_costs_are_shown_to_every_digit(client: TestClient) -> None:
    """$0.0139875 is shown as such wherever it appears, never rounded to $0.01."""
    page = client.get("/").text
    assert "$0.0139875" in section(page, "by-model")
    assert "$0.0139875" in section(page, "by-user")
    assert "$0.0139875" in section(page, "recent")
    assert "$2.2639875" in section(page, "by-tag")
    assert spend(page) == "$4.7639875"
    calls = client.get("/calls", params={"model": "gpt-4o"}).text
    assert [row[-1] for row in calls_rows(calls)] == ["$0.0139875"]
    for text in (page, calls):
        assert not re.search(r"\$0\.01(?![0-9])", text)


# -- budgets and forecasts -------------------------------------------------------------------------------------
def test_each_budget_says_when_it_runs_out(client: TestClient) -> None:
    """The month's $4.75 over 9.5 days is $0.50 a day: $10 runs out 2026-11-21; $100 per user does not before the
    month ends; the $20 total, at its average since its first day (2026-10-30), runs out on the day computed."""
    budgets = section(client.get("/").text, "budgets")
    blocks = dict(re.findall(r'<span class="scope" title="([^"]+)">.*?<p class="forecast">(.*?)</p>', budgets, re.S))
    text = {scope: re.sub(r"<[^>]+>", "", value) for scope, value in blocks.items()}
    assert text["month"] == "Runs out 2026-11-21 at this rate (≈$0.50/day: the average daily spend since 2026-11-01)"
    assert text["user=alice, month"].startswith("Not at this rate (the window resets 2026-12-01)")
    assert "≈$0.395/day" in text["user=alice, month"]  # $3.75 over 9.5 days
    assert text["user=bob, month"].startswith("Not at this rate")
    spent = Decimal("4.7639875")
    rate = spent / Decimal("11.5")  # 2026-10-30 00:00 to 2026-11-10 12:00
    expected = dt.datetime.fromtimestamp(NOW + float((20 - spent) / rate * 86_400), UTC).date()
    assert text["total"].startswith(f"Runs out {expected.isoformat()} at this rate")
    assert "since 2026-10-30" in text["total"]
    assert budgets.count('<polyline class="spent"') == 4
    assert budgets.count('class="mark gauge"') == 4
    # The filters narrow the spend shown, not the budgets: the same forecasts under a filter.
    assert "Runs out 2026-11-21" in section(client.get("/", params={"user": "bob"}).text, "budgets")


def test_the_cumulative_line_climbs_to_what_the_window_spent(ledger: str) -> None:
    """collect() gives each budget its spend day by day from the window's start: it ends at the spend so far."""
    store = store_from_url(ledger)
    try:
        view = read_view(since=None, until=None, days=14, where=Where(), now=NOW)
        data = collect(store, "default", view)
    finally:
        store.close()
    month = next(b for b in data.budgets if b.line.label == "month")
    assert month.cumulative[0] == (ts(2026, 11, 1), Decimal(0))
    assert month.cumulative[-1] == (NOW, Decimal("4.75"))
    values = [v for _, v in month.cumulative]
    assert values == sorted(values)
    assert Decimal("2.25") in values
    assert Decimal("3.25") in values
    november = forecast(Decimal("4.75"), Decimal(10), since=ts(2026, 11, 1), now=NOW, resets=ts(2026, 12, 1))
    assert month.forecast == november
    alice = next(b for b in data.budgets if b.line.label == "user=alice, month")
    assert alice.cumulative[-1] == (NOW, Decimal("3.75"))
    total = next(b for b in data.budgets if b.line.label == "total")
    assert total.cumulative[0] == (ts(2026, 10, 30), Decimal(0))
    assert total.cumulative[-1] == (NOW, Decimal("4.7639875"))


def test_a_ledger_without_spend_in_the_window(tmp_path: Path) -> None:
    """A budget with nothing spent this month says it does not run out at this rate; no error, no chart glitch."""
    url = f"sqlite:///{tmp_path / 'quiet.db'}"
    tracker = CostTracker(store=url, print_summary=False, budgets=[Budget(limit_usd=5, window="month")])
    tracker.close()
    with TestClient(create_app(url, clock=lambda: NOW)) as c:
        page = c.get("/")
        assert page.status_code == 200
        budgets = section(page.text, "budgets")
        assert "Not at this rate (the window resets 2026-12-01)" in budgets
        assert "No priced calls in this range." in section(page.text, "daily")
