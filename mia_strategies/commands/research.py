"""``mia train``, ``mia fine-tune``, ``mia walk-forward``, ``mia sweep``, ``mia ensemble``, ``mia models``,
``mia features select``: RL research from the command line.

Every command reads ``config/trading_env_config.yaml``, ``config/algo_config.yaml``,
``config/model_params.yaml`` and ``config/trade_probability_config.yaml`` (defaults when absent), the
catalog, and the offline feature build (``mia features build``: the catalog's ``FeatureVector`` data,
or its research Parquet file with ``--features``). Models go to the registry folder (``models/`` by
default, ``--registry`` to change). Heavy modules (torch, stable-baselines3, shap, ray) load inside
the commands, so ``mia --help`` stays fast.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from mia_strategies.errors import ConfigError


console = Console(width=160)

MarketOpt = Annotated[str, typer.Option("--market", "-m", help="Root to train on, e.g. ES or MNQ.")]
CatalogOpt = Annotated[
    Path | None, typer.Option("--catalog", help="Catalog (default: $MIA_CATALOG, else ./data/catalog).")
]
FeaturesOpt = Annotated[
    Path | None,
    typer.Option(
        "--features", help="Research Parquet of `mia features build` (default: the catalog's FeatureVectors)."
    ),
]
StartOpt = Annotated[str | None, typer.Option("--start", help="First bar, ISO date/time (UTC if naive).")]
EndOpt = Annotated[str | None, typer.Option("--end", help="End of the data, ISO date/time (exclusive).")]
RegistryOpt = Annotated[
    Path | None, typer.Option("--registry", help="Model registry folder (default from algo_config.yaml).")
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (default from algo_config.yaml).")]
StepsOpt = Annotated[
    int | None, typer.Option("--timesteps", min=1, help="Training steps (default from algo_config.yaml).")
]
RayOpt = Annotated[
    bool, typer.Option("--ray/--serial", help="Run jobs in parallel on Ray (local unless --ray-address).")
]
RayAddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="Ray cluster address (default: algo_config.yaml).")
]


def _algo(name: str) -> str:
    from mia_strategies.providers.config import ALGORITHMS

    algo = name.strip().lower().replace("-", "_")
    if algo not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {name!r}: use {', '.join(ALGORITHMS)}")
    return algo


def _settings() -> Any:
    from research.rl.pipeline import Settings

    return Settings.load()


def _catalog(catalog: Path | None) -> Path:
    from catalog.store import default_catalog_path

    return Path(catalog or default_catalog_path())


def _ns(value: str | None, what: str) -> int | None:
    from mia_strategies.backtest import parse_time

    return parse_time(value, what)


def _registry(settings: Any, registry: Path | None) -> Any:
    from research.rl.registry import ModelRegistry

    return ModelRegistry(registry or settings.algo.registry)


def _market(settings: Any, market: str) -> str:
    root = market.strip().upper()
    settings.markets.root(root)
    return root


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _table(title: str, rows: list[dict[Any, Any]]) -> Table:
    table = Table(title=title)
    if not rows:
        return table
    for column in rows[0]:
        table.add_column(str(column))
    for row in rows:
        table.add_row(*(_fmt(v) for v in row.values()))
    return table


# -- train / fine-tune ----------------------------------------------------------------------------


def train(
    algo: Annotated[str, typer.Argument(help="sac, ppo, ddpg, qrdqn or ppo_lagrangian.")],
    market: MarketOpt = "ES",
    catalog: CatalogOpt = None,
    features: FeaturesOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    eval_start: Annotated[
        str | None,
        typer.Option("--eval-start", help="Evaluate from this day on (default: the last share of days)."),
    ] = None,
    timesteps: StepsOpt = None,
    seed: SeedOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Train one algorithm on a training window, evaluate it on a later window, register the model."""
    from research.rl.pipeline import load_data
    from research.rl.pipeline import source_info
    from research.rl.pipeline import split_by_days
    from research.rl.pipeline import train_and_register

    name = _algo(algo)
    settings = _settings()
    root = _market(settings, market)
    path = _catalog(catalog)
    data = load_data(path, root, settings, features_path=features, start_ns=_ns(start, "start"), end_ns=_ns(end, "end"))
    train_data, eval_data = split_by_days(data, settings.algo.evaluation.eval_fraction, _ns(eval_start, "eval-start"))
    steps = timesteps or settings.algo.settings(name).total_timesteps
    console.print(
        f"[bold]train[/] {name} on {root}: {len(train_data):,} bars to train "
        f"({_day(train_data.start_ns)}..{_day(train_data.end_ns)}), {len(eval_data):,} to evaluate "
        f"({_day(eval_data.start_ns)}..{_day(eval_data.end_ns)}), {steps:,} steps, "
        f"{len(data.feature_names)} features",
    )
    with console.status(f"training {name}..."):
        result, version = train_and_register(
            name,
            train_data,
            eval_data,
            settings,
            _registry(settings, registry),
            source=source_info(path, features),
            seed=seed,
            total_timesteps=timesteps,
        )
    console.print(_table("out-of-sample evaluation", [result.evaluation.to_dict()]))
    console.print(f"registered [bold]{version.label}[/] in {version.path} (train_{name}_performance.csv, eval.csv)")


def _day(ts_ns: int) -> str:
    """The Globex trading day of a bar (a Sunday-evening bar belongs to Monday)."""
    from mia_strategies import sessions

    return sessions.trading_day(ts_ns).isoformat()


def fine_tune(
    algo: Annotated[str, typer.Argument(help="Algorithm of the registered policy to fine-tune.")],
    regime: Annotated[str, typer.Option("--regime", help="Regime to fine-tune on: trend, range or defensive.")],
    market: MarketOpt = "ES",
    version: Annotated[int | None, typer.Option("--version", help="Base version (default: the latest).")] = None,
    catalog: CatalogOpt = None,
    features: FeaturesOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    timesteps: StepsOpt = None,
    seed: SeedOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Fine-tune a registered policy on recent bars of one regime (method 8); register the new version."""
    from research.rl.pipeline import fine_tune as run_fine_tune
    from research.rl.pipeline import load_data
    from research.rl.pipeline import source_info

    name = _algo(algo)
    settings = _settings()
    root = _market(settings, market)
    models = _registry(settings, registry)
    base = models.get(root, name, version)
    path = _catalog(catalog)
    names = tuple(base.spec().feature_names)
    data = load_data(
        path,
        root,
        settings,
        features_path=features,
        start_ns=_ns(start, "start"),
        end_ns=_ns(end, "end"),
        feature_names=names,
    )
    with console.status(f"fine-tuning {base.label} on {regime}..."):
        result, new = run_fine_tune(
            base,
            regime,
            data,
            settings,
            models,
            source=source_info(path, features),
            seed=seed,
            total_timesteps=timesteps,
        )
    console.print(_table(f"out-of-sample evaluation ({regime} bars)", [result.evaluation.to_dict()]))
    console.print(f"registered [bold]{new.label}[/] (parent {base.label}, regime {regime}) in {new.path}")


# -- walk-forward / sweep -------------------------------------------------------------------------


def walk_forward(
    algos: Annotated[str, typer.Argument(help="Comma-separated algorithms, e.g. sac,ppo,ddpg.")],
    market: MarketOpt = "ES",
    catalog: CatalogOpt = None,
    features: FeaturesOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for walk_forward*.csv and oos_<algo>.csv.")] = Path(
        "runs/walk_forward",
    ),
    timesteps: StepsOpt = None,
    seed: SeedOpt = None,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
) -> None:
    """Roll train/test windows over trading days; report out-of-sample results only."""
    from research.rl.pipeline import load_data
    from research.rl.walkforward import walk_forward as run_walk_forward

    names = [_algo(a) for a in algos.split(",") if a.strip()]
    if not names:
        raise ConfigError("name at least one algorithm, e.g. `mia walk-forward sac,ppo`")
    settings = _settings()
    root = _market(settings, market)
    data = load_data(
        _catalog(catalog), root, settings, features_path=features, start_ns=_ns(start, "start"), end_ns=_ns(end, "end")
    )
    backend = "ray" if ray or ray_address else "serial"
    address = ray_address or settings.algo.ray.address
    with console.status(f"walk-forward of {', '.join(names)} on {root} ({backend})..."):
        report = run_walk_forward(
            names,
            data,
            settings,
            backend=backend,
            address=address,
            num_cpus=settings.algo.ray.num_cpus,
            seed=seed,
            total_timesteps=timesteps,
        )
    written = report.write(out)
    console.print(
        _table(
            f"walk-forward {root}: out-of-sample only, {len(report.windows)} windows",
            report.summary().to_dict("records"),
        )
    )
    console.print(f"results in [bold]{out}[/] ({', '.join(p.name for p in written)})")


def sweep(
    algo: Annotated[str, typer.Argument(help="Algorithm to sweep.")],
    param: Annotated[
        list[str], typer.Option("--param", help="NAME=V1,V2 (repeatable), e.g. learning_rate=0.0003,0.001.")
    ],
    market: MarketOpt = "ES",
    catalog: CatalogOpt = None,
    features: FeaturesOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    out: Annotated[Path, typer.Option("--out", help="CSV of the results.")] = Path("runs/sweep.csv"),
    timesteps: StepsOpt = None,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
) -> None:
    """Train every grid point on the training window and score it on the later evaluation window."""
    from research.rl.pipeline import load_data
    from research.rl.pipeline import split_by_days
    from research.rl.sweep import parse_grid
    from research.rl.sweep import sweep as run_sweep

    name = _algo(algo)
    grid = parse_grid(param)
    settings = _settings()
    root = _market(settings, market)
    data = load_data(
        _catalog(catalog), root, settings, features_path=features, start_ns=_ns(start, "start"), end_ns=_ns(end, "end")
    )
    train_data, eval_data = split_by_days(data, settings.algo.evaluation.eval_fraction)
    backend = "ray" if ray or ray_address else "serial"
    with console.status(f"sweeping {name} ({backend})..."):
        frame = run_sweep(
            name,
            grid,
            train_data,
            eval_data,
            settings,
            backend=backend,
            address=ray_address or settings.algo.ray.address,
            num_cpus=settings.algo.ray.num_cpus,
            total_timesteps=timesteps,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    console.print(_table(f"sweep {name} on {root} (out of sample)", frame.to_dict("records")))
    console.print(f"results in [bold]{out}[/]")


# -- ensemble / models ----------------------------------------------------------------------------


def ensemble_build(
    market: MarketOpt = "ES",
    catalog: CatalogOpt = None,
    features: FeaturesOpt = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start", help="Out-of-sample window for the posterior (default: after every member's training)."
        ),
    ] = None,
    end: EndOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Register the Bayesian ensemble of the configured members, its posterior seeded out of sample."""
    import numpy as np
    import pandas as pd

    from mia_strategies.providers.policy import LoadedPolicy
    from research.rl.ensemble import build_ensemble
    from research.rl.pipeline import load_data

    settings = _settings()
    root = _market(settings, market)
    models = _registry(settings, registry)
    config = settings.trade_probability
    members = [models.get(root, algo) for algo in config.members]
    names = tuple(dict.fromkeys(n for m in members for n in LoadedPolicy.load(m.path).spec.feature_names))
    start_ns = _ns(start, "start")
    if start_ns is None:
        ends = [pd.Timestamp(m.manifest["data"]["train"]["end"]).value for m in members]
        start_ns = int(np.max(ends)) + 1
    data = load_data(
        _catalog(catalog),
        root,
        settings,
        features_path=features,
        start_ns=start_ns,
        end_ns=_ns(end, "end"),
        feature_names=names,
    )
    version = build_ensemble(models, root, config, data)
    rows = [
        {
            "member": m["algo"],
            "version": m["version"],
            "prior": m["prior"],
            "posterior": version.manifest["posterior_weights"][m["algo"]],
        }
        for m in version.manifest["members"]
    ]
    console.print(_table(f"ensemble_weights {root} ({len(data):,} out-of-sample bars)", rows))
    console.print(f"registered [bold]{version.label}[/] in {version.path}")


def ensemble_eval(
    market: MarketOpt = "ES",
    catalog: CatalogOpt = None,
    features: FeaturesOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    version: Annotated[int | None, typer.Option("--version", help="Ensemble version (default: the latest).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for ensemble_eval.csv and ensemble_weights.csv.")] = Path(
        "runs/ensemble",
    ),
    registry: RegistryOpt = None,
) -> None:
    """Trade a registered ensemble in the environment over a window; log its ensemble_weights."""
    from mia_strategies.providers.policy import EnsembleModel
    from research.rl.ensemble import run_ensemble
    from research.rl.evaluate import run_frame
    from research.rl.pipeline import load_data
    from research.rl.train import costs_for

    settings = _settings()
    root = _market(settings, market)
    models = _registry(settings, registry)
    model = EnsembleModel.load(models.get(root, "ensemble", version).path)
    names = tuple(dict.fromkeys(n for m in model.members for n in m.spec.feature_names))
    data = load_data(
        _catalog(catalog),
        root,
        settings,
        features_path=features,
        start_ns=_ns(start, "start"),
        end_ns=_ns(end, "end"),
        feature_names=names,
    )
    summary, run, weights = run_ensemble(model, data, costs_for(root, settings.markets, settings.env), settings.env)
    out.mkdir(parents=True, exist_ok=True)
    run_frame(run).to_csv(out / "ensemble_eval.csv", index=False)
    weights.to_csv(out / "ensemble_weights.csv")
    console.print(_table(f"{model.label} over {len(data):,} bars", [summary.to_dict()]))
    console.print(f"results in [bold]{out}[/] (ensemble_eval.csv, ensemble_weights.csv)")


def _span(window: dict[str, Any]) -> str:
    return f"{str(window.get('start', ''))[:10]}..{str(window.get('end', ''))[:10]}"


def models_ls(registry: RegistryOpt = None) -> None:
    """List the registry: every version with its data range and out-of-sample result."""
    settings = _settings()
    models = _registry(settings, registry)
    rows = []
    for v in models.all():
        data = v.manifest.get("data", {})
        metrics = v.manifest.get("metrics", {}).get("eval", {})
        rows.append(
            {
                "model": v.label,
                "created": v.manifest.get("created_utc", ""),
                "features": len(v.manifest.get("feature_set", {}).get("names", [])) or "-",
                "train": _span(data.get("train", {})),
                "oos_pnl": metrics.get("pnl", "-"),
                "oos_sharpe": metrics.get("sharpe", "-"),
                "regime": v.manifest.get("regime") or "-",
                "parent": v.manifest.get("parent") or "-",
            },
        )
    if not rows:
        console.print(f"no models in {models.root}: train one with `mia train sac --market ES`")
        return
    console.print(_table(f"model registry {models.root}", rows))


# -- features select ------------------------------------------------------------------------------


def features_select(
    markets: Annotated[str, typer.Option("--markets", help="Comma-separated roots (default: the environment's).")] = "",
    catalog: CatalogOpt = None,
    features: FeaturesOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    top: Annotated[int, typer.Option("--top", min=1, max=10_000, help="Features kept per market.")] = 150,
    windows: Annotated[int, typer.Option("--windows", min=1, max=100, help="Windows for the stability report.")] = 4,
    target: Annotated[
        str, typer.Option("--target", help="forward_return, or policy:<algo> (a registered model).")
    ] = "forward_return",
    feature_sets: Annotated[
        Path | None,
        typer.Option(
            "--feature-sets", help="File whose inference sets are rewritten (default config/feature_sets.yaml)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for feature_importance.csv.")] = Path("."),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Rank and report, but do not rewrite the feature sets.")
    ] = False,
    seed: SeedOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Rank training features by SHAP, keep the top N per market as its inference set."""
    import pandas as pd

    from mia_strategies.config import config_dir
    from mia_strategies.features.sets import load_feature_sets
    from research.rl.pipeline import load_data
    from research.shap_select import replace_inference_set
    from research.shap_select import select_features

    settings = _settings()
    sets_path = feature_sets or config_dir() / "feature_sets.yaml"
    sets = load_feature_sets(sets_path)
    roots = [_market(settings, m) for m in (markets.split(",") if markets else settings.env.markets) if m.strip()]
    models = _registry(settings, registry)
    results = []
    for root in roots:
        names = tuple(sets.resolve(f"{root}.training").names)
        data = load_data(
            _catalog(catalog),
            root,
            settings,
            features_path=features,
            start_ns=_ns(start, "start"),
            end_ns=_ns(end, "end"),
            feature_names=names,
        )
        y = _selection_target(target, models, root, data)
        with console.status(f"SHAP selection for {root} ({len(data):,} bars, {len(names)} features)..."):
            result = select_features(
                data,
                top=top,
                windows=windows,
                target=y,
                seed=settings.algo.seed if seed is None else seed,
                cache_dir=models.root / root,
            )
        results.append(result)
        if not dry_run:
            replace_inference_set(sets_path, root, result.selected)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.concat([r.importance for r in results], ignore_index=True)
    frame.to_csv(out / "feature_importance.csv", index=False)
    rows = [
        {
            "market": r.market,
            "method": r.method,
            "samples": r.samples,
            "selected": len(r.selected),
            "windows": r.windows,
            "mean_jaccard": r.mean_jaccard,
            "min_jaccard": r.min_jaccard,
            "top_5": ", ".join(r.selected[:5]),
        }
        for r in results
    ]
    console.print(_table("SHAP selection (stability = Jaccard overlap of the windows' top sets)", rows))
    where = "not written (--dry-run)" if dry_run else f"written to {sets_path}"
    console.print(f"feature importance in [bold]{out / 'feature_importance.csv'}[/]; inference sets {where}")


def _selection_target(target: str, models: Any, root: str, data: Any) -> Any:
    import numpy as np

    from mia_strategies.providers.policy import LoadedPolicy
    from research.rl.ensemble import member_targets

    if target == "forward_return":
        return None
    kind, _, algo = target.partition(":")
    if kind != "policy" or not algo:
        raise ConfigError(f"--target {target!r}: use forward_return or policy:<algo> such as policy:sac")
    policy = LoadedPolicy.load(models.get(root, _algo(algo)).path)
    view = data.select_features(policy.spec.feature_names)
    return member_targets(policy, view).astype(np.float64)


# -- registration ---------------------------------------------------------------------------------


def _features_group(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> typer.Typer:
    """The ``mia features`` group, whoever created it first."""
    group = groups.get("features")
    if group is not None:
        return group
    for info in app.registered_groups:
        if info.name == "features" and info.typer_instance is not None:
            return info.typer_instance
    group = typer.Typer(help="Feature sets: offline build and SHAP selection.", no_args_is_help=True)
    app.add_typer(group, name="features")
    if isinstance(groups, dict):
        groups["features"] = group
    return group


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add the research commands and make the research config files checkable."""
    from mia_strategies.config import register_config_kind
    from mia_strategies.providers.config import TradeProbabilityConfig
    from research.rl.config import AlgoConfig
    from research.rl.config import ModelParamsConfig
    from research.rl.config import TradingEnvConfig

    register_config_kind("trading_env", TradingEnvConfig)
    register_config_kind("algo", AlgoConfig)
    register_config_kind("model_params", ModelParamsConfig)
    register_config_kind("trade_probability", TradeProbabilityConfig)
    app.command("train")(train)
    app.command("fine-tune")(fine_tune)
    app.command("walk-forward")(walk_forward)
    app.command("sweep")(sweep)
    ensemble_app = typer.Typer(help="The Bayesian ensemble of RL policies.", no_args_is_help=True)
    ensemble_app.command("build")(ensemble_build)
    ensemble_app.command("eval")(ensemble_eval)
    app.add_typer(ensemble_app, name="ensemble")
    models_app = typer.Typer(help="The model registry.", no_args_is_help=True)
    models_app.command("ls")(models_ls)
    app.add_typer(models_app, name="models")
    _features_group(app, groups).command("select")(features_select)
