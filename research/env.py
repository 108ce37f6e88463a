"""The gymnasium trading environment MIA's RL policies are trained and evaluated in.

One step is one decision bar of one market (ES or MNQ). The observation is the bar's feature vector
(the model's feature set), the regime probabilities and the position state, built by
``mia_strategies.providers.observation.ObservationSpec`` exactly as the signal providers build it in
the engine. The action is a target position: continuous in ``[-1, 1]`` (SAC, DDPG, PPO) or one of
``2 * max_position_size + 1`` discrete positions (QR-DQN, or PPO when configured).

Execution and costs follow the backtest venue:

* a trade at bar ``t`` crosses the spread of the quote in force at the bar's close (buys at the ask,
  sells at the bid) plus ``slippage_ticks`` ticks, and pays the root's commission per contract from
  ``config/markets.yaml`` (ES $2.25, MNQ $0.62);
* the position is marked from mid to mid, times the futures multiplier (ES x50, MNQ x2);
* the initial margin (a fraction of notional) of the position may use at most
  ``max_margin_fraction`` of equity: larger targets are cut to what the margin allows, and an
  account at or below zero ends the episode;
* CME sessions: the position is forced flat ``flat_minutes_before_close`` before every close, a new
  trading day starts flat, and an episode never spans the daily halt or a weekend;
* rolls: every bar trades the contract the roll calendar makes active; a position held across a
  roll is closed in the old contract and reopened in the new one (two spread crossings and two
  commissions) and earns nothing from the calendar spread between them.

The reward is the step's P&L net of costs in the configured unit, passed through the strategy's
adaptive reward (method 5: ``mia_strategies.risk.reward.adaptive_reward``) with the bar's
news sentiment, VIX and ``atr_dynamic``.

No look-ahead: the observation at step ``t`` reads only the features, regime probabilities and time
of bar ``t`` and the position, which depends on earlier decisions only. Prices after ``t`` enter the
reward of step ``t`` and nothing else.
"""

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Any
from typing import SupportsFloat

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from mia_strategies import sessions
from mia_strategies.config import RootSpec
from mia_strategies.providers.observation import ObservationSpec
from mia_strategies.providers.observation import PositionTracker
from mia_strategies.risk.reward import adaptive_reward
from research.rl.config import TradingEnvConfig


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# -- data -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketData:
    """Everything the environment reads for one market, one row per decision bar (bar close time).

    ``close`` is the bar's close (last trade) of ``contract``, the contract the roll calendar makes
    active; ``bid``/``ask`` the quote in force at the bar's close; ``features`` the feature set in
    ``feature_names`` order; ``regime_probs`` the filtered regime probabilities in ``regime_labels``
    order (NaN rows: unknown); ``context`` the adaptive reward's inputs by ``REWARD_INPUTS`` name
    (read from the features ``config/risk.yaml`` names; NaN when absent). ``run_id``, when given,
    splits episodes wherever it changes (a subset of bars, such as one regime's, whose rows are not
    contiguous in time).
    """

    root: str
    ts_ns: IntArray
    contract: npt.NDArray[np.str_]
    close: FloatArray
    bid: FloatArray
    ask: FloatArray
    features: FloatArray
    feature_names: tuple[str, ...]
    regime_probs: FloatArray
    regime_labels: tuple[str, ...]
    context: dict[str, FloatArray] = field(default_factory=dict)
    run_id: IntArray | None = None

    def __post_init__(self) -> None:
        n = len(self.ts_ns)
        for name in ("contract", "close", "bid", "ask"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows for {n} bars")
        if self.features.shape != (n, len(self.feature_names)):
            raise ValueError(f"features must be ({n}, {len(self.feature_names)}), was {self.features.shape}")
        if self.regime_probs.shape != (n, len(self.regime_labels)):
            raise ValueError(f"regime_probs must be ({n}, {len(self.regime_labels)}), was {self.regime_probs.shape}")
        if n > 1 and not np.all(np.diff(self.ts_ns) > 0):
            raise ValueError("bar times must be strictly increasing")
        for name, values in self.context.items():
            if len(values) != n:
                raise ValueError(f"context {name} has {len(values)} rows for {n} bars")
        if self.run_id is not None and len(self.run_id) != n:
            raise ValueError(f"run_id has {len(self.run_id)} rows for {n} bars")

    def __len__(self) -> int:
        return len(self.ts_ns)

    @property
    def mid(self) -> FloatArray:
        """Mid price of each bar's quote."""
        return (self.bid + self.ask) / 2.0

    @property
    def start_ns(self) -> int:
        """Time of the first bar."""
        return int(self.ts_ns[0])

    @property
    def end_ns(self) -> int:
        """Time of the last bar."""
        return int(self.ts_ns[-1])

    def take(self, index: IntArray | slice) -> "MarketData":
        """The rows at ``index`` (a slice or sorted positions)."""
        return replace(
            self,
            ts_ns=self.ts_ns[index],
            contract=self.contract[index],
            close=self.close[index],
            bid=self.bid[index],
            ask=self.ask[index],
            features=self.features[index],
            regime_probs=self.regime_probs[index],
            context={k: v[index] for k, v in self.context.items()},
            run_id=None if self.run_id is None else self.run_id[index],
        )

    def window(self, start_ns: int | None, end_ns: int | None) -> "MarketData":
        """Bars with ``start_ns <= ts < end_ns`` (None: unbounded)."""
        lo = 0 if start_ns is None else int(np.searchsorted(self.ts_ns, start_ns, side="left"))
        hi = len(self) if end_ns is None else int(np.searchsorted(self.ts_ns, end_ns, side="left"))
        return self.take(slice(lo, hi))

    def select_features(self, names: tuple[str, ...]) -> "MarketData":
        """The same bars with only ``names`` as features (in that order); unknown names read as NaN."""
        if tuple(names) == self.feature_names:
            return self
        index = {n: i for i, n in enumerate(self.feature_names)}
        out = np.full((len(self), len(names)), np.nan)
        for j, name in enumerate(names):
            i = index.get(name)
            if i is not None:
                out[:, j] = self.features[:, i]
        return replace(self, features=out, feature_names=tuple(names))

    def trading_days(self) -> npt.NDArray[np.object_]:
        """The Globex trading day of every bar."""
        return np.array([sessions.trading_day(int(t)) for t in self.ts_ns], dtype=object)

    def segments(self, episode: str = "session", episode_bars: int = 390) -> list[tuple[int, int, bool]]:
        """Episodes as ``(start, stop, ends_session)`` row ranges: one per trading day, or chunks of one.

        A segment never spans a session change (or a ``run_id`` change); ``ends_session`` tells
        whether its last bar ends its run (the position is then closed at that bar).
        """
        if len(self) == 0:
            return []
        days = self.trading_days()
        change = days[1:] != days[:-1]
        if self.run_id is not None:
            change |= self.run_id[1:] != self.run_id[:-1]
        cuts = [0, *(np.flatnonzero(change) + 1).tolist(), len(self)]
        out: list[tuple[int, int, bool]] = []
        for a, b in itertools.pairwise(cuts):
            if episode == "session":
                pieces = [(a, b)]
            else:
                pieces = [(s, min(s + episode_bars, b)) for s in range(a, b, episode_bars)]
            for s, e in pieces:
                if e - s >= 2:
                    out.append((s, e, e == b))
        return out


@dataclass(frozen=True)
class CostModel:
    """Per-contract costs of one root: multiplier, tick, commission, slippage and initial margin."""

    multiplier: float
    tick_size: float
    commission: float
    slippage_ticks: float
    margin_init: float

    @classmethod
    def from_spec(cls, spec: RootSpec, slippage_ticks: float) -> "CostModel":
        """Costs of a root from ``config/markets.yaml``."""
        return cls(
            multiplier=float(spec.multiplier),
            tick_size=float(spec.tick_size),
            commission=float(spec.commission_per_contract),
            slippage_ticks=slippage_ticks,
            margin_init=float(spec.margin_init),
        )

    def trade_cost(self, contracts: int, bid: float, ask: float) -> float:
        """USD cost of trading ``contracts`` (either side) against the mid: half spread, slippage, commission."""
        n = abs(contracts)
        if n == 0:
            return 0.0
        per_contract_points = (ask - bid) / 2.0 + self.slippage_ticks * self.tick_size
        return n * (per_contract_points * self.multiplier + self.commission)

    def affordable(self, equity: float, price: float, max_margin_fraction: float) -> int:
        """Most contracts whose initial margin fits ``max_margin_fraction`` of ``equity``."""
        per_contract = price * self.multiplier * self.margin_init
        if equity <= 0 or per_contract <= 0 or not math.isfinite(per_contract):
            return 0
        return max(0, math.floor(max_margin_fraction * equity / per_contract + 1e-12))


#: Keys of ``MarketData.context``: the adaptive reward's inputs.
REWARD_INPUTS = ("news_sentiment", "vix", "atr_dynamic")

RewardFunction = Callable[[float, float, float, float], float]


def method5_reward(base: float, news_sentiment: float, vix: float, atr_dynamic: float) -> float:
    """Method 5, the strategy's adaptive reward (``mia_strategies.risk.reward.adaptive_reward``)."""
    return adaptive_reward(base, news_sentiment=news_sentiment, vix=vix, atr_dynamic=atr_dynamic).reward


def plain_reward(base: float, news_sentiment: float, vix: float, atr_dynamic: float) -> float:
    """The P&L alone (``reward.method: pnl``)."""
    return base


# -- environment ----------------------------------------------------------------------------------


@dataclass
class StepRecord:
    """What happened at one step, for evaluation logs and parity checks."""

    ts_ns: int
    contract: str
    target: int
    position: int
    trade: int
    pnl: float
    costs: float
    reward: float
    equity: float


class TradingEnv(gym.Env[npt.NDArray[np.float32], Any]):
    """Trade one market bar by bar: observation → target position → P&L net of realistic costs.

    Parameters
    ----------
    data : MarketData
        The bars to trade (a training or evaluation window).
    spec : ObservationSpec
        Observation layout and normalization (fitted on the training window) and the action variant.
    costs : CostModel
        The root's multiplier, tick, commission, slippage and margin.
    config : TradingEnvConfig
        Episode layout, margin use, reward unit and method.
    sequential : bool, default False
        Episodes in data order, cycling (evaluation); otherwise drawn at random from the seeded
        generator (training).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - gymnasium's class attribute

    def __init__(
        self,
        data: MarketData,
        spec: ObservationSpec,
        costs: CostModel,
        config: TradingEnvConfig,
        sequential: bool = False,
    ) -> None:
        super().__init__()
        if data.feature_names != spec.feature_names or data.regime_labels != spec.regime_labels:
            raise ValueError("the data's feature names and regime labels must be the observation spec's")
        self.data = data
        self.obs_spec = spec
        self.costs = costs
        self.config = config
        self.sequential = sequential
        self.segments = data.segments(config.episode, config.episode_bars)
        if not self.segments:
            raise ValueError(f"no episode of at least 2 bars in {len(data)} bars of {data.root}")
        self.reward_threshold = config.reward_threshold
        bound = max(spec.clip, 1.0)
        self.observation_space = gym.spaces.Box(-bound, bound, (spec.size,), dtype=np.float32)
        self.action_space: gym.spaces.Space[Any] = (
            gym.spaces.Discrete(spec.n_actions) if spec.discrete else gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
        )
        self._reward_fn: RewardFunction = method5_reward if config.reward.method == "adaptive" else plain_reward
        self._mid = data.mid
        nan = np.full(len(data), np.nan)
        self._news, self._vix, self._atr = (data.context.get(name, nan) for name in REWARD_INPUTS)
        self._tracker = PositionTracker(spec.flat_minutes_before_close)
        self._next_segment = 0
        self._segment = self.segments[0]
        self._i = 0
        self.equity = float(config.starting_balance)
        self.records: list[StepRecord] = []
        self.keep_records = False

    # -- gymnasium API ---------------------------------------------------------------------------

    def reset(
        self,
        *,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        """Start an episode: the next segment (sequential) or a random one; flat, fresh equity."""
        super().reset(seed=seed)
        if seed is not None:
            self._next_segment = 0  # a seeded reset restarts the episode order too
        if options and "segment" in options:
            index = int(options["segment"])
        elif self.sequential:
            index = self._next_segment
            self._next_segment = (self._next_segment + 1) % len(self.segments)
        else:
            index = int(self.np_random.integers(len(self.segments)))
        self._segment = self.segments[index]
        self._i = self._segment[0]
        self._tracker.reset()
        self.equity = float(self.config.starting_balance)
        return self._observation(), {"segment": index, "ts_ns": int(self.data.ts_ns[self._i])}

    def step(
        self,
        action: Any,
    ) -> tuple[npt.NDArray[np.float32], SupportsFloat, bool, bool, dict[str, Any]]:
        """Take the target position at this bar, mark it to the next bar, return the reward."""
        i = self._i
        j = i + 1
        data, costs = self.data, self.costs
        ts = int(data.ts_ns[i])
        previous = self._tracker.held(ts)
        wanted = self.obs_spec.target(action)
        allowed = costs.affordable(self.equity, self._mid[i], self.config.max_margin_fraction)
        target = int(math.copysign(min(abs(wanted), allowed), wanted)) if wanted else 0
        position = self._tracker.apply(ts, target)
        trade = position - previous
        cost = costs.trade_cost(trade, data.bid[i], data.ask[i])
        rolled = data.contract[j] != data.contract[i]
        if rolled:  # closed in the old contract at its last quote, reopened in the new one
            move = 0.0
            cost += costs.trade_cost(position, data.bid[i], data.ask[i])
            cost += costs.trade_cost(position, data.bid[j], data.ask[j])
        else:
            move = position * (self._mid[j] - self._mid[i]) * costs.multiplier
        stop, ends_session = self._segment[1], self._segment[2]
        last = j == stop - 1
        if last and ends_session and position:
            cost += costs.trade_cost(position, data.bid[j], data.ask[j])
        pnl = move - cost
        equity_before = self.equity
        self.equity += pnl
        reward = self._reward_fn(self._unit(pnl, equity_before), self._news[i], self._vix[i], self._atr[i])
        reward /= self.config.reward.scale
        if self.keep_records:
            self.records.append(
                StepRecord(ts, str(data.contract[i]), wanted, position, trade, pnl, cost, reward, self.equity),
            )
        self._i = j
        if last and ends_session:
            self._tracker.apply(int(data.ts_ns[j]), 0)
        terminated = (last and ends_session) or self.equity <= 0
        truncated = last and not terminated
        info = {"ts_ns": ts, "position": position, "trade": trade, "pnl": pnl, "costs": cost, "equity": self.equity}
        return self._observation(), reward, terminated, truncated, info

    # -- helpers ---------------------------------------------------------------------------------

    def _unit(self, pnl: float, equity_before: float) -> float:
        unit = self.config.reward.unit
        if unit == "points":
            return pnl / self.costs.multiplier
        if unit == "equity":
            return pnl / equity_before if equity_before > 0 else pnl
        return pnl

    def _observation(self) -> npt.NDArray[np.float32]:
        i = self._i
        ts = int(self.data.ts_ns[i])
        regime = self.data.regime_probs[i] if len(self.data.regime_labels) else None
        return self.obs_spec.build(self.data.features[i], regime, self._tracker.held(ts), ts)

    @property
    def position(self) -> int:
        """The position taken at the last step (contracts)."""
        return self._tracker.position

    def held_position(self) -> int:
        """The position coming into the current bar (0 at the start of a trading day)."""
        return self._tracker.held(int(self.data.ts_ns[self._i]))

    @property
    def bar_index(self) -> int:
        """Row of ``data`` the next decision is taken at."""
        return self._i


# -- running a policy -----------------------------------------------------------------------------


Policy = Callable[[npt.NDArray[np.float32]], Any]


@dataclass
class PolicyRun:
    """Every step of a deterministic policy over all episodes of an environment, in data order."""

    records: list[StepRecord]

    @property
    def rewards(self) -> FloatArray:
        """Reward of every step."""
        return np.array([r.reward for r in self.records], dtype=np.float64)

    @property
    def pnl(self) -> FloatArray:
        """Net USD P&L of every step."""
        return np.array([r.pnl for r in self.records], dtype=np.float64)

    @property
    def positions(self) -> IntArray:
        """Position taken at every step."""
        return np.array([r.position for r in self.records], dtype=np.int64)

    @property
    def ts_ns(self) -> IntArray:
        """Bar time of every step."""
        return np.array([r.ts_ns for r in self.records], dtype=np.int64)


def run_policy(env: TradingEnv, policy: Policy) -> PolicyRun:
    """Run ``policy`` (observation → action) once over every episode of ``env`` in data order."""
    env.keep_records = True
    env.records = []
    try:
        for index in range(len(env.segments)):
            obs, _ = env.reset(options={"segment": index})
            done = False
            while not done:
                obs, _, terminated, truncated, _ = env.step(policy(obs))
                done = terminated or truncated
        return PolicyRun(list(env.records))
    finally:
        env.keep_records = False
        env.records = []
