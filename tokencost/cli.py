"""The ``tokencost`` command: ``report``, ``export``, ``prices``, ``whatif``, ``reservations`` and ``serve``.

Every command that reads a ledger takes ``--store URL`` (default: ``$TOKENCOST_STORE``, else
``sqlite:///tokencost.db`` in the current folder) and ``--name`` (the tracker's ``name``, default ``"default"``).
Errors (a missing ledger file, a locked database, a Redis that is down, a date that does not parse, an unknown
model) print one line on stderr and exit with status 2, without a traceback; ``TOKENCOST_DEBUG=1`` shows it.

Example::

    tokencost report --store sqlite:///costs.db --by user --window month
    tokencost export --store sqlite:///costs.db --format csv -o costs.csv
    tokencost whatif --store sqlite:///costs.db --model gpt-4o-mini --from gpt-4o --top 5
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar

import click

# The command reads ledgers: litellm's bundled price map serves it, without a network fetch at every start
# (an explicit LITELLM_LOCAL_MODEL_COST_MAP=False still asks for the remote map).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

if TYPE_CHECKING:
    from rich.console import Console

    from tokencost.pricing import Price, PriceSource
    from tokencost.stores.base import Store

__all__ = ["DEFAULT_STORE", "main"]

DEFAULT_STORE = "sqlite:///tokencost.db"
STORE_ENV = "TOKENCOST_STORE"
EXIT_ERROR = 2
_F = TypeVar("_F", bound=Callable[..., Any])
_USERINFO = re.compile(r"//[^/@]*@")


class CliError(click.ClickException):
    """A problem the user can fix: one line on stderr, exit status 2."""

    exit_code = EXIT_ERROR


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "unknown error"


def _redact(url: str) -> str:
    """Drop the user and password of a URL before showing it."""
    return _USERINFO.sub("//***@", url)


def _debug() -> bool:
    return os.environ.get("TOKENCOST_DEBUG", "").lower() in ("1", "true", "yes")


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"tokencost: error: {_one_line(message)}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """A click group whose errors are one line on stderr (click's usage block is several)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _fail(exc.format_message() + where, exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            click.echo("tokencost: aborted", err=True)
            sys.exit(1)
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): not an error worth a message.
            sys.stderr.close()
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def _errors(func: _F) -> _F:
    """Turn the errors a command can meet into one line and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from tokencost.errors import TokencostError

        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise
        except (TokencostError, ValueError, TypeError, LookupError, OSError) as exc:
            if _debug():
                raise
            raise CliError(str(exc)) from exc
        except Exception as exc:
            if _debug():
                raise
            raise CliError(f"unexpected {type(exc).__name__}: {exc} (TOKENCOST_DEBUG=1 shows the traceback)") from exc

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------- options


def _store_options(func: _F) -> _F:
    func = click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0),
        default=5.0,
        show_default=True,
        help="Seconds to wait for a SQLite file another process holds locked.",
    )(func)
    func = click.option(
        "--name",
        default="default",
        show_default=True,
        envvar="TOKENCOST_NAME",
        help="Ledger name (the tracker's name=).",
    )(func)
    func = click.option(
        "--store",
        "store_url",
        metavar="URL",
        default=DEFAULT_STORE,
        show_default=True,
        envvar=STORE_ENV,
        show_envvar=True,
        help="Ledger store: sqlite:///path.db, sqlite:////abs/path.db or redis://host:6379/0.",
    )(func)
    return func


def _when_option(flag: str, end: bool) -> Callable[[_F], _F]:
    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        from tokencost.when import parse_when

        try:
            parse_when(value, flag, end=end)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        return value  # as asked: the report's header shows it so (the one parser reads it again)

    helps = {
        "--since": "Only calls at or after WHEN: 2026-12-01, 2026-12-01T10:00 (UTC), epoch seconds, today, "
        "yesterday, or 7d / 12h ago.",
        "--until": "Only calls before WHEN (same forms); a date alone includes that whole day.",
    }
    return click.option(flag, metavar="WHEN", callback=check, help=helps[flag])


@contextmanager
def _opened(store_url: str, lock_timeout: float, *, create: bool = False) -> Iterator[Store]:
    """Open a ledger and close it afterwards: an existing one, or with ``create`` a new one where none is."""
    from tokencost.errors import MissingExtraError, StoreError
    from tokencost.reports import open_store
    from tokencost.stores import store_from_url

    options: dict[str, Any] = {"busy_timeout": lock_timeout} if store_url.startswith("sqlite:") else {}
    try:
        store = store_from_url(store_url, **options) if create else open_store(store_url, **options)
    except (StoreError, MissingExtraError, ValueError, TypeError) as exc:
        if _debug():
            raise
        raise CliError(str(exc)) from exc
    except Exception as exc:
        if _debug():
            raise
        raise CliError(f"cannot open store {_redact(store_url)}: {exc}") from exc
    try:
        yield store
    finally:
        try:
            store.close()
        except Exception as exc:  # a read-only command has nothing to lose at close
            if _debug():
                raise
            click.echo(f"tokencost: warning: closing the store failed: {_one_line(str(exc))}", err=True)


def _console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output gets a fixed, readable width instead of rich's 80-column fallback.
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "100") or 100)
    return Console(file=stream, width=width, soft_wrap=False)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


# ---------------------------------------------------------------------------------------------------- commands


DISTRIBUTION = "tokencost-ledger"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (run from a checkout that is not installed)"


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"tokencost {_version()} (distribution {DISTRIBUTION})")
        ctx.exit(0)


@click.group(cls=_Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version, help="Show the version."
)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Report, export and serve what LLM calls tracked by tokencost cost."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@main.command()
@_store_options
@click.option("--release", is_flag=True, help="Drop the reservations held longer than --older-than.")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    default=900.0,
    show_default=True,
    metavar="SECONDS",
    help="With --release: drop only those held longer than this (the default reservation_ttl).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (money as exact decimal strings).")
@_errors
def reservations(
    store_url: str, name: str, lock_timeout: float, release: bool, older_than: float, as_json: bool
) -> None:
    """List what strict budgets hold for calls in flight (or for crashed workers, until their reservations
    expire); --release drops the stale ones."""
    import time

    from tokencost.money import format_usd, from_units, units_text
    from tokencost.reports import check_ledger

    with _opened(store_url, lock_timeout) as store:
        check_ledger(store, name)
        dropped = store.release_stale(name, older_than) if release else 0
        held = store.reservations(name)
    now = time.time()
    rows = [
        {
            "id": r.id,
            "counters": list(r.keys),
            "reserved": units_text(r.cost_units),
            "tokens": r.tokens,
            "age_s": round(max(0.0, now - r.created), 1),
            "expires_in_s": round(max(0.0, r.expires - now), 1),
        }
        for r in held
    ]
    if as_json:
        _print_json({"released": dropped, "reservations": rows})
        return
    if release:
        click.echo(f"tokencost: released {dropped:,} reservations held longer than {older_than:g} s")
    if not rows:
        click.echo("No open reservations.")
        return
    from rich.table import Table

    table = Table("id", "counters", "reserved", "tokens", "age", "expires in")
    for r in held:
        table.add_row(
            r.id[:12],
            "\n".join(r.keys),
            format_usd(from_units(r.cost_units)),
            f"{r.tokens:,}",
            f"{max(0.0, now - r.created):.0f} s",
            f"{max(0.0, r.expires - now):.0f} s",
        )
    _console().print(table)


def _top_option(func: _F) -> _F:
    return click.option(
        "--top",
        type=click.IntRange(min=1),
        metavar="N",
        help="Only N rows: the most expensive (daily/monthly: the latest N).",
    )(func)


def _show_summary(
    store_url: str,
    name: str,
    lock_timeout: float,
    by: str,
    since: str | None,
    until: str | None,
    window: str | None,
    top: int | None,
    as_json: bool,
) -> None:
    from tokencost.reports import build_summary, check_group_key, check_ledger

    with _opened(store_url, lock_timeout) as store:
        check_ledger(store, name)
        check_group_key(store, name, by)
        summary = build_summary(store, name, window=window, by=by, since=since, until=until, top=top)
    if as_json:
        _print_json(summary.to_dict())
    else:
        _console().print(summary)


@main.command()
@_store_options
@click.option(
    "--by",
    default="model",
    show_default=True,
    metavar="KEY[,KEY]",
    help="Group by model, provider, user, tag, day, month, status or any metadata key; user,model: each pair.",
)
@_when_option("--since", end=False)
@_when_option("--until", end=True)
@click.option("--window", type=click.Choice(["day", "month"]), help="Only the current UTC day or month.")
@_top_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON (money as exact decimal strings).")
@_errors
def report(
    store_url: str,
    name: str,
    lock_timeout: float,
    by: str,
    since: str | None,
    until: str | None,
    window: str | None,
    top: int | None,
    as_json: bool,
) -> None:
    """Show spend per model (or --by KEY), cache savings, unpriced calls and budgets."""
    _show_summary(store_url, name, lock_timeout, by, since, until, window, top, as_json)


def _period_command(period: str, what: str) -> None:
    @_store_options
    @_when_option("--since", end=False)
    @_when_option("--until", end=True)
    @_top_option
    @click.option("--json", "as_json", is_flag=True, help="Print JSON (money as exact decimal strings).")
    @_errors
    def command(
        store_url: str,
        name: str,
        lock_timeout: float,
        since: str | None,
        until: str | None,
        top: int | None,
        as_json: bool,
    ) -> None:
        _show_summary(store_url, name, lock_timeout, period, since, until, None, top, as_json)

    command.__doc__ = f"Show spend per {what} (UTC), oldest first, with a chart of spend over time."
    main.command(name=f"{what}ly".replace("dayly", "daily"))(command)


_period_command("day", "day")
_period_command("month", "month")


def _export_format(fmt: str | None, output: str) -> str:
    if fmt is not None:
        return fmt
    if output == "-":
        return "csv"
    suffix = os.path.splitext(output)[1].lower().lstrip(".")
    if suffix not in ("csv", "json", "jsonl"):
        shown = f"'.{suffix}'" if suffix else "no suffix"
        raise CliError(
            f"cannot write {output}: {shown} is not an export format; use .csv, .json or .jsonl (or --format)"
        )
    return suffix


@main.command()
@_store_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "jsonl"]),
    help="Output format (default: from the -o suffix, else csv).",
)
@click.option("-o", "--output", default="-", metavar="FILE", help="Write here (default: stdout).")
@_when_option("--since", end=False)
@_when_option("--until", end=True)
@_errors
def export(
    store_url: str,
    name: str,
    lock_timeout: float,
    fmt: str | None,
    output: str,
    since: str | None,
    until: str | None,
) -> None:
    """Write every recorded call with all its fields; costs add up to the report's total exactly."""
    from tokencost.reports import check_ledger, export_events

    fmt = _export_format(fmt, output)
    # A progress bar only on a terminal, and not on one that is also receiving the export itself.
    show_progress = sys.stderr.isatty() and (output != "-" or not sys.stdout.isatty())
    with _opened(store_url, lock_timeout) as store:
        check_ledger(store, name)
        if show_progress:
            count = _export_with_progress(store, name, output, fmt, since, until)
        else:
            target: str | IO[str] = sys.stdout if output == "-" else output
            count = export_events(store, name, target, fmt, since=since, until=until)
    if output != "-":
        click.echo(f"tokencost: exported {count:,} calls to {output}", err=True)


def _export_with_progress(store: Store, name: str, output: str, fmt: str, since: str | None, until: str | None) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from tokencost.reports import export_events

    with Progress(
        TextColumn("exporting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("export", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total or None)

        target: str | IO[str] = sys.stdout if output == "-" else output
        return export_events(store, name, target, fmt, since=since, until=until, progress=advance)


def _price_lines(price: Price) -> list[tuple[str, str]]:
    from tokencost.money import format_usd
    from tokencost.usage import BUCKETS

    labels = {
        "input": "input",
        "cache_read": "cache read",
        "cache_write": "cache write",
        "output": "output",
        "reasoning": "reasoning",
        "audio_in": "audio in",
        "audio_out": "audio out",
        "image": "image",
        "cache_write_1h": "cache write (1 h)",
        "cache_read_audio": "cache read (audio)",
    }
    fallback = {"cache_read": "input", "cache_write": "input", "reasoning": "output"}
    explicit = price.as_per_mtok()
    rows = []
    for bucket in BUCKETS:
        if bucket in explicit:
            rows.append((labels[bucket], f"{format_usd(explicit[bucket])} per 1M tokens"))
        elif bucket in fallback:
            rows.append((labels[bucket], f"billed as {fallback[bucket]}"))
    return rows


@main.command()
@click.argument("model")
@click.option("--provider", help="Provider the model is called through (openai, anthropic, azure...).")
@click.option(
    "--refresh",
    is_flag=True,
    help="Search the price now with Linkup (needs LINKUP_API_KEY) and update its cache file.",
)
@click.option(
    "--prices",
    "prices_file",
    type=click.Path(dir_okay=False),
    help="A price override file (TOML or JSON), as given to CostTracker(prices=...).",
)
@click.option(
    "--cache-dir",
    default="model_costs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of discovered prices (CostTracker's price_cache_dir).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
# Accepted so every command takes the same store flags; a price does not depend on a ledger.
@click.option("--store", "store_url", hidden=True)
@click.option("--name", hidden=True)
@_errors
def prices(
    model: str,
    provider: str | None,
    refresh: bool,
    prices_file: str | None,
    cache_dir: str,
    as_json: bool,
    store_url: str | None,
    name: str | None,
) -> None:
    """Show which source prices MODEL and at what price (override, litellm's map, discovered files)."""
    from tokencost.errors import PriceNotFoundError
    from tokencost.pricing.cache_files import CacheFileSource
    from tokencost.pricing.genai_prices import GenaiPricesSource
    from tokencost.pricing.litellm_map import LitellmMapSource
    from tokencost.pricing.override import OverrideSource, load_prices

    if refresh:
        price = _refresh_price(model, provider, cache_dir)
        sources: list[tuple[str, Price | None]] = [("linkup", price)]
    else:
        overrides = load_prices(prices_file) if prices_file else {}
        chain: list[PriceSource] = [
            OverrideSource(overrides),
            LitellmMapSource(),
            GenaiPricesSource(),
            CacheFileSource(cache_dir),
        ]
        sources = [(source.name, source.lookup(model, provider)) for source in chain]
    found = [(source, price) for source, price in sources if price is not None]
    if not found:
        hint = "" if refresh else " (--refresh searches the web with Linkup; register_price() or --prices sets one)"
        raise CliError(str(PriceNotFoundError(model, provider)) + hint)
    winner, price = found[0]
    if as_json:
        _print_json(
            {
                "model": model,
                "provider": provider,
                "source": winner,
                "source_url": price.source_url,
                "price_per_mtok": {k: f"{v:f}" for k, v in price.as_per_mtok().items()},
                "also_known_to": [source for source, _ in found[1:]],
            }
        )
        return
    from rich.table import Table

    console = _console()
    where = f" via {provider}" if provider else ""
    console.print(f"[bold]{model}[/bold]{where}: priced by [bold]{winner}[/bold]", highlight=False)
    table = Table(show_header=False, box=None, pad_edge=False, padding=(0, 2, 0, 2))
    for label, text in _price_lines(price):
        table.add_row(label, text)
    if price.tier_above_tokens:
        table.add_row("tiers", f"prompts above {price.tier_above_tokens:,} tokens cost more (litellm's cost is used)")
    if price.source_url:
        table.add_row("source", price.source_url)
    console.print(table)
    if len(found) > 1:
        console.print(f"also known to: {', '.join(source for source, _ in found[1:])}", highlight=False)


def _refresh_price(model: str, provider: str | None, cache_dir: str) -> Price:
    key = os.environ.get("LINKUP_API_KEY", "").strip()
    if not key:
        raise CliError("--refresh searches Linkup for the price: set LINKUP_API_KEY")
    try:
        from tokencost.pricing.linkup import LinkupSearchSource
    except ImportError as exc:
        raise CliError(f"price discovery is not available in this install ({exc})") from None
    source = LinkupSearchSource(key, cache_dir)
    try:
        price: Price = source.refresh(model, provider)
    finally:
        source.close()
    from tokencost.pricing.cache_files import price_file_path

    click.echo(f"tokencost: saved the price in {price_file_path(cache_dir, model, provider)}", err=True)
    return price


@main.command()
@_store_options
@click.option("--model", metavar="MODEL", help="Reprice every recorded call at this model's price.")
@click.option("--from", "from_model", metavar="MODEL", help="Only the calls recorded for this model.")
@click.option("--top", type=click.IntRange(min=1), metavar="N", help="Also list the N cheapest chat models.")
@_when_option("--since", end=False)
@_when_option("--until", end=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (money as exact decimal strings).")
@_errors
def whatif(
    store_url: str,
    name: str,
    lock_timeout: float,
    model: str | None,
    from_model: str | None,
    top: int | None,
    since: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """Show what the recorded usage would have cost at another model's price."""
    from tokencost.reports import check_ledger
    from tokencost.reports import whatif as run_whatif

    if model is None and top is None:
        raise CliError("give --model MODEL to reprice with, or --top N to list the cheapest models")
    with _opened(store_url, lock_timeout) as store:
        check_ledger(store, name)
        result = run_whatif(store, name, model, from_model=from_model, top=top, since=since, until=until)
    if as_json:
        _print_json(result.to_dict())
    else:
        _console().print(result)


@main.command()
@_store_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option(
    "--token",
    envvar="TOKENCOST_SERVER_TOKEN",
    show_envvar=True,
    help="Bearer token that writes (POST /track) require; needed to listen beyond this machine.",
)
@click.option(
    "--read-token",
    envvar="TOKENCOST_SERVER_READ_TOKEN",
    show_envvar=True,
    help="Token that reads (the dashboard, /summary...) then require; open the dashboard as /?token=TOKEN.",
)
@_errors
def serve(
    store_url: str, name: str, lock_timeout: float, host: str, port: int, token: str | None, read_token: str | None
) -> None:
    """Serve the dashboard and JSON API for a ledger (needs the server extra); creates a new ledger."""
    from tokencost.errors import MissingExtraError, install_hint
    from tokencost.server.loopback import is_loopback

    if not is_loopback(host) and not token:
        raise CliError(
            f"refusing to serve on {host} without --token (or TOKENCOST_SERVER_TOKEN): anyone who reaches it could "
            "write to the ledger. The token protects writes only: reads and the dashboard stay open unless "
            "--read-token is set too"
        )
    if store_url.startswith("memory:"):
        raise CliError("memory:// would serve a ledger that vanishes when the server stops: use a sqlite or redis URL")
    # A server that accepts POST /track creates its ledger (reports refuse a missing file: a typo must not make one).
    with _opened(store_url, lock_timeout, create=True):
        pass  # fail here, in one line, on a store that cannot be opened or is down
    try:
        from tokencost.server import serve as run_server

        importlib.import_module("fastapi")
        importlib.import_module("uvicorn")
    except ImportError as exc:
        if getattr(exc, "name", None) == "tokencost.server":
            raise CliError("this install of tokencost has no server module") from None
        raise CliError(f"the dashboard needs the server extra: {install_hint('server')}") from None

    def listening(url: str) -> None:
        reads = "reads need --read-token" if read_token else "reads are open"
        writes = "writes need --token" if token else "writes are open"
        click.echo(f"tokencost: serving ledger {name!r} at {url} ({writes}, {reads}; Ctrl-C stops)", err=True)

    try:
        run_server(
            store_url,
            name=name,
            host=host,
            port=port,
            token=token,
            read_token=read_token,
            log_level="warning",
            on_listening=listening,
        )
    except MissingExtraError:
        raise CliError(f"the dashboard needs the server extra: {install_hint('server')}") from None


if __name__ == "__main__":
    main()
