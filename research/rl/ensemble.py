"""Build, register and evaluate the Bayesian ensemble of registered policies.

``build_ensemble`` takes the configured members (``config/trade_probability_config.yaml``: SAC, PPO,
DDPG by default, QR-DQN / PPO-Lagrangian when listed) from the registry, replays each on an
out-of-sample window to get its per-bar rewards, and registers an ensemble version holding the
member references, the prior weights and those rewards (the posterior's starting history).
``run_ensemble`` trades the ensemble in the environment with the same ``EnsembleRunner`` the signal
provider uses in the engine, and returns the ``ensemble_weights`` it logged.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mia_strategies.errors import ConfigError
from mia_strategies.providers.config import TradeProbabilityConfig
from mia_strategies.providers.ensemble import BayesianEnsemble
from mia_strategies.providers.ensemble import member_reward
from mia_strategies.providers.observation import ObservationSpec
from mia_strategies.providers.policy import EnsembleModel
from mia_strategies.providers.policy import EnsembleRunner
from mia_strategies.providers.policy import LoadedPolicy
from mia_strategies.providers.policy import NamedRow
from mia_strategies.providers.policy import PolicyRunner
from research.env import CostModel
from research.env import MarketData
from research.env import PolicyRun
from research.env import TradingEnv
from research.env import run_policy
from research.rl.config import TradingEnvConfig
from research.rl.evaluate import EvalSummary
from research.rl.evaluate import summarize_run
from research.rl.registry import ModelRegistry
from research.rl.registry import ModelVersion
from research.rl.train import data_range


def member_targets(policy: LoadedPolicy, data: MarketData) -> np.ndarray:
    """The policy's target at every bar of ``data``, trading on its own (one decision per bar)."""
    runner = PolicyRunner(policy)
    names, labels = data.feature_names, data.regime_labels
    out = np.zeros(len(data), dtype=np.int64)
    for i in range(len(data)):
        regime = NamedRow(labels, data.regime_probs[i]) if labels else None
        out[i] = runner.step(int(data.ts_ns[i]), NamedRow(names, data.features[i]), regime).target
    return out


def reward_matrix(targets: np.ndarray, data: MarketData, max_position: int) -> np.ndarray:
    """``(members, bars - 1)`` member rewards: previous target x close-to-close move (0 across rolls and days)."""
    if len(data) < 2:
        return np.zeros((targets.shape[0], 0))
    change = np.diff(data.close)
    days = data.trading_days()
    same = (data.contract[1:] == data.contract[:-1]) & (days[1:] == days[:-1])
    change = np.where(same, change, 0.0)
    out = np.zeros((targets.shape[0], len(change)))
    for m in range(targets.shape[0]):
        out[m] = [member_reward(int(t), float(c), max_position) for t, c in zip(targets[m, :-1], change, strict=True)]
    return out


def build_ensemble(
    registry: ModelRegistry,
    market: str,
    config: TradeProbabilityConfig,
    data: MarketData,
    versions: dict[str, int] | None = None,
) -> ModelVersion:
    """Register an ensemble of the configured members, its posterior seeded on ``data`` (out of sample)."""
    chosen: list[ModelVersion] = [registry.get(market, algo, (versions or {}).get(algo)) for algo in config.members]
    policies = [LoadedPolicy.load(v.path) for v in chosen]
    max_positions = {p.spec.max_position for p in policies}
    if len(max_positions) != 1:
        raise ConfigError(
            f"ensemble members of {market} trade different maximum positions {sorted(max_positions)}; "
            "train them with the same max_position_size",
        )
    max_position = max_positions.pop()
    for version in chosen:
        train_end = version.manifest.get("data", {}).get("train", {}).get("end")
        if train_end and len(data) and pd.Timestamp(train_end).value >= data.start_ns:
            raise ConfigError(
                f"{version.label} was trained on data up to {train_end}: seed the ensemble on a later window (--start)",
            )
    targets = np.stack([member_targets(p, data) for p in policies]) if len(data) else np.zeros((len(policies), 0))
    rewards = reward_matrix(targets, data, max_position)

    def write(folder: Path) -> None:
        with (folder / "member_rewards.npz").open("wb") as fh:
            np.savez(fh, rewards=rewards)

    prior = config.normalized_prior()
    start = BayesianEnsemble(
        config.members,
        prior,
        max_position,
        config.entry_threshold,
        config.posterior,
        config.cvar_alpha,
    )
    if rewards.size:
        start.seed_history(rewards)
    manifest: dict[str, Any] = {
        "members": [
            {"algo": v.algo, "version": v.version, "path": f"{v.market}/{v.algo}/v{v.version:04d}", "prior": w}
            for v, w in zip(chosen, prior, strict=True)
        ],
        "prior_weights": prior,
        "posterior_weights": {m: float(w) for m, w in zip(config.members, start.weights, strict=True)},
        "max_position": max_position,
        "trade_probability": config.model_dump(mode="json"),
        "data": {"posterior_seed": data_range(data) if len(data) else {}},
    }
    return registry.register(market, "ensemble", manifest, write)


def run_ensemble(
    model: EnsembleModel,
    data: MarketData,
    costs: CostModel,
    config: TradingEnvConfig,
) -> tuple[EvalSummary, PolicyRun, pd.DataFrame]:
    """Trade the ensemble over every session of ``data``; summary, per-bar run and logged weights."""
    spec = ObservationSpec.fit(
        data.features,
        data.feature_names,
        data.regime_labels,
        max_position=model.max_position,
        clip=model.members[0].spec.clip,
        discrete=True,
        flat_minutes_before_close=model.flat_minutes_before_close,
    )
    env = TradingEnv(data, spec, costs, config.model_copy(update={"episode": "session"}), sequential=True)
    runner = EnsembleRunner(model, log_weights_every_bars=1)
    names, labels = data.feature_names, data.regime_labels
    seen = [-1]  # last row the runner stepped on

    def step(i: int, position: int | None) -> int:
        regime = NamedRow(labels, data.regime_probs[i]) if labels else None
        decision = runner.step(
            int(data.ts_ns[i]),
            str(data.contract[i]),
            float(data.close[i]),
            NamedRow(names, data.features[i]),
            regime,
            position,
        )
        seen[0] = i
        return decision.target

    def act(_obs: Any) -> int:
        i = env.bar_index
        # the environment does not ask at a session's last bar; the engine does: step over it too so
        # the posterior books the same outcomes in both
        for skipped in range(seen[0] + 1, i):
            step(skipped, None)
        return step(i, env.held_position()) + model.max_position

    run = run_policy(env, act)
    members = runner.ensemble.members
    weights = pd.DataFrame(
        [w for _, w in runner.weight_log],
        columns=[f"weight_{m}" for m in members],
        index=pd.to_datetime([ts for ts, _ in runner.weight_log], utc=True),
    )
    weights.index.name = "ts"
    return summarize_run(run), run, weights
