"""Budget alerts posted to a webhook: the bodies, once per crossing, never blocking a call, retries, close().

Every test posts to a receiver of its own on 127.0.0.1 (``Receiver``); the crossings come from real litellm calls
against the fake provider or from ``track()``. Nothing waits on a clock: the tests wait for what they expect
(posts, log lines, threads gone) with generous bounds, and assert what happened.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import litellm
import pytest

from tokencost import Budget, CostTracker
from tokencost import webhooks as webhooks_module
from tokencost.testing import FakeProvider
from tokencost.webhooks import Webhook, alert_body

MESSAGES = [{"role": "user", "content": "hello"}]
SECRET = "T0001/B0002/s3cr3tXYZ"  # the part of a webhook URL that must never be logged
WAIT_S = 30.0
ROOT = Path(__file__).resolve().parent.parent


class Receiver:
    """A loopback HTTP server that records what is posted to it and answers as told.

    ``status``: the answer to every post. ``gate``: when cleared, each post is held (unanswered) until it is set.
    """

    def __init__(self) -> None:
        self.status = 200
        self.gate = threading.Event()
        self.gate.set()
        self.release = threading.Event()  # set at teardown: every held post ends
        self.cond = threading.Condition()
        self.bodies: list[Any] = []  # bodies answered
        self.arrived = 0  # posts received (answered or held)
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.cond:
                    receiver.arrived += 1
                    receiver.cond.notify_all()
                while not receiver.gate.wait(0.05):
                    if receiver.release.is_set():
                        return
                with receiver.cond:
                    receiver.bodies.append(json.loads(raw))
                    receiver.headers.append(dict(self.headers))
                    receiver.paths.append(self.path)
                    receiver.cond.notify_all()
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender gave up waiting
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/{SECRET}"

    def wait_for(self, predicate: Callable[[], bool]) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, WAIT_S), (
                f"receiver: {self.arrived} arrived, {len(self.bodies)} answered"
            )

    def close(self) -> None:
        self.release.set()
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def two_cents(fake: FakeProvider) -> FakeProvider:
    """Every gpt-4o call costs exactly $0.02."""
    fake.set_openai_usage("gpt-4o", prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)
    return fake


class LogWatch(logging.Handler):
    """Collects the ``tokencost`` logger's records, from any thread, and lets a test wait for one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.cond:
            self.records.append(record)
            self.cond.notify_all()

    def messages(self, part: str = "") -> list[str]:
        with self.cond:
            return [r.getMessage() for r in self.records if part in r.getMessage()]

    def wait_for(self, part: str) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: any(part in r.getMessage() for r in self.records), WAIT_S), (
                self.messages()
            )


@pytest.fixture
def logs() -> Iterator[LogWatch]:
    watch = LogWatch()
    logger = logging.getLogger("tokencost")
    logger.addHandler(watch)
    yield watch
    logger.removeHandler(watch)


def call(fake: FakeProvider, **extra: Any) -> Any:
    return litellm.completion(
        model="openai/gpt-4o", messages=MESSAGES, api_base=fake.openai_base, api_key="sk-fake", max_retries=0, **extra
    )


def webhook_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tokencost-webhook")]


def fast(url: str, **options: Any) -> Webhook:
    """A webhook whose retries come quickly (the defaults wait 0.5 s, then 1 s)."""
    return Webhook(url, **{"timeout": 5.0, "retries": 2, "backoff": 0.01, **options})


# -- bodies and once per crossing ---------------------------------------------------------------------------------
def test_litellm_calls_crossing_thresholds_post_each_once(two_cents: FakeProvider, receiver: Receiver) -> None:
    """$0.02 calls against a $0.10 budget with alerts at 50/80/100%: three posts, one per threshold, each with
    the scope, fraction, spent and limit (money as decimal strings); ``on_alert`` is called too."""
    seen: list[tuple[str, float, Decimal, Decimal]] = []
    tracker = CostTracker(
        budget="0.10",
        alert_at=(0.5, 0.8, 1.0),
        on_alert=lambda *a: seen.append(a),
        alert_webhook=receiver.url,
        raise_on_budget=False,
        print_summary=False,
        name="team-a",
    )
    litellm.callbacks = [tracker]
    for _ in range(7):
        call(two_cents)
    assert tracker.flush(WAIT_S)
    receiver.wait_for(lambda: len(receiver.bodies) >= 3)
    tracker.close()
    assert not webhook_threads()
    assert [(b["scope"], b["fraction"], b["spent"], b["limit"]) for b in receiver.bodies] == [
        ("total", 0.5, "0.06", "0.10"),
        ("total", 0.8, "0.08", "0.10"),
        ("total", 1.0, "0.10", "0.10"),
    ]
    first = receiver.bodies[0]
    assert set(first) == {"type", "ledger", "scope", "fraction", "spent", "limit", "timestamp", "text"}
    assert first["type"] == "budget_alert"
    assert first["ledger"] == "team-a"
    assert dt.datetime.fromisoformat(first["timestamp"]).utcoffset() == dt.timedelta(0)
    assert (
        first["text"] == "tokencost: budget 'total' of ledger 'team-a' reached 50% of its limit: $0.06 spent of $0.10"
    )
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert receiver.headers[0]["User-Agent"].startswith("tokencost")
    assert all(path == f"/hooks/{SECRET}" for path in receiver.paths)
    assert [(s[0], s[1], s[2], s[3]) for s in seen] == [
        ("total", 0.5, Decimal("0.06"), Decimal("0.10")),
        ("total", 0.8, Decimal("0.08"), Decimal("0.10")),
        ("total", 1.0, Decimal("0.10"), Decimal("0.10")),
    ]
    assert tracker.alert_webhook is not None
    assert (tracker.alert_webhook.delivered, tracker.alert_webhook.failed) == (3, 0)


def test_each_scope_and_each_crossing_posts_once(receiver: Receiver) -> None:
    """A per-user budget posts once per user scope; after ``reset()`` the next crossing posts again."""
    tracker = CostTracker(
        budgets=[Budget(limit_usd="0.04", per="user")],
        alert_at=(1.0,),
        alert_webhook=fast(receiver.url),
        raise_on_budget=False,
        print_summary=False,
    )
    for user in ("alice", "bob", "alice", "bob", "alice"):
        tracker.track("gpt-4o", 10_000, 500, cache_read_tokens=8_000, metadata={"user": user})
    receiver.wait_for(lambda: len(receiver.bodies) >= 2)
    tracker.reset()
    for _ in range(3):
        tracker.track("gpt-4o", 10_000, 500, cache_read_tokens=8_000, metadata={"user": "alice"})
    tracker.close()
    assert sorted((b["scope"], b["spent"]) for b in receiver.bodies) == [
        ("user=alice", "0.04"),
        ("user=alice", "0.04"),
        ("user=bob", "0.04"),
    ]


def test_slack_webhooks_get_a_slack_body(receiver: Receiver) -> None:
    """A hooks.slack.com URL gets ``{"text": ...}``; ``format="slack"`` sends it to a Slack-compatible receiver."""
    assert Webhook("https://hooks.slack.com/services/T0/B0/xyz").format == "slack"
    assert Webhook("https://hooks.slack-gov.com/services/T0/B0/xyz").format == "slack"
    assert Webhook("https://alerts.example.com/hook").format == "json"
    assert Webhook("https://hooks.slack.com/services/T0/B0/xyz", format="json").format == "json"
    tracker = CostTracker(
        budget="0.04",
        alert_at=(0.5,),
        alert_webhook=fast(receiver.url, format="slack"),
        raise_on_budget=False,
        print_summary=False,
    )
    tracker.track("gpt-4o", 10_000, 500, cache_read_tokens=8_000)
    tracker.close()
    assert receiver.bodies == [
        {"text": "tokencost: budget 'total' of ledger 'default' reached 50% of its limit: $0.02 spent of $0.04"}
    ]


def test_alert_body_money_is_exact_text() -> None:
    """Money keeps every digit, as decimal strings; the fraction is a number; the time is ISO-8601 UTC."""
    body = alert_body(
        "json",
        ledger="l",
        scope="user=alice, day",
        fraction=0.8,
        spent=Decimal("0.0139875"),
        limit=Decimal("0.017"),
        timestamp=0,
    )
    assert body["spent"] == "0.0139875"
    assert body["limit"] == "0.017"
    assert body["fraction"] == 0.8
    assert body["timestamp"] == "1970-01-01T00:00:00+00:00"
    assert "$0.0139875 spent of $0.017" in body["text"]
    json.dumps(body)  # plain JSON, no Decimal left


# -- never blocking, failures -------------------------------------------------------------------------------------
def test_calls_never_wait_for_the_webhook(two_cents: FakeProvider, receiver: Receiver) -> None:
    """With the receiver holding every post unanswered, the crossing calls (and the tracker) go on."""
    receiver.gate.clear()
    tracker = CostTracker(
        budget="0.10", alert_at=(0.2, 0.4), alert_webhook=fast(receiver.url, timeout=60.0), print_summary=False
    )
    litellm.callbacks = [tracker]
    for _ in range(4):
        assert call(two_cents).choices
    assert tracker.flush(WAIT_S)
    receiver.wait_for(lambda: receiver.arrived >= 1)
    assert tracker.total_cost == Decimal("0.08")
    assert receiver.bodies == []  # still held: the calls did not wait for it
    receiver.gate.set()
    tracker.close()
    assert [b["fraction"] for b in receiver.bodies] == [0.2, 0.4]


def test_a_receiver_answering_500_is_retried_then_given_up_and_logged_once(
    two_cents: FakeProvider, receiver: Receiver, logs: LogWatch
) -> None:
    """Each alert is tried 1 + retries times; both alerts fail; the calls succeed; one log line, host only."""
    receiver.status = 500
    tracker = CostTracker(
        budget="0.10",
        alert_at=(0.5, 0.8),
        alert_webhook=fast(receiver.url, retries=2),
        raise_on_budget=False,
        print_summary=False,
    )
    litellm.callbacks = [tracker]
    for _ in range(5):
        assert call(two_cents).choices
    assert tracker.flush(WAIT_S)
    tracker.close()
    assert receiver.arrived == 6  # two alerts, three attempts each
    assert [b["fraction"] for b in receiver.bodies] == [0.5, 0.5, 0.5, 0.8, 0.8, 0.8]
    assert tracker.alert_webhook is not None
    assert (tracker.alert_webhook.delivered, tracker.alert_webhook.failed) == (0, 2)
    failures = logs.messages("webhook")
    assert len(failures) == 1, failures
    assert "127.0.0.1" in failures[0] and "HTTP 500" in failures[0] and "3 attempt(s)" in failures[0]
    assert all(SECRET not in m and "/hooks" not in m for m in logs.messages())
    assert not webhook_threads()


def test_a_receiver_that_is_down_is_retried_then_given_up(logs: LogWatch) -> None:
    """Connection refused: retried, given up, logged once; ``track()`` returns its events all along."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    hook = fast(f"http://127.0.0.1:{port}/hooks/{SECRET}", retries=1)
    tracker = CostTracker(
        budget="0.10", alert_at=(0.2, 0.4, 0.6), alert_webhook=hook, raise_on_budget=False, print_summary=False
    )
    events = [tracker.track("gpt-4o", 10_000, 500, cache_read_tokens=8_000) for _ in range(3)]
    assert [e.cost for e in events] == [Decimal("0.02")] * 3
    logs.wait_for("could not deliver")
    tracker.close()
    assert (hook.delivered, hook.failed) == (0, 3)
    failures = logs.messages("webhook")
    assert len(failures) == 1, failures
    assert "2 attempt(s)" in failures[0]
    assert all(SECRET not in m for m in logs.messages())
    assert not webhook_threads()


def test_a_slow_receiver_times_out_and_is_retried(receiver: Receiver, logs: LogWatch) -> None:
    """A receiver that never answers: each attempt ends at the timeout, the retry too, then the alert is given up."""
    receiver.gate.clear()
    hook = fast(receiver.url, timeout=0.3, retries=1)
    tracker = CostTracker(budget="0.04", alert_at=(0.5,), alert_webhook=hook, print_summary=False)
    assert tracker.track("gpt-4o", 10_000, 500, cache_read_tokens=8_000).cost == Decimal("0.02")
    logs.wait_for("could not deliver")
    tracker.close()
    receiver.wait_for(lambda: receiver.arrived >= 2)  # the server may read the retry after the sender gave up
    assert receiver.arrived == 2
    assert (hook.delivered, hook.failed) == (0, 1)
    [failure] = logs.messages("webhook")
    assert "timed out" in failure
    assert not webhook_threads()


def test_a_later_delivery_lets_the_next_outage_be_logged(receiver: Receiver, logs: LogWatch) -> None:
    """Logged once per outage: after an alert is delivered, the next failure is logged again."""
    hook = fast(receiver.url, retries=0)
    for status in (500, 500, 200, 500):
        receiver.status = status
        before = len(receiver.bodies)
        assert hook.send({"text": status})
        receiver.wait_for(lambda before=before: len(receiver.bodies) > before)  # type: ignore[misc]
    assert hook.close()
    assert (hook.delivered, hook.failed) == (1, 3)
    assert len(logs.messages("could not deliver")) == 2


def test_a_full_queue_drops_alerts_and_logs_once(receiver: Receiver, logs: LogWatch) -> None:
    """With the receiver holding the first post, sends past the queue's size are dropped, logged once."""
    receiver.gate.clear()
    hook = fast(receiver.url, queue_size=2)
    accepted = [hook.send({"n": i}) for i in range(8)]
    assert accepted[:2] == [True, True]
    assert accepted.count(False) >= 5  # at most one in flight and two queued
    assert len(logs.messages("full")) == 1
    receiver.gate.set()
    assert hook.close()
    assert hook.delivered == accepted.count(True)
    assert hook.failed == accepted.count(False)
    assert not webhook_threads()


# -- close --------------------------------------------------------------------------------------------------------
def test_close_delivers_what_is_queued(receiver: Receiver) -> None:
    """Alerts still queued when the tracker closes are delivered before close() returns."""
    receiver.gate.clear()
    tracker = CostTracker(
        budgets=[Budget(limit_usd="0.02", per="user")],
        alert_at=(1.0,),
        alert_webhook=fast(receiver.url),
        raise_on_budget=False,
        print_summary=False,
    )
    for user in ("u1", "u2", "u3", "u4", "u5"):
        tracker.track("gpt-4o", 10_000, 500, cache_read_tokens=8_000, metadata={"user": user})
    assert receiver.bodies == []  # nothing delivered yet
    closing = threading.Thread(target=tracker.close)
    closing.start()
    receiver.gate.set()
    closing.join(WAIT_S)
    assert not closing.is_alive()
    assert sorted(b["scope"] for b in receiver.bodies) == [f"user=u{i}" for i in range(1, 6)]
    assert not webhook_threads()


def test_close_is_bounded_when_the_receiver_never_answers(receiver: Receiver, logs: LogWatch) -> None:
    """close(timeout) stops waiting, drops what is left (logged once) and leaves no thread behind."""
    receiver.gate.clear()
    hook = fast(receiver.url, timeout=0.5)
    for i in range(3):
        assert hook.send({"n": i})
    assert hook.close(timeout=0.2) is False
    assert not webhook_threads()
    assert hook.delivered == 0
    assert hook.failed == 3
    assert not hook.send({"n": 4})  # closed: dropped
    assert any("not delivered before close" in m for m in logs.messages())


def test_an_idle_sender_stops_its_thread(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread ends after a while without alerts (a tracker never closed leaves none); the next alert starts one."""
    monkeypatch.setattr(webhooks_module, "IDLE_S", 0.05)
    hook = fast(receiver.url)
    for round_ in range(2):
        assert hook.send({"round": round_})
        receiver.wait_for(lambda round_=round_: len(receiver.bodies) == round_ + 1)  # type: ignore[misc]
        for thread in webhook_threads():
            thread.join(WAIT_S)
        assert not webhook_threads()
    assert hook.delivered == 2
    hook.close()


def test_queued_alerts_are_delivered_at_interpreter_exit(receiver: Receiver, tmp_path: Path) -> None:
    """A tracker never closed: its alert still reaches the webhook when the interpreter exits."""
    script = tmp_path / "crossing.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import litellm
            from tokencost import CostTracker
            tracker = CostTracker(budget="0.02", alert_at=(1.0,), alert_webhook={receiver.url!r}, print_summary=False)
            litellm.callbacks = [tracker]
            tracker.track("gpt-4o", 10_000, 500, cache_read_tokens=8_000)
            """
        )
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert [(b["scope"], b["spent"]) for b in receiver.bodies] == [("total", "0.02")]


# -- arguments ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        f"hooks.slack.com/services/{SECRET}",
        "http://",
        f"https://hooks.slack.com/services/{SECRET} ",
        f"https://hooks.slack.com:notaport/{SECRET}",
        "",
    ],
)
def test_a_url_that_is_not_http_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ValueError, match="alert_webhook must be an http") as info:
        CostTracker(alert_at=(0.8,), alert_webhook=url, print_summary=False)
    assert SECRET not in str(info.value)


def test_webhook_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="alert_webhook"):
        CostTracker(alert_at=(0.8,), alert_webhook=5, print_summary=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs alert_at"):
        CostTracker(alert_webhook="https://example.com/hook", print_summary=False)
    for options in ({"timeout": 0}, {"retries": -1}, {"retries": 1.5}, {"backoff": -1}, {"queue_size": 0}):
        with pytest.raises(ValueError, match=next(iter(options))):
            Webhook("https://example.com/hook", **options)
    with pytest.raises(ValueError, match="format"):
        Webhook("https://example.com/hook", format="teams")  # type: ignore[arg-type]
    hook = Webhook(f"https://hooks.slack.com/services/{SECRET}")
    assert SECRET not in repr(hook)
    assert hook.host == "hooks.slack.com"
    assert not webhook_threads()  # no thread before the first alert
