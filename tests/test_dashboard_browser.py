"""The dashboard in a real headless Chromium: it draws the seeded data, shows hostile names as text, refreshes
the view its URL asks for, leads from a bar to its calls, and reads on a 390 px phone as on a 1280 px screen.

Needs Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``, ``/usr/bin/chromedriver``) and
selenium. Locally a missing browser skips these tests; under ``CI=true`` it fails them.

``TOKENCOST_SCREENSHOT=docs/dashboard.png pytest tests/test_dashboard_browser.py -k screenshot`` also saves the
README's screenshots of a demo ledger (at a fixed date): the page at 1280 px there, and at 390 px beside it as
``dashboard-phone.png``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokencost import Budget, CostTracker, register_price
from tokencost.server import create_app

_IMPORT_ERROR: ImportError | None = None
try:
    import uvicorn
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as exc:  # reported by _require_browser: a skip locally, a failure under CI
    _IMPORT_ERROR = exc

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Flags for a quiet, offline, throwaway browser (no sandbox: CI runs as root in a container).
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
TOKEN = "browser-test-token"
XSS = "<script>alert(1)</script>"
DAY = 86_400.0


def _require_browser() -> None:
    """Skip (locally) or fail (under CI=true) when the browser, its driver, selenium or uvicorn is missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if _IMPORT_ERROR is not None:
        missing.append(f"the {_IMPORT_ERROR.name} package")
    if missing:
        reason = f"browser tests need {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason, allow_module_level=True)


_require_browser()


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free loopback port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile, driven by Debian's chromedriver."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1280,1100")
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


def seed_worker(url: str, *, name: str = "default", days: int = 5, seed: int = 7, today: float | None = None) -> int:
    """Record calls over the last ``days`` days up to ``today`` (midnight UTC; default: today's) from a worker's
    tracker sharing the store; return how many."""
    rng = random.Random(seed)
    # Calls from 01:00 UTC on each of the last ``days`` UTC dates (later today is fine: only the date matters
    # to the charts), so the days drawn do not depend on the time of day the test runs.
    if today is None:
        today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    now = [today - (days - 1) * DAY]
    worker = CostTracker(
        store=url,
        name=name,
        print_summary=False,
        budgets=[Budget(limit_usd=20, window="month"), Budget(limit_usd="1.5", window="day", per="user")],
        clock=lambda: now[0],
    )
    models = ("gpt-4o", "claude-sonnet-4-5", "gpt-4o-mini", "o3")
    endpoints = ("/chat", "/summarize", "/search", "/classify")
    users = ("alice", "bob", "carol")
    tags = ((), ("batch",), ("eval",), ("batch", "eu"))
    count = 0
    for day in range(days):
        now[0] = today - (days - 1 - day) * DAY + 3_600
        for _ in range(6 + day * 2):
            now[0] += rng.randrange(60, 900)
            model = rng.choice(models)
            prompt = rng.randrange(2_000, 40_000)
            tagged = rng.choice(tags)
            worker.track(
                model=model,
                prompt_tokens=prompt,
                completion_tokens=rng.randrange(200, 4_000),
                cache_read_tokens=prompt // 2 if model != "o3" else 0,
                metadata={
                    "endpoint": rng.choice(endpoints),
                    "user": rng.choice(users),
                    **({"tags": list(tagged)} if tagged else {}),
                },
            )
            count += 1
    worker.flush()
    worker.close()
    return count


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A live server over a SQLite ledger seeded by a worker over five days; yields (base URL, calls seeded)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'costs.db'}"
    count = seed_worker(url)
    with live_server(create_app(url, token=TOKEN)) as base:
        yield base, count


def post(base: str, **body: Any) -> dict[str, Any]:
    """POST /track with the token; return the event."""
    response = httpx.post(f"{base}/track", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def marks(driver: webdriver.Chrome, section: str) -> list[Any]:
    """Return the drawn data marks (SVG rects) of one dashboard section."""
    return list(driver.find_elements(By.CSS_SELECTOR, f"#{section} svg rect.mark"))


def page_state(driver: webdriver.Chrome) -> dict[str, Any]:
    """Read what a refreshing page shows in one script run, so a redraw cannot replace elements between reads."""
    script = """
    const text = (id) => document.getElementById(id).textContent;
    return {marks: document.querySelectorAll("#by-model svg rect.mark").length, recent: text("recent"),
            endpoints: text("by-endpoint"), status: text("status")};
    """
    return dict(driver.execute_script(script))


def wait_for(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], Any], timeout: float = 15) -> Any:
    """Wait until ``condition(driver)`` is truthy."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def wait_for_state(driver: webdriver.Chrome, shows: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Wait until the page's state (one ``page_state`` read) ``shows`` what is expected; return that state."""

    def read(d: webdriver.Chrome) -> dict[str, Any] | None:
        state = page_state(d)
        return state if shows(state) else None

    return dict(wait_for(driver, read))


def test_charts_draw_the_seeded_data(driver: webdriver.Chrome, seeded: tuple[str, int]) -> None:
    """Each chart has a rendered mark per seeded series: day x model stacks, models, endpoints, budget gauges."""
    base, count = seeded
    driver.get(f"{base}/?refresh=60")
    assert driver.title == "tokencost · default"
    daily = marks(driver, "daily")
    # Four models over five days: every day with calls has at least one stacked segment, at most four.
    assert 5 <= len(daily) <= 20
    days_drawn = {rect.get_attribute("x") for rect in daily}
    assert len(days_drawn) == 5
    assert len(marks(driver, "by-model")) == 4
    assert len(marks(driver, "by-endpoint")) == 4
    gauges = driver.find_elements(By.CSS_SELECTOR, "#budgets svg rect.gauge")
    assert len(gauges) >= 2  # the monthly total and at least one user today
    # The browser really laid them out: every bar has a size on screen.
    for rect in [*daily, *marks(driver, "by-model"), *marks(driver, "by-endpoint")]:
        box = rect.rect
        assert box["width"] > 0
        assert box["height"] > 0
    rows = driver.find_elements(By.CSS_SELECTOR, "#recent tbody tr")
    assert len(rows) == 15
    calls = driver.find_element(By.CSS_SELECTOR, ".stats").get_attribute("data-requests")
    assert calls == str(count)


def test_hostile_model_name_renders_as_text(driver: webdriver.Chrome, seeded: tuple[str, int]) -> None:
    """A model named <script>alert(1)</script> and markup in an endpoint show as text; nothing runs."""
    base, _ = seeded
    register_price(XSS, input_per_mtok=3, output_per_mtok=15)  # priced, so it gets bars in the charts too
    post(
        base, model=XSS, prompt_tokens=50_000, completion_tokens=2_000, endpoint='<img src=x onerror="window.pwned=1">'
    )
    driver.get(f"{base}/?refresh=60")
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - reading it is what raises when there is no alert
    assert driver.execute_script("return window.pwned === undefined")
    recent = driver.find_element(By.ID, "recent").text
    assert XSS in recent
    assert "<img src=x onerror=" in driver.find_element(By.ID, "by-endpoint").text
    assert len(driver.find_elements(By.TAG_NAME, "script")) == 1  # only the page's own refresh script
    assert not driver.find_elements(By.CSS_SELECTOR, "#charts img")
    titles = [t.get_attribute("textContent") for t in driver.find_elements(By.CSS_SELECTOR, "#by-model svg title")]
    assert any(XSS in title for title in titles)


def test_page_refreshes_without_reload(driver: webdriver.Chrome, seeded: tuple[str, int]) -> None:
    """A call tracked through the API appears on an open page within seconds, without reloading it."""
    base, _ = seeded
    driver.get(f"{base}/?refresh=1")
    driver.execute_script("window.tokencostMarker = 42;")
    before = page_state(driver)["marks"]
    probe = "refresh-probe-model"
    register_price(probe, input_per_mtok=1, output_per_mtok=2)
    post(base, model=probe, prompt_tokens=1_000, completion_tokens=100, endpoint="/probe")
    shown = wait_for_state(driver, lambda state: probe in state["recent"])
    assert driver.execute_script("return window.tokencostMarker") == 42  # same document: no reload
    assert shown["marks"] == before + 1
    assert "/probe" in shown["endpoints"]
    assert "live" in shown["status"]


def test_page_survives_a_server_outage(driver: webdriver.Chrome, tmp_path: Path) -> None:
    """When the server goes away the page keeps its last charts and says it cannot refresh."""
    url = f"sqlite:///{tmp_path / 'costs.db'}"
    seed_worker(url, days=2)
    with live_server(create_app(url)) as base:
        driver.get(f"{base}/?refresh=1")
        drawn = page_state(driver)["marks"]
        assert drawn > 0
    outage = wait_for_state(driver, lambda state: "cannot refresh" in state["status"])
    assert outage["marks"] == drawn


# -- filters and drill-down at 1280 px ----------------------------------------------------------------------------
def test_the_filter_form_puts_the_view_in_the_url_and_the_refresh_keeps_it(
    driver: webdriver.Chrome, seeded: tuple[str, int]
) -> None:
    """Filtering from the form gives a URL that holds the view; the page refreshes that view, not the whole ledger."""
    base, _ = seeded
    driver.get(f"{base}/?refresh=1")
    field = driver.find_element(By.CSS_SELECTOR, 'form.filters input[name="model"]')
    field.send_keys("o3")
    driver.find_element(By.CSS_SELECTOR, "form.filters button").click()
    wait_for(driver, lambda d: "model=o3" in d.current_url)
    assert "refresh=1" in driver.current_url
    assert len(marks(driver, "by-model")) == 1
    driver.execute_script("window.tokencostMarker = 7;")
    probe = "filtered-out-probe"
    register_price(probe, input_per_mtok=1, output_per_mtok=2)
    post(base, model=probe, prompt_tokens=1_000, completion_tokens=100)
    post(base, model="o3", prompt_tokens=1_000, completion_tokens=100, endpoint="/o3-probe")
    shown = wait_for_state(driver, lambda state: "/o3-probe" in state["recent"])
    assert driver.execute_script("return window.tokencostMarker") == 7  # refreshed in place
    assert probe not in shown["recent"]
    assert shown["marks"] == 1
    chip = driver.find_element(By.CSS_SELECTOR, ".chips a.chip")
    assert "model=o3" in chip.text
    chip.click()
    wait_for(driver, lambda d: "model=o3" not in d.current_url)
    assert len(marks(driver, "by-model")) > 1


def test_a_bar_leads_to_its_calls(driver: webdriver.Chrome, seeded: tuple[str, int]) -> None:
    """Clicking a model's bar opens the calls view of that model; clicking a day's segment, of that day too."""
    base, _ = seeded
    driver.get(f"{base}/?refresh=60")
    bar = driver.find_elements(By.CSS_SELECTOR, "#by-model svg a rect.mark")[0]
    model = bar.find_element(By.TAG_NAME, "title").get_attribute("textContent").split(" · ")[0]
    bar.click()
    wait_for(driver, lambda d: "/calls?" in d.current_url)
    rows = driver.find_elements(By.CSS_SELECTOR, "#calls tbody tr")
    assert rows
    assert {row.find_elements(By.TAG_NAME, "td")[1].get_attribute("title") for row in rows} == {model}
    driver.get(f"{base}/?refresh=60")
    segment = max(marks(driver, "daily"), key=lambda rect: rect.rect["height"])
    title = segment.find_element(By.TAG_NAME, "title").get_attribute("textContent")
    day, seg_model = title.split(" · ")[:2]
    segment.click()
    wait_for(driver, lambda d: "/calls?" in d.current_url)
    assert f"since={day}&until={day}" in driver.current_url
    rows = driver.find_elements(By.CSS_SELECTOR, "#calls tbody tr")
    assert rows
    for row in rows:
        cells = row.find_elements(By.TAG_NAME, "td")
        assert cells[0].text.startswith(day)
        assert cells[1].get_attribute("title") == seg_model


# -- layout at 1280 and 390 px ------------------------------------------------------------------------------------
@contextlib.contextmanager
def viewport(driver: webdriver.Chrome, width: int, height: int = 844) -> Iterator[None]:
    """Emulate a ``width`` px wide screen (a phone's at 390: mobile, the page's viewport meta honoured)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    try:
        yield
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


LAYOUT = """
const width = document.documentElement.clientWidth;
const shown = (el) => getComputedStyle(el).display !== "none" && el.getBoundingClientRect().width > 0;
const texts = [...document.querySelectorAll("svg.chart text")].filter(shown);
const px = (t) => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a;
const days = [...document.querySelectorAll("#daily svg text.day")].filter(shown)
  .map((t) => t.getBoundingClientRect()).sort((a, b) => a.left - b.left);
const overlaps = days.slice(1).filter((box, i) => box.left < days[i].right).length;
const table = document.querySelector(".scroll");
const cost = [...document.querySelectorAll(".recent .cost, #calls .cost")].map((c) => c.getBoundingClientRect());
return {
  viewport: window.innerWidth,
  width: width,
  pageWidth: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
  smallestText: Math.min(...texts.map(px)),
  texts: texts.length,
  dayLabels: days.length,
  overlaps: overlaps,
  tableOverflows: table ? table.scrollWidth > table.clientWidth : null,
  costCells: cost.length,
  costHidden: cost.filter((b) => b.width === 0 || b.left < 0 || b.right > width + 0.5).length,
};
"""


@pytest.mark.parametrize("width", [1280, 390])
def test_the_page_reads_at_each_width(driver: webdriver.Chrome, seeded: tuple[str, int], width: int) -> None:
    """No sideways scroll of the page, chart text at 11 px or more (never scaled down), day labels apart, and the
    cost column in view; at 390 px the calls table scrolls inside its card instead of widening the page."""
    base, _ = seeded
    with viewport(driver, width):
        for path in ("/?refresh=60", "/calls?limit=30"):
            driver.get(base + path)
            layout = dict(driver.execute_script(LAYOUT))
            assert layout["viewport"] == width, path
            assert layout["pageWidth"] <= layout["width"], (path, layout)  # the width inside any scrollbar
            assert layout["costCells"] > 1, path
            assert layout["costHidden"] == 0, (path, layout)
            if path.startswith("/?"):
                assert layout["texts"] > 10
                assert layout["smallestText"] >= 11, layout
                assert layout["dayLabels"] >= 2
                assert layout["overlaps"] == 0, layout
            if width == 390:
                assert layout["tableOverflows"] is True, (path, layout)


DEMO_TODAY = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc).timestamp()
DEMO_NOW = DEMO_TODAY + 15 * 3_600  # 15:00 UTC, after the day's calls


def _grow_to_fit(driver: webdriver.Chrome, width: int) -> None:
    """Make the viewport as tall as the page, so a screenshot holds all of it."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": min(height, 6000), "deviceScaleFactor": 1, "mobile": width < 600},
    )


def test_demo_dashboard_screenshot(driver: webdriver.Chrome, tmp_path: Path) -> None:
    """A two-week demo ledger renders fully; with TOKENCOST_SCREENSHOT set, the page is saved as a PNG there at
    1280 px, and beside it (``-phone``) at 390 px."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    seed_worker(url, name="demo", days=14, seed=11, today=DEMO_TODAY)
    with live_server(create_app(url, name="demo", clock=lambda: DEMO_NOW)) as base:
        target = os.environ.get("TOKENCOST_SCREENSHOT")
        for width, suffix in ((1280, ""), (390, "-phone")):
            with viewport(driver, width):
                driver.get(f"{base}/?refresh=60")
                assert len({r.get_attribute("x") for r in marks(driver, "daily")}) == 14
                assert "Runs out" in driver.find_element(By.ID, "budgets").text
                if target:
                    _grow_to_fit(driver, width)
                    shot = tmp_path / f"dashboard{suffix}.png"
                    assert driver.save_screenshot(str(shot))
                    out = Path(target)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(shot, out.with_name(f"{out.stem}{suffix}{out.suffix}"))
