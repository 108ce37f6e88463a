"""The research workflows behind the CLI: load configs and data, split windows, train, fine-tune, register.

Everything here is a plain function of paths and configs so tests and notebooks drive exactly what
``mia train``, ``mia fine-tune`` and ``mia ensemble build`` run.
"""

import math
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path

import numpy as np

from mia_strategies.config import MarketsConfig
from mia_strategies.config import config_dir
from mia_strategies.config import load_markets
from mia_strategies.errors import CatalogError
from mia_strategies.errors import ConfigError
from mia_strategies.providers.config import TradeProbabilityConfig
from research.env import MarketData
from research.rl.config import AlgoConfig
from research.rl.config import ModelParamsConfig
from research.rl.config import TradingEnvConfig
from research.rl.config import load_algo_config
from research.rl.config import load_env_config
from research.rl.config import load_model_file
from research.rl.config import load_model_params
from research.rl.registry import ModelRegistry
from research.rl.registry import ModelVersion
from research.rl.train import TrainResult
from research.rl.train import register_result
from research.rl.train import train_policy


@dataclass(frozen=True)
class Settings:
    """Every configuration file research reads."""

    env: TradingEnvConfig
    algo: AlgoConfig
    params: ModelParamsConfig
    markets: MarketsConfig
    trade_probability: TradeProbabilityConfig

    @classmethod
    def load(
        cls,
        env_path: Path | None = None,
        algo_path: Path | None = None,
        params_path: Path | None = None,
        trade_probability_path: Path | None = None,
    ) -> "Settings":
        """Load the files (the config folder's when no path is given; defaults when absent)."""
        return cls(
            env=load_env_config(env_path),
            algo=load_algo_config(algo_path),
            params=load_model_params(params_path),
            markets=load_markets(),
            trade_probability=load_trade_probability(trade_probability_path),
        )


def load_trade_probability(path: Path | None = None) -> TradeProbabilityConfig:
    """``trade_probability_config.yaml`` from ``path`` or the config folder (defaults when absent)."""
    default = config_dir() / "trade_probability_config.yaml"
    path = path or default
    if not path.exists() and path == default:
        return TradeProbabilityConfig()
    result: TradeProbabilityConfig = load_model_file(path, TradeProbabilityConfig)
    return result


def model_feature_names(root: str, env: TradingEnvConfig, feature_sets_path: Path | None = None) -> tuple[str, ...]:
    """The names a model of ``root`` observes: ``ROOT.<feature_set>`` of ``config/feature_sets.yaml``."""
    from mia_strategies.features.sets import load_feature_sets

    return tuple(load_feature_sets(feature_sets_path).resolve(f"{root.upper()}.{env.feature_set}").names)


def load_data(
    catalog: Path,
    root: str,
    settings: Settings,
    *,
    features_path: Path | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    feature_names: tuple[str, ...] | None = None,
) -> MarketData:
    """A root's decision bars with the model's features (the configured set unless names are given)."""
    from research.rl.data import load_market_data

    names = feature_names if feature_names is not None else model_feature_names(root, settings.env)
    return load_market_data(
        catalog,
        root,
        settings.markets,
        feature_names=names,
        features_path=features_path,
        start_ns=start_ns,
        end_ns=end_ns,
        regime_labels=tuple(settings.env.observation.regime_labels),
    )


def split_by_days(
    data: MarketData, eval_fraction: float, eval_start_ns: int | None = None
) -> tuple[MarketData, MarketData]:
    """Train on the earlier trading days, evaluate on the later ones (disjoint, in time order).

    With ``eval_start_ns`` the evaluation starts at the first whole trading day at or after it;
    otherwise the last ``ceil(eval_fraction * days)`` trading days are held out.
    """
    days = data.trading_days()
    distinct = sorted(set(days.tolist()))
    if len(distinct) < 2:
        raise CatalogError(
            f"{data.root}: {len(distinct)} trading day of data; training needs at least 2 "
            "(one to train, one to evaluate)",
        )
    if eval_start_ns is not None:
        first = int(np.searchsorted(data.ts_ns, eval_start_ns, side="left"))
        if first >= len(data):
            raise ConfigError("--eval-start lies after the last bar: choose an earlier date")
        boundary = days[first]
        if first > 0 and days[first - 1] == boundary:
            later = [d for d in distinct if d > boundary]
            if not later:
                raise ConfigError("--eval-start leaves no whole trading day to evaluate on")
            boundary = later[0]
    else:
        held_out = max(1, math.ceil(eval_fraction * len(distinct)))
        held_out = min(held_out, len(distinct) - 1)
        boundary = distinct[-held_out]
    train_rows = np.flatnonzero(days < boundary)
    eval_rows = np.flatnonzero(days >= boundary)
    if len(train_rows) < 2:
        raise ConfigError("the training window holds fewer than 2 bars: choose a later --eval-start")
    return data.take(train_rows), data.take(eval_rows)


def source_info(catalog: Path, features_path: Path | None) -> dict[str, str | None]:
    """Where a model's data came from, for its manifest."""
    return {"catalog": str(Path(catalog).resolve()), "features": str(features_path) if features_path else None}


def train_and_register(
    algo: str,
    train: MarketData,
    evaluation: MarketData,
    settings: Settings,
    registry: ModelRegistry,
    *,
    source: dict[str, str | None],
    seed: int | None = None,
    total_timesteps: int | None = None,
) -> tuple[TrainResult, ModelVersion]:
    """Train ``algo`` on ``train``, evaluate on ``evaluation``, write the version to the registry."""
    result = train_policy(
        algo,
        train,
        evaluation,
        env_config=settings.env,
        algo_config=settings.algo,
        model_params=settings.params,
        markets=settings.markets,
        seed=seed,
        total_timesteps=total_timesteps,
    )
    version = register_result(
        registry,
        result,
        env_config=settings.env,
        algo_config=settings.algo,
        feature_set=settings.env.feature_set,
        source=source,
    )
    return result, version


# -- regime fine-tuning (method 8) ------------------------------------------------------------------


def regime_labels_of(data: MarketData) -> np.ndarray:
    """The most probable regime of every bar ("" where unknown)."""
    probs = data.regime_probs
    if probs.shape[1] == 0:
        return np.full(len(data), "", dtype=object)
    known = np.all(np.isfinite(probs), axis=1)
    best = np.argmax(np.where(np.isfinite(probs), probs, -1.0), axis=1)
    labels = np.array(data.regime_labels, dtype=object)[best]
    return np.where(known, labels, "")


def regime_subset(data: MarketData, regime: str, recent_days: int) -> MarketData:
    """The bars of the last ``recent_days`` trading days whose most probable regime is ``regime``.

    Contiguous stretches become separate episodes (``run_id``), so no position is held across bars
    of another regime.
    """
    if regime not in data.regime_labels:
        raise ConfigError(f"unknown regime {regime!r}: the models know {', '.join(data.regime_labels)}")
    days = data.trading_days()
    distinct = sorted(set(days.tolist()))
    recent = set(distinct[-recent_days:])
    mask = (regime_labels_of(data) == regime) & np.array([d in recent for d in days])
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        return data.take(rows)
    run_id = np.cumsum(np.concatenate([[1], np.diff(rows) != 1])).astype(np.int64)
    return replace(data.take(rows), run_id=run_id)


def fine_tune(
    base: ModelVersion,
    regime: str,
    data: MarketData,
    settings: Settings,
    registry: ModelRegistry,
    *,
    source: dict[str, str | None],
    seed: int | None = None,
    total_timesteps: int | None = None,
) -> tuple[TrainResult, ModelVersion]:
    """Continue training ``base`` on recent bars of one regime; evaluate on that regime's later bars.

    The regime's hyperparameter overrides (``model_params.yaml``) apply, the observation spec stays
    the base model's, and the new version records its parent and regime.
    """
    settings_ft = settings.algo.fine_tune
    subset = regime_subset(data, regime, settings_ft.recent_days)
    if len(subset) < settings_ft.min_bars:
        raise CatalogError(
            f"only {len(subset)} recent {data.root} bars in regime {regime!r} "
            f"(fine-tuning needs {settings_ft.min_bars}); "
            "widen the range or lower fine_tune.min_bars",
        )
    train, evaluation = split_by_days(subset, settings.algo.evaluation.eval_fraction)
    result = train_policy(
        base.algo,
        train,
        evaluation,
        env_config=settings.env,
        algo_config=settings.algo,
        model_params=settings.params,
        markets=settings.markets,
        seed=seed,
        total_timesteps=total_timesteps or settings_ft.total_timesteps,
        regime=regime,
        init_from=base,
    )
    version = register_result(
        registry,
        result,
        env_config=settings.env,
        algo_config=settings.algo,
        feature_set=settings.env.feature_set,
        source=source,
    )
    return result, version
