"""Tests for the human-editable price cache files (tokencost.pricing.cache_files)."""

from __future__ import annotations

import logging
import os
import threading
from decimal import Decimal
from pathlib import Path

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokencost.pricing import PriceChain
from tokencost.pricing._price import Price
from tokencost.pricing.cache_files import CacheFileSource, price_file_path, read_price_file, write_price_file
from tokencost.usage import Usage

PRICE = Price.per_mtok(
    "4", "12", cache_read="0.4", cache_write="5", source="linkup", source_url="https://acme.example/p"
)


def _tokencost_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "tokencost"]


def _write(cache_dir: Path, model: str = "acme-large-2", provider: str | None = "openai", price: Price = PRICE) -> Path:
    return write_price_file(cache_dir, model, provider, price, source_url=price.source_url, found_on="2026-11-24")


# ---------------------------------------------------------------------- file format


def test_written_file_is_readable_markdown_with_the_documented_fields(tmp_path: Path) -> None:
    """The file is named after model and provider and holds per-million prices, the source, date and note."""
    path = _write(tmp_path / "model_costs")
    assert path == tmp_path / "model_costs" / "acme-large-2_openai_cost_parameters.md"
    text = path.read_text(encoding="utf-8")
    for line in (
        "input_per_mtok_usd: 4.0",
        "output_per_mtok_usd: 12.0",
        "cached_input_per_mtok_usd: 0.4",
        "cache_write_per_mtok_usd: 5.0",
        "source_url: https://acme.example/p",
        "found_on: 2026-11-24",
        "model: acme-large-2",
        "provider: openai",
    ):
        assert line in text
    assert "auto-resolved via web search" in text
    assert text.startswith("# ")


def test_round_trip_keeps_every_price_exactly(tmp_path: Path) -> None:
    """Reading a written file gives back the same Decimal prices and source URL, labelled linkup-cache."""
    price = Price.per_mtok("0.15", "0.6", cache_read="0.075", source="linkup", source_url="https://x.example/p")
    got = read_price_file(_write(tmp_path, price=price))
    assert got.as_per_mtok() == price.as_per_mtok()
    assert got.input == Decimal("0.00000015")
    assert got.cache_write is None
    assert got.source == "linkup-cache"
    assert got.source_url == "https://x.example/p"


def test_hand_made_file_without_bullets_and_with_dollar_signs_is_read(tmp_path: Path) -> None:
    """A person may write plain ``key: value`` lines, ``$`` amounts and extra prose; other lines are ignored."""
    path = tmp_path / "acme_openai_cost_parameters.md"
    path.write_text(
        "# my notes\n\nChecked by hand.\n\ninput_per_mtok_usd: $2.50\n**output_per_mtok_usd**: 10\n"
        "cached_input_per_mtok_usd: none\nwhatever: else\n",
        encoding="utf-8",
    )
    price = read_price_file(path)
    assert price.as_per_mtok() == {"input": Decimal("2.5"), "output": Decimal(10)}
    assert price.source_url is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("output_per_mtok_usd: 12\n", "input_per_mtok_usd is missing"),
        ("input_per_mtok_usd: 4\n", "output_per_mtok_usd is missing"),
        ("input_per_mtok_usd: four\noutput_per_mtok_usd: 12\n", "input_per_mtok_usd"),
        ("input_per_mtok_usd: -4\noutput_per_mtok_usd: 12\n", "non-negative"),
        ("input_per_mtok_usd: 0,5\noutput_per_mtok_usd: 12\n", "input_per_mtok_usd"),
        ("input_per_mtok_usd: 4\noutput_per_mtok_usd: NaN\n", "output_per_mtok_usd"),
        ("input_per_mtok_usd: 4\ninput_per_mtok_usd: 5\noutput_per_mtok_usd: 12\n", "more than once"),
        ("input_per_mtok_usd:\noutput_per_mtok_usd: 12\n", "input_per_mtok_usd is empty"),
    ],
)
def test_broken_file_raises_value_error_with_the_reason(tmp_path: Path, text: str, reason: str) -> None:
    """A bad number, a missing or duplicated field makes read_price_file raise ValueError saying what is wrong."""
    path = tmp_path / "broken_openai_cost_parameters.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=reason):
        read_price_file(path)


def test_non_utf8_file_raises_value_error(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are a broken file, not a crash."""
    path = tmp_path / "x_openai_cost_parameters.md"
    path.write_bytes(b"input_per_mtok_usd: \xff\xfe\n")
    with pytest.raises(ValueError, match="UTF-8"):
        read_price_file(path)


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """Overwriting a file replaces it whole and leaves only the cache file in the folder."""
    _write(tmp_path)
    path = _write(tmp_path, price=Price.per_mtok(7, 21, source="linkup", source_url="https://a.example/"))
    assert os.listdir(tmp_path) == [path.name]
    assert read_price_file(path).as_per_mtok() == {"input": Decimal(7), "output": Decimal(21)}


def test_folder_is_created_only_when_a_file_is_written(tmp_path: Path) -> None:
    """Looking prices up in a missing folder neither fails nor creates it; writing creates it."""
    cache_dir = tmp_path / "model_costs"
    source = CacheFileSource(cache_dir)
    assert source.lookup("acme-large-2", "openai") is None
    assert source.problem("acme-large-2", "openai") is None
    assert not cache_dir.exists()
    _write(cache_dir)
    assert cache_dir.is_dir()


# ---------------------------------------------------------------------- file names


DANGEROUS = [
    "../../etc/passwd",
    "a/b",
    "a\\b",
    "x\x00y",
    "..",
    ".",
    "",
    "/abs/olute",
    ".hidden",
    "модель-ü",
    "é" * 300,
    "a" * 300,
    "gpt-4o:free",
    "a_b",
    "line\nbreak",
]


@pytest.mark.parametrize("model", DANGEROUS)
def test_dangerous_model_names_stay_inside_the_folder(tmp_path: Path, model: str) -> None:
    """Every model name maps to one bounded file name directly inside the cache folder, and round-trips."""
    cache_dir = tmp_path / "model_costs"
    path = price_file_path(cache_dir, model, "openai")
    assert path.parent == cache_dir
    assert path.resolve().parent == cache_dir.resolve()
    assert len(path.name.encode()) <= 200
    assert not path.name.startswith(".")
    assert all(ch not in path.name for ch in "/\\\x00\n")
    assert path.name.isascii()
    assert path.name.endswith("_openai_cost_parameters.md")
    written = write_price_file(cache_dir, model, "openai", PRICE, source_url=PRICE.source_url, found_on="2026-11-24")
    assert written == path
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(["model_costs", path.name])
    source = CacheFileSource(cache_dir)
    price = source.lookup(model, "openai") if model else read_price_file(path)
    assert price is not None
    assert price.as_per_mtok() == PRICE.as_per_mtok()


def test_dangerous_provider_names_stay_inside_the_folder(tmp_path: Path) -> None:
    """A provider with separators or a huge name is sanitized like a model name."""
    for provider in ("../x", "a/b", "p" * 500, "\x00"):
        path = price_file_path(tmp_path, "acme", provider)
        assert path.parent == tmp_path
        assert len(path.name) <= 200
        assert "/" not in path.name


def test_altered_names_keep_a_readable_part_and_a_hash(tmp_path: Path) -> None:
    """A name that had to change stays recognisable, and names that sanitize alike still get different files."""
    passwd = price_file_path(tmp_path, "../../etc/passwd", "openai").name
    assert passwd.startswith("etc-passwd-")
    names = {price_file_path(tmp_path, m, "openai") for m in ("a/b", "a\\b", "a:b", "a-b", "a_b", "a b", "a\x00b")}
    assert len(names) == 7
    assert price_file_path(tmp_path, "a-b", "openai").name == "a-b_openai_cost_parameters.md"
    long_a = price_file_path(tmp_path, "a" * 300, "openai")
    long_b = price_file_path(tmp_path, "a" * 299 + "b", "openai")
    assert long_a != long_b


def test_safe_names_are_kept_verbatim(tmp_path: Path) -> None:
    """Ordinary model and provider names are not altered; no provider means the any-provider file."""
    assert price_file_path(tmp_path, "Claude-Sonnet-4.5", "vertex_ai").name == (
        "Claude-Sonnet-4.5_vertex_ai_cost_parameters.md"
    )
    assert price_file_path(tmp_path, "acme", None).name == "acme_any_cost_parameters.md"


@settings(max_examples=300, deadline=None)
@given(
    m1=st.text(max_size=120),
    m2=st.text(max_size=120),
    p1=st.sampled_from(["openai", "vertex_ai", "a/b", "x_y"]),
    p2=st.sampled_from(["openai", "vertex_ai", "a/b", "x_y"]),
)
def test_file_names_never_collide_and_never_escape(m1: str, m2: str, p1: str, p2: str) -> None:
    """Any two different (model, provider) pairs get different files, each directly inside the folder."""
    base = Path("/cache")
    a, b = price_file_path(base, m1, p1), price_file_path(base, m2, p2)
    assert a.parent == base
    assert b.parent == base
    assert len(a.name) <= 200
    assert (a == b) == ((m1, p1) == (m2, p2))


# ---------------------------------------------------------------------- CacheFileSource


def test_source_serves_the_file_and_a_hand_edit_wins_on_the_next_lookup(tmp_path: Path) -> None:
    """The source reads the file, and after a person edits the price the very next lookup sees the new one."""
    source = CacheFileSource(tmp_path)
    path = _write(tmp_path)
    price = source.lookup("acme-large-2", "openai")
    assert price is not None
    assert price.input * 1_000_000 == 4
    assert price.source == "linkup-cache"
    path.write_text(path.read_text(encoding="utf-8").replace("input_per_mtok_usd: 4.0", "input_per_mtok_usd: 4.75"))
    edited = source.lookup("acme-large-2", "openai")
    assert edited is not None
    assert edited.input * 1_000_000 == Decimal("4.75")


def test_source_through_the_chain_is_asked_again_every_time(tmp_path: Path) -> None:
    """The chain does not remember CacheFileSource answers, so a deleted file stops pricing the model."""
    chain = PriceChain([CacheFileSource(tmp_path)])
    path = _write(tmp_path)
    assert chain.lookup("acme-large-2", "openai") is not None
    path.unlink()
    assert chain.lookup("acme-large-2", "openai") is None


def test_broken_file_is_ignored_and_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A file a person broke prices nothing and is reported once, not at every lookup; fixing it works."""
    caplog.set_level(logging.DEBUG)
    path = _write(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace("4.0", "four"), encoding="utf-8")
    source = CacheFileSource(tmp_path)
    for _ in range(5):
        assert source.lookup("acme-large-2", "openai") is None
    records = _tokencost_records(caplog)
    assert len(records) == 1
    assert "input_per_mtok_usd" in records[0].getMessage()
    assert records[0].levelno == logging.WARNING
    assert "input_per_mtok_usd" in (source.problem("acme-large-2", "openai") or "")
    path.write_text(path.read_text(encoding="utf-8").replace("four", "4.5"), encoding="utf-8")
    fixed = source.lookup("acme-large-2", "openai")
    assert fixed is not None
    assert fixed.input * 1_000_000 == Decimal("4.5")
    assert source.problem("acme-large-2", "openai") is None
    assert len(_tokencost_records(caplog)) == 1


def test_broken_file_read_by_many_threads_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Twenty threads looking up a broken file at once produce one log line."""
    caplog.set_level(logging.WARNING)
    (tmp_path / "acme-large-2_openai_cost_parameters.md").write_text("input_per_mtok_usd: 4\n", encoding="utf-8")
    source = CacheFileSource(tmp_path)
    barrier = threading.Barrier(20)
    results: list[object] = []

    def worker() -> None:
        barrier.wait()
        results.append(source.lookup("acme-large-2", "openai"))

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [None] * 20
    assert len(_tokencost_records(caplog)) == 1


def test_file_for_another_model_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A file copied from another model without changing its ``model:`` line prices nothing, with a reason."""
    caplog.set_level(logging.WARNING)
    text = _write(tmp_path).read_text(encoding="utf-8")
    (tmp_path / "acme-large-3_openai_cost_parameters.md").write_text(text, encoding="utf-8")
    source = CacheFileSource(tmp_path)
    assert source.lookup("acme-large-3", "openai") is None
    assert "acme-large-2" in (source.problem("acme-large-3", "openai") or "")
    assert len(_tokencost_records(caplog)) == 1


def test_lookup_with_a_provider_falls_back_to_the_any_provider_file(tmp_path: Path) -> None:
    """A price written for no provider (e.g. by ``tokencost prices MODEL --refresh``) serves every provider."""
    _write(tmp_path, provider=None)
    source = CacheFileSource(tmp_path)
    price = source.lookup("acme-large-2", "openrouter")
    assert price is not None
    assert price.output * 1_000_000 == 12
    own = Price.per_mtok(1, 2, source="linkup", source_url="https://o.example/")
    _write(tmp_path, provider="openrouter", price=own)
    preferred = source.lookup("acme-large-2", "openrouter")
    assert preferred is not None
    assert preferred.input * 1_000_000 == 1


def test_unicode_model_name_round_trips_through_the_source(tmp_path: Path) -> None:
    """A model name with non-ASCII characters and a newline is quoted in the file and still matches."""
    model = 'modèle "x"\nbis'
    path = _write(tmp_path, model=model)
    assert "\nbis" not in path.read_text(encoding="utf-8").split("- model: ", 1)[1].split("\n")[0]
    price = CacheFileSource(tmp_path).lookup(model, "openai")
    assert price is not None
    assert price.as_per_mtok() == PRICE.as_per_mtok()


# ---------------------------------------------------------------------- files written by hand, the plain way

HAND_WRITTEN = """# gpt-4o-mini (OpenAI)

- model: {model}
- provider: OpenAI
- input_per_mtok_usd: 0.15
- output_per_mtok_usd: 0.6
- cached_input_per_mtok_usd: 0.075
"""


def test_provider_not_in_lower_case_is_read(tmp_path: Path) -> None:
    """``gpt-4o-mini_OpenAI_cost_parameters.md`` prices gpt-4o-mini at provider ``openai``."""
    (tmp_path / "gpt-4o-mini_OpenAI_cost_parameters.md").write_text(HAND_WRITTEN.format(model="gpt-4o-mini"))
    price = CacheFileSource(tmp_path).lookup("gpt-4o-mini", "openai")
    assert price is not None
    assert price.as_per_mtok() == {"input": Decimal("0.15"), "output": Decimal("0.6"), "cache_read": Decimal("0.075")}
    # 10,000 input x $0.15/M + 1,000 output x $0.60/M = $0.0015 + $0.0006
    assert Decimal(price.cost_units(Usage(input=10_000, output=1_000))) / 10**12 == Decimal("0.0021")


def test_model_with_a_slash_is_read_from_its_folder(tmp_path: Path) -> None:
    """``meta-llama/Llama-3.3-70B_together_ai_cost_parameters.md``: the plain f-string path, a file in a folder."""
    model = "meta-llama/Llama-3.3-70B"
    (tmp_path / "meta-llama").mkdir()
    (tmp_path / "meta-llama" / "Llama-3.3-70B_together_ai_cost_parameters.md").write_text(
        HAND_WRITTEN.format(model=model)
    )
    price = CacheFileSource(tmp_path).lookup(model, "together_ai")
    assert price is not None and price.input == Decimal("0.15") / 1_000_000


def test_model_with_an_underscore_is_read_by_its_plain_name(tmp_path: Path) -> None:
    (tmp_path / "acme_large_openai_cost_parameters.md").write_text(HAND_WRITTEN.format(model="acme_large"))
    assert CacheFileSource(tmp_path).lookup("acme_large", "openai") is not None


def test_a_file_in_another_case_is_seen_once_written(tmp_path: Path) -> None:
    """The folder's listing is re-read when the folder changes: a file added later is found."""
    source = CacheFileSource(tmp_path)
    assert source.lookup("gpt-4o-mini", "openai") is None
    (tmp_path / "gpt-4o-mini_OPENAI_cost_parameters.md").write_text(HAND_WRITTEN.format(model="gpt-4o-mini"))
    os.utime(tmp_path, ns=(1, 1))  # a new mtime even on a coarse clock
    assert source.lookup("gpt-4o-mini", "openai") is not None


@pytest.mark.parametrize("model", ["../outside", "a/../../outside", "/abs/outside", "a//b", "a\\..\\outside"])
def test_plain_names_never_leave_the_folder(tmp_path: Path, model: str) -> None:
    cache_dir = tmp_path / "model_costs"
    cache_dir.mkdir()
    (tmp_path / "outside_openai_cost_parameters.md").write_text(HAND_WRITTEN.format(model=model))
    assert CacheFileSource(cache_dir).lookup(model, "openai") is None
