"""Out-of-sample evaluation of a policy in the trading environment: per-bar log and summary metrics.

Evaluation always runs whole sessions in data order (a session's position is closed at its end), with
the deterministic policy, so two evaluations of the same policy on the same data are identical.
"""

import math
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mia_strategies import sessions
from mia_strategies.providers.ensemble import empirical_cvar
from mia_strategies.providers.network import PolicyNetwork
from mia_strategies.providers.observation import ObservationSpec
from research.env import CostModel
from research.env import MarketData
from research.env import Policy
from research.env import PolicyRun
from research.env import TradingEnv
from research.env import run_policy
from research.rl.config import TradingEnvConfig


@dataclass(frozen=True)
class EvalSummary:
    """Out-of-sample results of one policy on one window (P&L in USD, rewards in reward units)."""

    bars: int
    sessions: int
    total_reward: float
    mean_reward: float
    pnl: float
    contracts_traded: int
    sharpe: float
    cvar_95: float
    hit_rate: float
    max_drawdown: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON and CSV rows)."""
        return asdict(self)


def summarize_run(run: PolicyRun) -> EvalSummary:
    """Metrics of a policy run: Sharpe of daily P&L (x sqrt 252), CVaR 95% of per-bar reward, drawdown."""
    rewards = run.rewards
    pnl = run.pnl
    positions = run.positions
    if len(rewards) == 0:
        return EvalSummary(0, 0, 0.0, 0.0, 0.0, 0, math.nan, math.nan, math.nan, 0.0)
    days = np.array([sessions.trading_day(int(t)) for t in run.ts_ns], dtype=object)
    daily = pd.Series(pnl).groupby(days).sum().to_numpy()
    sd = float(daily.std(ddof=1)) if len(daily) > 1 else math.nan
    sharpe = float(daily.mean() / sd * math.sqrt(252)) if sd and math.isfinite(sd) and sd > 0 else math.nan
    exposed = positions != 0
    hit = float((pnl[exposed] > 0).mean()) if exposed.any() else math.nan
    equity = np.cumsum(pnl)
    drawdown = float(np.max(np.maximum.accumulate(np.concatenate([[0.0], equity]))[1:] - equity))
    trades = int(np.abs(np.diff(np.concatenate([[0], positions]))).sum())
    return EvalSummary(
        bars=len(rewards),
        sessions=len(daily),
        total_reward=float(rewards.sum()),
        mean_reward=float(rewards.mean()),
        pnl=float(pnl.sum()),
        contracts_traded=trades,
        sharpe=sharpe,
        cvar_95=empirical_cvar(rewards, 0.95),
        hit_rate=hit,
        max_drawdown=max(0.0, drawdown),
    )


def evaluation_env(data: MarketData, spec: ObservationSpec, costs: CostModel, config: TradingEnvConfig) -> TradingEnv:
    """A sequential, session-episode environment over ``data`` for evaluation."""
    eval_config = config.model_copy(update={"episode": "session"})
    return TradingEnv(data, spec, costs, eval_config, sequential=True)


def network_policy(network: PolicyNetwork) -> Policy:
    """The network as an environment policy (observation → action)."""

    def act(obs: Any) -> Any:
        action = network(obs).action
        return int(action) if network.discrete else np.array([action], dtype=np.float32)

    return act


def evaluate_network(
    network: PolicyNetwork,
    spec: ObservationSpec,
    data: MarketData,
    costs: CostModel,
    config: TradingEnvConfig,
) -> tuple[EvalSummary, PolicyRun]:
    """Run ``network`` over every session of ``data``; return the summary and the per-bar run.

    A window without a session of at least two bars gives an empty run.
    """
    if not data.segments():
        empty = PolicyRun([])
        return summarize_run(empty), empty
    env = evaluation_env(data.select_features(spec.feature_names), spec, costs, config)
    run = run_policy(env, network_policy(network))
    return summarize_run(run), run


def random_policy(spec: ObservationSpec, seed: int) -> Policy:
    """A seeded uniformly random policy (the baseline a trained agent must beat)."""
    rng = np.random.default_rng(seed)

    def act(obs: Any) -> Any:
        if spec.discrete:
            return int(rng.integers(spec.n_actions))
        return rng.uniform(-1.0, 1.0, size=1).astype(np.float32)

    return act


def run_frame(run: PolicyRun) -> pd.DataFrame:
    """The per-bar log of a run as a table (written as ``eval.csv`` beside a registered model)."""
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(run.ts_ns, utc=True),
            "contract": [r.contract for r in run.records],
            "target": [r.target for r in run.records],
            "position": run.positions,
            "trade": [r.trade for r in run.records],
            "pnl": run.pnl,
            "costs": [r.costs for r in run.records],
            "reward": run.rewards,
            "equity": [r.equity for r in run.records],
        },
    )
