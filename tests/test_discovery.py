"""Price discovery wired into the tracker: a call for an unknown model is repriced when Linkup answers."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import litellm
import pytest

from tokencost import CostTracker
from tokencost.testing import FakeProvider

ANSWER = {
    "model_name_found": "acme-large-2",
    "input_price": 4.0,
    "output_price": 12.0,
    "cached_input_price": 0.4,
    "price_unit": "per_1m_tokens",
    "currency": "USD",
    "source_url": "https://acme.example/pricing",
}


@pytest.fixture
def discovering(fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CostTracker:
    """A tracker whose Linkup searches go to the loopback fake."""
    monkeypatch.setenv("TOKENCOST_LINKUP_URL", fake.linkup_base)
    tracker = CostTracker(linkup_api_key=fake.linkup_api_key, price_cache_dir=tmp_path / "costs", print_summary=False)
    litellm.callbacks = [tracker]
    return tracker


def test_unknown_model_is_pending_then_repriced(discovering: CostTracker, fake: FakeProvider, tmp_path: Path) -> None:
    """The call returns at once, recorded pending; when the price arrives it is repriced and cached in a file."""
    fake.set_linkup_answer(ANSWER, sources=[{"name": "Acme", "url": "https://acme.example/pricing", "snippet": ""}])
    event = discovering.track(
        model="acme-large-2", prompt_tokens=1_000_000, completion_tokens=1_000_000, provider="acme"
    )
    assert event.cost is None
    assert event.status == "pending"
    assert discovering.flush(10)
    (entry,) = discovering.history
    assert entry["cost"] == Decimal("16.00")
    assert entry["price_source"] == "linkup"
    assert discovering.total_cost == Decimal("16.00")
    assert discovering.unpriced_count == 0
    assert fake.request_count("/v1/search") == 1
    files = list((tmp_path / "costs").glob("*.md"))
    assert len(files) == 1
    assert fake.linkup_api_key not in files[0].read_text()
    # The next call is served by the cache file, with no new search.
    again = discovering.track(model="acme-large-2", prompt_tokens=1_000_000, completion_tokens=0, provider="acme")
    assert again.cost == Decimal("4.00")
    assert again.price_source == "linkup-cache"
    assert fake.request_count("/v1/search") == 1


def test_failed_search_leaves_the_call_unpriced_with_a_reason(
    discovering: CostTracker, fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """A Linkup error never breaks the call: the event stays unpriced, and the key is not logged."""
    caplog.set_level(logging.DEBUG, logger="tokencost")
    fake.queue_linkup(500)
    discovering.track(model="acme-large-3", prompt_tokens=10, completion_tokens=5, provider="acme")
    discovering.flush(10)
    (entry,) = discovering.history
    assert entry["priced"] is False
    assert discovering.unpriced_count == 1
    assert fake.linkup_api_key not in caplog.text


def test_linkup_key_false_turns_discovery_off(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    """linkup_api_key=False ignores LINKUP_API_KEY: no search is made."""
    monkeypatch.setenv("LINKUP_API_KEY", fake.linkup_api_key)
    monkeypatch.setenv("TOKENCOST_LINKUP_URL", fake.linkup_base)
    tracker = CostTracker(linkup_api_key=False, print_summary=False)
    event = tracker.track(model="acme-large-4", prompt_tokens=10, completion_tokens=5)
    assert event.status == "ok"
    assert event.cost is None
    assert fake.request_count("/v1/search") == 0
    tracker.close()
