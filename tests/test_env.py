"""The trading environment: costs by hand, sessions, rolls, margin, reward method 5, no look-ahead."""

import dataclasses

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from mia_strategies import sessions
from mia_strategies.providers.observation import ObservationSpec
from mia_strategies.providers.observation import target_from_action
from mia_strategies.risk.reward import adaptive_reward
from research.env import CostModel
from research.env import MarketData
from research.env import TradingEnv
from research.env import run_policy
from research.rl.config import RewardSettings
from research.rl.config import TradingEnvConfig
from research.rl.synthetic import synthetic_market


MIN = 60_000_000_000
PNL_POINTS = TradingEnvConfig(reward=RewardSettings(method="pnl", unit="usd"))


@pytest.fixture(scope="module")
def es(markets) -> MarketData:
    return synthetic_market("ES", markets, days=2, bar_minutes=15, seed=3)


def _spec(data: MarketData, discrete: bool = False, max_position: int = 1, flat: int = 5) -> ObservationSpec:
    return ObservationSpec.fit(
        data.features,
        data.feature_names,
        data.regime_labels,
        max_position=max_position,
        discrete=discrete,
        flat_minutes_before_close=flat,
    )


def _env(data, markets, config=PNL_POINTS, **spec_kwargs) -> TradingEnv:
    costs = CostModel.from_spec(markets.root(data.root), config.slippage_ticks)
    return TradingEnv(data, _spec(data, **spec_kwargs), costs, config, sequential=True)


def test_environment_passes_the_gymnasium_checker(es, markets):
    check_env(_env(es, markets), skip_render_check=True)
    check_env(_env(es, markets, discrete=True), skip_render_check=True)


def test_one_long_step_pays_spread_slippage_and_commission_times_the_multiplier(es, markets):
    env = _env(es, markets)
    env.reset(options={"segment": 0})
    _, reward, _, _, info = env.step(np.array([1.0], dtype=np.float32))
    i = 0
    half_spread = (es.ask[i] - es.bid[i]) / 2
    expected = (es.mid[i + 1] - es.mid[i]) * 50 - (half_spread + 0.1 * 0.25) * 50 - 2.25
    assert info["position"] == 1 and info["trade"] == 1
    assert info["pnl"] == pytest.approx(expected)
    assert reward == pytest.approx(expected)  # pnl method, USD
    # holding costs nothing; flattening pays the exit
    _, _, _, _, held = env.step(np.array([1.0], dtype=np.float32))
    assert held["pnl"] == pytest.approx((es.mid[2] - es.mid[1]) * 50)
    _, _, _, _, flat = env.step(np.array([0.0], dtype=np.float32))
    assert flat["pnl"] == pytest.approx(-((es.ask[2] - es.bid[2]) / 2 + 0.025) * 50 - 2.25)


def test_mnq_uses_its_own_multiplier_and_commission(markets):
    data = synthetic_market("MNQ", markets, days=1, bar_minutes=30, seed=4)
    env = _env(data, markets)
    env.reset(options={"segment": 0})
    _, _, _, _, info = env.step(np.array([-1.0], dtype=np.float32))
    expected = -(data.mid[1] - data.mid[0]) * 2 - ((data.ask[0] - data.bid[0]) / 2 + 0.025) * 2 - 0.62
    assert info["pnl"] == pytest.approx(expected)


def test_reward_is_the_strategy_adaptive_reward_of_the_points_pnl(markets):
    base = synthetic_market("ES", markets, days=1, bar_minutes=30, seed=5)
    n = len(base)
    context = {"news_sentiment": np.full(n, 0.4), "vix": np.full(n, 31.0), "atr_dynamic": np.full(n, 1.5)}
    data = dataclasses.replace(base, context=context)
    env = _env(data, markets, config=TradingEnvConfig())  # adaptive reward, points
    env.reset(options={"segment": 0})
    _, reward, _, _, info = env.step(np.array([1.0], dtype=np.float32))
    expected = adaptive_reward(info["pnl"] / 50, news_sentiment=0.4, vix=31.0, atr_dynamic=1.5).reward
    assert reward == pytest.approx(expected)
    assert reward != pytest.approx(info["pnl"] / 50)


def test_positions_are_flat_near_the_close_and_every_day_starts_flat(es, markets):
    env = _env(es, markets, flat=60)
    run = run_policy(env, lambda obs: np.array([1.0], dtype=np.float32))
    for record in run.records:
        close = sessions.next_close_ns(record.ts_ns)
        if close - record.ts_ns <= 60 * MIN:
            assert record.position == 0
        else:
            assert record.position == 1
    days = [sessions.trading_day(r.ts_ns) for r in run.records]
    firsts = [r for k, r in enumerate(run.records) if k == 0 or days[k] != days[k - 1]]
    assert len(firsts) == 2 and all(r.trade == 1 for r in firsts)  # entered from flat each day
    assert all(start < stop and ends for start, stop, ends in env.segments)
    for start, stop, _ in env.segments:
        assert len({sessions.trading_day(int(t)) for t in es.ts_ns[start:stop]}) == 1


def test_a_position_held_through_the_roll_pays_two_trades_and_no_calendar_spread(markets):
    data = synthetic_market("ES", markets, first_day="2025-12-10", days=2, bar_minutes=15, seed=6, calendar_spread=55.0)
    assert len(set(data.contract)) == 2
    env = _env(data, markets, flat=0)
    run = run_policy(env, lambda obs: np.array([1.0], dtype=np.float32))
    k = next(i for i in range(len(data) - 1) if data.contract[i + 1] != data.contract[i])
    record = next(r for r in run.records if r.ts_ns == data.ts_ns[k])
    costs = CostModel.from_spec(markets.root("ES"), 0.1)
    expected = -costs.trade_cost(1, data.bid[k], data.ask[k]) - costs.trade_cost(1, data.bid[k + 1], data.ask[k + 1])
    assert record.position == 1 and record.pnl == pytest.approx(expected)
    assert abs(record.pnl) < 55 * 50 / 10  # the 55-point calendar spread is not P&L


def test_margin_cuts_the_target_to_what_the_account_can_carry(es, markets):
    config = PNL_POINTS.model_copy(update={"starting_balance": 40_000, "max_margin_fraction": 1.0})
    env = _env(es, markets, config=config, max_position=5)
    env.reset(options={"segment": 0})
    _, _, _, _, info = env.step(np.array([1.0], dtype=np.float32))
    per_contract = es.mid[0] * 50 * 0.06
    assert info["position"] == int(40_000 // per_contract) < 5


def test_discrete_actions_map_short_flat_long(es, markets):
    env = _env(es, markets, discrete=True, max_position=2)
    assert env.action_space.n == 5
    assert [target_from_action(a, True, 2) for a in range(5)] == [-2, -1, 0, 1, 2]
    assert [target_from_action(a, False, 2) for a in (-1.0, -0.3, 0.0, 0.26, 0.75, 2.0)] == [-2, -1, 0, 1, 2, 2]
    env.reset(options={"segment": 0})
    _, _, _, _, info = env.step(0)
    assert info["position"] == -2


def test_episodes_of_bars_never_span_a_session(es, markets):
    config = PNL_POINTS.model_copy(update={"episode": "bars", "episode_bars": 10})
    env = _env(es, markets, config=config)
    assert all(stop - start <= 10 for start, stop, _ in env.segments)
    total = sum(stop - start for start, stop, _ in env.segments)
    assert total == len(es)


def _observations(data: MarketData, markets, actions: np.ndarray, upto: int) -> list[np.ndarray]:
    """Observations of the first ``upto`` steps of segment 0 under a fixed action sequence."""
    costs = CostModel.from_spec(markets.root(data.root), 0.1)
    env = TradingEnv(data, SPEC_CACHE[data.root], costs, PNL_POINTS, sequential=True)
    obs, _ = env.reset(options={"segment": 0})
    out = [obs]
    for t in range(upto):
        obs, _, terminated, truncated, _ = env.step(np.array([actions[t]], dtype=np.float32))
        out.append(obs)
        if terminated or truncated:
            break
    return out


SPEC_CACHE: dict[str, ObservationSpec] = {}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(t=st.integers(min_value=1, max_value=60), seed=st.integers(min_value=0, max_value=10_000))
def test_observation_at_t_does_not_change_when_data_after_t_changes(markets, t, seed):
    data = synthetic_market("ES", markets, days=1, bar_minutes=15, seed=9)
    SPEC_CACHE.setdefault("ES", _spec(data))
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, size=len(data))
    before = _observations(data, markets, actions, t)
    # scramble everything stamped after bar t: features, regimes, prices, contracts
    after = slice(t + 1, len(data))
    n = len(data) - (t + 1)
    features = data.features.copy()
    features[after] = rng.normal(size=(n, features.shape[1])) * 100
    regimes = data.regime_probs.copy()
    regimes[after] = rng.dirichlet(np.ones(3), size=n)
    shift = rng.normal(size=n) * 50
    changed = dataclasses.replace(
        data,
        features=features,
        regime_probs=regimes,
        close=np.concatenate([data.close[: t + 1], data.close[after] + shift]),
        bid=np.concatenate([data.bid[: t + 1], data.bid[after] + shift]),
        ask=np.concatenate([data.ask[: t + 1], data.ask[after] + shift]),
    )
    again = _observations(changed, markets, actions, t)
    assert len(before) == len(again)
    for a, b in zip(before, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_market_data_refuses_misaligned_arrays(es):
    with pytest.raises(ValueError, match="features must be"):
        dataclasses.replace(es, features=es.features[:, :2])
    with pytest.raises(ValueError, match="strictly increasing"):
        dataclasses.replace(es, ts_ns=es.ts_ns[::-1].copy())
