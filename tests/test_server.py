"""The REST API and the dashboard of ``tokencost serve``, through FastAPI's TestClient and schemathesis."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the [server] extra is not installed")

from fastapi.testclient import TestClient

from tokencost import Budget, CostTracker, register_price
from tokencost.server import create_app
from tokencost.server.app import MAX_BODY_BYTES, is_loopback, serve

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
XSS = "<script>alert(1)</script>"


def call(**overrides: Any) -> dict[str, Any]:
    """A valid POST /track body: gpt-4o, 10,000 prompt tokens (8,000 cached) and 500 output tokens: $0.02."""
    body: dict[str, Any] = {
        "model": "gpt-4o",
        "prompt_tokens": 10_000,
        "completion_tokens": 500,
        "cache_read_tokens": 8_000,
    }
    body.update(overrides)
    return body


@pytest.fixture
def client() -> Iterator[TestClient]:
    """An open server (no token) over a memory store."""
    with TestClient(create_app("memory://")) as test_client:
        yield test_client


@pytest.fixture
def authed() -> Iterator[TestClient]:
    """A server that requires the Bearer token for writes."""
    with TestClient(create_app("memory://", token=TOKEN)) as test_client:
        yield test_client


def loc_of(response: Any) -> list[list[Any]]:
    """Return the ``loc`` of each validation error of a 422 response."""
    assert response.status_code == 422, response.text
    return [error["loc"] for error in response.json()["detail"]]


# -- health and tracking ------------------------------------------------------------------------------------------
def test_health_ok(client: TestClient) -> None:
    """GET /health answers 200 with status ok while the store answers."""
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "ledger": "default"}


def test_track_returns_the_priced_event_with_money_as_decimal_strings(client: TestClient) -> None:
    """POST /track prices the call exactly and returns the event; money is a JSON string, never a float."""
    response = client.post("/track", json=call(endpoint="/v1/chat", user="alice", tags=["batch", "eu"]))
    assert response.status_code == 200, response.text
    event = response.json()
    assert event["cost"] == "0.02"
    assert event["cost_breakdown"] == {"input": "0.005", "cache_read": "0.01", "output": "0.005"}
    assert event["saved_by_cache"] == "0.01"
    assert event["priced"] is True
    assert event["price_source"] == "litellm"
    assert event["provider"] == "openai"
    assert event["prompt_tokens"] == 10_000
    assert event["completion_tokens"] == 500
    assert event["metadata"] == {"endpoint": "/v1/chat", "user": "alice", "tags": ["batch", "eu"]}
    assert '"cost":"0.02"' in response.text.replace(" ", "")
    dt.datetime.fromisoformat(event["timestamp"])


def test_track_reasoning_and_cache_writes(client: TestClient) -> None:
    """Reasoning tokens are billed in their own bucket: o3, 2,000 in + 4,000 out (3,500 reasoning) = $0.036."""
    response = client.post(
        "/track", json={"model": "o3", "prompt_tokens": 2_000, "completion_tokens": 4_000, "reasoning_tokens": 3_500}
    )
    assert response.status_code == 200, response.text
    assert Decimal(response.json()["cost"]) == Decimal("0.036")


def test_track_unknown_model_is_recorded_unpriced(client: TestClient) -> None:
    """A model no source prices is recorded with cost null and counted as unpriced, never as $0."""
    response = client.post("/track", json={"model": "acme-unknown-9", "prompt_tokens": 5, "completion_tokens": 5})
    assert response.status_code == 200
    assert response.json()["cost"] is None
    assert response.json()["priced"] is False
    summary = client.get("/summary").json()
    assert summary["unpriced"] == 1
    assert summary["requests"] == 1


def test_track_provider_field_is_kept(client: TestClient) -> None:
    """An explicit provider is stored as given."""
    response = client.post("/track", json=call(provider="azure"))
    assert response.json()["provider"] == "azure"


# -- auth ---------------------------------------------------------------------------------------------------------
def test_writes_need_the_token(authed: TestClient) -> None:
    """With a token set, POST /track without it or with a wrong one is 401 and records nothing."""
    missing = authed.post("/track", json=call())
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = authed.post("/track", json=call(), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    not_bearer = authed.post("/track", json=call(), headers={"Authorization": f"Basic {TOKEN}"})
    assert not_bearer.status_code == 401
    assert authed.get("/summary").json()["requests"] == 0
    ok = authed.post("/track", json=call(), headers=AUTH)
    assert ok.status_code == 200
    assert authed.get("/summary").json()["requests"] == 1


def test_auth_is_checked_before_validation(authed: TestClient) -> None:
    """Without the token a well-formed but invalid body gets 401, not a list of what is wrong with it."""
    assert authed.post("/track", json={"model": 5}).status_code == 401
    assert authed.post("/track", json={"model": 5}, headers=AUTH).status_code == 422


def test_reads_are_open_with_a_token_set(authed: TestClient) -> None:
    """Only writes need the token: the dashboard and the read API stay readable."""
    for path in ("/health", "/summary", "/recent", "/models", "/budgets", "/", "/dashboard/fragment", "/calls"):
        assert authed.get(path).status_code == 200, path


def test_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """TOKENCOST_SERVER_TOKEN sets the token when none is passed."""
    monkeypatch.setenv("TOKENCOST_SERVER_TOKEN", "from-env")
    with TestClient(create_app("memory://")) as c:
        assert c.post("/track", json=call()).status_code == 401
        assert c.post("/track", json=call(), headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_blank_token_is_refused() -> None:
    """A blank token would lock nothing: create_app refuses it."""
    with pytest.raises(ValueError, match="token"):
        create_app("memory://", token="  ")


# -- body size and validation -------------------------------------------------------------------------------------
def test_body_over_64_kib_is_413(client: TestClient) -> None:
    """A body larger than 64 KiB is rejected with 413 by its Content-Length, before it is parsed."""
    body = json.dumps(call(metadata={"pad": "x" * 1000})).encode()
    big = body + b" " * (MAX_BODY_BYTES + 1 - len(body))
    response = client.post("/track", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert client.get("/summary").json()["requests"] == 0


def test_streamed_body_over_64_kib_is_413() -> None:
    """A body sent in chunks without Content-Length is counted as it streams and rejected past 64 KiB."""
    import asyncio

    app = create_app("memory://")
    chunk = b" " * 16_384
    chunks = [chunk] * 5  # 80 KiB
    sent: list[dict[str, Any]] = []
    received = 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        if received <= len(chunks):
            return {"type": "http.request", "body": chunks[received - 1], "more_body": received < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/track",
        "raw_path": b"/track",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 413
    assert received == 5  # stopped reading as soon as the limit was passed
    app.state.tracker.close()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (call(prompt_tokens=-1), "prompt_tokens"),
        (call(completion_tokens=10**12), "completion_tokens"),
        (call(prompt_tokens="10000"), "prompt_tokens"),
        (call(prompt_tokens=10.5), "prompt_tokens"),
        (call(prompt_tokens=True), "prompt_tokens"),
        (call(model=""), "model"),
        (call(model="m" * 257), "model"),
        (call(model="line\nbreak"), "model"),
        (call(model=None), "model"),
        (call(surprise=1), "surprise"),
        (call(metadata={"nested": {"a": 1}}), "metadata"),
        (call(metadata={f"k{i}": i for i in range(33)}), "metadata"),
        (call(metadata={"endpoint": "/x"}), "metadata"),
        (call(tags=["t"] * 33), "tags"),
        (call(tags="not-a-list"), "tags"),
        (call(user="u" * 257), "user"),
        (call(provider="p" * 65), "provider"),
        (call(cache_read_tokens=20_000), "cache_read_tokens"),
        (call(completion_tokens=10, reasoning_tokens=11), "reasoning_tokens"),
        ({"prompt_tokens": 1, "completion_tokens": 1}, "model"),
    ],
)
def test_invalid_track_body_is_422_naming_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    """Each invalid body is refused with 422 and the error names the offending field; nothing is recorded."""
    response = client.post("/track", json=body)
    locs = loc_of(response)
    assert any(field in [str(part) for part in loc] for loc in locs), locs
    assert client.get("/summary").json()["requests"] == 0


def test_malformed_json_is_422(client: TestClient) -> None:
    """A body that is not JSON is a 422 pointing at the body, not a 500."""
    response = client.post("/track", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_sql_looking_strings_are_stored_as_plain_text(tmp_path: Path) -> None:
    """Text that looks like SQL is stored and read back verbatim from a SQLite store, and the ledger stays intact."""
    evil_model = "gpt-4o'); DROP TABLE events; --"
    evil_user = "' OR '1'='1"
    url = f"sqlite:///{tmp_path / 'costs.db'}"
    with TestClient(create_app(url)) as c:
        assert c.post("/track", json=call()).status_code == 200
        response = c.post(
            "/track",
            json=call(model=evil_model, user=evil_user, endpoint="/x; DELETE FROM events", metadata={"q": "1; --"}),
        )
        assert response.status_code == 200
        assert c.post("/track", json=call()).status_code == 200
        events = c.get("/recent").json()["events"]
        assert len(events) == 3
        assert events[1]["model"] == evil_model
        assert events[1]["metadata"] == {"q": "1; --", "endpoint": "/x; DELETE FROM events", "user": evil_user}
        by_user = {g["key"]: g["requests"] for g in c.get("/summary", params={"by": "user"}).json()["groups"]}
        assert by_user == {evil_user: 1, "(none)": 2}
    # The file still holds all three calls after a restart.
    with TestClient(create_app(url)) as c:
        assert c.get("/summary").json()["requests"] == 3


# -- summary --------------------------------------------------------------------------------------------------------
def seed(c: TestClient) -> None:
    """Record four calls over two endpoints, two users and three tags."""
    for body in (
        call(endpoint="/chat", user="alice", tags=["a", "b"]),
        call(endpoint="/chat", user="bob", tags=["a"]),
        call(
            model="claude-sonnet-4-5", prompt_tokens=1000, completion_tokens=100, cache_read_tokens=0, endpoint="/sum"
        ),
        call(model="gpt-4o-mini", prompt_tokens=1000, completion_tokens=100, cache_read_tokens=0, tags=["c"]),
    ):
        assert c.post("/track", json=body).status_code == 200


def test_summary_by_each_key(client: TestClient) -> None:
    """GET /summary totals the ledger and groups it by model, provider, endpoint, user, tag or day."""
    seed(client)
    summary = client.get("/summary").json()
    assert summary["requests"] == 4
    assert Decimal(summary["cost"]) == Decimal("0.04") + Decimal("0.0045") + Decimal("0.00021")
    models = {g["key"]: g["cost"] for g in summary["groups"]}
    assert models == {"gpt-4o": "0.04", "claude-sonnet-4-5": "0.0045", "gpt-4o-mini": "0.00021"}
    assert [g["key"] for g in summary["groups"]] == ["gpt-4o", "claude-sonnet-4-5", "gpt-4o-mini"]

    def keys(by: str) -> dict[str, int]:
        response = client.get("/summary", params={"by": by})
        assert response.status_code == 200, response.text
        return {g["key"]: g["requests"] for g in response.json()["groups"]}

    assert keys("endpoint") == {"/chat": 2, "/sum": 1, "(none)": 1}
    assert keys("user") == {"alice": 1, "bob": 1, "(none)": 2}
    assert keys("tag") == {"a": 2, "b": 1, "c": 1, "(none)": 1}
    assert keys("provider") == {"openai": 3, "anthropic": 1}
    assert keys("day") == {dt.datetime.now(dt.timezone.utc).date().isoformat(): 4}


def test_summary_time_range(client: TestClient) -> None:
    """since is inclusive and until exclusive, as epoch seconds or ISO-8601; a range in the future is empty."""
    seed(client)
    now = time.time()
    assert client.get("/summary", params={"since": now - 3600}).json()["requests"] == 4
    assert client.get("/summary", params={"since": now + 3600}).json()["requests"] == 0
    assert client.get("/summary", params={"until": "2000-01-01"}).json()["requests"] == 0
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ranged = client.get("/summary", params={"since": "2000-01-01T00:00:00+00:00", "until": future}).json()
    assert ranged["requests"] == 4
    assert Decimal(ranged["cost"]) == Decimal(client.get("/summary").json()["cost"])
    assert ranged["since"] == "2000-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"by": "bad\x01key"}, "by"),
        ({"since": "lastweek"}, "since"),
        ({"since": "nan"}, "since"),
        ({"until": "-5"}, "until"),
        ({"until": "99999-01-01"}, "until"),
        ({"since": "2026-01-02", "until": "2026-01-01"}, "until"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_summary_rejects_bad_parameters(client: TestClient, params: dict[str, str], field: str) -> None:
    """A bad grouping key or time is a 422 naming the query parameter."""
    locs = loc_of(client.get("/summary", params=params))
    assert ["query", field] in locs


# -- recent ----------------------------------------------------------------------------------------------------------
def test_recent_is_newest_first_and_bounded(client: TestClient) -> None:
    """GET /recent returns the newest calls first, at most ``limit`` (1 to 1,000), 50 by default."""
    for i in range(60):
        assert client.post("/track", json=call(user=f"u{i}")).status_code == 200
    default = client.get("/recent").json()
    assert len(default["events"]) == 50
    assert default["events"][0]["metadata"]["user"] == "u59"
    assert default["events"][-1]["metadata"]["user"] == "u10"
    three = client.get("/recent", params={"limit": 3}).json()["events"]
    assert [e["metadata"]["user"] for e in three] == ["u59", "u58", "u57"]
    assert len(client.get("/recent", params={"limit": 1000}).json()["events"]) == 60
    assert ["query", "limit"] in loc_of(client.get("/recent", params={"limit": 1001}))
    assert ["query", "limit"] in loc_of(client.get("/recent", params={"limit": 0}))
    assert ["query", "limit"] in loc_of(client.get("/recent", params={"limit": "ten"}))


# -- models ----------------------------------------------------------------------------------------------------------
def test_models_lists_litellm_prices_filtered_and_paged(client: TestClient) -> None:
    """GET /models lists litellm's prices per million tokens as decimal strings; q filters; pages are bounded."""
    page = client.get("/models", params={"q": "gpt-4o", "limit": 1000}).json()
    assert page["total"] > 5
    assert all("gpt-4o" in m["model"].lower() or "gpt-4o" in (m["provider"] or "") for m in page["models"])
    gpt4o = next(m for m in page["models"] if m["model"] == "gpt-4o")
    assert gpt4o["source"] == "litellm"
    assert gpt4o["input_per_mtok"] == "2.5"
    assert gpt4o["output_per_mtok"] == "10"
    assert gpt4o["cache_read_per_mtok"] == "1.25"
    assert gpt4o["provider"] == "openai"
    first = client.get("/models", params={"limit": 2}).json()
    second = client.get("/models", params={"limit": 2, "offset": 2}).json()
    assert len(first["models"]) == 2
    assert first["total"] == second["total"] > 100
    assert first["models"][1]["model"] < second["models"][0]["model"]
    assert ["query", "limit"] in loc_of(client.get("/models", params={"limit": 1001}))
    assert client.get("/models", params={"q": "no-such-model-anywhere"}).json() == {
        "total": 0,
        "offset": 0,
        "limit": 100,
        "models": [],
    }


def test_models_shows_overrides_first(client: TestClient) -> None:
    """A price set with register_price is listed with source override, and wins over litellm's for that name."""
    register_price("tokencost-server-test-model", input_per_mtok="4", output_per_mtok=12, cache_read_per_mtok="0.4")
    models = client.get("/models", params={"q": "tokencost-server-test"}).json()["models"]
    assert models == [
        {
            "model": "tokencost-server-test-model",
            "provider": None,
            "source": "override",
            "source_url": None,
            "input_per_mtok": "4",
            "output_per_mtok": "12",
            "cache_read_per_mtok": "0.4",
            "cache_write_per_mtok": None,
            "reasoning_per_mtok": None,
        }
    ]
    event = client.post("/track", json=call(model="tokencost-server-test-model", cache_read_tokens=0)).json()
    assert event["price_source"] == "override"
    assert Decimal(event["cost"]) == Decimal("0.046")


# -- budgets ---------------------------------------------------------------------------------------------------------
def test_budgets_of_the_ledger_are_shown_and_charged(tmp_path: Path) -> None:
    """Budgets declared by a worker's tracker show in GET /budgets, and calls posted to the API are charged to them."""
    url = f"sqlite:///{tmp_path / 'costs.db'}"
    worker = CostTracker(budget=1, budgets=[Budget(limit_usd="0.05", per="user")], store=url, print_summary=False)
    worker.track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, cache_read_tokens=8_000)
    worker.flush()
    with TestClient(create_app(url)) as c:
        assert c.post("/track", json=call(user="alice")).status_code == 200
        assert c.post("/track", json=call(user="alice")).status_code == 200
        assert c.post("/track", json=call(user="alice")).status_code == 200
        budgets = {b["scope"]: b for b in c.get("/budgets").json()["budgets"]}
        in_summary = c.get("/summary").json()["budgets"]
    worker.close()
    assert budgets["total"] == {
        "scope": "total",
        "window": "total",
        "limit": "1.00",
        "spent": "0.08",
        "remaining": "0.92",
        "max_tokens": None,
        "tokens": 42_000,
        "strict": False,
        "exceeded": False,
    }
    assert in_summary == list(budgets.values())  # one shape for a budget, wherever it appears
    alice = budgets["user=alice"]
    assert alice["spent"] == "0.06"
    assert alice["remaining"] == "0.00"
    assert alice["exceeded"] is True


def test_no_budgets(client: TestClient) -> None:
    """A ledger without budgets lists none."""
    assert client.get("/budgets").json() == {"ledger": "default", "budgets": []}


# -- a store that fails ------------------------------------------------------------------------------------------
def test_store_down_gives_503(tmp_path: Path) -> None:
    """When the store fails, /health is 503, reads are 503, and POST /track says the call was not recorded."""
    with TestClient(create_app(f"sqlite:///{tmp_path / 'costs.db'}")) as c:
        assert c.get("/health").status_code == 200
        # A real failure of the store: its connection is gone.
        c.app.state.tracker.store.inner.close()  # type: ignore[attr-defined]
        health = c.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        for path in ("/summary", "/recent", "/budgets", "/dashboard/fragment", "/", "/calls"):
            assert c.get(path).status_code == 503, path
        tracked = c.post("/track", json=call())
        assert tracked.status_code == 503
        assert "not recorded" in tracked.json()["detail"]
        assert "costs.db" not in tracked.text  # no internals leak to clients


def test_lifespan_closes_and_flushes_the_store(tmp_path: Path) -> None:
    """Shutting the app down flushes the store: a fresh store on the same file sees every call."""
    from tokencost.stores import store_from_url

    url = f"sqlite:///{tmp_path / 'costs.db'}"
    with TestClient(create_app(url)) as c:
        for _ in range(5):
            assert c.post("/track", json=call()).status_code == 200
    store = store_from_url(url)
    try:
        assert store.totals("default").requests == 5
    finally:
        store.close()


def test_ledger_name_selects_the_ledger(tmp_path: Path) -> None:
    """The app reads and writes the ledger it was given, not the others in the store."""
    url = f"sqlite:///{tmp_path / 'costs.db'}"
    with TestClient(create_app(url, name="team-a")) as a:
        assert a.post("/track", json=call()).status_code == 200
    with TestClient(create_app(url, name="team-b")) as b:
        assert b.get("/summary").json()["requests"] == 0
        assert b.get("/health").json()["ledger"] == "team-b"


# -- dashboard ---------------------------------------------------------------------------------------------------
def test_dashboard_draws_marks_for_the_data(client: TestClient) -> None:
    """The dashboard page carries SVG bars for each chart and the recent calls, and refreshes from its fragment."""
    seed(client)
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    for section in ("daily", "by-model", "by-user", "by-tag", "by-endpoint", "budgets", "recent"):
        assert f'id="{section}"' in html
    marks = re.findall(r'<rect class="mark', html)
    # 3 models stacked on today's bar + 3 model bars + 3 user bars (alice, bob, none) + 4 tag bars (a, b, c,
    # none) + 3 endpoint bars (/chat, /sum, none).
    assert len(marks) == 16
    assert html.count("<tr>") == 1 + 4
    assert 'data-src="dashboard/fragment"' in html
    fragment = client.get("/dashboard/fragment")
    assert fragment.status_code == 200
    assert len(re.findall(r'<rect class="mark', fragment.text)) == 16
    assert "<html" not in fragment.text


def test_dashboard_escapes_model_names_and_metadata(client: TestClient) -> None:
    """A model or endpoint named like markup is shown as text: escaped everywhere, never as a tag."""
    assert client.post("/track", json=call(model=XSS, user='"><img src=x onerror=alert(2)>')).status_code == 200
    register_price(XSS, input_per_mtok=1, output_per_mtok=1)
    assert client.post("/track", json=call(model=XSS, endpoint="<b>bold</b>")).status_code == 200
    for path in ("/", "/dashboard/fragment"):
        text = client.get(path).text
        assert XSS not in text
        assert "<img" not in text
        assert "<b>bold" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert "&lt;b&gt;bold&lt;/b&gt;" in text
    page = client.get("/")
    # Only our own nonce'd script may run, should anything slip through.
    nonce = re.search(r'<script nonce="([^"]+)">', page.text)
    assert nonce is not None
    assert f"script-src 'nonce-{nonce.group(1)}'" in page.headers["content-security-policy"]
    assert page.text.count("<script") == 1


def test_dashboard_empty_ledger(client: TestClient) -> None:
    """An empty ledger shows its empty states, not an error."""
    page = client.get("/")
    assert page.status_code == 200
    assert "No calls recorded yet." in page.text
    assert '<rect class="mark' not in page.text


def test_dashboard_parameters_are_bounded(client: TestClient) -> None:
    """days and refresh are bounded query parameters."""
    assert ["query", "days"] in loc_of(client.get("/", params={"days": 0}))
    assert ["query", "days"] in loc_of(client.get("/dashboard/fragment", params={"days": 367}))
    assert ["query", "refresh"] in loc_of(client.get("/", params={"refresh": 0}))
    assert 'data-refresh="2"' in client.get("/", params={"refresh": 2, "days": 3}).text


def test_openapi_documents_the_api(client: TestClient) -> None:
    """The OpenAPI schema lists every route, and /docs serves the API reference."""
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/health", "/track", "/summary", "/recent", "/models", "/budgets"):
        assert path in paths
    assert client.get("/docs").status_code == 200


# -- response models and package data ---------------------------------------------------------------------------
def test_every_json_route_declares_an_enforced_response_model(client: TestClient) -> None:
    """Each API route names a strict response model (no extra field, no coercion) that OpenAPI publishes."""
    from fastapi.routing import APIRoute

    from tokencost.server.schemas import ResponseModel

    api = [r for r in client.app.routes if isinstance(r, APIRoute) and "api" in (r.tags or [])]
    assert {r.path for r in api} == {"/health", "/track", "/summary", "/recent", "/models", "/budgets"}
    for route in api:
        assert isinstance(route.response_model, type) and issubclass(route.response_model, ResponseModel), route.path
        assert route.response_model.model_config.get("extra") == "forbid"
        assert route.response_model.model_config.get("strict") is True
    # The published schema stays open to fields added later (the server, not the client, is held to it).
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert "additionalProperties" not in schemas["SummaryOut"]


def test_response_models_reject_floats_for_money_and_undeclared_fields() -> None:
    """The models the routes validate against: money must be a decimal string, and no field may be added."""
    from pydantic import ValidationError

    from tokencost.server.schemas import BudgetOut, GroupOut, HealthOut

    group = {
        "key": "gpt-4o",
        "requests": 1,
        "cost": "0.02",
        "share": "1.0000",
        "unpriced": 0,
        "saved_by_cache": "0.00",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "input_tokens": 10,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "output_tokens": 5,
        "reasoning_tokens": 0,
        "cached_share": "0.0000",
    }
    assert GroupOut.model_validate(group).model_dump(mode="json") == group
    with pytest.raises(ValidationError, match="cost"):
        GroupOut.model_validate({**group, "cost": 0.02})  # a JSON float would lose cents
    with pytest.raises(ValidationError, match="cost"):
        GroupOut.model_validate({**group, "cost": Decimal("0.02")})  # not yet formatted
    with pytest.raises(ValidationError, match="requests"):
        GroupOut.model_validate({**group, "requests": "1"})  # no coercion
    with pytest.raises(ValidationError, match="surprise"):
        GroupOut.model_validate({**group, "surprise": 1})
    with pytest.raises(ValidationError, match="status"):
        HealthOut.model_validate({"status": "fine", "ledger": "default"})
    with pytest.raises(ValidationError, match="spent"):
        BudgetOut.model_validate({"scope": "x", "window": "day", "limit": None})


def test_a_response_that_does_not_match_its_model_is_a_server_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Routes validate what they return: a body off its model is a 500 (a bug), never sent as it is."""
    from pydantic import ValidationError

    from tokencost.server import routes

    monkeypatch.setattr(routes, "summary_json", lambda summary, limit: {**summary.to_dict(), "cost": 0.02})
    monkeypatch.setattr(routes, "event_json", lambda event: {**event.to_dict(), "cost": event.cost})
    with TestClient(create_app("memory://"), raise_server_exceptions=False) as c:
        assert c.post("/track", json=call()).status_code == 500  # recorded, but the reply is off its model
        assert c.get("/summary").status_code == 500
        assert c.get("/recent").status_code == 500
        # The store is fine: what does not depend on the broken shapes still answers.
        assert c.get("/health").json() == {"status": "ok", "ledger": "default"}
        assert c.get("/budgets").json() == {"ledger": "default", "budgets": []}
    with TestClient(create_app("memory://")) as c, pytest.raises(ValidationError, match="for EventOut"):
        c.post("/track", json=call())


def test_dashboard_data_is_collected_apart_from_its_drawing() -> None:
    """collect() does the store reads of one refresh; render_fragment() draws plain data, with no store at all."""
    from tokencost.reports import Summary, SummaryRow
    from tokencost.server.dashboard import DashboardData, collect
    from tokencost.server.render import render_fragment
    from tokencost.server.view import read_view
    from tokencost.stores import store_from_url
    from tokencost.where import Where

    now = dt.datetime(2026, 11, 30, 12, tzinfo=dt.timezone.utc).timestamp()
    store = store_from_url("memory://")
    tracker = CostTracker(store=store, print_summary=False, linkup_api_key=False)
    tracker.track(model="gpt-4o", prompt_tokens=10_000, completion_tokens=500, metadata={"endpoint": "/chat"})
    data = collect(store, "default", read_view(since=None, until=None, days=3, where=Where(), now=time.time()))
    assert len(data.days) == 3
    assert data.summary.requests == 1
    assert [r.key for r in data.breakdowns["model"]] == ["gpt-4o"]
    assert [e.model for e in data.recent] == ["gpt-4o"]
    tracker.close()

    cost = Decimal("0.02")
    row = SummaryRow(key="m<1>", requests=2, cost_usd=cost, share=Decimal(1))
    summary = Summary(
        ledger="x",
        by="model",
        total_usd=cost,
        requests=2,
        unpriced=0,
        saved_by_cache_usd=Decimal(0),
        tokens=dict.fromkeys(("input", "cache_read", "cache_write", "output", "reasoning"), 0),
        rows=(row,),
    )
    view = read_view(since=None, until=None, days=2, where=Where(), now=now)
    drawn = DashboardData(
        ledger="x",
        view=view,
        summary=summary,
        days=["2026-11-29", "2026-11-30"],
        per_day={"2026-11-30": [("m<1>", cost)]},
        breakdowns={"model": (row,), "user": (), "tag": (), "endpoint": ()},
        budgets=[],
        recent=[],
    )
    html = render_fragment(drawn)
    assert len(re.findall(r'<rect class="mark', html)) == 2  # the day's stack and the model's bar
    assert "m&lt;1&gt;" in html
    assert "m<1>" not in html
    assert "$0.02" in html
    assert "Data as of 2026-11-30 12:00:00 UTC." in html


def test_a_drawing_bug_is_a_server_error_not_a_store_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the store reads of the dashboard count as an outage (503); a failure drawing them is a 500."""
    from tokencost.server import dashboard_routes

    def broken(data: Any) -> str:
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(dashboard_routes, "render_fragment", broken)
    with TestClient(create_app("memory://"), raise_server_exceptions=False) as c:
        assert c.get("/").status_code == 500
        assert c.get("/dashboard/fragment").status_code == 500
        assert c.get("/health").status_code == 200


def test_dashboard_assets_are_package_data(client: TestClient) -> None:
    """The page, its style and its script come from files in the package; the inline script is the shipped one."""
    from importlib import resources

    root = resources.files("tokencost.server")
    for path in (
        "templates/dashboard.html",
        "templates/fragment.html",
        "templates/recent.html",
        "templates/recent_row.html",
        "templates/stat.html",
        "templates/down.html",
        "templates/error.html",
        "templates/filters.html",
        "templates/calls.html",
        "templates/calls_body.html",
        "static/dashboard.css",
        "static/dashboard.js",
    ):
        assert root.joinpath(path).is_file(), path
    script = root.joinpath("static/dashboard.js").read_text(encoding="utf-8")
    style = root.joinpath("static/dashboard.css").read_text(encoding="utf-8")
    page = client.get("/")
    found = re.search(r'<script nonce="([^"]+)">(.*?)</script>', page.text, re.S)
    assert found is not None
    assert found.group(2).strip() == script.strip()
    assert style.strip() in page.text
    assert f"script-src 'nonce-{found.group(1)}'" in page.headers["content-security-policy"]
    assert client.get("/").headers["content-security-policy"] != page.headers["content-security-policy"]  # fresh nonce


# -- hosts, serve and the extra ----------------------------------------------------------------------------------
def test_allowed_hosts_guard_against_dns_rebinding() -> None:
    """With allowed_hosts, a request naming another Host is refused (a rebinding page cannot reach the API)."""
    app = create_app("memory://", allowed_hosts=["127.0.0.1", "localhost", "::1"])
    with TestClient(app, base_url="http://evil.example") as c:
        assert c.get("/health").status_code == 400
        assert c.post("/track", json=call()).status_code == 400
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert c.get("/health").status_code == 200
    with TestClient(app, base_url="http://[::1]:8000") as c:
        assert c.get("/health").status_code == 200


def test_serve_refuses_a_public_host_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """serve() will not bind a non-loopback address unless a token protects writes."""
    monkeypatch.delenv("TOKENCOST_SERVER_TOKEN", raising=False)
    with pytest.raises(ValueError, match="without a token"):
        serve("memory://", host="0.0.0.0")
    with pytest.raises(ValueError, match="without a token"):
        serve("memory://", host="192.168.1.10")
    with pytest.raises(ValueError, match="port"):
        serve("memory://", port=70_000)
    assert is_loopback("127.0.0.1")
    assert is_loopback("localhost")
    assert is_loopback("::1")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("example.com")


def test_missing_fastapi_names_the_extra() -> None:
    """Without FastAPI, importing tokencost.server works and create_app raises MissingExtraError naming [server]."""
    code = (
        "import sys; sys.modules['fastapi'] = None\n"
        "import tokencost.server as s\n"
        "from tokencost.errors import MissingExtraError\n"
        "try:\n"
        "    s.create_app('memory://')\n"
        "except MissingExtraError as exc:\n"
        "    print('extra=' + exc.extra, str(exc))\n"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "extra=server" in out.stdout
    assert "pip install -e '.[server]'" in out.stdout


# -- schemathesis ------------------------------------------------------------------------------------------------
def test_fuzzed_requests_never_cause_a_server_error() -> None:
    """Requests generated from the OpenAPI schema, valid and invalid, never get a 5xx answer."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    app = create_app("memory://", token=TOKEN)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    statuses: dict[int, int] = {}
    try:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=schema.as_strategy(generation_mode=mode))
            @settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            def check(case: Any) -> None:
                response = case.call(headers=AUTH)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                assert response.status_code < 500, (case.method, case.path, response.status_code, response.text)

            check()
    finally:
        app.state.tracker.close()
    assert 200 in statuses
    assert 422 in statuses
