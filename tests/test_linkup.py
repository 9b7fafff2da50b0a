"""Tests for Linkup price discovery (tokencost.pricing.linkup) against the loopback fake Linkup."""

from __future__ import annotations

import json
import logging
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import httpx
import pytest

from tokencost.pricing import PriceChain
from tokencost.pricing._price import Price
from tokencost.pricing.cache_files import price_file_path
from tokencost.pricing.linkup import (
    LinkupClient,
    LinkupError,
    LinkupSearchSource,
    PriceValidationError,
    discovery_sources,
    search_price,
    validate_answer,
)
from tokencost.testing import FakeProvider

SECRET = "lk-SECRET-7f3a9c2e41"  # the key the fake accepts in these tests; it must never show up anywhere
MODEL = "acme-large-2"
PROVIDER = "openai"
SEARCH = "/v1/search"
FAST = httpx.Timeout(2.0, connect=1.0)
URL = "https://acme.example/pricing"
SOURCES = [{"name": "Acme pricing", "url": URL, "snippet": "Acme Large 2: $4 / 1M input tokens"}]


def answer(**overrides: Any) -> dict[str, Any]:
    """A valid structured answer for MODEL: $4 in, $12 out, $0.40 cached, per million tokens."""
    data: dict[str, Any] = {
        "model_name_found": "Acme Large 2",
        "input_price": 4,
        "output_price": 12,
        "cached_input_price": 0.4,
        "price_unit": "per_1m_tokens",
        "currency": "USD",
        "source_url": URL,
    }
    data.update(overrides)
    return data


@dataclass
class Heard:
    """What the listener was told."""

    calls: list[tuple[str, str | None, Price | None, str | None]] = field(default_factory=list)
    event: threading.Event = field(default_factory=threading.Event)

    def __call__(self, model: str, provider: str | None, price: Price | None, reason: str | None) -> None:
        self.calls.append((model, provider, price, reason))
        self.event.set()


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    fake_server.reset()
    fake_server.linkup_api_key = SECRET
    return fake_server


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "model_costs"


@pytest.fixture
def make_source(fake: FakeProvider, cache_dir: Path) -> Iterator[Callable[..., LinkupSearchSource]]:
    made: list[LinkupSearchSource] = []

    def make(api_key: str = SECRET, **kwargs: Any) -> LinkupSearchSource:
        kwargs.setdefault("timeout", FAST)
        source = LinkupSearchSource(api_key, cache_dir, fake.linkup_base, **kwargs)
        made.append(source)
        return source

    yield make
    for source in made:
        source.wait(5)
        source.close()


def tokencost_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "tokencost"]


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record of every logger, message and arguments, at DEBUG level."""
    parts = [caplog.text]
    for record in caplog.records:
        parts += [record.getMessage(), repr(record.args), str(record.exc_info)]
    return "\n".join(parts)


def run_once(source: LinkupSearchSource, model: str = MODEL, provider: str | None = PROVIDER) -> Heard:
    """Look the model up once (it must not block or price), wait for the search, return what was heard."""
    heard = Heard()
    source.set_listener(heard)
    assert source.lookup(model, provider) is None
    assert source.wait(10)
    assert heard.event.is_set()
    return heard


# ---------------------------------------------------------------------- failure modes


@dataclass(frozen=True)
class Case:
    setup: Callable[[FakeProvider], None]
    reason: str  # a fragment of the reason the listener hears
    searches: int  # requests the fake should have received (2 when the answer is escalated to deep)
    api_key: str = SECRET
    timeout: float = 2.0  # seconds for the whole search


def _queue(status: int, body: Any = None, hang: float = 0.0) -> Callable[[FakeProvider], None]:
    return lambda fake: fake.queue_linkup(status, body, hang=hang)


def _answer(data: Any) -> Callable[[FakeProvider], None]:
    return lambda fake: fake.set_linkup_answer(data, sources=SOURCES)


def _nothing(fake: FakeProvider) -> None:
    pass


FAILURES = {
    "401 bad key": Case(_nothing, "rejected the API key", 1, api_key="lk-WRONG-0000"),
    "402 no key": Case(
        _queue(402, FakeProvider.linkup_error(402, "PAYMENT_REQUIRED", "Payment required")), "requires payment", 1
    ),
    "403 forbidden": Case(_queue(403), "refused access", 1),
    "429 too many requests": Case(
        _queue(429, FakeProvider.linkup_error(429, "TOO_MANY_REQUESTS", "Too many requests")), "rate limit", 1
    ),
    "429 out of credits": Case(
        _queue(429, FakeProvider.linkup_error(429, "INSUFFICIENT_FUNDS_CREDITS", "Not enough credits")),
        "out of credits",
        1,
    ),
    "400 no result": Case(_nothing, "no result", 2),
    "500": Case(_queue(500), "HTTP 500", 1),
    "504": Case(_queue(504), "HTTP 504", 1),
    "502 not json": Case(_queue(502, b"<html><body>502 Bad Gateway</body></html>"), "non-JSON", 1),
    "hang past the timeout": Case(_queue(200, hang=3.0), "did not answer within 0.3 s", 1, timeout=0.3),
    "200 garbage data": Case(_answer("garbage"), "not an object", 2),
    "200 garbage body": Case(_queue(200, {"unexpected": True}), "no structured answer", 2),
    "200 not json": Case(_queue(200, b"not json"), "not JSON", 2),
    "200 sibling row": Case(_answer(answer(model_name_found="Acme Large 2 Mini")), "'Acme Large 2 Mini', not", 2),
    "200 absurd price": Case(_answer(answer(input_price=45000)), "implausible input price $45000", 2),
    "200 euros": Case(_answer(answer(currency="EUR")), "not USD", 2),
    "200 no https source": Case(
        lambda fake: fake.set_linkup_answer(answer(source_url="http://acme.example/p"), sources=[]),
        "https source URL",
        2,
    ),
}


@pytest.mark.parametrize("case", FAILURES.values(), ids=FAILURES.keys())
def test_failure_leaves_the_model_unpriced_with_a_reason(
    case: Case,
    fake: FakeProvider,
    cache_dir: Path,
    make_source: Callable[..., LinkupSearchSource],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each failure: the lookup returns at once, the listener hears None and the reason, no cache file is
    written, exactly one line is logged, the API key appears nowhere, and nothing is searched blindly again."""
    caplog.set_level(logging.DEBUG)
    case.setup(fake)
    source = make_source(case.api_key, timeout=httpx.Timeout(case.timeout))
    heard = run_once(source)
    assert len(heard.calls) == 1
    model, provider, price, reason = heard.calls[0]
    assert (model, provider, price) == (MODEL, PROVIDER, None)
    assert reason is not None
    assert case.reason in reason
    assert not cache_dir.exists()
    assert fake.request_count(SEARCH) == case.searches
    lines = tokencost_lines(caplog)
    assert len(lines) == 1, lines
    assert MODEL in lines[0]
    assert case.reason in lines[0]
    logged = everything_logged(caplog)
    assert case.api_key not in logged
    assert SECRET not in logged
    assert not source.is_pending(MODEL, PROVIDER)
    assert case.reason in (source.failure_reason(MODEL, PROVIDER) or "")
    # Within the backoff a second lookup starts no search, hears nothing new and logs nothing.
    assert source.lookup(MODEL, PROVIDER) is None
    assert source.wait(5)
    assert fake.request_count(SEARCH) == case.searches
    assert len(heard.calls) == 1
    assert len(tokencost_lines(caplog)) == 1


def test_no_result_escalates_to_a_deep_search_that_can_succeed(
    fake: FakeProvider, cache_dir: Path, make_source: Callable[..., LinkupSearchSource]
) -> None:
    """A standard search without an answer is followed by exactly one deep search, whose answer is used."""
    fake.set_linkup_answer(answer(), sources=SOURCES, depth="deep")
    heard = run_once(make_source())
    price = heard.calls[0][2]
    assert price is not None
    assert price.input * 1_000_000 == 4
    depths = [request.body["depth"] for request in fake.requests if request.path == SEARCH]
    assert depths == ["standard", "deep"]
    assert price_file_path(cache_dir, MODEL, PROVIDER).exists()


def test_sibling_in_standard_and_right_row_in_deep(
    fake: FakeProvider, make_source: Callable[..., LinkupSearchSource]
) -> None:
    """A standard answer for the ``-mini`` sibling is refused and the deep answer for the right row is taken."""
    fake.set_linkup_answer(answer(model_name_found="acme-large-2-mini", input_price=1), sources=SOURCES)
    fake.set_linkup_answer(answer(), sources=SOURCES, depth="deep")
    price = run_once(make_source()).calls[0][2]
    assert price is not None
    assert price.input * 1_000_000 == 4


def test_http_errors_are_not_escalated_or_retried(fake: FakeProvider) -> None:
    """A 500 on the standard search raises at once: no deep search, no retry (each search is billed)."""
    fake.queue_linkup(500)
    fake.set_linkup_answer(answer(), sources=SOURCES)
    with LinkupClient(SECRET, fake.linkup_base, timeout=FAST) as client, pytest.raises(LinkupError) as info:
        search_price(client, MODEL, PROVIDER)
    assert info.value.status == 500
    assert info.value.retryable
    assert fake.request_count(SEARCH) == 1


def test_rate_limit_pauses_every_search(
    fake: FakeProvider, cache_dir: Path, make_source: Callable[..., LinkupSearchSource]
) -> None:
    """After a 429 TOO_MANY_REQUESTS no other model is searched until the pause ends."""
    fake.queue_linkup(429, FakeProvider.linkup_error(429, "TOO_MANY_REQUESTS", "Too many requests"))
    fake.set_linkup_answer(answer(), sources=SOURCES)
    source = make_source()
    run_once(source)
    assert source.lookup("other-model", PROVIDER) is None
    assert not source.is_pending("other-model", PROVIDER)
    assert "paused" in (source.failure_reason("other-model", PROVIDER) or "")
    assert fake.request_count(SEARCH) == 1


def test_model_is_searched_again_after_the_backoff_and_logged_once(
    fake: FakeProvider, make_source: Callable[..., LinkupSearchSource], caplog: pytest.LogCaptureFixture
) -> None:
    """With the backoff elapsed (zero here) a failed model is searched again, and its failure is logged once."""
    caplog.set_level(logging.WARNING)
    fake.set_linkup_answer(answer(input_price=99999), sources=SOURCES)
    source = make_source(failure_backoff=0.0)
    run_once(source)
    run_once(source)
    assert fake.request_count(SEARCH) == 4
    assert len(tokencost_lines(caplog)) == 1
    fake.set_linkup_answer(answer(), sources=SOURCES)
    price = run_once(source).calls[0][2]
    assert price is not None
    assert source.failure_reason(MODEL, PROVIDER) is None


def test_retry_after_header_is_honoured() -> None:
    """A 429 with ``Retry-After`` is retryable and carries the delay Linkup asked for."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps(FakeProvider.linkup_error(429, "TOO_MANY_REQUESTS", "slow down")).encode()
            self.send_response(429)
            self.send_header("Retry-After", "120")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v1"
        with LinkupClient(SECRET, base, timeout=FAST) as client, pytest.raises(LinkupError) as info:
            client.search("q")
    finally:
        server.shutdown()
        server.server_close()
    assert info.value.status == 429
    assert info.value.code == "TOO_MANY_REQUESTS"
    assert info.value.retryable
    assert info.value.retry_after == 120


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (401, "UNAUTHORIZED", False),
        (403, "FORBIDDEN", False),
        (429, "TOO_MANY_REQUESTS", True),
        (429, "INSUFFICIENT_FUNDS_CREDITS", False),
        (429, "EXCEED_BUDGET_LIMIT", False),
        (400, "SEARCH_QUERY_NO_RESULT", False),
        (500, "INTERNAL_SERVER_ERROR", True),
        (504, "GATEWAY_TIMEOUT", True),
    ],
)
def test_error_bodies_map_to_linkup_error(fake: FakeProvider, status: int, code: str, retryable: bool) -> None:
    """Linkup's error body gives the status, code and whether waiting can help; the key is in none of it."""
    fake.queue_linkup(status, FakeProvider.linkup_error(status, code, f"echo {SECRET}"))
    with LinkupClient(SECRET, fake.linkup_base, timeout=FAST) as client, pytest.raises(LinkupError) as info:
        client.search("price of acme")
    error = info.value
    assert (error.status, error.code, error.retryable) == (status, code, retryable)
    assert error.no_result == (code == "SEARCH_QUERY_NO_RESULT")
    for text in (str(error), repr(error), error.message, repr(client), str(pickle.loads(pickle.dumps(error)))):
        assert SECRET not in text
    assert error.__cause__ is None


def test_request_follows_the_linkup_api(fake: FakeProvider) -> None:
    """The search is a POST to {base}/search with Bearer auth, structured output, a schema string and sources."""
    fake.set_linkup_answer(answer(), sources=SOURCES)
    with LinkupClient(SECRET, fake.linkup_base, timeout=FAST) as client:
        price = search_price(client, MODEL, PROVIDER)
    assert price.source == "linkup"
    assert price.source_url == URL
    (request,) = fake.requests
    assert request.path == SEARCH
    assert request.has_auth
    body = request.body
    assert body["depth"] == "standard"
    assert body["outputType"] == "structured"
    assert body["includeSources"] is True
    assert MODEL in body["q"]
    schema = json.loads(body["structuredOutputSchema"])
    assert schema["type"] == "object"
    assert {"model_name_found", "input_price", "output_price", "price_unit", "currency", "source_url"} <= set(
        schema["required"]
    )


def test_base_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, fake: FakeProvider) -> None:
    """Without base_url the client uses TOKENCOST_LINKUP_URL, and without either Linkup's own API."""
    monkeypatch.setenv("TOKENCOST_LINKUP_URL", fake.linkup_base + "/")
    assert LinkupClient(SECRET).base_url == fake.linkup_base
    monkeypatch.delenv("TOKENCOST_LINKUP_URL")
    assert LinkupClient(SECRET).base_url == "https://api.linkup.so/v1"


def test_key_is_not_in_reprs(cache_dir: Path) -> None:
    """Neither the client nor the source shows the API key in its repr."""
    source = LinkupSearchSource(SECRET, cache_dir, "http://127.0.0.1:9/v1")
    assert SECRET not in repr(source)
    assert SECRET not in repr(source.client)
    source.close()


# ---------------------------------------------------------------------- concurrency and success


def test_twenty_concurrent_lookups_cause_exactly_one_search(
    fake: FakeProvider, make_source: Callable[..., LinkupSearchSource]
) -> None:
    """Twenty threads asking for one unknown model at once start one search; all see it pending; one price."""
    fake.set_linkup_answer(answer(), sources=SOURCES)
    fake.queue_linkup(200, hang=0.3)  # keep the search in flight while the threads ask
    source = make_source()
    heard = Heard()
    source.set_listener(heard)
    barrier = threading.Barrier(20)
    results: list[tuple[Price | None, bool]] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        price = source.lookup(MODEL, PROVIDER)
        pending = source.is_pending(MODEL, PROVIDER)
        with lock:
            results.append((price, pending))

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [(None, True)] * 20
    assert source.wait(10)
    assert fake.request_count(SEARCH) == 1
    assert len(heard.calls) == 1
    assert heard.calls[0][2] is not None


def test_success_end_to_end_through_the_chain(
    fake: FakeProvider, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Search, validated price, file written, listener called, then the next lookup is served from the file."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TOKENCOST_LINKUP_URL", fake.linkup_base)
    fake.set_linkup_answer(answer(), sources=SOURCES)
    sources = discovery_sources(cache_dir, SECRET)
    assert [s.name for s in sources] == ["linkup-cache", "linkup"]
    search = sources[1]
    assert isinstance(search, LinkupSearchSource)
    chain = PriceChain(sources)
    heard = Heard()
    chain.add_listener(heard)
    try:
        assert chain.lookup(MODEL, PROVIDER) is None
        assert chain.is_pending(MODEL, PROVIDER)
        assert search.wait(10)
    finally:
        search.close()
    ((model, provider, price, reason),) = heard.calls
    assert (model, provider, reason) == (MODEL, PROVIDER, None)
    assert price is not None
    assert price.source == "linkup"
    assert price.as_per_mtok() == {"input": Decimal(4), "output": Decimal(12), "cache_read": Decimal("0.4")}
    path = price_file_path(cache_dir, MODEL, PROVIDER)
    text = path.read_text(encoding="utf-8")
    assert "input_per_mtok_usd: 4.0" in text
    assert f"source_url: {URL}" in text
    assert "auto-resolved via web search" in text
    assert SECRET not in text
    cached = chain.lookup(MODEL, PROVIDER)
    assert cached is not None
    assert cached.source == "linkup-cache"
    assert cached.as_per_mtok() == price.as_per_mtok()
    assert not chain.is_pending(MODEL, PROVIDER)
    assert fake.request_count(SEARCH) == 1
    assert SECRET not in everything_logged(caplog)


def test_per_1k_price_is_converted(fake: FakeProvider, make_source: Callable[..., LinkupSearchSource]) -> None:
    """An answer given per 1K tokens is converted by us: $0.004 per 1K is $4 per million."""
    fake.set_linkup_answer(
        answer(input_price=0.004, output_price="0.012", cached_input_price=None, price_unit="per_1k_tokens"),
        sources=SOURCES,
    )
    price = run_once(make_source()).calls[0][2]
    assert price is not None
    assert price.as_per_mtok() == {"input": Decimal(4), "output": Decimal(12)}


def test_broken_cache_file_is_not_overwritten_by_a_search(
    fake: FakeProvider, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A file a person broke is theirs to fix: no search starts, it is logged once, the reason names it."""
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("TOKENCOST_LINKUP_URL", fake.linkup_base)
    fake.set_linkup_answer(answer(), sources=SOURCES)
    cache_dir.mkdir()
    path = price_file_path(cache_dir, MODEL, PROVIDER)
    path.write_text("input_per_mtok_usd: oops\noutput_per_mtok_usd: 12\n", encoding="utf-8")
    sources = discovery_sources(cache_dir, SECRET)
    search = sources[1]
    assert isinstance(search, LinkupSearchSource)
    chain = PriceChain(sources)
    try:
        for _ in range(3):
            assert chain.lookup(MODEL, PROVIDER) is None
            assert not chain.is_pending(MODEL, PROVIDER)
    finally:
        search.close()
    assert fake.request_count(SEARCH) == 0
    assert "input_per_mtok_usd" in (search.failure_reason(MODEL, PROVIDER) or "")
    assert "oops" in path.read_text(encoding="utf-8")
    assert len(tokencost_lines(caplog)) == 1


def test_refresh_searches_now_and_writes(
    fake: FakeProvider, cache_dir: Path, make_source: Callable[..., LinkupSearchSource]
) -> None:
    """refresh() blocks, returns the validated price, writes the file only when asked, and tells the listener."""
    fake.set_linkup_answer(answer(), sources=SOURCES)
    source = make_source()
    heard = Heard()
    source.set_listener(heard)
    shown = source.refresh(MODEL, PROVIDER, write=False)
    assert shown.input * 1_000_000 == 4
    assert not cache_dir.exists()
    source.refresh(MODEL, PROVIDER)
    assert price_file_path(cache_dir, MODEL, PROVIDER).exists()
    assert [call[2] is not None for call in heard.calls] == [True, True]


def test_refresh_failure_raises_without_the_key(
    fake: FakeProvider, cache_dir: Path, make_source: Callable[..., LinkupSearchSource]
) -> None:
    """A refresh that fails raises the reason, writes nothing and never shows the key."""
    source = make_source("lk-WRONG-1234")
    with pytest.raises(LinkupError) as info:
        source.refresh(MODEL, PROVIDER)
    assert info.value.status == 401
    assert "lk-WRONG-1234" not in str(info.value)
    assert not cache_dir.exists()
    fake.set_linkup_answer(answer(output_price=5000), sources=SOURCES)
    good = make_source()
    with pytest.raises(PriceValidationError, match="implausible output price"):
        good.refresh(MODEL, PROVIDER)
    assert not cache_dir.exists()


def test_discovery_is_off_without_a_key(cache_dir: Path) -> None:
    """Without an API key the discovery sources are the cache files only."""
    assert [s.name for s in discovery_sources(cache_dir, None)] == ["linkup-cache"]
    assert [s.name for s in discovery_sources(cache_dir, "  ")] == ["linkup-cache"]


# ---------------------------------------------------------------------- validate_answer


@pytest.mark.parametrize(
    "found", ["acme-large-2", "Acme Large 2", "ACME_LARGE_2", " acme  large-2 ", "acme.large.2", "openai/acme-large-2"]
)
def test_same_model_written_differently_is_accepted(found: str) -> None:
    """Case, spaces, dashes, underscores and a provider prefix do not matter for the model name."""
    price = validate_answer("openai/acme-large-2", answer(model_name_found=found), [])
    assert price.input * 1_000_000 == 4


@pytest.mark.parametrize(
    "found", ["acme-large-2-mini", "acme-large-2.5", "acme-large", "acme-large-20", "acme-large-2-2026-01-01", ""]
)
def test_sibling_models_are_rejected(found: str) -> None:
    """A sibling, a dated variant or a different version is not the model asked for."""
    with pytest.raises(PriceValidationError):
        validate_answer(MODEL, answer(model_name_found=found), [])


@pytest.mark.parametrize(
    ("unit", "factor"),
    [
        ("per_token", Decimal(1_000_000)),
        ("per token", Decimal(1_000_000)),
        ("per_1k_tokens", Decimal(1000)),
        ("per 1,000 tokens", Decimal(1000)),
        ("per_1m_tokens", Decimal(1)),
        ("per million tokens", Decimal(1)),
        ("USD / 1M tokens", Decimal(1)),
        ("per 1,000,000 tokens", Decimal(1)),
    ],
)
def test_units_are_converted_by_us(unit: str, factor: Decimal) -> None:
    """Per-token, per-1K and per-million wordings all give the same per-million price."""
    per_unit = Decimal(4) / factor
    price = validate_answer(
        MODEL,
        answer(input_price=str(per_unit), output_price=str(per_unit * 3), cached_input_price=None, price_unit=unit),
    )
    assert price.as_per_mtok() == {"input": Decimal(4), "output": Decimal(12)}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"price_unit": "per request"}, "unknown price unit"),
        ({"currency": "EUR"}, "not USD"),
        ({"input_price": 0.0001}, "implausible input price"),
        ({"input_price": 1001}, "implausible input price"),
        ({"output_price": 2001}, "implausible output price"),
        ({"cached_input_price": 5}, "above the input price"),
        ({"input_price": -1}, "non-negative"),
        ({"input_price": "NaN"}, "non-negative"),
        ({"input_price": True}, "not a number"),
        ({"input_price": None}, "no input_price"),
        ({"output_price": "twelve"}, "not a number"),
        ({"source_url": "ftp://acme.example/p"}, "https source URL"),
        ({"source_url": "https://acme.example/p\n- input_per_mtok_usd: 0"}, "https source URL"),
    ],
)
def test_implausible_answers_are_rejected(overrides: dict[str, Any], reason: str) -> None:
    """Each rule of validation refuses the answer with a reason saying which."""
    with pytest.raises(PriceValidationError, match=reason):
        validate_answer(MODEL, answer(**overrides), [])


def test_source_url_falls_back_to_an_https_source() -> None:
    """Without a usable source_url in the answer, the first https URL among the sources is kept."""
    sources = [{"url": "http://plain.example/"}, {"url": URL}]
    price = validate_answer(MODEL, answer(source_url=None), sources)
    assert price.source_url == URL


def test_zero_cached_price_is_billed_like_input() -> None:
    """A cached-input price of 0 means "not listed" far more often than "free": it is left unset."""
    price = validate_answer(MODEL, answer(cached_input_price=0))
    assert price.cache_read is None
    assert price.per_token("cache_read") == price.input
