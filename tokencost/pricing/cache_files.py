"""Discovered prices cached as markdown files a person can read and edit, one file per model and provider.

A file looks like this (``model_costs/acme-large-2_openai_cost_parameters.md``)::

    # acme-large-2 (openai): USD per million tokens

    auto-resolved via web search on 2026-11-24. ...

    - model: acme-large-2
    - provider: openai
    - input_per_mtok_usd: 4.0
    - output_per_mtok_usd: 12.0
    - cached_input_per_mtok_usd: 0.4
    - cache_write_per_mtok_usd:
    - source_url: https://acme.example/pricing
    - found_on: 2026-11-24

``CacheFileSource`` re-reads a file whenever it changes on disk, so a hand edit wins at the next lookup. A file
that cannot be read (a bad number, a missing price) is logged once and ignored; it never raises into the caller.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import threading
import unicodedata
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from tokencost.money import parse_amount
from tokencost.pricing._price import Price

__all__ = ["CacheFileSource", "price_file_path", "read_price_file", "write_price_file"]

logger = logging.getLogger("tokencost")

_SUFFIX = "_cost_parameters.md"
# The file name reserved for a model priced for any provider (a lookup with provider None, or a fallback).
_ANY_PROVIDER = "any"
# Names kept verbatim in a file name. The model part never holds "_", so "{model}_{provider}" splits one way only.
_FAITHFUL_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")
_FAITHFUL_PROVIDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")
_MODEL_CHARS = 80
_PROVIDER_CHARS = 40
_HASH_CHARS = 10
_MAX_FILE_BYTES = 64 * 1024

_INPUT = "input_per_mtok_usd"
_OUTPUT = "output_per_mtok_usd"
_CACHED_INPUT = "cached_input_per_mtok_usd"
_CACHE_WRITE = "cache_write_per_mtok_usd"
_REASONING = "reasoning_per_mtok_usd"
_LINE = re.compile(r"^\s*(?:[-*+]\s+)?[`*]*([A-Za-z][A-Za-z0-9_]*)[`*]*\s*:\s*(.*?)\s*$")
_EMPTY = {"", "-", "none", "null", "n/a"}
NOTE = "auto-resolved via web search"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]


def _name_part(name: str, faithful: re.Pattern[str], limit: int, fallback: str) -> str:
    """Return ``name`` when it is safe and short, else a readable ASCII form plus a hash of the original."""
    if len(name) <= limit and faithful.fullmatch(name):
        return name
    ascii_form = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    readable = _UNSAFE.sub("-", ascii_form).strip(".-+")[:limit].rstrip(".-+")
    return f"{readable or fallback}-{_digest(name)}"


def price_file_path(cache_dir: str | os.PathLike[str], model: str, provider: str | None) -> Path:
    """Return the cache file of ``model`` at ``provider`` (``None``: any provider) inside ``cache_dir``.

    The name stays readable (``acme-large-2_openai_cost_parameters.md``). A name that had to be changed to be
    safe (path separators, ``..``, NUL bytes, non-ASCII, ``_`` in the model, more than 80 characters) keeps a
    readable ASCII form plus a hash of the original, so two models never share a file and every file stays
    directly inside ``cache_dir`` with a name under 200 characters.
    """
    model_part = _name_part(model, _FAITHFUL_MODEL, _MODEL_CHARS, "model")
    provider_part = _name_part(provider or _ANY_PROVIDER, _FAITHFUL_PROVIDER, _PROVIDER_CHARS, "provider")
    return Path(cache_dir) / f"{model_part}_{provider_part}{_SUFFIX}"


def _literal_path(cache_dir: str | os.PathLike[str], model: str, provider: str) -> Path | None:
    """``cache_dir / f"{model}_{provider}_cost_parameters.md"`` (a ``/`` in the model makes folders), or None
    when that path would not stay inside ``cache_dir`` (``..``, an absolute name, a backslash, a NUL, a ``/`` in
    the provider)."""
    if not provider or any(ch in provider for ch in "/\\\x00") or provider in (".", ".."):
        return None
    parts = model.split("/")
    if any(not part or part in (".", "..") or "\\" in part or "\x00" in part for part in parts):
        return None
    parts[-1] = f"{parts[-1]}_{provider}{_SUFFIX}"
    if any(len(part) > 200 for part in parts):
        return None
    return Path(cache_dir).joinpath(*parts)


def _show_amount(amount: Decimal | None) -> str:
    if amount is None:
        return ""
    text = format(amount.normalize(), "f")
    return text if "." in text else text + ".0"


def _show_text(text: str) -> str:
    """Return ``text`` as is when it is plain printable text, else JSON-quoted (so it cannot add lines)."""
    if text and text.isprintable() and text == text.strip() and not text.startswith('"'):
        return text
    return json.dumps(text)


def _field(key: str, value: str) -> str:
    return f"- {key}: {value}" if value else f"- {key}:"


def write_price_file(
    cache_dir: str | os.PathLike[str],
    model: str,
    provider: str | None,
    price: Price,
    *,
    source_url: str | None,
    found_on: dt.date | str,
) -> Path:
    """Write ``price`` to the cache file of ``model`` atomically (a temporary file, then ``os.replace``).

    Creates ``cache_dir`` when it does not exist yet. ``source_url`` is the page the price came from.

    Returns:
        The path written (see ``price_file_path``).

    Raises:
        OSError: when the folder or the file cannot be written.
    """
    path = price_file_path(cache_dir, model, provider)
    per_mtok = price.as_per_mtok()
    found = found_on.isoformat() if isinstance(found_on, dt.date) else str(found_on)
    shown_model = _show_text(model)
    shown_provider = _show_text(provider or _ANY_PROVIDER)
    lines = [
        f"# {shown_model} ({shown_provider}): USD per million tokens",
        "",
        f"{NOTE} on {_show_text(found)}. Edit the numbers to correct them: tokencost re-reads this file when it",
        "changes, and a hand edit wins. An empty cached-input or cache-write price is billed like input.",
        "",
        f"- model: {shown_model}",
        f"- provider: {shown_provider}",
        _field(_INPUT, _show_amount(per_mtok.get("input"))),
        _field(_OUTPUT, _show_amount(per_mtok.get("output"))),
        _field(_CACHED_INPUT, _show_amount(per_mtok.get("cache_read"))),
        _field(_CACHE_WRITE, _show_amount(per_mtok.get("cache_write"))),
    ]
    if "reasoning" in per_mtok:
        lines.append(_field(_REASONING, _show_amount(per_mtok["reasoning"])))
    lines += [_field("source_url", _show_text(source_url) if source_url else ""), _field("found_on", _show_text(found))]
    lines.append("")
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.parent / f".{uuid.uuid4().hex}.tmp"
    # O_EXCL: never write through a file or link someone else put there; 0o644 lets the umask decide.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return path


def _parse_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        key, value = match.group(1).lower(), match.group(2).strip("`").strip()
        if key in fields:
            raise ValueError(f"{key} appears more than once")
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            try:
                value = str(json.loads(value))
            except ValueError:
                raise ValueError(f"{key}: {value[:40]!r} is not a valid quoted string") from None
        fields[key] = value
    return fields


def _amount(fields: dict[str, str], key: str, *, required: bool) -> Decimal | None:
    raw = fields.get(key)
    if raw is None or raw.lower() in _EMPTY:
        if required:
            raise ValueError(f"{key} is missing" if raw is None else f"{key} is empty")
        return None
    text = raw.removeprefix("$").strip()
    try:
        return parse_amount(text, key)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: {raw[:40]!r} is not a non-negative number") from None


def _load(path: Path) -> tuple[Price, str | None]:
    """Read a cache file; return its price and the model its ``model:`` line names (``None`` without one)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read the file: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise ValueError(f"the file is larger than {_MAX_FILE_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None
    fields = _parse_fields(text)
    url = fields.get("source_url") or None
    price = Price.per_mtok(
        _amount(fields, _INPUT, required=True),
        _amount(fields, _OUTPUT, required=True),
        cache_read=_amount(fields, _CACHED_INPUT, required=False),
        cache_write=_amount(fields, _CACHE_WRITE, required=False),
        reasoning=_amount(fields, _REASONING, required=False),
        source="linkup-cache",
        source_url=url if url is None or url.lower() not in _EMPTY else None,
    )
    return price, fields.get("model") or None


def read_price_file(path: str | os.PathLike[str]) -> Price:
    """Read a price cache file (written by ``write_price_file`` or by hand).

    Only ``input_per_mtok_usd`` and ``output_per_mtok_usd`` are required; ``cached_input_per_mtok_usd``,
    ``cache_write_per_mtok_usd`` and ``reasoning_per_mtok_usd`` are optional; other lines are ignored. Amounts
    are USD per million tokens and may start with ``$``.

    Raises:
        ValueError: saying what is wrong (unreadable file, missing field, bad number), without the path.
    """
    return _load(Path(path))[0]


@dataclass(frozen=True)
class _Seen:
    stamp: tuple[int, int, int]
    price: Price | None
    problem: str | None


class CacheFileSource:
    """Prices from the markdown cache files in ``cache_dir`` (``price_source`` ``"linkup-cache"``).

    The chain asks it on every lookup (``cacheable = False``): a file is re-read only when its modification time,
    size or inode changed, so a hand edit wins at the next lookup for the cost of one ``stat``. A lookup with a
    provider falls back to the model's any-provider file (``{model}_any_cost_parameters.md``).
    """

    name = "linkup-cache"
    cacheable = False

    def __init__(self, cache_dir: str | os.PathLike[str]) -> None:
        self.cache_dir = Path(cache_dir)
        # Guards _seen: what each file held at its last stat, so unchanged files are not re-read or re-logged.
        self._lock = threading.Lock()
        self._seen: dict[Path, _Seen] = {}
        # Guards _listings too: each folder's price file names by lower-case name, at the folder's mtime.
        self._listings: dict[Path, tuple[int, dict[str, str]]] = {}

    def __repr__(self) -> str:
        return f"CacheFileSource({str(self.cache_dir)!r})"

    def lookup(self, model: str, provider: str | None) -> Price | None:
        """Return the cached price of ``model`` at ``provider``, or ``None`` (no file, or a broken one).

        Besides the file ``write_price_file`` names, files written by hand the plain way are read:
        ``{model}_{provider}_cost_parameters.md`` with the provider in any case (``gpt-4o-mini_OpenAI_...``), a
        model with ``_`` in its name, and a model with ``/`` (``meta-llama/Llama-3.3-70B_together_...``, a file
        in the folder ``meta-llama``), as long as the path stays inside ``cache_dir``.
        """
        if not isinstance(model, str) or not model:
            return None
        for wanted in (provider, None) if provider is not None else (None,):
            for path in self._candidates(model, wanted):
                price = self._read(path, model)
                if price is not None:
                    return price
        return None

    def _candidates(self, model: str, provider: str | None) -> list[Path]:
        """The files that may price ``model`` at ``provider``: the canonical name, then the hand-written ones."""
        canonical = price_file_path(self.cache_dir, model, provider)
        paths = [canonical]
        literal = _literal_path(self.cache_dir, model, provider or _ANY_PROVIDER)
        if literal is not None and literal != canonical:
            paths.append(literal)
        for path in list(paths):
            other_case = self._other_case(path)
            if other_case is not None and other_case not in paths:
                paths.append(other_case)
        return paths

    def _other_case(self, path: Path) -> Path | None:
        """The file of ``path``'s folder whose name is ``path``'s name in another case, if there is one."""
        try:
            folder = path.parent
            stamp = os.stat(folder).st_mtime_ns
        except (OSError, ValueError):
            return None
        with self._lock:
            listed = self._listings.get(folder)
        if listed is None or listed[0] != stamp:
            try:
                names = {entry.lower(): entry for entry in os.listdir(folder) if entry.endswith(_SUFFIX)}
            except (OSError, ValueError):
                return None
            listed = (stamp, names)
            with self._lock:
                if len(self._listings) > 256:
                    self._listings.clear()
                self._listings[folder] = listed
        found = listed[1].get(path.name.lower())
        return None if found is None or found == path.name else folder / found

    def problem(self, model: str, provider: str | None) -> str | None:
        """Return why the existing cache file of ``model`` is ignored, or ``None`` (no file, or a good one)."""
        path = price_file_path(self.cache_dir, model, provider)
        self._read(path, model)
        with self._lock:
            seen = self._seen.get(path)
        return None if seen is None else seen.problem

    def _read(self, path: Path, model: str) -> Price | None:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            with self._lock:
                self._seen.pop(path, None)
            return None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            seen = self._seen.get(path)
        if seen is not None and seen.stamp == stamp:
            return seen.price
        price: Price | None = None
        problem: str | None = None
        try:
            price, named = _load(path)
        except (TypeError, ValueError) as exc:
            problem = str(exc)
        else:
            if named is not None and named != model:
                price, problem = None, f"it prices model {named!r}, not {model!r}"
        with self._lock:
            previous = self._seen.get(path)
            self._seen[path] = _Seen(stamp, price, problem)
            # Log a broken file once per content (a lookup runs per event), and once across racing threads.
            report = problem is not None and (previous is None or previous.stamp != stamp)
        if report:
            logger.warning("ignoring price cache file %s for model %r: %s", path, model, problem)
        return price
