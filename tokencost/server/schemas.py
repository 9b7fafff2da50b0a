"""The API's request and response models (pydantic), and the limits on what a client may send.

The response models are enforced, not only documented: every JSON route validates what it returns against its
model (``strict``: money must already be a decimal string, a count an int; ``extra="forbid"``: no undeclared
field), so a response that drifts from the schema is a 500, never a silent change (``routes.respond``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_GROUPS",
    "MAX_MODELS_PAGE",
    "MAX_RECENT",
    "BudgetOut",
    "BudgetsOut",
    "ErrorOut",
    "EventOut",
    "GroupBy",
    "GroupOut",
    "HealthOut",
    "ModelPriceOut",
    "ModelsOut",
    "RecentOut",
    "ResponseModel",
    "SummaryOut",
    "TrackRequest",
]

# Bounds on what one POST /track may carry: generous for real calls, small enough that a client cannot bloat
# the ledger or the dashboard.
MAX_TOKENS = 1_000_000_000
MAX_NAME_CHARS = 256
MAX_PROVIDER_CHARS = 64
MAX_TAGS = 32
MAX_TAG_CHARS = 64
MAX_META_KEYS = 32
MAX_META_KEY_CHARS = 64
MAX_META_TEXT_CHARS = 1024
MAX_RECENT = 1000
MAX_GROUPS = 1000
MAX_MODELS_PAGE = 1000
JS_SAFE_INT = 2**53

# No control characters in names: they would be invisible on the dashboard and in CSV exports.
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"

Count = Annotated[int, Field(ge=0, le=MAX_TOKENS, strict=True)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS, pattern=_PRINTABLE)]
ProviderName = Annotated[str, Field(min_length=1, max_length=MAX_PROVIDER_CHARS, pattern=_PRINTABLE)]
Tag = Annotated[str, Field(min_length=1, max_length=MAX_TAG_CHARS, pattern=_PRINTABLE)]
MetaKey = Annotated[str, Field(min_length=1, max_length=MAX_META_KEY_CHARS, pattern=_PRINTABLE)]
MetaValue = (
    Annotated[str, Field(max_length=MAX_META_TEXT_CHARS, strict=True)]
    | Annotated[bool, Field(strict=True)]
    | Annotated[int, Field(ge=-JS_SAFE_INT, le=JS_SAFE_INT, strict=True)]
    | Annotated[float, Field(allow_inf_nan=False, strict=True)]
    | None
)
# A grouping key: model, provider, status, price_source, day, tag or any metadata key (as ``tokencost report --by``).
GroupBy = Annotated[
    str, Field(min_length=1, max_length=MAX_META_KEY_CHARS, pattern=_PRINTABLE, description="The grouping key.")
]


# -- the request -------------------------------------------------------------------------------------------------
class TrackRequest(BaseModel):
    """A call made outside litellm, in OpenAI's convention.

    The counts are ``track()``'s: ``prompt_tokens`` includes the cache reads and writes, ``completion_tokens`` the
    reasoning tokens (docs/json.md: ``input_tokens`` means uncached input everywhere, so a request does not use it).
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: Name = Field(description="The model name, e.g. gpt-4o or anthropic/claude-sonnet-4-5.")
    prompt_tokens: Count = Field(description="All prompt tokens, cache reads and writes included.")
    completion_tokens: Count = Field(description="All completion tokens, reasoning included.")
    cache_read_tokens: Count = 0
    cache_write_tokens: Count = 0
    reasoning_tokens: Count = 0
    provider: ProviderName | None = Field(default=None, description="Else guessed from the model name.")
    endpoint: Name | None = Field(default=None, description="Your own API endpoint that made the call.")
    user: Name | None = None
    tags: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)
    metadata: dict[MetaKey, MetaValue] | None = Field(
        default=None,
        max_length=MAX_META_KEYS,
        description="Flat attribution values (text, numbers, booleans); endpoint, user and tags have fields.",
    )


# -- the responses -----------------------------------------------------------------------------------------------
def _keep_schema_open(schema: dict[str, Any]) -> None:
    """Leave ``additionalProperties`` out of the published schema: clients must still accept fields added later."""
    schema.pop("additionalProperties", None)


class ResponseModel(BaseModel):
    """A response body: validated strictly, no undeclared field (what the route returns must be this shape).

    ``extra="forbid"`` holds the server to its schema; the schema it publishes stays open (``_keep_schema_open``),
    so a field added in a later version is not a breaking change for clients that validate.
    """

    model_config = ConfigDict(extra="forbid", strict=True, protected_namespaces=(), json_schema_extra=_keep_schema_open)


class EventOut(ResponseModel):
    """One recorded call, as an export record: money in USD as decimal strings (docs/json.md: an event)."""

    call_id: str
    timestamp: str
    model: str
    provider: str
    status: str
    priced: bool
    cost: str | None = Field(description="USD as a decimal string; null when no price is known.")
    price_source: str | None
    prompt_tokens: int = Field(description="All input tokens: uncached, cache reads and cache writes.")
    completion_tokens: int = Field(description="All output tokens, reasoning included.")
    input_tokens: int = Field(description="Uncached input tokens only.")
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int = Field(description="Output tokens without reasoning.")
    reasoning_tokens: int
    audio_in_tokens: int
    audio_out_tokens: int
    image_tokens: int
    cache_read_audio_tokens: int = Field(description="The audio part of cache_read_tokens.")
    saved_by_cache: str
    cost_breakdown: dict[str, str]
    price_per_mtok: dict[str, str]
    reason: str | None
    metadata: dict[str, Any]


class HealthOut(ResponseModel):
    """Whether the store answers."""

    status: Literal["ok", "unavailable"]
    ledger: str


class GroupOut(ResponseModel):
    """Totals of the calls sharing one value of the grouping key (docs/json.md: a group)."""

    key: str
    requests: int
    cost: str
    share: str = Field(description="Of the summary's cost, 0 to 1, four decimals.")
    unpriced: int
    saved_by_cache: str
    prompt_tokens: int
    completion_tokens: int
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cached_share: str | None


class BudgetOut(ResponseModel):
    """One budget scope in its current window, money as decimal strings (docs/json.md: a budget)."""

    scope: str
    window: str
    limit: str | None
    spent: str
    remaining: str | None
    max_tokens: int | None
    tokens: int
    strict: bool
    exceeded: bool


class SummaryOut(ResponseModel):
    """Totals over a time range, per group and budgets: what ``tokencost report --json`` prints."""

    ledger: str
    by: str
    window: str
    since: str | None
    until: str | None
    cost: str
    requests: int
    unpriced: int
    saved_by_cache: str
    prompt_tokens: int
    completion_tokens: int
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cached_share: str | None
    cache_hits: int
    cache_hits_saved: str
    groups_total: int
    groups: list[GroupOut]
    budgets: list[BudgetOut]


class RecentOut(ResponseModel):
    """The newest calls, newest first."""

    ledger: str
    limit: int
    events: list[EventOut]


class ModelPriceOut(ResponseModel):
    """A known price, USD per million tokens (decimal strings), and where it comes from."""

    model: str
    provider: str | None
    source: str
    source_url: str | None
    input_per_mtok: str
    output_per_mtok: str
    cache_read_per_mtok: str | None
    cache_write_per_mtok: str | None
    reasoning_per_mtok: str | None


class ModelsOut(ResponseModel):
    """One page of known prices."""

    total: int
    offset: int
    limit: int
    models: list[ModelPriceOut]


class BudgetsOut(ResponseModel):
    """Every budget scope the ledger's trackers declared."""

    ledger: str
    budgets: list[BudgetOut]


class ErrorOut(ResponseModel):
    """An error that is not a validation error."""

    detail: str
