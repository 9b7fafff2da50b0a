"""Price discovery through Linkup's web search, for models no other source knows.

``LinkupSearchSource.lookup()`` never blocks the caller: for a model not seen yet it returns ``None`` and starts one
search in a background thread; the event is recorded unpriced-pending and the chain's listener hears the price
(or the reason there is none) when the search ends. A price is trusted only after ``validate_answer`` accepted it,
and only then written to a cache file (``cache_files``) that later lookups read.

Each search is billed by Linkup (about $0.006 standard, $0.055 deep), so nothing is retried blindly: at most one
search per model is in flight, a model whose search failed is searched again at most once an hour (longer after
repeated failures), and an account problem (bad key, no credits, rate limit) pauses every search.

The API key is never logged, written to a file, put in an exception message or shown in a ``repr``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import math
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import httpx

from tokencost.errors import TokencostError
from tokencost.pricing import PriceListener, PriceSource
from tokencost.pricing._price import Price
from tokencost.pricing.cache_files import CacheFileSource, write_price_file

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "PRICE_SCHEMA",
    "LinkupClient",
    "LinkupError",
    "LinkupSearchSource",
    "PriceValidationError",
    "discovery_sources",
    "search_price",
    "validate_answer",
]

logger = logging.getLogger("tokencost")

DEFAULT_BASE_URL: Final = "https://api.linkup.so/v1"
BASE_URL_ENV: Final = "TOKENCOST_LINKUP_URL"
DEFAULT_TIMEOUT: Final = httpx.Timeout(20.0, connect=3.0)

MIN_INPUT_PER_MTOK: Final = Decimal("0.001")
MAX_INPUT_PER_MTOK: Final = Decimal(1000)
MAX_OUTPUT_PER_MTOK: Final = Decimal(2000)

_MAX_RESPONSE_BYTES = 2 * 1024 * 1024
_MAX_RETRY_AFTER = 24 * 3600.0
_MAX_BACKOFF = 24 * 3600.0
_DEFAULT_RATE_LIMIT_PAUSE = 30.0
_NO_RESULT = "SEARCH_QUERY_NO_RESULT"
_ACCOUNT_CODES = frozenset({"INSUFFICIENT_FUNDS_CREDITS", "EXCEED_BUDGET_LIMIT"})
_MILLION = Decimal(1_000_000)

# The structured answer Linkup is asked for: flat, so that every field is checked by validate_answer.
PRICE_SCHEMA: Final[Mapping[str, Any]] = {
    "type": "object",
    "properties": {
        "model_name_found": {
            "type": "string",
            "description": "The model name exactly as the pricing page writes it, for the row the prices come from.",
        },
        "input_price": {"type": "number", "description": "Price of uncached input (prompt) tokens."},
        "output_price": {"type": "number", "description": "Price of output (completion) tokens."},
        "cached_input_price": {
            "type": "number",
            "description": "Price of cached input tokens (cache hits, cache reads); omit when not listed.",
        },
        "cache_write_price": {
            "type": "number",
            "description": "Price of writing tokens to the prompt cache; omit when not listed.",
        },
        "price_unit": {
            "type": "string",
            "enum": ["per_token", "per_1k_tokens", "per_1m_tokens"],
            "description": "How many tokens each price above is for.",
        },
        "currency": {"type": "string", "description": "ISO currency code of the prices, e.g. USD."},
        "source_url": {"type": "string", "description": "URL of the official pricing page the prices come from."},
    },
    "required": ["model_name_found", "input_price", "output_price", "price_unit", "currency", "source_url"],
}


# ---------------------------------------------------------------------------------------------------- errors


class LinkupError(TokencostError):
    """A Linkup search failed at the HTTP level (error status, timeout, unreadable reply).

    Attributes:
        status: the HTTP status, or ``None`` when no reply came (timeout, connection error).
        code: Linkup's error code (``"TOO_MANY_REQUESTS"``, ``"SEARCH_QUERY_NO_RESULT"``...), or ``None``.
        message: what went wrong, never containing the API key.
        retryable: whether the same search may succeed later without a change (rate limit, 5xx, timeout).
        retry_after: seconds Linkup asked us to wait (``Retry-After``), or ``None``.
    """

    def __init__(
        self,
        status: int | None,
        code: str | None,
        message: str,
        retryable: bool,
        *,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(message)

    def __repr__(self) -> str:
        return f"LinkupError(status={self.status!r}, code={self.code!r}, retryable={self.retryable!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_linkup_error, (self.status, self.code, self.message, self.retryable, self.retry_after))

    @property
    def reason(self) -> str:
        """The message, for symmetry with ``PriceValidationError.reason``."""
        return self.message

    @property
    def no_result(self) -> bool:
        """Whether Linkup answered but found nothing (``400 SEARCH_QUERY_NO_RESULT``)."""
        return self.status == 400 and self.code == _NO_RESULT

    @property
    def account_problem(self) -> bool:
        """Whether every search will fail until a person acts (bad key, no credits, forbidden, rate limited)."""
        return self.status in (401, 402, 403) or self.code in _ACCOUNT_CODES or self.code == "TOO_MANY_REQUESTS"


def _rebuild_linkup_error(
    status: int | None, code: str | None, message: str, retryable: bool, retry_after: float | None
) -> LinkupError:
    return LinkupError(status, code, message, retryable, retry_after=retry_after)


class PriceValidationError(TokencostError, ValueError):
    """A search answer was not trusted as a price; ``reason`` says why (wrong model, unit, bounds...)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (PriceValidationError, (self.reason,))


# ---------------------------------------------------------------------------------------------------- client


def _clean(text: str, limit: int = 200) -> str:
    """Return ``text`` on one line, printable, at most ``limit`` characters."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text)
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _retry_after(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header (seconds or an HTTP date) into seconds, capped at a day."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        seconds = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


_STATUS_TEXT = {
    401: "Linkup rejected the API key",
    402: "Linkup requires payment (no usable API key)",
    403: "Linkup refused access for this API key",
    429: "Linkup rate limit reached",
}


class LinkupClient:
    """A small synchronous client for Linkup's ``POST /search``, built on plain ``httpx``.

    Safe to share between threads. The base URL comes from ``base_url``, else the ``TOKENCOST_LINKUP_URL``
    environment variable, else ``https://api.linkup.so/v1``; ``/search`` is appended.

    Example::

        client = LinkupClient(os.environ["LINKUP_API_KEY"])
        body = client.search("price of acme-large-2", depth="standard", schema=PRICE_SCHEMA)
    """

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("a Linkup API key is required")
        self._api_key = api_key.strip()
        base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        self.base_url = base.rstrip("/")
        self.timeout = timeout
        # The whole exchange (headers and body) must end within this many seconds; httpx's own timeouts are
        # per socket operation, so a reply trickling in byte by byte would otherwise never time out.
        self._deadline_seconds = max(
            (t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t is not None), default=60.0
        )
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=True)

    def __repr__(self) -> str:
        return f"LinkupClient(base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> LinkupClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _scrub(self, text: str) -> str:
        return _clean(text.replace(self._api_key, "***"))

    def search(
        self,
        query: str,
        *,
        depth: str = "standard",
        schema: Mapping[str, Any] | None = PRICE_SCHEMA,
    ) -> Any:
        """Run one search (billed by Linkup) and return the parsed JSON reply.

        With a ``schema`` the request asks for ``outputType: "structured"`` with ``includeSources: true``, and
        the reply is ``{"data": {...}, "sources": [...]}``; without one, a ``sourcedAnswer``.

        Raises:
            LinkupError: for an error status, a timeout, a connection error or a reply that is not JSON.
        """
        body: dict[str, Any] = {"q": query, "depth": depth, "includeSources": True}
        if schema is not None:
            body["outputType"] = "structured"
            body["structuredOutputSchema"] = json.dumps(schema)
        else:
            body["outputType"] = "sourcedAnswer"
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        started = time.monotonic()
        try:
            with self._client.stream("POST", f"{self.base_url}/search", json=body, headers=headers) as response:
                payload = bytearray()
                for chunk in response.iter_bytes():
                    payload += chunk
                    if len(payload) > _MAX_RESPONSE_BYTES:
                        raise LinkupError(response.status_code, None, "Linkup's reply is too large", False)
                    if time.monotonic() - started > self._deadline_seconds:
                        raise httpx.ReadTimeout("deadline")
                status = response.status_code
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except httpx.TimeoutException:
            raise LinkupError(None, None, f"Linkup did not answer within {self._deadline_seconds:g} s", True) from None
        except httpx.HTTPError as exc:
            # Only the class name: an httpx exception carries the request, and so the Authorization header.
            raise LinkupError(None, None, f"cannot reach Linkup ({type(exc).__name__})", True) from None
        try:
            parsed: Any = json.loads(bytes(payload))
        except (UnicodeDecodeError, ValueError):
            if 200 <= status < 300:
                raise LinkupError(status, None, "Linkup's reply is not JSON", False) from None
            raise LinkupError(
                status, None, f"Linkup answered HTTP {status} with a non-JSON body", status >= 500 or status == 429
            ) from None
        if 200 <= status < 300:
            return parsed
        raise self._error(status, parsed, retry_after)

    def _error(self, status: int, parsed: Any, retry_after: float | None) -> LinkupError:
        error = parsed.get("error") if isinstance(parsed, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        code = (
            self._scrub(
                code,
            )
            if isinstance(code, str)
            else None
        )
        message = error.get("message") if isinstance(error, dict) else None
        detail = self._scrub(message) if isinstance(message, str) and message.strip() else ""
        label = f"HTTP {status}" + (f" {code}" if code else "")
        if status == 400 and code == _NO_RESULT:
            return LinkupError(status, code, f"Linkup found no result ({label})", False)
        if status == 429 and code in _ACCOUNT_CODES:
            text = "the Linkup account is out of credits or over its budget"
            return LinkupError(status, code, f"{text} ({label}{': ' + detail if detail else ''})", False)
        retryable = status >= 500 or (status == 429 and code != "INSUFFICIENT_FUNDS_CREDITS")
        text = _STATUS_TEXT.get(status) or ("Linkup server error" if status >= 500 else "Linkup refused the search")
        return LinkupError(
            status, code, f"{text} ({label}{': ' + detail if detail else ''})", retryable, retry_after=retry_after
        )


# ---------------------------------------------------------------------------------------------------- validation


_SEPARATORS = re.compile(r"[\s_.\-]+")
_UNITS: dict[str, Decimal] = {
    "": Decimal(1),
    "1": Decimal(1),
    "k": Decimal(1000),
    "1k": Decimal(1000),
    "thousand": Decimal(1000),
    "1thousand": Decimal(1000),
    "1000": Decimal(1000),
    "m": _MILLION,
    "1m": _MILLION,
    "mtok": _MILLION,
    "1mtok": _MILLION,
    "million": _MILLION,
    "1million": _MILLION,
    "1000000": _MILLION,
    "1000k": _MILLION,
}


def _model_key(name: str) -> str:
    """Fold case and treat runs of spaces, ``-``, ``_`` and ``.`` as one separator."""
    return _SEPARATORS.sub("-", name.casefold()).strip("-")


def _unit_tokens(unit: object) -> Decimal:
    """Return how many tokens a price is for, from ``per_1m_tokens``, ``per million tokens``, ``/1K``..."""
    if not isinstance(unit, str):
        raise PriceValidationError(f"the price unit is missing or not text ({type(unit).__name__})")
    text = re.sub(r"[\s_/,$]+", "", unit.casefold()).replace("usd", "")
    match = re.fullmatch(r"(?:per)?(.*?)(?:tokens?)?", text)
    tokens = _UNITS.get(match.group(1)) if match else None
    if tokens is None:
        raise PriceValidationError(f"unknown price unit {_clean(unit, 40)!r}")
    return tokens


def _required(data: Mapping[str, Any], key: str, tokens: Decimal) -> Decimal:
    """Return the price ``data[key]`` in USD per million tokens; it must be there."""
    amount = _amount(data, key, tokens)
    if amount is None:
        raise PriceValidationError(f"the answer has no {key}")
    return amount


def _amount(data: Mapping[str, Any], key: str, tokens: Decimal) -> Decimal | None:
    """Return the price ``data[key]`` in USD per million tokens, or ``None`` when it is not given."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise PriceValidationError(f"{key} is not a number")
    text = value.strip().removeprefix("$").strip() if isinstance(value, str) else str(value)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise PriceValidationError(f"{key} {_clean(str(value), 40)!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise PriceValidationError(f"{key} {_clean(str(value), 40)!r} is not a non-negative number")
    return amount * _MILLION / tokens


def _https_url(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    url = value.strip()
    if len(url) > 2000 or any(ch.isspace() or not ch.isprintable() for ch in url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() == "https" and parts.hostname else None


def _bare_model(model: str) -> str:
    """Return ``model`` without a provider prefix (``openai/acme-large-2`` -> ``acme-large-2``)."""
    return model.rsplit("/", 1)[-1] if "/" in model else model


def validate_answer(model: str, data: object, sources: Sequence[Any] | None = None) -> Price:
    """Turn a structured Linkup answer into a trusted ``Price`` (``source="linkup"``), or refuse it.

    Checks: the model name found matches ``model`` exactly (ignoring case and spacing, so a ``-mini`` or other
    sibling row is refused), the currency is USD, the unit is one we convert (per token, per 1K, per 1M),
    input is within $0.001..$1,000 per million tokens, output at most $2,000, cached input no higher than
    input, and the source is an https URL (the answer's ``source_url``, else the first https source).

    Raises:
        PriceValidationError: with the reason the answer is not trusted.
    """
    if not isinstance(data, Mapping):
        raise PriceValidationError(f"the answer is not an object ({type(data).__name__})")
    found = data.get("model_name_found")
    if not isinstance(found, str) or not found.strip():
        raise PriceValidationError("the answer does not say which model it prices")
    wanted = _bare_model(model)
    if _model_key(_bare_model(found)) != _model_key(wanted):
        raise PriceValidationError(f"the answer prices {_clean(found, 80)!r}, not {wanted!r}")
    currency = data.get("currency")
    if not isinstance(currency, str) or currency.strip().upper() not in ("USD", "US$", "$", "US DOLLAR", "US DOLLARS"):
        shown = _clean(currency, 20) if isinstance(currency, str) else type(currency).__name__
        raise PriceValidationError(f"the prices are in {shown!r}, not USD")
    tokens = _unit_tokens(data.get("price_unit"))
    input_price = _required(data, "input_price", tokens)
    output_price = _required(data, "output_price", tokens)
    cached = _amount(data, "cached_input_price", tokens)
    cache_write = _amount(data, "cache_write_price", tokens)
    if not MIN_INPUT_PER_MTOK <= input_price <= MAX_INPUT_PER_MTOK:
        raise PriceValidationError(
            f"implausible input price ${_show(input_price)} per million tokens "
            f"(expected ${MIN_INPUT_PER_MTOK}..${MAX_INPUT_PER_MTOK})"
        )
    if output_price > MAX_OUTPUT_PER_MTOK:
        raise PriceValidationError(
            f"implausible output price ${_show(output_price)} per million tokens (expected at most "
            f"${MAX_OUTPUT_PER_MTOK})"
        )
    # Zero means "not listed" far more often than "free": bill those tokens like input instead.
    cached = cached or None
    cache_write = cache_write or None
    if cached is not None and cached > input_price:
        raise PriceValidationError(
            f"cached input price ${_show(cached)} is above the input price ${_show(input_price)} per million tokens"
        )
    if cache_write is not None and cache_write > MAX_OUTPUT_PER_MTOK:
        raise PriceValidationError(f"implausible cache write price ${_show(cache_write)} per million tokens")
    url = _https_url(data.get("source_url"))
    if url is None:
        for source in sources or ():
            url = _https_url(source.get("url")) if isinstance(source, Mapping) else None
            if url is not None:
                break
    if url is None:
        raise PriceValidationError("the answer has no https source URL")
    return Price.per_mtok(
        input_price, output_price, cache_read=cached, cache_write=cache_write, source="linkup", source_url=url
    )


def _show(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def _answer(body: object) -> tuple[object, list[Any]]:
    """Split a structured reply with sources into ``(data, sources)``."""
    if not isinstance(body, Mapping) or "data" not in body:
        raise PriceValidationError("Linkup's reply has no structured answer ('data')")
    sources = body.get("sources")
    return body["data"], list(sources) if isinstance(sources, list) else []


def _query(model: str, provider: str | None, *, deep: bool) -> str:
    name = _clean(_bare_model(model), 120)
    by = f" by {_clean(provider, 40)}" if provider else ""
    query = (
        f'What is the official API price of the AI model "{name}"{by}, in US dollars: the price of input tokens, '
        "output tokens, cached input tokens and cache writes? Use the row for exactly this model, not a smaller, "
        "larger or dated variant, and give the unit (per token, per 1K or per 1M tokens) and the pricing page URL."
    )
    if deep:
        query += " Check the provider's official pricing page or documentation."
    return query


def search_price(client: LinkupClient, model: str, provider: str | None) -> Price:
    """Search the price of ``model`` (blocking): a standard search, then one deep search when the standard one
    found no answer or an answer that failed validation.

    Raises:
        LinkupError: when a search failed at the HTTP level (not retried here).
        PriceValidationError: when no search gave a trusted answer; the reason covers both searches.
    """
    first: str | None = None
    for depth in ("standard", "deep"):
        try:
            body = client.search(_query(model, provider, deep=depth == "deep"), depth=depth, schema=PRICE_SCHEMA)
            data, sources = _answer(body)
            return validate_answer(model, data, sources)
        except LinkupError as exc:
            # Only a missing answer is worth a deep search; an HTTP failure would fail (and be billed) again.
            if not (exc.no_result or exc.status == 200):
                if first is None:
                    raise
                message = f"{exc.message} (after the standard search: {first})"
                raise LinkupError(exc.status, exc.code, message, exc.retryable, retry_after=exc.retry_after) from None
            reason = "no result" if exc.no_result else exc.message
        except PriceValidationError as exc:
            reason = exc.reason
        if first is None:
            first = reason
        elif first == reason == "no result":
            raise PriceValidationError("Linkup found no result (standard and deep searches)")
        else:
            raise PriceValidationError(f"standard search: {first}; deep search: {reason}")
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------------------------------- source


@dataclass
class _Failure:
    until: float
    count: int
    reason: str


def _today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


class LinkupSearchSource:
    """Discover prices through Linkup in the background (``price_source`` ``"linkup"``).

    Put it after a ``CacheFileSource`` on the same folder (``discovery_sources`` does): once a search succeeds,
    the price is written there and later lookups are served from the file.

    Args:
        api_key: the Linkup API key (never logged or written anywhere).
        cache_dir: the folder of the price cache files.
        base_url: Linkup's base URL (see ``LinkupClient``).
        timeout: the HTTP timeout of one search.
        failure_backoff: seconds before a model whose search failed is searched again (doubled after each
            further failure, at most a day); also how long an account problem (bad key, no credits) pauses
            every search.
        max_concurrent: searches running at once (Linkup allows 10 queries a second).
        cache_files: the ``CacheFileSource`` on ``cache_dir`` that runs before this source, if any.
    """

    name = "linkup"
    cacheable = False

    def __init__(
        self,
        api_key: str,
        cache_dir: str | os.PathLike[str],
        base_url: str | None = None,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        failure_backoff: float = 3600.0,
        max_concurrent: int = 4,
        cache_files: CacheFileSource | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.client = LinkupClient(api_key, base_url, timeout=timeout)
        self.failure_backoff = failure_backoff
        self._slots = threading.BoundedSemaphore(max(1, max_concurrent))
        self._listener: PriceListener | None = None
        # Guards every dict below and _paused_until / _pause_reason.
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, str | None], threading.Event] = {}
        self._found: dict[tuple[str, str | None], Price] = {}
        self._failures: dict[tuple[str, str | None], _Failure] = {}
        self._logged: set[tuple[str, str | None]] = set()
        self._paused_until = 0.0
        self._pause_reason: str | None = None
        # Share the chain's CacheFileSource when given, so a broken file is reported once, not once per reader.
        self._cache_files = cache_files if cache_files is not None else CacheFileSource(cache_dir)

    def __repr__(self) -> str:
        return f"LinkupSearchSource(cache_dir={str(self.cache_dir)!r}, base_url={self.client.base_url!r})"

    def set_listener(self, listener: PriceListener) -> None:
        """Call ``listener(model, provider, price, reason)`` when a background search ends."""
        self._listener = listener

    def lookup(self, model: str, provider: str | None) -> Price | None:
        """Return a price found earlier in this process, else ``None`` and start a search when one is due.

        Never blocks on the network. No search starts while one for the same model is in flight, within the
        backoff after a failed one, while searches are paused by an account problem, or when the model has a
        cache file (a broken file is the person's to fix: it is reported and left alone).
        """
        if not isinstance(model, str) or not model:
            return None
        key = (model, provider)
        with self._lock:
            if not self._due(key):
                return self._found.get(key)
        # A file exists when this source runs without a CacheFileSource before it, or when a person broke it:
        # serve the first, leave the second to the person (a search would overwrite their edit).
        cached = self._cache_files.lookup(model, provider)
        if cached is not None or self._cache_files.problem(model, provider) is not None:
            return cached
        with self._lock:
            # Checked again: another thread may have started (or even finished) a search meanwhile.
            if not self._due(key):
                return self._found.get(key)
            done = self._inflight[key] = threading.Event()
        try:
            threading.Thread(target=self._run, args=(key, done), name="tokencost-linkup", daemon=True).start()
        except RuntimeError as exc:  # no thread at interpreter shutdown
            self._finish_failure(key, done, f"cannot start a search thread ({exc})", None)
        return None

    def _due(self, key: tuple[str, str | None]) -> bool:
        """Return whether a search for ``key`` may start now (call with the lock held)."""
        now = time.monotonic()
        if key in self._found or key in self._inflight or now < self._paused_until:
            return False
        failure = self._failures.get(key)
        return failure is None or now >= failure.until

    def is_pending(self, model: str, provider: str | None) -> bool:
        """Return whether a search for ``model`` is in flight (its price or failure will be announced)."""
        with self._lock:
            return (model, provider) in self._inflight

    def failure_reason(self, model: str, provider: str | None) -> str | None:
        """Return why ``model`` has no discovered price right now (a failed search, a pause, a broken cache
        file), or ``None`` when nothing is known to be wrong."""
        key = (model, provider)
        now = time.monotonic()
        with self._lock:
            failure = self._failures.get(key)
            if failure is not None and now < failure.until:
                return failure.reason
            if now < self._paused_until and self._pause_reason is not None:
                return self._pause_reason
        problem = self._cache_files.problem(model, provider)
        return None if problem is None else f"price cache file ignored: {problem}"

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the searches in flight (at exit the tracker gives them 2 s); return whether all ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._inflight.values())
            if not pending:
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            pending[0].wait(remaining)

    def close(self) -> None:
        """Close the HTTP connection pool (searches still in flight fail)."""
        self.client.close()

    def refresh(self, model: str, provider: str | None, *, write: bool = True) -> Price:
        """Search the price of ``model`` now (blocking), whatever the cache and the backoff say.

        On success the price is remembered, written to the cache file when ``write`` is true, and announced to
        the listener. For ``tokencost prices MODEL --refresh``.

        Raises:
            LinkupError, PriceValidationError: the search failed; nothing is written or remembered.
        """
        price = search_price(self.client, model, provider)
        key = (model, provider)
        if write:
            self._write(model, provider, price)
        with self._lock:
            self._found[key] = price
            self._failures.pop(key, None)
        self._notify(model, provider, price, None)
        return price

    # ------------------------------------------------------------------ background work

    def _run(self, key: tuple[str, str | None], done: threading.Event) -> None:
        model, provider = key
        try:
            with self._slots:
                with self._lock:
                    paused = time.monotonic() < self._paused_until
                    pause_reason = self._pause_reason
                if paused:
                    # Another search hit an account problem while this one waited for a slot: give up without
                    # a per-model backoff (the model is not at fault) and without another log line.
                    self._notify(model, provider, None, pause_reason or "Linkup searches are paused")
                    self._clear(key, done)
                    return
                price = search_price(self.client, model, provider)
        except LinkupError as exc:
            self._finish_failure(key, done, exc.message, exc)
            return
        except PriceValidationError as exc:
            self._finish_failure(key, done, exc.reason, None)
            return
        except Exception as exc:  # never let a bug kill the thread silently or leave the model pending
            self._finish_failure(key, done, f"unexpected error ({type(exc).__name__})", None)
            return
        self._write(model, provider, price)
        with self._lock:
            self._found[key] = price
            self._failures.pop(key, None)
        # Announce before clearing the in-flight mark, so wait() returns only once listeners repriced.
        self._notify(model, provider, price, None)
        self._clear(key, done)

    def _clear(self, key: tuple[str, str | None], done: threading.Event) -> None:
        with self._lock:
            self._inflight.pop(key, None)
        done.set()

    def _write(self, model: str, provider: str | None, price: Price) -> None:
        try:
            path = write_price_file(
                self.cache_dir, model, provider, price, source_url=price.source_url, found_on=_today()
            )
        except OSError as exc:
            logger.warning(
                "priced model %r through Linkup but cannot write its cache file in %s (%s); "
                "the price is kept for this process only",
                model,
                self.cache_dir,
                exc.strerror or type(exc).__name__,
            )
            return
        logger.info(
            "priced model %r (provider %s) through Linkup: $%s in, $%s out per million tokens, from %s; cached in %s",
            model,
            provider or "any",
            _show(price.input * _MILLION),
            _show(price.output * _MILLION),
            price.source_url,
            path,
        )

    def _finish_failure(
        self,
        key: tuple[str, str | None],
        done: threading.Event,
        reason: str,
        error: LinkupError | None,
    ) -> None:
        model, provider = key
        now = time.monotonic()
        with self._lock:
            previous = self._failures.get(key)
            count = previous.count + 1 if previous is not None else 1
            backoff = min(self.failure_backoff * 2 ** (count - 1), _MAX_BACKOFF)
            if error is not None and error.retry_after is not None:
                backoff = max(backoff, error.retry_after)
            self._failures[key] = _Failure(now + backoff, count, reason)
            pause: float | None = None
            if error is not None and error.account_problem:
                if error.code == "TOO_MANY_REQUESTS":
                    pause = error.retry_after if error.retry_after is not None else _DEFAULT_RATE_LIMIT_PAUSE
                else:
                    pause = self.failure_backoff
                self._paused_until = max(self._paused_until, now + pause)
                self._pause_reason = f"Linkup searches paused: {reason}"
            first_time = key not in self._logged
            self._logged.add(key)
        if first_time:
            scope = f"; every Linkup search paused for {_duration(pause)}" if pause is not None else ""
            logger.warning(
                "no price for model %r (provider %s) from Linkup: %s; next search for it in %s%s",
                model,
                provider or "any",
                reason,
                _duration(backoff),
                scope,
            )
        self._notify(model, provider, None, reason)
        self._clear(key, done)

    def _notify(self, model: str, provider: str | None, price: Price | None, reason: str | None) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            listener(model, provider, price, reason)
        except Exception:  # a listener's bug must not kill the search thread
            logger.exception("price listener failed for model %r", model)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def discovery_sources(cache_dir: str | os.PathLike[str], api_key: str | None) -> list[PriceSource]:
    """Return the discovery part of the pricing chain: the cache files, then a Linkup search when a key is set.

    Example::

        sources = discovery_sources("model_costs", linkup_api_key or os.environ.get("LINKUP_API_KEY"))
    """
    cache_files = CacheFileSource(cache_dir)
    sources: list[PriceSource] = [cache_files]
    if api_key and api_key.strip():
        sources.append(LinkupSearchSource(api_key, cache_dir, cache_files=cache_files))
    return sources
