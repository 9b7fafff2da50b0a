"""``GET /metrics``: the ledger in Prometheus' text format, over HTTP (FastAPI's TestClient), parsed back with
``prometheus_client``'s own parser and compared with the ledger's totals, ``/summary`` and ``/budgets``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the [server] extra is not installed")
pytest.importorskip("prometheus_client", reason="the [server] extra is not installed")

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tokencost import Budget, CostTracker
from tokencost.server import create_app

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TOKEN_KINDS = ("input", "cache_read", "cache_write", "output", "reasoning")


def scrape(client: TestClient, **headers: str) -> Samples:
    """GET /metrics and parse it: ``{(sample name, labels): value}`` (a duplicate series fails the test)."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset({"ledger": "default", **labels}.items()))]


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def exact(number: float) -> Decimal:
    """The decimal a scraped float was written as (the text format writes the shortest round-tripping repr)."""
    return Decimal(repr(number))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[tuple[str, CostTracker]]:
    """A SQLite ledger with budgets and calls over three models, two users, three tags, one unpriced model."""
    url = f"sqlite:///{tmp_path / 'costs.db'}"
    worker = CostTracker(
        store=url,
        budget=5,
        budgets=[
            Budget(limit_usd=1, strict=True),  # a second budget over the same scope: told apart by a label
            Budget(limit_usd="0.03", per="user", window="day"),
            Budget(max_tokens=20_000, per="tag"),
        ],
        raise_on_budget=False,
        print_summary=False,
    )
    calls: list[dict[str, Any]] = [
        {"model": "gpt-4o", "prompt_tokens": 10_000, "completion_tokens": 500, "cache_read_tokens": 8_000,
         "metadata": {"user": "alice", "tags": ["batch", "eu"]}},
        {"model": "gpt-4o", "prompt_tokens": 10_000, "completion_tokens": 500, "cache_read_tokens": 8_000,
         "metadata": {"user": "alice", "tags": ["batch"]}},
        {"model": "o3", "prompt_tokens": 2_000, "completion_tokens": 4_000, "reasoning_tokens": 3_500,
         "metadata": {"user": "bob", "tags": ["eu"]}},
        {"model": "claude-sonnet-4-5", "prompt_tokens": 10_100, "completion_tokens": 500, "provider": "anthropic",
         "cache_read_tokens": 8_000, "cache_write_tokens": 2_000, "metadata": {"user": "bob"}},
        {"model": "gpt-4o-mini", "prompt_tokens": 1_234, "completion_tokens": 77, "metadata": {"tags": ["ci"]}},
        {"model": "acme-unknown-9", "prompt_tokens": 50, "completion_tokens": 5, "metadata": {"user": "carol"}},
    ]  # fmt: skip
    for kwargs in calls:
        worker.track(**kwargs)
    assert worker.flush(30)
    yield url, worker
    worker.close()


def test_metrics_equal_the_ledger_totals(ledger: tuple[str, CostTracker]) -> None:
    """Totals, and spend, calls and tokens per model, user and tag, equal the ledger's own figures exactly."""
    url, worker = ledger
    with TestClient(create_app(url)) as client:
        samples = scrape(client)
        summaries = {key: client.get("/summary", params={"by": key}).json() for key in ("model", "user", "tag")}
    assert exact(value(samples, "tokencost_spend_usd_total")) == worker.total_cost
    assert worker.total_cost == Decimal(summaries["model"]["cost"])
    assert value(samples, "tokencost_calls_total") == worker.request_count == 6
    assert value(samples, "tokencost_unpriced_calls_total") == worker.unpriced_count == 1
    assert exact(value(samples, "tokencost_saved_by_cache_usd_total")) == worker.saved_by_cache
    assert value(samples, "tokencost_cache_hits_total") == 0
    for kind in TOKEN_KINDS:
        assert value(samples, "tokencost_tokens_total", kind=kind) == summaries["model"][f"{kind}_tokens"], kind
    assert sum(value(samples, "tokencost_tokens_total", kind=k) for k in TOKEN_KINDS) == (
        summaries["model"]["prompt_tokens"] + summaries["model"]["completion_tokens"]
    )
    for key in ("model", "user", "tag"):
        cost = {
            dict(labels)[key]: exact(v) for labels, v in series(samples, f"tokencost_{key}_spend_usd_total").items()
        }
        assert cost == worker.cost_by(key), key
        for group in summaries[key]["groups"]:
            labels = {key: group["key"]}
            assert exact(value(samples, f"tokencost_{key}_spend_usd_total", **labels)) == Decimal(group["cost"])
            assert value(samples, f"tokencost_{key}_calls_total", **labels) == group["requests"]
            assert value(samples, f"tokencost_{key}_unpriced_calls_total", **labels) == group["unpriced"]
            for kind in TOKEN_KINDS:
                got = value(samples, f"tokencost_{key}_tokens_total", **labels, kind=kind)
                assert got == group[f"{kind}_tokens"], (key, group["key"], kind)
        assert len(series(samples, f"tokencost_{key}_calls_total")) == summaries[key]["groups_total"]
    # Spot checks against figures known by hand: two gpt-4o calls at $0.02; alice and the tag "batch" are those.
    assert exact(value(samples, "tokencost_model_spend_usd_total", model="gpt-4o")) == Decimal("0.04")
    assert exact(value(samples, "tokencost_user_spend_usd_total", user="alice")) == Decimal("0.04")
    assert value(samples, "tokencost_tag_calls_total", tag="eu") == 2
    assert value(samples, "tokencost_user_calls_total", user="(none)") == 1
    assert value(samples, "tokencost_model_unpriced_calls_total", model="acme-unknown-9") == 1
    assert value(samples, "tokencost_model_tokens_total", model="o3", kind="reasoning") == 3_500


def test_budget_metrics_equal_the_budgets_route(ledger: tuple[str, CostTracker]) -> None:
    """Each budget scope's spent, reserved, limit, remaining, tokens and exceeded are what GET /budgets says."""
    url, _ = ledger
    with TestClient(create_app(url)) as client:
        samples = scrape(client)
        budgets = client.get("/budgets").json()["budgets"]
    assert len(budgets) == 8  # total twice (two budgets), alice, bob, carol, and the tags batch, eu, ci
    spent = series(samples, "tokencost_budget_spent_usd")
    assert len(spent) == len(budgets)
    for line in budgets:
        matching = [labels for labels in spent if ("scope", line["scope"]) in labels and _limits_match(labels, line)]
        assert len(matching) == 1, line
        labels = dict(matching[0])
        assert labels["window"] == line["window"]

        def of(name: str, labels: dict[str, str] = labels) -> float:
            return samples[(name, frozenset(labels.items()))]

        assert exact(of("tokencost_budget_spent_usd")) == Decimal(line["spent"])
        assert of("tokencost_budget_tokens") == line["tokens"]
        assert of("tokencost_budget_exceeded") == (1 if line["exceeded"] else 0)
        assert of("tokencost_budget_reserved_usd") == 0
        if line["limit"] is None:
            assert ("tokencost_budget_limit_usd", frozenset(labels.items())) not in samples
        else:
            assert exact(of("tokencost_budget_limit_usd")) == Decimal(line["limit"])
            assert exact(of("tokencost_budget_remaining_usd")) == Decimal(line["remaining"])
        if line["max_tokens"] is not None:
            assert of("tokencost_budget_max_tokens") == line["max_tokens"]
    alice = {
        "ledger": "default",
        "scope": "user=alice, day",
        "window": "day",
        "budget": "limit_usd=0.03",
    }
    assert samples[("tokencost_budget_exceeded", frozenset(alice.items()))] == 1  # $0.04 of $0.03
    assert samples[("tokencost_budget_remaining_usd", frozenset(alice.items()))] == 0


def _limits_match(labels: frozenset[tuple[str, str]], line: dict[str, Any]) -> bool:
    budget = dict(labels)["budget"]
    parts = set(budget.split(","))
    want = set()
    if line["limit"] is not None:
        want.add(f"limit_usd={line['limit']}")
    if line["max_tokens"] is not None:
        want.add(f"max_tokens={line['max_tokens']}")
    if line["strict"]:
        want.add("strict")
    return parts == want


def test_each_scrape_reads_the_ledger_afresh() -> None:
    """A call posted to the server shows in the next scrape; the counters grow by exactly its cost and counts."""
    with TestClient(create_app("memory://")) as client:
        empty = scrape(client)
        assert value(empty, "tokencost_spend_usd_total") == 0
        assert value(empty, "tokencost_calls_total") == 0
        assert not series(empty, "tokencost_model_calls_total")
        body = {"model": "gpt-4o", "prompt_tokens": 10_000, "completion_tokens": 500, "cache_read_tokens": 8_000}
        for _ in range(3):
            assert client.post("/track", json={**body, "user": "dana", "tags": ["x"]}).status_code == 200
        after = scrape(client)
    assert exact(value(after, "tokencost_spend_usd_total")) == Decimal("0.06")
    assert value(after, "tokencost_user_calls_total", user="dana") == 3
    assert exact(value(after, "tokencost_tag_spend_usd_total", tag="x")) == Decimal("0.06")
    assert value(after, "tokencost_tokens_total", kind="cache_read") == 24_000


def test_two_apps_keep_their_series_apart(tmp_path: Path) -> None:
    """Each app's scrape holds its own ledger only; nothing lands in prometheus_client's global registry."""
    from prometheus_client import REGISTRY

    url = f"sqlite:///{tmp_path / 'costs.db'}"
    body = {"model": "gpt-4o", "prompt_tokens": 10_000, "completion_tokens": 500, "cache_read_tokens": 8_000}
    with TestClient(create_app(url, name="a")) as a, TestClient(create_app(url, name="b")) as b:
        assert a.post("/track", json=body).status_code == 200
        for _ in range(2):
            assert b.post("/track", json=body).status_code == 200
        seen_a, seen_b = scrape(a), scrape(b)
    assert {dict(labels)["ledger"] for (_, labels) in seen_a} == {"a"}
    assert {dict(labels)["ledger"] for (_, labels) in seen_b} == {"b"}
    assert seen_a[("tokencost_calls_total", frozenset({("ledger", "a")}))] == 1
    assert seen_b[("tokencost_calls_total", frozenset({("ledger", "b")}))] == 2
    assert not [m for m in REGISTRY.collect() if m.name.startswith("tokencost")]


def test_the_read_token_protects_metrics() -> None:
    """With a read token, /metrics needs it (or the write token) like every other read."""
    with TestClient(create_app("memory://", token="w-secret", read_token="r-secret")) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert value(scrape(client, Authorization="Bearer r-secret"), "tokencost_calls_total") == 0
        assert value(scrape(client, Authorization="Bearer w-secret"), "tokencost_calls_total") == 0
    with TestClient(create_app("memory://", token="w-secret")) as client:
        assert client.get("/metrics").status_code == 200  # no read token: reads are open


def test_a_store_that_fails_gives_503(tmp_path: Path) -> None:
    """A failing store is a 503 (Prometheus marks the target down), never a page of zeros."""
    with TestClient(create_app(f"sqlite:///{tmp_path / 'costs.db'}")) as client:
        scrape(client)
        client.app.state.tracker.store.inner.close()  # type: ignore[attr-defined]
        down = client.get("/metrics")
    assert down.status_code == 503
    assert "costs.db" not in down.text


def test_without_prometheus_client_metrics_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """prometheus-client is imported on the first scrape: without it the app runs and /metrics says what to install."""
    with TestClient(create_app("memory://")) as client:
        monkeypatch.setitem(sys.modules, "prometheus_client", None)
        response = client.get("/metrics")
        assert client.get("/summary").status_code == 200
    assert response.status_code == 501
    assert "prometheus-client is not installed" in response.json()["detail"]
    assert "[server]" in response.json()["detail"]


def test_metrics_is_documented_in_openapi() -> None:
    with TestClient(create_app("memory://")) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert "/metrics" in paths
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
