"""``mia regime fit``: fit the 3-state HMM on features over a catalog range; save a versioned model."""

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any

import typer

from mia_strategies.errors import ConfigError


if TYPE_CHECKING:  # pandas and the feature registry load only when a command runs (CLI start-up)
    import pandas as pd

    from mia_strategies.features.sets import FeatureSets


def fit(
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", help="Catalog folder (default: $MIA_CATALOG, else ./data/catalog)."),
    ] = None,
    instruments: Annotated[str, typer.Option("--instruments", help="The market (root) to fit, e.g. ES.")] = "ES",
    start: Annotated[str | None, typer.Option("--start", help="Start, ISO date/time (UTC if naive).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="End, ISO date/time (UTC if naive).")] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Regime settings (default: config/regime_detector_config.yaml)."),
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option("--features", help="Parquet from `mia features build` instead of building from the catalog."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run folder (default: runs/regime-<timestamp>/).")] = None,
    models: Annotated[Path, typer.Option("--models", help="Folder of versioned models.")] = Path("data/models/regime"),
    backtest_config: Annotated[
        Path | None, typer.Option("--backtest-config", help="Backtest YAML (roots, bars).")
    ] = None,
) -> None:
    """Fit a GaussianHMM (seeds, restarts, best log-likelihood), label its states, save it and its transition matrix."""
    from mia_strategies.cli import console
    from mia_strategies.features.sets import load_feature_sets
    from research.features import read_feature_parquet
    from research.regime import fit_from_frame
    from research.regime import load_regime_settings
    from research.regime import write_run

    roots = [r.strip().upper() for r in instruments.split(",") if r.strip()]
    if len(roots) != 1:
        raise ConfigError("--instruments: fit one market at a time (e.g. ES)")
    root = roots[0]
    settings = load_regime_settings(config)
    feature_sets = load_feature_sets()
    set_name = settings.feature_sets.get(root, f"{root}.training")
    set_def = feature_sets.resolve(set_name)
    out_dir = out or Path("runs") / f"regime-{dt.datetime.now(dt.UTC).strftime('%Y%m%d-%H%M%S')}"
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"--out {out_dir} is not empty: choose a new folder so no result is overwritten")
    if features is not None:
        frame, meta = read_feature_parquet(features)
        if "root" in frame.columns:
            frame = frame[frame["root"] == root]
        if "feature_set" in frame.columns:
            frame = frame[frame["feature_set"] == set_name]
        if frame.empty:
            raise ConfigError(
                f"{features}: no {set_name} rows of {root} (build them with `mia features build --set {set_name}`)"
            )
        source = {"features_file": str(features), "build": meta}
    else:
        frame, source = _build(catalog, root, start, end, set_name, backtest_config, feature_sets)
    with console.status("fitting the HMM restarts..."):
        result, states = fit_from_frame(
            frame,
            settings,
            market=root,
            feature_set=set_def.name,
            set_fingerprint=set_def.fingerprint,
            meta={"source": source},
        )
    model_path = write_run(out_dir, models, result, states)
    model = result.model
    ok = [r for r in result.restarts if r.loglik == r.loglik]
    console.print(
        f"HMM on {result.observations:,} bars of {root} ({', '.join(model.features)}): "
        f"{len(ok)}/{len(result.restarts)} restarts fitted, best log-likelihood {model.loglik_per_obs:.4f}/bar "
        f"(seed {model.meta.get('seed')}, {'converged' if model.converged else '[yellow]NOT converged[/]'})",
    )
    if result.dropped:
        console.print(f"optional features left out (not present often enough): {', '.join(result.dropped)}")
    for label, means in result.state_means.items():
        console.print(f"  {label:9s} " + "  ".join(f"{k}={v:.5g}" for k, v in means.items()))
    console.print(f"model {model.version} -> {model_path}; run folder {out_dir} (transition_matrix.csv, states.csv)")


def _build(
    catalog: Path | None,
    root: str,
    start: str | None,
    end: str | None,
    set_name: str,
    backtest_config: Path | None,
    feature_sets: "FeatureSets",
) -> tuple["pd.DataFrame", dict[str, Any]]:
    """Offline feature build of ``set_name`` for ``root`` over the range (as `mia features build` does)."""
    from catalog.store import default_catalog_path
    from mia_strategies.cli import console
    from mia_strategies.config import config_dir
    from mia_strategies.config import load_backtest
    from mia_strategies.config import load_markets
    from research.features import build_features
    from research.features import build_metadata
    from research.features import plan_features

    cfg, base = load_backtest(backtest_config)
    markets = load_markets(base / cfg.markets_file)
    calendar = config_dir() / "macro_calendar.csv"
    plan = plan_features(
        cfg,
        base,
        feature_sets,
        catalog=catalog or cfg.catalog or default_catalog_path(),
        instruments=[root],
        start=start,
        end=end,
        set_name=set_name,
        macro_calendar=calendar if calendar.is_file() else None,
    )
    with console.status(f"building {set_name} features from {plan.catalog_path}..."):
        result = build_features(plan, feature_sets, markets)
    if not result.rows:
        raise ConfigError("no decision bar in the range: nothing to fit (check --start/--end and `mia catalog ls`)")
    return result.frame(plan, feature_sets), build_metadata(plan, feature_sets, result)


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``mia regime fit``; register the regime config kind."""
    from mia_strategies.config import register_config_kind
    from research.regime import RegimeSettings

    register_config_kind("regime_detector", RegimeSettings)
    regime_app = typer.Typer(help="Market regimes: fit the HMM the regime actor filters.", no_args_is_help=True)
    regime_app.command("fit")(fit)
    app.add_typer(regime_app, name="regime")
