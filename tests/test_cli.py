"""The ``tokencost`` command: every subcommand, and every error as one line on stderr with exit status 2."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import csv
import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path

import litellm
import pytest
from click.testing import CliRunner, Result
from pytest_redis import factories

from tokencost.cli import main
from tokencost.events import Event
from tokencost.pricing.litellm_map import LitellmMapSource
from tokencost.stores import store_from_url
from tokencost.testing import FakeProvider
from tokencost.usage import Usage

MAP = LitellmMapSource()
# A redis-server of our own on a free port (other suites may run one on the default port).
redis_server = factories.redis_proc(port=None)
ROOT = Path(__file__).resolve().parent.parent


def event(model: str, ts: float, *, input: int, cache_read: int = 0, output: int, user: str | None = None) -> Event:
    """An event priced from litellm's map, as the tracker records it."""
    usage = Usage(input=input, cache_read=cache_read, output=output)
    price = MAP.lookup(model, None)
    return Event(
        call_id=uuid.uuid4().hex,
        timestamp=ts,
        model=model,
        provider="openai",
        usage=usage,
        cost_units=None if price is None else price.cost_units(usage),
        price_source=None if price is None else price.source,
        price=price,
        saved_units=0 if price is None else price.saved_units(usage),
        metadata={} if user is None else {"user": user},
    )


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    """A SQLite ledger: four gpt-4o calls at $0.02 (two users), one gpt-4o-mini call, one unpriced call; now."""
    path = tmp_path / "costs.db"
    store = store_from_url(f"sqlite:///{path}")
    now = time.time()
    for i in range(4):
        user = "alice" if i % 2 else "bob"
        store.record("default", event("gpt-4o", now - i, input=2_000, cache_read=8_000, output=500, user=user))
    store.record("default", event("gpt-4o-mini", now - 10, input=1_000, output=100, user="carol"))
    store.record("default", event("acme-unknown", now - 20, input=50, output=5))
    store.close()
    return f"sqlite:///{path}"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """Invoke the command in process, stdout and stderr kept apart."""
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def assert_one_line_error(result: Result, fragment: str) -> None:
    """Exit status 2, nothing on stdout, exactly one line on stderr naming the problem, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tokencost: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def hand_cost(model: str, *, input: int, cache_read: int = 0, output: int) -> Decimal:
    """What litellm's map charges for these tokens, from the raw map values."""
    info = litellm.model_cost[model]
    cache = info.get("cache_read_input_token_cost", info["input_cost_per_token"])
    return (
        input * Decimal(str(info["input_cost_per_token"]))
        + cache_read * Decimal(str(cache))
        + output * Decimal(str(info["output_cost_per_token"]))
    )


# ---------------------------------------------------------------------------------------------------- report


def test_report_prints_the_table(ledger: str) -> None:
    """report shows each model, the exact total, the unpriced line and the cache savings."""
    result = run("report", "--store", ledger)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for fragment in ("by model", "gpt-4o", "gpt-4o-mini", "acme-unknown", "⚠ 1 call unpriced", "Prompt cache:"):
        assert fragment in out
    total = Decimal("0.08") + hand_cost("gpt-4o-mini", input=1_000, output=100)
    assert f"${total:.4f}" in out
    assert result.stderr == ""


def test_report_json_by_user_and_window(ledger: str) -> None:
    """--json prints the summary data; --by groups by a metadata key; --window day keeps today's calls."""
    data = json.loads(run("report", "--store", ledger, "--by", "user", "--json").stdout)
    costs = {row["key"]: Decimal(row["cost"]) for row in data["groups"]}
    assert costs["alice"] == Decimal("0.04")
    assert costs["bob"] == Decimal("0.04")
    assert data["unpriced"] == 1
    today = json.loads(run("report", "--store", ledger, "--window", "day", "--json").stdout)
    assert today["window"].startswith("today (")
    assert 0 < today["requests"] <= 6  # a run just after midnight UTC may see fewer
    empty = json.loads(run("report", "--store", ledger, "--since", "2999-01-01", "--json").stdout)
    assert empty["requests"] == 0
    assert empty["cost"] == "0.00"


def test_report_reads_the_store_from_the_environment(ledger: str, tmp_path: Path) -> None:
    """Without --store, TOKENCOST_STORE names the ledger; --name picks another ledger in it."""
    result = run("report", "--json", env={"TOKENCOST_STORE": ledger})
    assert json.loads(result.stdout)["requests"] == 6
    store = store_from_url(ledger)
    store.record("batch", event("gpt-4o", time.time(), input=2_000, cache_read=8_000, output=500))
    store.close()
    other = run("report", "--json", "--name", "batch", env={"TOKENCOST_STORE": ledger})
    assert json.loads(other.stdout)["requests"] == 1


# ---------------------------------------------------------------------------------------------------- typos


@pytest.mark.parametrize("command", [["report"], ["export"], ["whatif", "--model", "gpt-4o"], ["reservations"]])
def test_an_unknown_ledger_name_says_which_exist(ledger: str, command: list[str]) -> None:
    """--name nosuch is an error naming the ledgers the store holds, not an empty report with exit 0."""
    store = store_from_url(ledger)
    store.record("batch", event("gpt-4o", time.time(), input=10, output=5))
    store.close()
    result = run(*command, "--store", ledger, "--name", "nosuch")
    assert_one_line_error(result, "no ledger named 'nosuch'; ledgers here: 'batch', 'default'")


def test_an_unknown_group_key_says_which_exist(ledger: str) -> None:
    """--by nonsense is an error listing the built-in keys and the metadata keys recorded, not one (none) row."""
    result = run("report", "--store", ledger, "--by", "nonsense")
    assert_one_line_error(result, "no recorded call has the key 'nonsense'")
    assert "model, provider" in result.stderr
    assert "metadata key (user)" in result.stderr
    # A metadata key some calls have is fine, and so is a built-in key.
    assert run("report", "--store", ledger, "--by", "user").exit_code == 0
    assert run("report", "--store", ledger, "--by", "price_source").exit_code == 0


@pytest.mark.parametrize("output", ["usage.parquet", "usage"])
def test_an_unknown_export_suffix_is_refused(ledger: str, tmp_path: Path, output: str) -> None:
    """-o usage.parquet is refused (it used to write CSV under that name); --format still decides when given."""
    target = tmp_path / output
    assert_one_line_error(run("export", "--store", ledger, "-o", str(target)), "use .csv, .json or .jsonl")
    assert not target.exists()
    done = run("export", "--store", ledger, "-o", str(target), "--format", "jsonl")
    assert done.exit_code == 0, done.stderr
    assert len(target.read_text().splitlines()) == 6


def test_default_store_is_tokencost_db_in_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no --store and no TOKENCOST_STORE the command looks for ./tokencost.db, and does not create it."""
    monkeypatch.chdir(tmp_path)
    result = run("report", env={"TOKENCOST_STORE": None})
    assert_one_line_error(result, "no ledger at tokencost.db")
    assert not (tmp_path / "tokencost.db").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--since", "lastweek"], "--since: cannot read 'lastweek'"),
        (["--until", "2026-02-30"], "--until: cannot read"),
        (["--window", "week"], "'week' is not one of"),
        (["--bogus"], "No such option"),
        (["--window", "day", "--since", "2026-11-01"], "not both"),
    ],
)
def test_report_bad_arguments_are_one_line(ledger: str, args: list[str], fragment: str) -> None:
    """Bad dates, choices and options: one line on stderr, exit status 2."""
    assert_one_line_error(run("report", "--store", ledger, *args), fragment)


def test_missing_sqlite_file_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    """report and export on a SQLite path that does not exist fail in one line and create nothing."""
    missing = tmp_path / "nowhere" / "costs.db"
    for command in (["report"], ["export", "-o", str(tmp_path / "out.csv")], ["whatif", "--model", "gpt-4o"]):
        assert_one_line_error(run(*command, "--store", f"sqlite:///{missing}"), "does not exist")
    assert not missing.parent.exists()
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("memory://", "memory://"),
        ("ftp://example/costs", "unknown store URL"),
        ("sqlite:///", "malformed SQLite store URL"),
    ],
)
def test_unusable_store_urls_are_one_line(url: str, fragment: str) -> None:
    """A store URL that cannot hold a ledger is refused in one line."""
    assert_one_line_error(run("report", "--store", url), fragment)


def test_a_file_that_is_not_a_ledger_is_one_line(tmp_path: Path) -> None:
    """A file that is not a SQLite database is reported as such, in one line."""
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are not the tables you are looking for" * 100)
    assert_one_line_error(run("report", "--store", f"sqlite:///{path}"), "not a database")


def test_a_ledger_a_writer_holds_locked_still_reports(ledger: str) -> None:
    """A ledger another process holds write-locked (a worker mid-batch) is read without waiting: the file is in
    WAL mode, where readers are not blocked by a writer, and opening it takes no write lock."""
    holder = sqlite3.connect(ledger.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        result = run("report", "--store", ledger, "--lock-timeout", "0.2", "--json")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["requests"] == 6


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_redis_that_is_down_is_one_line() -> None:
    """A Redis URL where nothing listens fails in one line (whatever the redis backend's own wording)."""
    result = run("report", "--store", f"redis://127.0.0.1:{free_port()}/0")
    assert_one_line_error(result, "")


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """A running redis-server's URL; without the binary: skip locally, fail under CI."""
    import shutil

    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    proc = request.getfixturevalue("redis_server")
    return f"redis://{proc.host}:{proc.port}/0"


@pytest.mark.redis
def test_report_and_export_read_a_redis_ledger(redis_url: str) -> None:
    """report and export read a ledger kept in Redis, and agree on the total to the last digit."""
    store = store_from_url(redis_url)
    now = time.time()
    for i in range(3):
        store.record("team", event("gpt-4o", now - i, input=2_000, cache_read=8_000, output=500, user="dana"))
    store.close()
    data = json.loads(run("report", "--store", redis_url, "--name", "team", "--json").stdout)
    assert data["cost"] == "0.06"
    assert data["groups"][0]["key"] == "gpt-4o"
    lines = run("export", "--store", redis_url, "--name", "team", "--format", "jsonl").stdout.splitlines()
    assert sum(Decimal(json.loads(line)["cost"]) for line in lines) == Decimal("0.06")


def test_store_passwords_are_not_echoed() -> None:
    """A store URL's password never appears in the error line."""
    result = run("report", "--store", f"redis://user:hunter2secret@127.0.0.1:{free_port()}/0")
    assert result.exit_code == 2
    assert "hunter2secret" not in result.stderr


# ---------------------------------------------------------------------------------------------------- export


def test_export_csv_sums_to_the_report_total(ledger: str, tmp_path: Path) -> None:
    """export writes every call to the file; its costs add up to report --json's total exactly."""
    out = tmp_path / "costs.csv"
    result = run("export", "--store", ledger, "--format", "csv", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stderr == f"tokencost: exported 6 calls to {out}\n"  # no progress bar off a terminal
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 6
    total = json.loads(run("report", "--store", ledger, "--json").stdout)["cost"]
    assert sum(Decimal(r["cost"]) for r in rows if r["cost"]) == Decimal(total)
    assert {r["model"] for r in rows if r["priced"] == "false"} == {"acme-unknown"}


def test_export_json_to_stdout_and_format_from_suffix(ledger: str, tmp_path: Path) -> None:
    """Without -o the export goes to stdout; without --format the -o suffix picks it; --since filters."""
    records = json.loads(run("export", "--store", ledger, "--format", "json").stdout)
    assert len(records) == 6
    assert all(isinstance(r["cost"], (str, type(None))) for r in records)
    out = tmp_path / "costs.jsonl"
    assert run("export", "--store", ledger, "-o", str(out)).exit_code == 0
    assert len([json.loads(line) for line in out.read_text().splitlines()]) == 6
    none = run("export", "--store", ledger, "--format", "jsonl", "--since", "2999-01-01")
    assert none.stdout == ""


def test_export_to_a_missing_folder_is_one_line(ledger: str, tmp_path: Path) -> None:
    """An output path that cannot be written fails in one line."""
    target = tmp_path / "no" / "such" / "dir.csv"
    assert_one_line_error(run("export", "--store", ledger, "-o", str(target)), f"cannot write {target}: No such file")


# ---------------------------------------------------------------------------------------------------- whatif


def test_whatif_json_matches_prices_computed_by_hand(ledger: str) -> None:
    """whatif --model reprices each recorded model's tokens at the target's litellm prices."""
    data = json.loads(run("whatif", "--store", ledger, "--model", "gpt-4o-mini", "--from", "gpt-4o", "--json").stdout)
    (row,) = data["models"]
    assert row["model"] == "gpt-4o"
    assert Decimal(row["recorded_cost"]) == Decimal("0.08")
    expected = hand_cost("gpt-4o-mini", input=8_000, cache_read=32_000, output=2_000)
    assert Decimal(row["repriced_cost"]) == expected
    assert Decimal(data["cost_difference"]) == expected - Decimal("0.08")


def test_whatif_table_and_top(ledger: str) -> None:
    """The table shows the target and each recorded model; --top N lists N cheaper models."""
    result = run("whatif", "--store", ledger, "--model", "gpt-4o-mini", "--top", "3")
    assert result.exit_code == 0, result.output
    assert "What if every call used gpt-4o-mini" in result.stdout
    assert "Cheapest 3 chat models" in result.stdout
    data = json.loads(run("whatif", "--store", ledger, "--top", "3", "--json").stdout)
    assert len(data["alternatives"]) == 3


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--model", "no-such-model-xyz"], "no price known for model 'no-such-model-xyz'"),
        (["--model", "gpt-4o-mini", "--from", "o3"], "no calls to 'o3'"),
        ([], "give --model"),
        (["--top", "0"], "0 is not in the range"),
    ],
)
def test_whatif_errors_are_one_line(ledger: str, args: list[str], fragment: str) -> None:
    """An unknown model, a --from model without calls, or nothing to do: one line, exit status 2."""
    assert_one_line_error(run("whatif", "--store", ledger, *args), fragment)


# ---------------------------------------------------------------------------------------------------- prices


def test_prices_names_the_source_and_the_price() -> None:
    """prices MODEL shows which source prices it and the per-million prices, exactly."""
    result = run("prices", "gpt-4o")
    assert result.exit_code == 0, result.output
    assert "gpt-4o: priced by litellm" in result.stdout
    assert "$2.50 per 1M tokens" in result.stdout
    assert "$1.25 per 1M tokens" in result.stdout
    assert "$10.00 per 1M tokens" in result.stdout
    data = json.loads(run("prices", "claude-sonnet-4-5", "--json").stdout)
    assert data["source"] == "litellm"
    assert data["price_per_mtok"] == {
        "input": "3",
        "cache_read": "0.3",
        "cache_write": "3.75",
        "output": "15",
        "cache_write_1h": "6",
    }


@pytest.mark.skipif(
    "cache_read_input_audio_token_cost" not in litellm.model_cost["gemini/gemini-2.5-flash"],
    reason="this litellm's map has no cached-audio price for gemini-2.5-flash",
)
def test_prices_shows_the_cached_audio_price() -> None:
    """gemini-2.5-flash: cached audio $0.10 per million, its own line."""
    result = run("prices", "gemini-2.5-flash", "--provider", "gemini")
    assert result.exit_code == 0, result.output
    assert "cache read (audio)" in result.stdout
    assert "$0.10 per 1M tokens" in result.stdout
    data = json.loads(run("prices", "gemini-2.5-flash", "--provider", "gemini", "--json").stdout)
    assert data["price_per_mtok"]["cache_read_audio"] == "0.1"


def test_prices_override_file_wins_and_litellm_is_listed(tmp_path: Path) -> None:
    """A --prices override file wins over litellm's map, which is shown as also knowing the model."""
    path = tmp_path / "prices.toml"
    path.write_text('[gpt-4o]\ninput_per_mtok = 2\noutput_per_mtok = "8.5"\n')
    result = run("prices", "gpt-4o", "--prices", str(path))
    assert "gpt-4o: priced by override" in result.stdout
    assert "$8.50 per 1M tokens" in result.stdout
    assert "also known to: litellm" in result.stdout


def test_prices_unknown_model_and_refresh_without_key_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown model, or --refresh without LINKUP_API_KEY: one line, exit status 2."""
    assert_one_line_error(run("prices", "no-such-model-xyz"), "no price known for model 'no-such-model-xyz'")
    monkeypatch.delenv("LINKUP_API_KEY", raising=False)
    assert_one_line_error(run("prices", "acme-large-2", "--refresh"), "set LINKUP_API_KEY")


def test_prices_refresh_searches_linkup_and_caches_the_file(fake: FakeProvider, tmp_path: Path) -> None:
    """--refresh asks Linkup (the loopback fake) once, writes the cache file, and later lookups read it."""
    fake.set_linkup_answer(
        {
            "model_name_found": "Acme Large 2",
            "input_price": 4,
            "output_price": 12,
            "cached_input_price": 0.4,
            "price_unit": "per_1m_tokens",
            "currency": "USD",
            "source_url": "https://acme.example/pricing",
        },
        sources=[{"name": "Acme pricing", "url": "https://acme.example/pricing", "snippet": "$4 / 1M input"}],
    )
    cache_dir = tmp_path / "model_costs"
    env = {"LINKUP_API_KEY": fake.linkup_api_key, "TOKENCOST_LINKUP_URL": fake.linkup_base}
    result = run("prices", "acme-large-2", "--refresh", "--cache-dir", str(cache_dir), env=env)
    assert result.exit_code == 0, result.output
    assert "acme-large-2: priced by linkup" in result.stdout
    assert "$4.00 per 1M tokens" in result.stdout
    assert "https://acme.example/pricing" in result.stdout
    assert fake.request_count("/v1/search") >= 1
    assert list(cache_dir.iterdir())
    cached = run("prices", "acme-large-2", "--cache-dir", str(cache_dir))
    assert "priced by linkup-cache" in cached.stdout
    assert fake.linkup_api_key not in result.output + cached.output


def test_prices_refresh_failure_is_one_line(fake: FakeProvider, tmp_path: Path) -> None:
    """A Linkup error (here: out of credits) is one line, and no cache file is written."""
    fake.queue_linkup(402, FakeProvider.linkup_error(402, "INSUFFICIENT_FUNDS_CREDITS", "no credits left"))
    cache_dir = tmp_path / "model_costs"
    env = {"LINKUP_API_KEY": fake.linkup_api_key, "TOKENCOST_LINKUP_URL": fake.linkup_base}
    result = run("prices", "acme-large-2", "--refresh", "--cache-dir", str(cache_dir), env=env)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert not cache_dir.exists() or not list(cache_dir.iterdir())


# ---------------------------------------------------------------------------------------------------- serve


def test_serve_refuses_a_public_host_without_a_token(ledger: str) -> None:
    """serve on a non-loopback address without --token is refused before anything starts."""
    assert_one_line_error(
        run("serve", "--store", ledger, "--host", "0.0.0.0", env={"TOKENCOST_SERVER_TOKEN": None}), "--token"
    )


def test_serve_without_the_server_extra_prints_the_pip_command(ledger: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """When FastAPI is not installed, serve says which extra to install, in one line."""
    monkeypatch.setitem(sys.modules, "fastapi", None)  # makes `import fastapi` fail like a missing package
    for name in [m for m in sys.modules if m.startswith("tokencost.server")]:
        monkeypatch.delitem(sys.modules, name)
    assert_one_line_error(run("serve", "--store", ledger), "pip install -e '.[server]'")


def test_reports_still_refuse_a_missing_ledger(tmp_path: Path) -> None:
    """report never creates a ledger: a typo in --store is one line, and no file appears."""
    assert_one_line_error(run("report", "--store", f"sqlite:///{tmp_path / 'none.db'}"), "does not exist")
    assert not (tmp_path / "none.db").exists()


# ---------------------------------------------------------------------------------------------------- processes


def command(*args: str) -> list[str]:
    """The command line of ``python -m tokencost.cli ARGS`` in this interpreter."""
    return [sys.executable, "-m", "tokencost.cli", *args]


def child_env() -> dict[str, str]:
    """The environment of a child process: offline litellm, no inherited store."""
    env = {k: v for k, v in os.environ.items() if k not in ("TOKENCOST_STORE", "TOKENCOST_NAME")}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["COLUMNS"] = "100"
    # This checkout's package, also from another working folder.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env


def test_real_process_report(ledger: str) -> None:
    """As a real process on a real SQLite ledger, report prints the table at the width it is given."""
    done = subprocess.run(
        command("report", "--store", ledger), capture_output=True, text=True, timeout=120, env=child_env()
    )
    assert done.returncode == 0, done.stderr
    assert "gpt-4o-mini" in done.stdout
    assert "⚠ 1 call unpriced" in done.stdout
    assert all(len(line) <= 100 for line in done.stdout.splitlines())
    assert done.stderr == ""


def wait_for_port(port: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait until something listens on the loopback port (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.communicate()[1]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("serve did not listen in time")


def post_json(url: str, body: dict[str, object]) -> dict[str, object]:
    """POST a JSON body and return the JSON reply."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        data: dict[str, object] = json.loads(reply.read())
        return data


def test_real_process_serve_creates_its_ledger(tmp_path: Path) -> None:
    """serve --store sqlite:///new.db in a fresh folder (and the default store) starts, creates the file, records."""
    for args, path in ((["--store", "sqlite:///new.db"], tmp_path / "new.db"), ([], tmp_path / "tokencost.db")):
        port = free_port()
        proc = subprocess.Popen(
            command("serve", *args, "--port", str(port)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
            cwd=tmp_path,
        )
        try:
            wait_for_port(port, proc)
            event = post_json(
                f"http://127.0.0.1:{port}/track", {"model": "gpt-4o", "prompt_tokens": 10, "completion_tokens": 5}
            )
            assert event["model"] == "gpt-4o"
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        assert path.exists()
        store = store_from_url(f"sqlite:///{path}")
        assert store.totals("default").requests == 1
        store.close()


def test_real_process_serve_answers_on_loopback(ledger: str) -> None:
    """serve runs the dashboard app on 127.0.0.1 over the ledger until stopped."""
    port = free_port()
    proc = subprocess.Popen(
        command("serve", "--store", ledger, "--port", str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        wait_for_port(port, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/summary", timeout=10) as reply:
            body = json.loads(reply.read())
        assert reply.status == 200
        assert "6" in json.dumps(body)  # the six recorded calls appear in the summary
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
