"""Differential test (issue 16): for every chat, completion, responses and embedding model of litellm's bundled map,
tokencost's cost of generated usages equals litellm's own ``cost_per_token``.

Usages are generated deterministically (seeded by the model's name), a fixed set per model, chosen by what the
model's map entry prices: plain, cache reads, cache writes (and their 1-hour part where the entry has a 1-hour
price), reasoning, audio in and out, image input, a prompt above each ``*_above_Nk_tokens`` threshold, the
``flex`` / ``priority`` service tiers where the entry has ``*_flex`` / ``*_priority`` prices, and cached audio
(``cached_tokens_details.audio_tokens``, in the standard tier and each service tier the entry has) where the entry
prices cached audio or audio input (without a cached-audio price litellm bills it at the cache-read price).

Both sides read one ``litellm.Usage`` object: litellm prices it with ``cost_per_token(usage_object=...)``,
tokencost reads it with its one reader (``from_litellm_usage``) and prices it through a tracker's
``record_usage`` (the map source, as every entry point does).

Comparison: litellm sums floats, tokencost exact Decimals of the map's floats read through ``str``. litellm's
float total is read through ``Decimal(str(x))``; the two agree when they differ by at most one part in 1e9 of
the cost, or by at most 1e-12 USD (tokencost's resolution) for tiny costs. Float summing errs by about 1e-16
relative; a pricing mistake (a wrong bucket, tier or multiplier) by 1e-4 or more, so the tolerance hides no bug.

Cases not compared, each counted by its reason:

* ``litellm's figure``: a call tokencost does not model (several price tiers, off-peak hours): tokencost takes
  litellm's figure by design (``price_source`` ``"response_cost"``), so comparing it would compare litellm
  with itself.
* ``unpriced by design``: a dimension our price has no figure for (a service tier the map lacks...) is unpriced
  here (``record_usage`` has no litellm figure to fall back on), never the base price; litellm bills it at the
  standard price.
* ``KNOWN_DIFFERENCES``: the cases where litellm is wrong or tokencost deliberately differs, each with why.

Web search fees are not generated: ``cost_per_token`` does not bill them (litellm adds them in
``completion_cost`` from the response); tests/test_pricing_dimensions.py and tests/test_track_keywords.py check
them against the price pages.

Models whose mode is not per-token text (image, audio, video, rerank, search, OCR...) are not in the map
subset: a per-image or per-second price is not comparable (litellm's figure is used for those). Models of the
subset without a per-token input price (priced per second, per character or per query only) are counted as
``not per-token`` and skipped by the same rule.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import collections
import random
import re
import zlib
from collections.abc import Callable, Iterator
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

import litellm
import pytest
from litellm.types.utils import CompletionTokensDetailsWrapper, PromptTokensDetailsWrapper

from tokencost import CostTracker, Usage
from tokencost.money import from_units
from tokencost.usage import from_litellm_usage

MODES = frozenset({"chat", "completion", "responses", "embedding"})
_TIER = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")
RELATIVE = Decimal("1e-9")
ABSOLUTE = Decimal("1e-12")

LITELLM = tuple(int(part) for part in re.findall(r"\d+", version("litellm"))[:3])


class Known(NamedTuple):
    """Where litellm is wrong, or tokencost deliberately differs.

    The rule matches the cases whose name starts with ``case`` of the models whose provider or map key is
    ``where`` (``"*"``: every model), on the litellm releases older than ``before`` (None: every release), and
    where ``when(map entry, case fields)`` holds (None: always). Matched cases that differ are not compared (those
    that agree are); a rule that matches cases but finds no difference any more is reported as stale.
    """

    where: str
    case: str
    reason: str
    before: tuple[int, int, int] | None = None
    when: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None


def _cached_without_price(info: dict[str, Any], fields: dict[str, Any]) -> bool:
    return bool(fields.get("cached_tokens")) and not _per_token(info, "cache_read_input_token_cost")


KNOWN_DIFFERENCES: list[Known] = [
    # litellm's fireworks_ai cost_per_token never passes service_tier on to generic_cost_per_token, so a priority
    # call is billed at the standard price although its own map entry has *_priority prices (Fireworks' priority
    # tier, fireworks.ai/pricing). tokencost bills the map's priority prices.
    Known("fireworks_ai", "priority tier", "litellm's fireworks_ai calculator ignores service_tier"),
    # litellm's perplexity cost_per_token (its own calculator) reads only input, cache-read and output prices:
    # the *_above_Nk_tokens tiers of models Perplexity resells (perplexity/openai/gpt-5.4 above 272k...) and
    # their cache-write price are ignored, though its map carries them. tokencost bills the map's prices.
    Known("perplexity", "above ", "litellm's perplexity calculator ignores the long-context tiers of its map"),
    Known("perplexity", "cache write", "litellm's perplexity calculator bills cache writes at the input price"),
    # The model "perplexity/sonar" of provider perplexity (map key "perplexity/perplexity/sonar", $0.25 / $2.50
    # per million) is priced by litellm as the map's "perplexity/sonar" ($1 / $1): it strips the provider prefix
    # off the key before looking it up. tokencost bills the entry of the model called.
    Known("perplexity/perplexity/sonar", "", "litellm prices perplexity/perplexity/sonar as perplexity/sonar"),
    # The oldest supported release (1.98) has calculator bugs fixed by 1.110, where these cases are compared:
    # cached tokens of an entry without a cache-read price cost $0 there (1.110 and tokencost bill them at the
    # input price, as the provider does when it publishes no discount);
    Known(
        "*",
        "",
        "litellm before 1.110 bills cached tokens at $0 when the entry has no cache-read price",
        before=(1, 110, 0),
        when=_cached_without_price,
    ),
    # Vertex AI's flex and priority tiers (the map's *_flex / *_priority prices) are billed at the standard
    # price there;
    Known(
        "vertex_ai", "flex tier", "litellm before 1.110 bills Vertex AI's flex tier at the standard price", (1, 110, 0)
    ),
    Known(
        "vertex_ai",
        "priority tier",
        "litellm before 1.110 bills Vertex AI's priority tier at the standard price",
        (1, 110, 0),
    ),
    # and azure_ai/model_router, called as itself, is billed its flat per-token router fee twice (once as the
    # entry's input price, once more as the router's flat fee);
    Known("azure_ai/model_router", "", "litellm before 1.110 bills the model router's fee twice", (1, 110, 0)),
    # and cached audio (prompt_tokens_details.cached_tokens_details.audio_tokens) is not read: it is billed both
    # as audio input (the audio tokens include it) and as a cache read, the text input short by as much (its map
    # has no cached-audio price for a chat model either; Gemini bills cached audio once, at its context-caching
    # audio price: ai.google.dev/gemini-api/docs/pricing).
    Known(
        "*",
        "cache read audio",
        "litellm before 1.110 bills cached audio both as audio input and as a cache read",
        before=(1, 110, 0),
    ),
]


def _per_token(info: dict[str, Any], key: str) -> bool:
    value = info.get(key)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def map_models() -> list[tuple[str, dict[str, Any]]]:
    """The map's entries of the compared modes, sorted by name."""
    return sorted(
        (name, info)
        for name, info in litellm.model_cost.items()
        if isinstance(info, dict) and info.get("mode") in MODES and name != "sample_spec"
    )


def cases_for(model: str, info: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The usages of one model: (case name, litellm usage fields plus ``service_tier``)."""
    rng = random.Random(zlib.crc32(model.encode()))
    embedding = info.get("mode") == "embedding"

    def counts(prompt_hi: int = 50_000) -> tuple[int, int]:
        return rng.randint(1, prompt_hi), 0 if embedding else rng.randint(1, 8_000)

    prompt, completion = counts()
    yield "plain", {"prompt_tokens": prompt, "completion_tokens": completion}
    if embedding:
        return
    prompt, completion = counts()
    cached = rng.randint(1, prompt)
    yield "cache read", {"prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": cached}
    if _per_token(info, "cache_creation_input_token_cost"):
        prompt, completion = counts()
        written = rng.randint(1, prompt)
        cached = rng.randint(0, prompt - written)
        fields = {"prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": cached}
        yield "cache write", {**fields, "cache_write": written}
        if _per_token(info, "cache_creation_input_token_cost_above_1hr"):
            yield "cache write 1h", {**fields, "cache_write": written, "cache_write_1h": rng.randint(1, written)}
    prompt, completion = counts()
    reasoning = rng.randint(0, completion)
    yield "reasoning", {"prompt_tokens": prompt, "completion_tokens": completion, "reasoning": reasoning}
    if _per_token(info, "input_cost_per_audio_token") or _per_token(info, "output_cost_per_audio_token"):
        prompt, completion = counts()
        yield (
            "audio",
            {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "audio_in": rng.randint(1, prompt),
                "audio_out": rng.randint(1, completion),
            },
        )
    if _per_token(info, "input_cost_per_image_token"):
        prompt, completion = counts()
        yield "image", {"prompt_tokens": prompt, "completion_tokens": completion, "image": rng.randint(1, prompt)}
    for threshold in sorted({int(m.group(1)) for key in info if (m := _TIER.match(key))}):
        prompt = threshold * 1_000 + rng.randint(1, 20_000)
        completion = rng.randint(1, 8_000)
        yield (
            f"above {threshold}k",
            {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "cached_tokens": rng.randint(0, prompt // 2),
            },
        )
    for tier in ("flex", "priority"):
        if _per_token(info, f"input_cost_per_token_{tier}"):
            prompt, completion = counts()
            yield (
                f"{tier} tier",
                {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "cached_tokens": rng.randint(0, prompt),
                    "service_tier": tier,
                },
            )
    # Cached audio (a part of the cached tokens and of the audio tokens, as litellm's Gemini usage reports it), at
    # the entry's cached-audio price, or without one at what litellm bills it (the cache-read price).
    if _per_token(info, "cache_read_input_audio_token_cost") or _per_token(info, "input_cost_per_audio_token"):
        for tier in (None, "flex", "priority"):
            if tier is not None and not _per_token(info, f"input_cost_per_token_{tier}"):
                continue
            prompt, completion = counts()
            cached = rng.randint(1, prompt)
            fields = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "cached_tokens": cached,
                "cached_audio": rng.randint(1, cached),
                "audio_in": rng.randint(0, prompt - cached),
            }
            if tier is None:
                yield "cache read audio", fields
            else:
                yield f"cache read audio, {tier} tier", {**fields, "service_tier": tier}


def litellm_usage(fields: dict[str, Any]) -> litellm.Usage:
    """The ``litellm.Usage`` of one case, as litellm hands it to callbacks (OpenAI's convention)."""
    prompt, completion = fields["prompt_tokens"], fields["completion_tokens"]
    written, one_hour = fields.get("cache_write", 0), fields.get("cache_write_1h", 0)
    cached_audio = fields.get("cached_audio", 0)
    details: dict[str, Any] = {
        "cached_tokens": fields.get("cached_tokens", 0),
        "audio_tokens": fields.get("audio_in", 0) + cached_audio or None,  # the cached audio included
        "image_tokens": fields.get("image") or None,
    }
    if cached_audio:
        details["cached_tokens_details"] = {"audio_tokens": cached_audio}
    extra: dict[str, Any] = {}
    if written:
        extra["cache_creation_input_tokens"] = written
        details["cache_creation_token_details"] = {
            "ephemeral_5m_input_tokens": written - one_hour,
            "ephemeral_1h_input_tokens": one_hour,
        }
    if fields.get("cached_tokens"):
        extra["cache_read_input_tokens"] = fields["cached_tokens"]
    completion_details = None
    if fields.get("reasoning") or fields.get("audio_out"):
        completion_details = CompletionTokensDetailsWrapper(
            reasoning_tokens=fields.get("reasoning") or None, audio_tokens=fields.get("audio_out") or None
        )
    return litellm.Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetailsWrapper(**details),
        completion_tokens_details=completion_details,
        **extra,
    )


def expected_buckets(fields: dict[str, Any]) -> Usage:
    """The buckets a case bills, split by hand (the reader must give these)."""
    written, one_hour = fields.get("cache_write", 0), fields.get("cache_write_1h", 0)
    cached, audio_in, image = fields.get("cached_tokens", 0), fields.get("audio_in", 0), fields.get("image", 0)
    reasoning, audio_out = fields.get("reasoning", 0), fields.get("audio_out", 0)
    cached_audio = fields.get("cached_audio", 0)
    return Usage(
        input=fields["prompt_tokens"] - cached - written - audio_in - image,
        cache_read=cached - cached_audio,
        cache_read_audio=cached_audio,
        cache_write=written - one_hour,
        cache_write_1h=one_hour,
        output=fields["completion_tokens"] - reasoning - audio_out,
        reasoning=reasoning,
        audio_in=audio_in,
        audio_out=audio_out,
        image=image,
        service_tier=fields.get("service_tier"),
    )


def litellm_cost(model: str, info: dict[str, Any], usage: litellm.Usage, tier: str | None) -> Decimal:
    prompt, completion = litellm.cost_per_token(
        model=model,
        custom_llm_provider=info.get("litellm_provider"),
        usage_object=usage,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        service_tier=tier,
        call_type="embedding" if info.get("mode") == "embedding" else "completion",
    )
    return Decimal(str(prompt)) + Decimal(str(completion))


def applies(rule: Known, model: str, info: dict[str, Any], case: str, fields: dict[str, Any]) -> bool:
    return (
        rule.where in ("*", info.get("litellm_provider"), model)
        and case.startswith(rule.case)
        and (rule.before is None or rule.before > LITELLM)
        and (rule.when is None or rule.when(info, fields))
    )


def agree(ours: Decimal, theirs: Decimal) -> bool:
    difference = abs(ours - theirs)
    return difference <= ABSOLUTE or difference <= RELATIVE * max(abs(ours), abs(theirs))


def run(tracker: CostTracker, report: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Compare every case; return the counts and the disagreements."""
    counts: collections.Counter[str] = collections.Counter()
    skipped: collections.Counter[str] = collections.Counter()
    models: set[str] = set()
    disagreements: list[str] = []
    matched: collections.Counter[str] = collections.Counter()  # cases each known difference applies to
    for model, info in map_models():
        if not _per_token(info, "input_cost_per_token"):
            skipped["not per-token (no input_cost_per_token)"] += 1
            continue
        provider = info.get("litellm_provider")
        # The model as litellm hands it to callbacks: without its provider's prefix ("perplexity/perplexity/sonar"
        # is the model "perplexity/sonar" of provider perplexity, not the map's "perplexity/sonar").
        name = model.removeprefix(f"{provider}/") if isinstance(provider, str) else model
        for case, fields in cases_for(model, info):
            usage = litellm_usage(fields)
            tier = fields.get("service_tier")
            ours_usage = from_litellm_usage(usage, provider)
            ours_usage.service_tier = tier
            assert ours_usage == expected_buckets(fields), (model, case, ours_usage)
            known = next((rule.reason for rule in KNOWN_DIFFERENCES if applies(rule, model, info, case, fields)), None)
            try:
                theirs = litellm_cost(model, info, usage, tier)
            except Exception as exc:
                skipped[f"litellm raises ({type(exc).__name__})"] += 1
                continue
            event = tracker.record_usage(name, ours_usage, provider=provider)
            if event.cost_units is None:
                skipped[f"unpriced by design ({(event.reason or '').split(': ', 1)[-1]})"] += 1
                continue
            if event.price_source == "response_cost":
                skipped[f"litellm's figure ({event.reason})"] += 1
                continue
            ours = from_units(event.cost_units)
            if known is not None:
                matched[known] += 1
                if not agree(ours, theirs):
                    skipped[f"known difference ({known})"] += 1
                    continue
            counts["cases"] += 1
            models.add(model)
            if not agree(ours, theirs):
                disagreements.append(
                    f"{model} [{case}] via {event.price_source}: ours {ours} litellm {theirs} usage {ours_usage}"
                )
    for rule in KNOWN_DIFFERENCES:
        # A rule whose cases all agree is stale (litellm was fixed); one without cases (an older map) is not.
        if matched[rule.reason] and not skipped[f"known difference ({rule.reason})"]:
            disagreements.append(f"stale known difference (no case differs any more): {rule.reason}")
    return {"models": len(models), "cases": counts["cases"], "skipped": skipped, "disagreements": disagreements}


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[CostTracker]:
    t = CostTracker(print_summary=False, linkup_api_key=False, price_cache_dir=tmp_path)
    yield t
    t.close()


def test_every_map_model_costs_what_litellm_says(tracker: CostTracker) -> None:
    result = run(tracker)
    lines = [f"models compared: {result['models']}, cases compared: {result['cases']}"]
    lines += [f"  not compared, {reason}: {n}" for reason, n in sorted(result["skipped"].items())]
    print("\n".join(lines))
    assert result["models"] > 1_000
    problems = result["disagreements"]
    assert not problems, "\n".join(problems[:40]) + f"\n({len(problems)} in all)"
