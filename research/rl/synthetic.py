"""Synthetic markets with a known optimal policy, for tests, benchmarks and sanity checks of training.

The next bar's mid-price move is ``edge * signal + noise * eps`` points, where ``signal`` is the
first feature: the optimal policy is long when the signal is positive and short when it is
negative, and a random policy loses the costs. Bars follow real Globex sessions (no bars in the
daily halt or over the weekend) and the roll calendar, with the deferred contract priced a
calendar spread above the front one, so the environment's session and roll rules are exercised.
"""

import numpy as np

from mia_strategies import sessions
from mia_strategies.config import MarketsConfig
from mia_strategies.instruments import active_contract
from research.env import MarketData


REGIME_LABELS = ("trend", "range", "defensive")
_MINUTE_NS = 60_000_000_000


def session_bar_times(first_day: str, days: int, bar_minutes: int = 1) -> np.ndarray:
    """Bar close times (UTC ns) of ``days`` Globex trading days starting with the one of ``first_day``."""
    import datetime as dt

    day = dt.date.fromisoformat(first_day)
    out: list[np.ndarray] = []
    while len(out) < days:
        if day.weekday() < 5:
            open_ns, close_ns = sessions.session_bounds(day)
            step = bar_minutes * _MINUTE_NS
            out.append(np.arange(open_ns + step, close_ns + 1, step, dtype=np.int64))
        day += dt.timedelta(days=1)
    return np.concatenate(out)


def synthetic_market(
    root: str,
    markets: MarketsConfig,
    *,
    first_day: str = "2025-12-08",
    days: int = 3,
    bar_minutes: int = 5,
    edge: float = 1.0,
    noise: float = 0.5,
    drift: float = 0.0,
    jump_prob: float = 0.0,
    jump_size: float = 0.0,
    n_noise_features: int = 3,
    calendar_spread: float = 55.0,
    start_price: float = 6000.0,
    seed: int = 0,
) -> MarketData:
    """A seeded market whose first feature predicts the next move (see the module docstring).

    ``drift`` adds a constant move per bar and ``jump_prob``/``jump_size`` a crash with that
    probability per bar, exponentially distributed with mean ``jump_size`` points: a market where
    holding long pays on average but has a heavy, continuous left tail (the case a CVaR constraint
    is for).
    """
    rng = np.random.default_rng(seed)
    ts = session_bar_times(first_day, days, bar_minutes)
    n = len(ts)
    signal = rng.normal(size=n)
    jumps = np.where(rng.random(n) < jump_prob, -jump_size * rng.exponential(size=n), 0.0)
    moves = drift + edge * signal + noise * rng.normal(size=n) + jumps
    front = start_price + np.concatenate([[0.0], np.cumsum(moves[:-1])])
    contracts = np.array([active_contract(root, int(t), markets).symbol for t in ts])
    first = contracts[0]
    mid = front + np.where(contracts != first, calendar_spread, 0.0)
    tick = float(markets.root(root).tick_size)
    features = np.column_stack([signal, rng.normal(size=(n, n_noise_features))])
    names = ("signal", *(f"noise_{i}" for i in range(n_noise_features)))
    probs = rng.dirichlet(np.ones(len(REGIME_LABELS)), size=n)
    return MarketData(
        root=root,
        ts_ns=ts,
        contract=contracts,
        close=mid,
        bid=mid - tick / 2,
        ask=mid + tick / 2,
        features=features,
        feature_names=names,
        regime_probs=probs,
        regime_labels=REGIME_LABELS,
        context={},
    )
