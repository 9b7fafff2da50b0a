"""``Price``: what one token of each bucket costs, and the exact cost of a ``Usage`` under it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

from tokencost.money import UNITS_PER_USD, parse_amount, to_units
from tokencost.usage import BUCKETS, Usage

__all__ = ["STANDARD_TIERS", "Price"]

# Service tier names that mean the standard price (what providers answer for a call without a tier).
STANDARD_TIERS = frozenset({"default", "standard", "auto", "on_demand", "standard_only"})
# Inference geographies that mean "no regional surcharge".
_GLOBAL_GEOS = frozenset({"global", "not_available"})

_MILLION = Decimal(1_000_000)
# A bucket without its own price is billed at its parent's: cache and audio-in and image at input, reasoning and
# audio-out at output. (Providers that bill reasoning separately give it a price of its own.) Cached audio without
# a price of its own is billed as a cache read, as litellm bills it (generic_cost_per_token: the text cache-read
# rate of the call's tier when the map has no cache_read_input_audio_token_cost).
_FALLBACK = {
    "cache_read": "input",
    "cache_write": "input",
    "reasoning": "output",
    "audio_in": "input",
    "audio_out": "output",
    "image": "input",
    "cache_write_1h": "cache_write",
    "cache_read_audio": "cache_read",
}


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token for each usage bucket, and where the price came from.

    ``None`` for a bucket means "billed like its parent bucket" (cache reads and writes like input, reasoning
    like output). Build one from per-million prices with ``Price.per_mtok(...)``.
    """

    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None
    audio_in: Decimal | None = None
    audio_out: Decimal | None = None
    image: Decimal | None = None
    cache_write_1h: Decimal | None = None
    cache_read_audio: Decimal | None = None
    source: str = "override"
    source_url: str | None = None
    # litellm bills prompts above this many tokens at a higher tier we do not model: use its response_cost.
    tier_above_tokens: int | None = None
    # The price of a call whose prompt is above ``tier_above_tokens``, when tokencost models the tier.
    above_tier: Price | None = None
    # USD per paid web search request (``Usage.web_search_requests``).
    web_search: Decimal | None = None
    # The prices of calls made in a service tier ("flex", "priority", "batch"), by tier name.
    service_tiers: tuple[tuple[str, Price], ...] = ()
    # What every token of a call run in an inference geography costs, as a multiple of the price (Anthropic's
    # "us": 1.1), by lower-case geography name; "*" for any geography but global (Vertex AI's regional endpoints).
    geo_multipliers: tuple[tuple[str, Decimal], ...] = ()
    # A pricing dimension this price does not model (e.g. off-peak hours): its calls take litellm's figure.
    unmodeled: str | None = None
    # Pico-dollars per token for each bucket, when every price is a whole number of them (the fast path).
    _units: tuple[int, ...] | None = field(default=None, init=False, repr=False, compare=False)
    # What one cache-read token (text, audio) saves in pico-dollars, with ``_units``.
    _saved_per_read: int = field(default=0, init=False, repr=False, compare=False)
    _saved_per_audio_read: int = field(default=0, init=False, repr=False, compare=False)
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Hashing ten Decimals is slow: hash once, for the dicts and sets a price keys.
        object.__setattr__(self, "_hash", hash(tuple(getattr(self, b) for b in (*BUCKETS, "source", "source_url"))))
        per_token = [self.per_token(bucket) for bucket in BUCKETS]
        scaled = [p * UNITS_PER_USD for p in per_token]
        if all(s == s.to_integral_value() for s in scaled):
            units = tuple(int(s) for s in scaled)
            object.__setattr__(self, "_units", units)
            object.__setattr__(self, "_saved_per_read", max(0, units[0] - units[1]))
            object.__setattr__(self, "_saved_per_audio_read", max(0, units[5] - units[9]))

    @classmethod
    def per_mtok(
        cls,
        input: object,
        output: object,
        *,
        cache_read: object = None,
        cache_write: object = None,
        reasoning: object = None,
        source: str = "override",
        source_url: str | None = None,
    ) -> Price:
        """Build a price from USD per million tokens (int, float, str or Decimal).

        Raises:
            TypeError, ValueError: for an amount that is not a non-negative finite number.
        """

        def per_token(value: object, name: str) -> Decimal | None:
            amount = parse_amount(value, name)
            return None if amount is None else amount / _MILLION

        input_price = per_token(input, "input_per_mtok")
        output_price = per_token(output, "output_per_mtok")
        if input_price is None or output_price is None:
            raise TypeError("input_per_mtok and output_per_mtok are required")
        return cls(
            input=input_price,
            output=output_price,
            cache_read=per_token(cache_read, "cache_read_per_mtok"),
            cache_write=per_token(cache_write, "cache_write_per_mtok"),
            reasoning=per_token(reasoning, "reasoning_per_mtok"),
            source=source,
            source_url=source_url,
        )

    def __hash__(self) -> int:
        return self._hash

    def per_token(self, bucket: str) -> Decimal:
        """Return the USD price of one token of ``bucket``, following the fallbacks."""
        price: Decimal | None = getattr(self, bucket)
        while price is None:
            bucket = _FALLBACK[bucket]
            price = getattr(self, bucket)
        return price

    def for_call(self, usage: Usage) -> Price | str:
        """Return the price ``usage``'s call is billed at, or why this price cannot bill it.

        The price of the call's service tier, scaled by its inference geography's multiplier. A reason (a
        ``str``) when the call has a dimension this price has no figure for: a tier it has no price for, 1-hour
        cache writes or web searches without a price, or a dimension it does not model (``unmodeled``).
        """
        price = self
        tier = usage.service_tier
        if tier is not None and tier.lower() not in STANDARD_TIERS:
            variant = dict(self.service_tiers).get(tier.lower())
            if variant is None:
                return f"no {tier} service tier price"
            price = variant
        if self.unmodeled is not None:
            return self.unmodeled
        if usage.cache_write_1h and price.cache_write_1h is None:
            return "no 1-hour cache write price"
        if usage.web_search_requests and price.web_search is None:
            return "no web search price"
        geo = usage.inference_geo
        if geo is not None and self.geo_multipliers and geo.lower() not in _GLOBAL_GEOS:
            multipliers = dict(self.geo_multipliers)
            multiplier = multipliers.get(geo.lower(), multipliers.get("*"))
            if multiplier is not None and multiplier != 1:
                price = price.scaled(multiplier)
        return price

    def scaled(self, multiplier: Decimal) -> Price:
        """Return this price with every token price (tiers included) times ``multiplier``; web searches as they
        are. The result has no service tiers or geography multipliers of its own (it is one call's price)."""
        buckets = {b: None if (v := getattr(self, b)) is None else v * multiplier for b in BUCKETS}
        above = None if self.above_tier is None else self.above_tier.scaled(multiplier)
        return replace(self, **buckets, above_tier=above, service_tiers=(), geo_multipliers=())  # type: ignore[arg-type]

    def cost_units(self, usage: Usage) -> int:
        """Return the exact cost of ``usage`` in pico-dollars (its tokens and its web searches).

        The sum of ``breakdown_units(usage)``, its plain reference (tests compare the two on every kind of usage).
        """
        units = self._units
        if units is not None and not usage.web_search_requests:
            # The fast path (every price a whole number of pico-dollars, no web searches): no call, and the other
            # buckets only when the call has any.
            input_, cache_read, cache_write, output, reasoning, audio_in, audio_out, image, write_1h, read_audio = units
            cost = (
                usage.input * input_
                + usage.cache_read * cache_read
                + usage.cache_write * cache_write
                + usage.output * output
                + usage.reasoning * reasoning
            )
            if usage.audio_in or usage.audio_out or usage.image or usage.cache_write_1h or usage.cache_read_audio:
                cost += (
                    usage.audio_in * audio_in
                    + usage.audio_out * audio_out
                    + usage.image * image
                    + usage.cache_write_1h * write_1h
                    + usage.cache_read_audio * read_audio
                )
            return cost
        return sum(self.breakdown_units(usage).values())

    def web_search_units(self, usage: Usage) -> int:
        """Return the cost of ``usage``'s web searches in pico-dollars (0 without a web search price)."""
        if not usage.web_search_requests or self.web_search is None:
            return 0
        return to_units(usage.web_search_requests * self.web_search)

    def breakdown_units(self, usage: Usage) -> dict[str, int]:
        """Return the cost of each non-empty bucket of ``usage`` in pico-dollars (and of its ``web_search``es)."""
        out: dict[str, int] = {}
        for bucket in BUCKETS:
            tokens: int = getattr(usage, bucket)
            if tokens:
                out[bucket] = to_units(tokens * self.per_token(bucket))
        searches = self.web_search_units(usage)
        if searches:
            out["web_search"] = searches
        return out

    def saved_units(self, usage: Usage) -> int:
        """Return what the cache reads in ``usage`` saved against the uncached price, in pico-dollars: the input
        price for text, the audio input price for cached audio."""
        if not (usage.cache_read or usage.cache_read_audio):
            return 0
        if self._units is not None:
            return usage.cache_read * self._saved_per_read + usage.cache_read_audio * self._saved_per_audio_read
        saved = max(0, to_units(usage.cache_read * (self.input - self.per_token("cache_read"))))
        if usage.cache_read_audio:
            audio = usage.cache_read_audio * (self.per_token("audio_in") - self.per_token("cache_read_audio"))
            saved += max(0, to_units(audio))
        return saved

    def as_per_mtok(self) -> dict[str, Decimal]:
        """Return each explicitly set bucket price in USD per million tokens."""
        out: dict[str, Decimal] = {}
        for bucket in BUCKETS:
            value: Decimal | None = getattr(self, bucket)
            if value is not None:
                out[bucket] = (value * _MILLION).normalize()
        return out
