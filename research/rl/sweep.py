"""Hyperparameter sweeps: every point of a grid trained on the train window, scored out of sample.

``mia sweep ALGO --param learning_rate=0.0003,0.001 --param net_arch=64x64,128x128`` runs the grid's
points as independent jobs (serially or on Ray); each point overrides the algorithm's default
hyperparameters from ``model_params.yaml`` and is scored on the later evaluation window only.
"""

import itertools
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mia_strategies.errors import ConfigError
from research.env import MarketData
from research.rl.config import ModelParamsConfig
from research.rl.parallel import run_jobs
from research.rl.pipeline import Settings
from research.rl.train import train_policy


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``key=v1,v2`` items into a grid; numbers become numbers, ``64x64`` a layer list."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ConfigError(f"--param {item!r}: use NAME=V1,V2 such as learning_rate=0.0003,0.001")
        name = key.strip()
        parsed = [_value(v.strip()) for v in values.split(",") if v.strip()]
        if name == "net_arch":  # one hidden layer may be written as a bare width
            parsed = [[v] if isinstance(v, int) else v for v in parsed]
        grid[name] = parsed
    return grid


def _value(text: str) -> Any:
    if "x" in text and all(part.isdigit() for part in text.split("x")):
        return [int(part) for part in text.split("x")]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid, in a stable order."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


@dataclass(frozen=True)
class SweepJob:
    """One grid point."""

    algo: str
    overrides: dict[str, Any]
    train: MarketData
    test: MarketData
    settings: Settings
    total_timesteps: int | None


def _with_overrides(params: ModelParamsConfig, algo: str, overrides: dict[str, Any]) -> ModelParamsConfig:
    raw = params.model_dump(mode="json")
    raw[algo]["default"] = {**raw[algo]["default"], **overrides}
    try:
        return ModelParamsConfig.model_validate(raw)
    except ValueError as err:
        raise ConfigError(f"sweep point {overrides}: {str(err).splitlines()[0]}") from None


def run_point(job: SweepJob) -> dict[str, Any]:
    """Train one point and return its out-of-sample metrics."""
    params = _with_overrides(job.settings.params, job.algo, job.overrides)
    result = train_policy(
        job.algo,
        job.train,
        job.test,
        env_config=job.settings.env,
        algo_config=job.settings.algo,
        model_params=params,
        markets=job.settings.markets,
        total_timesteps=job.total_timesteps,
    )
    return {
        **{f"param_{k}": v for k, v in job.overrides.items()},
        **{f"oos_{k}": v for k, v in result.evaluation.to_dict().items()},
    }


def sweep(
    algo: str,
    grid: dict[str, list[Any]],
    train: MarketData,
    test: MarketData,
    settings: Settings,
    *,
    backend: str = "serial",
    address: str | None = None,
    num_cpus: int | None = None,
    total_timesteps: int | None = None,
) -> pd.DataFrame:
    """Out-of-sample metrics of every grid point, one row each, in grid order."""
    points = grid_points(grid)
    for point in points:
        _with_overrides(settings.params, algo, point)  # refuse a bad grid before any training
    jobs = [SweepJob(algo, p, train, test, settings, total_timesteps) for p in points]
    rows = run_jobs(run_point, jobs, backend=backend, address=address, num_cpus=num_cpus)
    return pd.DataFrame.from_records(rows)
