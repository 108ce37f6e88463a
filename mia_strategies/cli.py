"""The ``mia`` command: backtest, config check, ingestion, catalog listing, demo data.

User errors (``MiaError``) print one line on stderr and exit 2; only a bug shows a traceback.
"""

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn

from mia_strategies.commands import register_all
from mia_strategies.errors import ConfigError
from mia_strategies.errors import MiaError


app = typer.Typer(
    name="mia",
    help="MIA: backtest-first trading for CME equity-index futures on nautilus_trader.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Validate configuration files.", no_args_is_help=True)
ingest_app = typer.Typer(help="Load market data into the Parquet catalog.", no_args_is_help=True)
catalog_app = typer.Typer(help="Inspect a Parquet catalog.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(ingest_app, name="ingest")
app.add_typer(catalog_app, name="catalog")

# Piped output (logs, CI, tests) gets a fixed width wide enough for instrument ids and timestamps.
console = Console(width=None if sys.stdout.isatty() else 160)

CatalogOpt = Annotated[
    Path | None,
    typer.Option("--catalog", help="Catalog folder (default: $MIA_CATALOG, else ./data/catalog)."),
]


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _with_progress(description: str) -> tuple[Progress, Callable[[int, int], None]]:
    progress = _progress()
    task = progress.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return progress, update


# -- backtest -------------------------------------------------------------------------------------


@app.command()
def backtest(
    catalog: CatalogOpt = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Backtest YAML (default: config/backtest.yaml)."),
    ] = None,
    instruments: Annotated[
        str | None,
        typer.Option("--instruments", help="Comma-separated roots, e.g. ES,MNQ (default from config)."),
    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="Start, ISO date/time (UTC if naive).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="End, ISO date/time (UTC if naive).")] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Run folder (default: a new runs/<timestamp>/)."),
    ] = None,
) -> None:
    """Run the strategy over the catalog; builds the demo catalog on first use."""
    import pandas as pd

    from catalog.store import catalog_has_data
    from catalog.store import default_catalog_path
    from mia_strategies.backtest import plan_backtest
    from mia_strategies.backtest import run_backtest
    from mia_strategies.config import load_backtest
    from mia_strategies.results import per_regime_table
    from mia_strategies.results import summary_table

    cfg, base = load_backtest(config)
    if catalog is None and cfg.catalog is None:
        default = default_catalog_path()
        if not catalog_has_data(default):
            _build_demo(default, base / cfg.markets_file)
    roots = instruments.split(",") if instruments is not None else None
    plan = plan_backtest(cfg, base, catalog=catalog, instruments=roots, start=start, end=end, out=out)
    contracts = ", ".join(s.instrument_id for s in plan.slots)
    console.print(
        f"[bold]backtest[/] {plan.strategy.strategy} on {', '.join(plan.roots)} from {plan.catalog_path} ({contracts})"
    )
    for note in plan.parts.notes if plan.parts is not None else ():
        console.print(f"[yellow]note:[/] {note}")
    with console.status("running the nautilus backtest engine..."):
        outcome = run_backtest(plan)
    console.print(summary_table(outcome.summary))
    if outcome.summary.get("per_regime"):
        console.print(per_regime_table(pd.DataFrame(outcome.summary["per_regime"]).set_index(["root", "regime"])))
    if "risk_events" in outcome.summary:
        console.print(f"risk events: `mia risk events {outcome.out_dir}`")
    console.print(f"results in [bold]{outcome.out_dir}[/] (summary.json, fills.csv, positions.csv, report.html)")


def _build_demo(path: Path, markets_file: Path, **kwargs: Any) -> None:
    from catalog.demo import generate_demo_catalog
    from mia_strategies.config import load_markets

    markets = load_markets(markets_file)
    console.print(f"no catalog at {path}: building the seeded demo catalog (ES and MNQ ticks)")
    progress, update = _with_progress("demo data")
    with progress:
        summary = generate_demo_catalog(path, markets, progress=update, **kwargs)
    console.print(
        f"demo catalog ready: {summary.quotes:,} quotes, {summary.trades:,} trades, "
        f"{len(summary.instruments)} contracts",
    )


@app.command()
def demo(
    catalog: CatalogOpt = None,
    days: Annotated[int, typer.Option("--days", min=1, max=60, help="Trading days to generate.")] = 6,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 7,
    intensity: Annotated[
        float,
        typer.Option("--intensity", min=0.001, max=20.0, help="Scale of tick arrival rates."),
    ] = 1.0,
) -> None:
    """Build the seeded demo catalog (ES and MNQ quotes and trades on Globex hours)."""
    from catalog.store import default_catalog_path
    from mia_strategies.config import config_dir

    _build_demo(
        catalog or default_catalog_path(),
        config_dir() / "markets.yaml",
        trading_days=days,
        seed=seed,
        intensity=intensity,
    )


# -- config ---------------------------------------------------------------------------------------


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="YAML file to validate.")],
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="markets, backtest or strategy (default: from the file name)."),
    ] = None,
) -> None:
    """Validate one configuration file; an invalid value names the file, key and accepted range."""
    from mia_strategies.config import load_config

    load_config(file, kind)
    console.print(f"{file}: ok")


# -- ingest ---------------------------------------------------------------------------------------


def _parse_mapping(items: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items:
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise ConfigError(f"--map {item!r}: use FIELD=COLUMN, for example --map ts=Time --map price=Last")
        mapping[field.strip()] = column.strip()
    return mapping


@ingest_app.command("csv")
def ingest_csv_command(
    file: Annotated[Path, typer.Argument(help="CSV file of trades, quotes or bars.")],
    kind: Annotated[str, typer.Option("--kind", help="trades, quotes or bars.")],
    instrument: Annotated[str, typer.Option("--instrument", help="Contract symbol, e.g. ESZ25.")],
    catalog: CatalogOpt = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="Column mapping FIELD=COLUMN (repeatable)."),
    ] = None,
    tz: Annotated[str, typer.Option("--tz", help="Time zone of naive timestamps in the file.")] = "UTC",
    ts_format: Annotated[
        str | None,
        typer.Option("--ts-format", help="strptime format or unix_s/unix_ms/unix_us/unix_ns."),
    ] = None,
    bar_minutes: Annotated[int, typer.Option("--bar-minutes", min=1, max=1440)] = 1,
    bar_timestamp: Annotated[
        str,
        typer.Option("--bar-timestamp", help="What a bar's time means in the file: open or close."),
    ] = "open",
    delimiter: Annotated[str, typer.Option("--delimiter")] = ",",
) -> None:
    """Validate a CSV and load it into the catalog; a file with bad rows writes nothing."""
    from catalog.ingest import CsvSpec
    from catalog.ingest import ingest_csv
    from catalog.store import default_catalog_path
    from mia_strategies.config import load_markets

    if kind not in ("trades", "quotes", "bars"):
        raise ConfigError(f"--kind {kind!r}: use trades, quotes or bars")
    if bar_timestamp not in ("open", "close"):
        raise ConfigError(f"--bar-timestamp {bar_timestamp!r}: use open or close")
    spec = CsvSpec(
        kind=kind,  # type: ignore[arg-type]
        instrument=instrument,
        columns=_parse_mapping(mapping or []),
        timezone=tz,
        ts_format=ts_format,
        bar_minutes=bar_minutes,
        bar_timestamp=bar_timestamp,  # type: ignore[arg-type]
        delimiter=delimiter,
    )
    path = catalog or default_catalog_path()
    result = ingest_csv(file, path, spec, load_markets())
    console.print(
        f"{file}: {result.rows:,} {result.kind} for {result.instrument_id} written to {path}",
    )


@ingest_app.command("lean")
def ingest_lean_command(
    source: Annotated[Path, typer.Argument(help="Folder of Lean YYYYMMDD_trade.zip / _quote.zip files.")],
    root: Annotated[str, typer.Option("--root", help="Futures root of the files, e.g. ES.")] = "ES",
    catalog: CatalogOpt = None,
) -> None:
    """Load QuantConnect Lean futures minute data (trade bars + quotes at each bar close)."""
    from catalog.lean import ingest_lean_futures
    from catalog.store import default_catalog_path
    from mia_strategies.config import load_markets

    path = catalog or default_catalog_path()
    progress, update = _with_progress("lean days")
    with progress:
        result = ingest_lean_futures(source, path, root.upper(), load_markets(), progress=update)
    console.print(
        f"{source}: {result.days} days, {result.bars:,} bars, {result.quotes:,} quotes for "
        f"{', '.join(result.instruments)} written to {path}",
    )


# -- catalog --------------------------------------------------------------------------------------


@catalog_app.command("ls")
def catalog_ls(catalog: CatalogOpt = None) -> None:
    """Show what a catalog holds: data types, instruments, time ranges, row counts."""
    from catalog.store import default_catalog_path
    from catalog.store import open_catalog
    from catalog.store import render_summary
    from catalog.store import summarize

    path = catalog or default_catalog_path()
    open_catalog(path)  # one-line error when missing or empty
    console.print(render_summary(summarize(path)))


register_all(app, {"ingest": ingest_app, "catalog": catalog_app, "config": config_app})


def main() -> None:
    """Console entry point: run the app, turning user errors into one line and exit code 2."""
    try:
        app()
    except MiaError as err:
        print(f"mia: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("mia: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
