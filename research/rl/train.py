"""Train one algorithm on a training window, evaluate it on a later, disjoint window, register it.

``train_policy`` is the unit every command builds on (``mia train``, ``mia walk-forward``, sweeps,
regime fine-tuning): it fits the observation spec on the training window only, trains the seeded
model, exports the policy to numpy (checked against the model's own ``predict``), and evaluates the
export out of sample. ``register_result`` writes the model, its metrics and manifest to the registry.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv

from mia_strategies.config import MarketsConfig
from mia_strategies.providers.ensemble import cvar_from_quantiles
from mia_strategies.providers.network import PolicyNetwork
from mia_strategies.providers.observation import ObservationSpec
from research.env import CostModel
from research.env import MarketData
from research.env import PolicyRun
from research.env import TradingEnv
from research.rl.algos import build_model
from research.rl.algos import load_model
from research.rl.algos import set_learning_rate
from research.rl.config import AlgoConfig
from research.rl.config import ModelParamsConfig
from research.rl.config import TradingEnvConfig
from research.rl.evaluate import EvalSummary
from research.rl.evaluate import evaluate_network
from research.rl.evaluate import run_frame
from research.rl.export import check_export
from research.rl.export import export_policy
from research.rl.registry import ModelRegistry
from research.rl.registry import ModelVersion
from research.rl.registry import feature_hash


#: Metric columns of ``train_<algo>_performance.csv`` (missing values are empty).
METRIC_COLUMNS = (
    "timesteps", "updates", "loss", "policy_loss", "value_loss", "entropy_loss", "actor_loss",
    "critic_loss", "reward", "episode_length", "cvar_loss", "var_loss", "lagrange_multiplier",
    "quantile_05", "quantile_25", "quantile_50", "quantile_75", "quantile_95", "eval_reward",
)  # fmt: skip
_LOGGER_KEYS = {
    "train/loss": "loss",
    "train/policy_gradient_loss": "policy_loss",
    "train/value_loss": "value_loss",
    "train/entropy_loss": "entropy_loss",
    "train/actor_loss": "actor_loss",
    "train/critic_loss": "critic_loss",
    "train/cvar_loss": "cvar_loss",
    "train/var_loss": "var_loss",
    "train/lagrange_multiplier": "lagrange_multiplier",
}
_QUANTILE_LEVELS = {
    "quantile_05": 0.05,
    "quantile_25": 0.25,
    "quantile_50": 0.5,
    "quantile_75": 0.75,
    "quantile_95": 0.95,
}


def data_range(data: MarketData) -> dict[str, Any]:
    """First and last bar (ISO UTC) and bar count of a window, for manifests."""
    return {
        "start": pd.Timestamp(data.start_ns, tz="UTC").isoformat(),
        "end": pd.Timestamp(data.end_ns, tz="UTC").isoformat(),
        "bars": len(data),
    }


class MetricsCallback(BaseCallback):
    """One metrics row per policy update (on-policy) or every ``log_every_steps`` steps (off-policy).

    Reads the losses the algorithm recorded in its logger, the mean episode reward, the CVaR (95%)
    of recent episode losses (PPO-Lagrangian's own estimate when it has one), QR-DQN's return
    quantiles averaged over a fixed probe batch, and optionally the evaluation reward; stops training
    once the evaluation reward reaches ``reward_threshold``.
    """

    def __init__(
        self,
        log_every_steps: int,
        probe: np.ndarray,
        evaluate: Callable[[], float] | None = None,
        eval_every_steps: int = 0,
        reward_threshold: float | None = None,
    ) -> None:
        super().__init__(verbose=0)
        self.log_every_steps = max(1, log_every_steps)
        self.probe = probe
        self.evaluate = evaluate
        self.eval_every_steps = eval_every_steps
        self.reward_threshold = reward_threshold
        self.rows: list[dict[str, float]] = []
        self._last_row = 0
        self._last_eval = 0
        self._eval_reward = math.nan

    def _on_step(self) -> bool:
        due = self.eval_every_steps and self.num_timesteps - self._last_eval >= self.eval_every_steps
        if self.evaluate is not None and due:
            self._last_eval = self.num_timesteps
            self._eval_reward = self.evaluate()
            if self.reward_threshold is not None and self._eval_reward >= self.reward_threshold:
                self._row()
                return False
        off_policy = not isinstance(self.model, OnPolicyAlgorithm)
        if off_policy and self.num_timesteps - self._last_row >= self.log_every_steps:
            self._row()
        return True

    def _on_rollout_start(self) -> None:
        if isinstance(self.model, OnPolicyAlgorithm) and getattr(self.model, "_n_updates", 0) > 0:
            self._row()

    def _on_training_end(self) -> None:
        if not self.rows or self.rows[-1]["timesteps"] != self.num_timesteps:
            self._row()

    def _row(self) -> None:
        self._last_row = self.num_timesteps
        model = self.model
        values = dict(model.logger.name_to_value)
        row: dict[str, float] = dict.fromkeys(METRIC_COLUMNS, math.nan)
        row["timesteps"] = float(self.num_timesteps)
        row["updates"] = float(getattr(model, "_n_updates", 0))
        for key, column in _LOGGER_KEYS.items():
            if key in values:
                row[column] = float(values[key])
        episodes = list(model.ep_info_buffer or [])
        if episodes:
            returns = np.array([float(e["r"]) for e in episodes])
            row["reward"] = float(returns.mean())
            row["episode_length"] = float(np.mean([float(e["l"]) for e in episodes]))
            if math.isnan(row["cvar_loss"]):
                row["cvar_loss"] = cvar_from_quantiles(returns, 0.95)
        row.update(self._quantiles())
        row["eval_reward"] = self._eval_reward
        self.rows.append(row)

    def _quantiles(self) -> dict[str, float]:
        policy: Any = self.model.policy
        net = getattr(policy, "quantile_net", None)
        if net is None or len(self.probe) == 0:
            return {}
        with th.no_grad():
            quantiles = net(th.as_tensor(self.probe, device=policy.device)).cpu().numpy()  # (batch, n_q, n_a)
        greedy = quantiles.mean(axis=1).argmax(axis=1)
        # monotone rearrangement: QR-DQN does not order its quantile estimates itself
        chosen = np.sort(quantiles[np.arange(len(greedy)), :, greedy], axis=1).mean(axis=0)  # (n_q,)
        levels = (np.arange(len(chosen)) + 0.5) / len(chosen)
        return {name: float(np.interp(level, levels, chosen)) for name, level in _QUANTILE_LEVELS.items()}

    def frame(self) -> pd.DataFrame:
        """The rows as ``train_<algo>_performance.csv`` holds them."""
        return pd.DataFrame(self.rows, columns=list(METRIC_COLUMNS))


@dataclass
class TrainResult:
    """A trained, exported and out-of-sample evaluated policy."""

    algo: str
    root: str
    seed: int
    model: BaseAlgorithm
    network: PolicyNetwork
    spec: ObservationSpec
    metrics: pd.DataFrame
    evaluation: EvalSummary
    eval_run: PolicyRun
    train_range: dict[str, Any]
    eval_range: dict[str, Any]
    total_timesteps: int
    params: dict[str, Any]
    regime: str | None = None
    parent: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def costs_for(root: str, markets: MarketsConfig, env_config: TradingEnvConfig) -> CostModel:
    """The root's cost model from ``markets.yaml`` and the environment's slippage."""
    return CostModel.from_spec(markets.root(root), env_config.slippage_ticks)


def fit_spec(data: MarketData, env_config: TradingEnvConfig, discrete: bool) -> ObservationSpec:
    """Observation spec with z-score statistics of ``data`` (the training window only)."""
    return ObservationSpec.fit(
        data.features,
        data.feature_names,
        data.regime_labels,
        max_position=env_config.max_position(data.root),
        clip=env_config.observation.clip,
        discrete=discrete,
        flat_minutes_before_close=env_config.flat_minutes_before_close,
    )


def train_policy(
    algo: str,
    train_data: MarketData,
    eval_data: MarketData,
    *,
    env_config: TradingEnvConfig,
    algo_config: AlgoConfig,
    model_params: ModelParamsConfig,
    markets: MarketsConfig,
    seed: int | None = None,
    total_timesteps: int | None = None,
    regime: str | None = None,
    init_from: ModelVersion | None = None,
    log_every_steps: int | None = None,
) -> TrainResult:
    """Train ``algo`` on ``train_data``; evaluate the exported policy on the later ``eval_data``.

    ``init_from`` continues training a registered model (fine-tuning) with its own observation spec;
    ``regime`` selects that regime's hyperparameter overrides from ``model_params.yaml``.
    """
    if len(eval_data) and len(train_data) and eval_data.start_ns <= train_data.end_ns:
        raise ValueError("the evaluation window must start after the training window ends")
    th.set_num_threads(algo_config.torch_threads)
    seed = algo_config.seed if seed is None else seed
    settings = algo_config.settings(algo)
    discrete = settings.action_space == "discrete"
    steps = total_timesteps or (algo_config.fine_tune.total_timesteps if init_from else settings.total_timesteps)
    params = model_params.params(algo, regime)
    costs = costs_for(train_data.root, markets, env_config)
    spec = init_from.spec() if init_from is not None else fit_spec(train_data, env_config, discrete)
    train_view = train_data.select_features(spec.feature_names)
    env = DummyVecEnv([lambda: Monitor(TradingEnv(train_view, spec, costs, env_config))])
    env.seed(seed)
    if init_from is not None:
        model = load_model(algo, init_from.path / "model.zip", env=env)
        model.set_random_seed(seed)
        set_learning_rate(model, params.learning_rate)
    else:
        model = build_model(algo, env, params, seed, algo_config.ppo_lagrangian)
    probe = _probe(train_view, spec)

    def eval_reward() -> float:
        summary, _ = evaluate_network(export_policy(model), spec, eval_data, costs, env_config)
        return summary.mean_reward

    callback = MetricsCallback(
        log_every_steps or max(100, steps // 50),
        probe,
        eval_reward if len(eval_data) > 1 else None,
        algo_config.evaluation.eval_every_steps,
        env_config.reward_threshold,
    )
    model.learn(total_timesteps=steps, callback=callback, reset_num_timesteps=init_from is None, progress_bar=False)
    network = export_policy(model)
    check_export(model, network, probe[:256])
    evaluation, run = evaluate_network(network, spec, eval_data, costs, env_config)
    return TrainResult(
        algo=algo,
        root=train_data.root,
        seed=seed,
        model=model,
        network=network,
        spec=spec,
        metrics=callback.frame(),
        evaluation=evaluation,
        eval_run=run,
        train_range=data_range(train_data),
        eval_range=data_range(eval_data) if len(eval_data) else {},
        total_timesteps=steps,
        params=params.model_dump(mode="json"),
        regime=regime,
        parent=init_from.label if init_from is not None else None,
    )


def _probe(data: MarketData, spec: ObservationSpec, size: int = 256) -> np.ndarray:
    """A fixed, evenly spaced batch of flat-position training observations (quantile logging, export check)."""
    if len(data) == 0:
        return np.zeros((0, spec.size), dtype=np.float32)
    rows = np.unique(np.linspace(0, len(data) - 1, num=min(size, len(data))).astype(np.int64))
    out = [
        spec.build(data.features[i], data.regime_probs[i] if data.regime_labels else None, 0, int(data.ts_ns[i]))
        for i in rows
    ]
    return np.stack(out)


def register_result(
    registry: ModelRegistry,
    result: TrainResult,
    *,
    env_config: TradingEnvConfig,
    algo_config: AlgoConfig,
    feature_set: str,
    source: dict[str, Any],
) -> ModelVersion:
    """Write a trained policy with its feature set, configs, data ranges and metrics to the registry."""
    algo = result.algo

    def write(folder: Path) -> None:
        result.model.save(str(folder / "model.zip"))
        result.network.save(folder / "policy.npz")
        result.metrics.to_csv(folder / f"train_{algo}_performance.csv", index=False)
        run_frame(result.eval_run).to_csv(folder / "eval.csv", index=False)
        log = getattr(result.model, "constraint_log", None)
        if log:
            pd.DataFrame(log).to_csv(folder / "constraint_log.csv", index=False)

    names = list(result.spec.feature_names)
    manifest = {
        "seed": result.seed,
        "total_timesteps": result.total_timesteps,
        "action_space": "discrete" if result.spec.discrete else "continuous",
        "policy_kind": result.network.kind,
        "feature_set": {"name": f"{result.root}.{feature_set}", "names": names, "hash": feature_hash(names)},
        "observation": result.spec.to_dict(),
        "config": {
            "trading_env": env_config.model_dump(mode="json"),
            "algorithm": algo_config.settings(algo).model_dump(mode="json"),
            "params": result.params,
            "ppo_lagrangian": algo_config.ppo_lagrangian.model_dump(mode="json") if algo == "ppo_lagrangian" else None,
        },
        "data": {"train": result.train_range, "eval": result.eval_range, **source},
        "metrics": {"eval": result.evaluation.to_dict()},
        "regime": result.regime,
        "parent": result.parent,
    }
    return registry.register(result.root, algo, manifest, write)
