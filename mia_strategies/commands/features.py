"""``mia features build`` and the ingestion commands for the feature pipeline's inputs.

- ``mia features build``: the offline feature build over a catalog range → catalog + Parquet.
- ``mia features list``: the registry (name, family, inputs, warm-up) or a set's names.
- ``mia ingest options|news|macro|vix|equity``: option chains, headlines, the macro calendar and the
  reference series (VIX daily, Lean equity minute bars such as SPY) into the catalog.
"""

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from mia_strategies.errors import ConfigError


CatalogOpt = Annotated[
    Path | None,
    typer.Option("--catalog", help="Catalog folder (default: $MIA_CATALOG, else ./data/catalog)."),
]


def _console():  # type: ignore[no-untyped-def]
    from mia_strategies.cli import console

    return console


def _register_kinds() -> None:
    from mia_strategies.config import register_config_kind
    from mia_strategies.features.sets import FeatureSetsFile

    register_config_kind("feature_sets", FeatureSetsFile)


def build(
    catalog: CatalogOpt = None,
    instruments: Annotated[
        str | None, typer.Option("--instruments", help="Comma-separated roots, e.g. ES,MNQ.")
    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="Start, ISO date/time (UTC if naive).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="End, ISO date/time (UTC if naive).")] = None,
    feature_set: Annotated[
        str,
        typer.Option("--set", help="Set per root (training, inference) or a qualified name such as ES.training."),
    ] = "training",
    config: Annotated[Path | None, typer.Option("--config", help="Backtest YAML giving roots, bars, warm-up.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Parquet file for research (default under data/features/).")
    ] = None,
    to_catalog: Annotated[
        bool, typer.Option("--to-catalog/--no-catalog", help="Also write FeatureVector data.")
    ] = True,
    macro_calendar: Annotated[
        Path | None,
        typer.Option("--macro-calendar", help="Calendar file (default: config/macro_calendar.csv when present)."),
    ] = None,
    history_days: Annotated[
        float,
        typer.Option("--history-days", min=0, max=3650, help="Days of reference/custom data preloaded before start."),
    ] = 0.0,
) -> None:
    """Compute a feature set over a catalog range exactly as the feature actor would, offline."""
    from catalog.store import default_catalog_path
    from mia_strategies.config import config_dir
    from mia_strategies.config import load_backtest
    from mia_strategies.config import load_markets
    from mia_strategies.features.sets import load_feature_sets
    from research.features import build_features
    from research.features import build_metadata
    from research.features import plan_features
    from research.features import write_feature_vectors
    from research.features import write_parquet

    console = _console()
    cfg, base = load_backtest(config)
    markets = load_markets(base / cfg.markets_file)
    feature_sets = load_feature_sets()
    if macro_calendar is None and (config_dir() / "macro_calendar.csv").is_file():
        macro_calendar = config_dir() / "macro_calendar.csv"
    roots = instruments.split(",") if instruments else None
    plan = plan_features(
        cfg,
        base,
        feature_sets,
        catalog=catalog or cfg.catalog or default_catalog_path(),
        instruments=roots,
        start=start,
        end=end,
        set_name=feature_set,
        macro_calendar=macro_calendar,
        history_days=history_days,
    )
    path = (
        out
        or Path("data")
        / "features"
        / f"{'-'.join(plan.roots)}-{feature_set.replace('.', '_')}-{plan.start_ns}-{plan.end_ns}.parquet"
    )
    if path.exists():  # checked before the build, which can take minutes
        raise ConfigError(f"--out {path} exists: choose a new file so no result is overwritten")
    sets = ", ".join(sorted(set(plan.set_by_root.values())))
    console.print(f"[bold]features[/] {sets} on {plan.catalog_path} ({', '.join(b.instrument_id for b in plan.bars)})")
    started = time.perf_counter()
    with console.status("replaying the catalog through the feature hub..."):
        result = build_features(plan, feature_sets, markets)
    elapsed = time.perf_counter() - started
    for warning in result.warnings[:20]:
        console.print(f"[yellow]warning[/] {warning}")
    if len(result.warnings) > 20:
        console.print(f"[yellow]... {len(result.warnings) - 20} more warnings[/]")
    if not result.rows:
        raise ConfigError("no decision bar in the range: nothing to write (check --start/--end and `mia catalog ls`)")
    frame = result.frame(plan, feature_sets)
    if to_catalog:
        written = write_feature_vectors(result, plan.catalog_path)
        console.print(f"{written:,} FeatureVector rows written to {plan.catalog_path}")
    write_parquet(frame, path, build_metadata(plan, feature_sets, result))
    rate = len(result.rows) / elapsed if elapsed > 0 else 0.0
    console.print(
        f"{len(result.rows):,} bars x {frame.shape[1] - 6} features from {result.events:,} events in {elapsed:.1f} s "
        f"({rate:,.0f} bars/s) -> {path}",
    )


def list_features(
    feature_set: Annotated[
        str | None, typer.Option("--set", help="Show a set's names in order (e.g. ES.inference).")
    ] = None,
) -> None:
    """List the registry (name, family, inputs, warm-up, description) or a set's ordered names."""
    from rich.table import Table

    from mia_strategies.features.registry import registry
    from mia_strategies.features.sets import load_feature_sets

    console = _console()
    reg = registry()
    names = list(load_feature_sets().resolve(feature_set).names) if feature_set else list(reg.names)
    table = Table(title=f"{feature_set or 'feature registry'} ({len(names)} features)", title_justify="left")
    for column in ("#", "name", "family", "inputs", "warm-up", "description"):
        table.add_column(column, overflow="fold")
    for i, name in enumerate(names):
        if name in reg.index():
            spec = reg.spec(name)
            table.add_row(str(i), name, spec.family, ",".join(spec.inputs), str(spec.warmup), spec.description)
        else:
            table.add_row(str(i), name, "regime", "regime", "0", "filtered regime probability")
    console.print(table)


def ingest_options(
    source: Annotated[Path, typer.Argument(help="A Lean universe file/folder (YYYYMMDD.csv) or a CBOE EOD CSV.")],
    underlying: Annotated[str, typer.Option("--underlying", help="Instrument the chain is on: ESH20.GLBX, SPX.CBOE.")],
    fmt: Annotated[str, typer.Option("--format", help="lean or cboe.")] = "lean",
    as_of: Annotated[
        str, typer.Option("--as-of", help="Lean files: next-close (default, never early) or close.")
    ] = "next-close",
    catalog: CatalogOpt = None,
) -> None:
    """Load option chains as OptionChainSnapshot data (IV and greeks solved where the file has none)."""
    from nautilus_trader.model.identifiers import InstrumentId

    from catalog.options import ingest_option_chains
    from catalog.options import load_cboe_option_eod
    from catalog.options import load_lean_option_universe
    from catalog.options import load_lean_option_universes
    from catalog.store import default_catalog_path

    if fmt not in ("lean", "cboe"):
        raise ConfigError(f"--format {fmt!r}: use lean or cboe")
    if as_of not in ("next-close", "close"):
        raise ConfigError(f"--as-of {as_of!r}: use next-close or close")
    try:
        instrument_id = InstrumentId.from_str(underlying)
    except ValueError:
        raise ConfigError(f"--underlying {underlying!r}: use SYMBOL.VENUE such as ESH20.GLBX or SPX.CBOE") from None
    if fmt == "cboe":
        snaps = load_cboe_option_eod(source, instrument_id)
    elif source.is_dir():
        snaps = load_lean_option_universes(source, instrument_id, as_of=as_of)  # type: ignore[arg-type]
    else:
        snaps = [load_lean_option_universe(source, instrument_id, as_of=as_of)]  # type: ignore[arg-type]
    path = catalog or default_catalog_path()
    count = ingest_option_chains(snaps, path)
    _console().print(f"{source}: {count} chain snapshots of {underlying} written to {path}")


def ingest_news_command(
    source: Annotated[Path, typer.Argument(help="CSV (ts,source,headline,symbols,story_id) or JSON lines.")],
    catalog: CatalogOpt = None,
) -> None:
    """Load news headlines as NewsHeadline data (sentiment is scored by the feature pipeline, offline)."""
    from catalog.news import ingest_news
    from catalog.store import default_catalog_path

    path = catalog or default_catalog_path()
    count = ingest_news(source, path)
    _console().print(f"{source}: {count:,} headlines written to {path}")


def ingest_macro(
    source: Annotated[Path | None, typer.Argument(help="Calendar CSV (default: config/macro_calendar.csv).")] = None,
    catalog: CatalogOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only; write nothing.")] = False,
) -> None:
    """Load the macro calendar as MacroEvent data (ts_event = release, ts_init = when it became known)."""
    from catalog.macro import ingest_macro_calendar
    from catalog.macro import load_macro_calendar
    from catalog.store import default_catalog_path
    from mia_strategies.config import config_dir

    source = source or config_dir() / "macro_calendar.csv"
    if dry_run:
        events = load_macro_calendar(source)
        _console().print(f"{source}: ok ({len(events)} events)")
        return
    path = catalog or default_catalog_path()
    count = ingest_macro_calendar(source, path)
    _console().print(f"{source}: {count} macro events written to {path}")


def ingest_vix(
    source: Annotated[Path, typer.Argument(help="CBOE daily CSV with DATE,OPEN,HIGH,LOW,CLOSE.")],
    symbol: Annotated[str, typer.Option("--symbol", help="VIX, VIX3M or VIX9D.")] = "VIX",
    start: Annotated[str | None, typer.Option("--start", help="Keep closes from this date.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Keep closes up to this date.")] = None,
    catalog: CatalogOpt = None,
) -> None:
    """Load a volatility index's daily closes (bars stamped 16:15 New York time)."""
    from catalog.store import default_catalog_path
    from mia_strategies.features.reference import ingest_reference_bars
    from mia_strategies.features.reference import load_vix_daily

    series = load_vix_daily(source, symbol.upper())
    path = catalog or default_catalog_path()
    count = ingest_reference_bars(series, path, start, end)
    note = f" ({series.repaired} rows with an open outside high-low widened)" if series.repaired else ""
    _console().print(f"{source}: {count:,} daily bars of {series.instrument.id} written to {path}{note}")


def ingest_equity(
    source: Annotated[Path, typer.Argument(help="Folder of Lean equity minute zips (YYYYMMDD_trade.zip).")],
    symbol: Annotated[str, typer.Option("--symbol", help="SPY, QQQ, ...")] = "SPY",
    venue: Annotated[str, typer.Option("--venue", help="Venue of the instrument id.")] = "ARCA",
    catalog: CatalogOpt = None,
) -> None:
    """Load Lean equity minute bars (the ETF proxy of the cross-market features)."""
    from catalog.store import default_catalog_path
    from mia_strategies.features.reference import ingest_reference_bars
    from mia_strategies.features.reference import load_lean_equity_minute

    series = load_lean_equity_minute(source, symbol.upper(), venue.upper())
    path = catalog or default_catalog_path()
    count = ingest_reference_bars(series, path)
    _console().print(f"{source}: {count:,} minute bars of {series.instrument.id} written to {path}")


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``mia features`` and the ingestion commands; register the feature-sets config kind."""
    _register_kinds()
    features_app = typer.Typer(help="Build and inspect features.", no_args_is_help=True)
    features_app.command("build")(build)
    features_app.command("list")(list_features)
    app.add_typer(features_app, name="features")
    ingest = groups.get("ingest")
    if ingest is not None:
        ingest.command("options")(ingest_options)
        ingest.command("news")(ingest_news_command)
        ingest.command("macro")(ingest_macro)
        ingest.command("vix")(ingest_vix)
        ingest.command("equity")(ingest_equity)
