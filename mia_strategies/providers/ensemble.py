"""The Bayesian ensemble: a weighted vote of RL policies, weights learned from out-of-sample results.

Each member (SAC, PPO, DDPG, and QR-DQN / PPO-Lagrangian when configured) proposes a target
position. The ensemble

1. votes: ``p_long = sum of the weights of members whose target is long``, likewise ``p_short``;
   the trade probability is the larger one, and the ensemble takes that side (full size) only when
   it reaches ``entry_threshold`` (0.65 by default), else it stays flat;
2. reports the QR-DQN member's return quantiles for the chosen position and the CVaR estimate
   ``-mean(lowest (1 - alpha) share of the quantiles)``; without a QR-DQN member the CVaR is the
   empirical one of the ensemble's own recent rewards;
3. learns: every member's recent out-of-sample reward (``member_reward``: its previous target as a
   fraction of the maximum, times the price change in points) updates the posterior weights
   ``w_i ∝ prior_i * exp(temperature * z_i)`` (see ``PosteriorSettings``).

Everything here is plain numpy and deterministic, so the same object runs in research and in the
engine.
"""

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mia_strategies.providers.config import PosteriorSettings


FloatArray = npt.NDArray[np.float64]


def posterior_weights(prior: FloatArray, rewards: FloatArray, settings: PosteriorSettings) -> FloatArray:
    """Posterior weights from prior weights and a ``(members, n)`` matrix of recent rewards.

    ``log w_i = log prior_i + temperature * sum(r_i) / (s * sqrt(n))``, normalized; ``s`` is the
    pooled standard deviation (ddof 0) of all rewards in the matrix. The prior is returned unchanged
    when fewer than ``min_bars`` columns are given or when every reward is the same.
    """
    prior = np.asarray(prior, dtype=np.float64)
    prior = prior / prior.sum()
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.ndim != 2 or rewards.shape[0] != prior.shape[0]:
        raise ValueError(f"rewards must be (members={prior.shape[0]}, n), was {rewards.shape}")
    n = rewards.shape[1]
    if n < settings.min_bars:
        return prior
    s = float(rewards.std())
    if not math.isfinite(s) or s <= 0.0:
        return prior
    z = rewards.sum(axis=1) / (s * math.sqrt(n))
    logits = np.log(prior) + settings.temperature * z
    logits -= logits.max()
    w = np.exp(logits)
    return w / w.sum()


def weighted_vote(targets: npt.NDArray[np.int64], weights: FloatArray) -> tuple[float, float]:
    """``(p_long, p_short)``: total weight of members whose target is long, and short."""
    t = np.asarray(targets)
    w = np.asarray(weights, dtype=np.float64)
    return float(w[t > 0].sum()), float(w[t < 0].sum())


def cvar_from_quantiles(quantiles: FloatArray, alpha: float) -> float:
    """CVaR (a loss, positive when bad) at level ``alpha`` from equally weighted return quantiles."""
    q = np.sort(np.asarray(quantiles, dtype=np.float64).reshape(-1))
    if q.size == 0:
        return math.nan
    k = max(1, math.ceil((1.0 - alpha) * q.size - 1e-9))
    return float(-q[:k].mean())


def empirical_cvar(rewards: FloatArray, alpha: float) -> float:
    """CVaR (a loss) of observed rewards: minus the mean of the worst ``(1 - alpha)`` share."""
    return cvar_from_quantiles(np.asarray(rewards, dtype=np.float64), alpha)


def member_reward(previous_target: int, price_change: float, max_position: int) -> float:
    """A member's reward for one bar: its previous target as a fraction of the maximum x the move (points)."""
    return previous_target / max_position * price_change


@dataclass(frozen=True)
class EnsembleDecision:
    """What the ensemble decided at one bar, and why."""

    target: int
    direction: int
    trade_probability: float
    p_long: float
    p_short: float
    weights: tuple[float, ...]
    member_targets: tuple[int, ...]
    quantiles: tuple[float, ...]
    cvar: float


class BayesianEnsemble:
    """Weighted vote of member targets with posterior weights from their recent rewards.

    Parameters
    ----------
    members : list[str]
        Member names (algorithms), in the order of ``prior``.
    prior : list[float]
        Prior weights (normalized here).
    max_position : int
        Contracts of a full position; the ensemble trades ``±max_position`` or stays flat.
    entry_threshold : float
        Trade probability needed to take a side.
    posterior : PosteriorSettings
        Window, temperature and minimum history of the posterior update.
    cvar_alpha : float
        Level of the CVaR estimate.
    """

    def __init__(
        self,
        members: list[str],
        prior: list[float],
        max_position: int,
        entry_threshold: float,
        posterior: PosteriorSettings,
        cvar_alpha: float,
    ) -> None:
        if len(members) != len(prior) or not members:
            raise ValueError("members and prior must be non-empty and of equal length")
        self.members = list(members)
        self.prior = np.asarray(prior, dtype=np.float64) / float(np.sum(prior))
        self.max_position = max_position
        self.entry_threshold = entry_threshold
        self.settings = posterior
        self.cvar_alpha = cvar_alpha
        window = posterior.window_bars
        self._history = np.zeros((len(members), window))  # ring of member rewards, column per bar
        self._filled = 0
        self._next = 0
        self._own: deque[float] = deque(maxlen=window)
        self._log_prior = [math.log(p) for p in self.prior.tolist()]
        # running sums over the window, so a bar's update costs O(members), not O(window)
        self._sums = np.zeros(len(members))
        self._total = 0.0
        self._total_sq = 0.0
        self.weights = self.prior.copy()

    def _push(self, column: FloatArray) -> None:
        window = self._history.shape[1]
        if self._filled == window:
            old = self._history[:, self._next]
            self._sums -= old
            self._total -= float(old.sum())
            self._total_sq -= float(old @ old)
        self._history[:, self._next] = column
        self._sums += column
        self._total += float(column.sum())
        self._total_sq += float(column @ column)
        self._next = (self._next + 1) % window
        self._filled = min(self._filled + 1, window)
        if self._next == 0:  # once per window: exact sums again, no drift
            held = self._history[:, : self._filled]
            self._sums = held.sum(axis=1)
            self._total = float(held.sum())
            self._total_sq = float((held * held).sum())

    def seed_history(self, rewards: FloatArray) -> None:
        """Start from a ``(members, n)`` matrix of out-of-sample rewards (walk-forward results)."""
        matrix = np.asarray(rewards, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != len(self.members):
            raise ValueError(f"seed rewards must be (members={len(self.members)}, n), was {matrix.shape}")
        for column in matrix.T[-self._history.shape[1] :]:
            self._push(np.ascontiguousarray(column))
        self._refresh()

    def record(self, member_rewards: FloatArray, ensemble_reward: float) -> None:
        """Add one bar of member rewards (and the ensemble's own) and update the posterior."""
        self._push(np.asarray(member_rewards, dtype=np.float64))
        self._own.append(float(ensemble_reward))
        self._refresh()

    def _refresh(self) -> None:
        """``posterior_weights`` of the held window, from the running sums."""
        n = self._filled
        count = n * len(self.members)
        if n < self.settings.min_bars or count == 0:
            self.weights = self.prior.copy()
            return
        mean = self._total / count
        second = self._total_sq / count
        var = second - mean * mean
        if not math.isfinite(var) or var <= 1e-12 * max(second, 1e-300):
            self.weights = self.prior.copy()
            return
        scale = self.settings.temperature / (math.sqrt(var) * math.sqrt(n))
        logits = [lp + scale * s for lp, s in zip(self._log_prior, self._sums.tolist(), strict=True)]
        top = max(logits)
        raw = [math.exp(x - top) for x in logits]
        total = sum(raw)
        self.weights = np.array([r / total for r in raw])

    def history(self) -> FloatArray:
        """The held member rewards, ``(members, n)``, oldest bar first."""
        if self._filled < self._history.shape[1]:
            return self._history[:, : self._filled]
        return np.roll(self._history, -self._next, axis=1)

    @property
    def history_length(self) -> int:
        """Bars of member rewards held for the posterior."""
        return self._filled

    def decide(self, member_targets: list[int], quantiles: FloatArray | None = None) -> EnsembleDecision:
        """Vote on the members' targets; ``quantiles`` is QR-DQN's ``(n_quantiles, n_actions)`` output."""
        weights = self.weights.tolist()
        p_long = sum(w for w, t in zip(weights, member_targets, strict=True) if t > 0)
        p_short = sum(w for w, t in zip(weights, member_targets, strict=True) if t < 0)
        direction = 1 if p_long > p_short else -1 if p_short > p_long else 0
        probability = max(p_long, p_short)
        enter = direction != 0 and probability >= self.entry_threshold - 1e-12
        target = direction * self.max_position if enter else 0
        chosen: tuple[float, ...] = ()
        if quantiles is not None:
            q = np.asarray(quantiles, dtype=np.float64)
            chosen = tuple(float(x) for x in q[:, target + self.max_position])
            cvar = cvar_from_quantiles(np.asarray(chosen), self.cvar_alpha)
        elif len(self._own) >= self.settings.min_bars:
            cvar = empirical_cvar(np.asarray(self._own), self.cvar_alpha)
        else:
            cvar = math.nan
        return EnsembleDecision(
            target=target,
            direction=direction if enter else 0,
            trade_probability=probability,
            p_long=p_long,
            p_short=p_short,
            weights=tuple(weights),
            member_targets=tuple(int(t) for t in member_targets),
            quantiles=chosen,
            cvar=cvar,
        )
