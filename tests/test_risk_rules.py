"""The pure risk rules: sizing, exit geometry, trailing, CVaR, blocks, features by name, ledger, reward."""

import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Money
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.risk.sizing import FixedRiskSizer

from catalog.types import FeatureVector
from catalog.types import RegimeState
from mia_strategies.config import load_markets
from mia_strategies.instruments import build_futures_contract
from mia_strategies.instruments import parse_contract_symbol
from mia_strategies.risk.config import BlockSettings
from mia_strategies.risk.config import ExitSettings
from mia_strategies.risk.config import FeatureNameSettings
from mia_strategies.risk.config import KillSwitchSettings
from mia_strategies.risk.config import SizingSettings
from mia_strategies.risk.cvar import cvar_loss
from mia_strategies.risk.exits import minimum_stop_distance
from mia_strategies.risk.exits import payoff_ratio
from mia_strategies.risk.exits import plan_exits
from mia_strategies.risk.exits import split_quantity
from mia_strategies.risk.exits import stop_clears_spread
from mia_strategies.risk.exits import trail_stop
from mia_strategies.risk.limits import Breach
from mia_strategies.risk.limits import KillSwitches
from mia_strategies.risk.limits import OrderRate
from mia_strategies.risk.limits import RiskLedger
from mia_strategies.risk.limits import RiskStateError
from mia_strategies.risk.limits import load_ledger
from mia_strategies.risk.limits import save_ledger
from mia_strategies.risk.market import FeatureBook
from mia_strategies.risk.market import RegimeView
from mia_strategies.risk.market import blocks_side
from mia_strategies.risk.market import effective_regime
from mia_strategies.risk.market import market_blocks
from mia_strategies.risk.market import option_levels
from mia_strategies.risk.reward import adaptive_reward
from mia_strategies.risk.sizing import contract_room
from mia_strategies.risk.sizing import kelly_fraction
from mia_strategies.risk.sizing import leverage_contracts
from mia_strategies.risk.sizing import margin_contracts
from mia_strategies.risk.sizing import orderflow_scale
from mia_strategies.risk.sizing import size_entry
from mia_strategies.risk.sizing import volatility_scale


ES = InstrumentId.from_str("ESZ25.GLBX")
TICK = 0.25
probabilities = st.floats(0.01, 0.99)
prices = st.integers(4_000 * 4, 30_000 * 4).map(lambda t: t * TICK)


# -- sizing ---------------------------------------------------------------------------------------------


def test_kelly_is_zero_without_an_edge_and_grows_with_it():
    assert kelly_fraction(0.5, 1.0) == 0.0
    assert kelly_fraction(0.3, 2.0) == 0.0
    assert kelly_fraction(0.6, 2.0) == pytest.approx(0.6 - 0.4 / 2)
    for bad in (float("nan"), 0.0, 1.0, 1.5):
        assert kelly_fraction(bad, 2.0) == 0.0
    assert kelly_fraction(0.7, 0.0) == 0.0


@settings(max_examples=200, deadline=None)
@given(
    p=probabilities,
    payoff=st.floats(0.2, 6.0),
    equity=st.floats(1_000, 5_000_000),
    stop=st.floats(0.25, 80.0),
    multiplier=st.sampled_from([2.0, 5.0, 20.0, 50.0]),
    cap=st.integers(0, 50),
    atr_dynamic=st.one_of(st.none(), st.just(float("nan")), st.floats(-3.0, 8.0)),
    imbalance=st.one_of(st.none(), st.just(float("nan")), st.floats(-1.0, 1.0)),
)
def test_entry_size_is_whole_within_its_cap_and_its_risk_budget(
    p, payoff, equity, stop, multiplier, cap, atr_dynamic, imbalance
):
    settings_ = SizingSettings()
    decision = size_entry(
        probability=p,
        payoff=payoff,
        equity=equity,
        stop_distance=stop,
        multiplier=multiplier,
        cap=cap,
        settings=settings_,
        atr_dynamic=atr_dynamic,
        orderflow_imbalance=imbalance,
    )
    assert isinstance(decision.contracts, int) and 0 <= decision.contracts <= cap
    # the loss at the stop never exceeds the budget (Kelly fraction, capped at max_risk_fraction)
    assert decision.contracts * stop * multiplier <= decision.risk_fraction * equity + 1e-6
    assert decision.risk_fraction <= settings_.max_risk_fraction
    assert 0 <= decision.volatility_scale <= 1 and 0 <= decision.orderflow_scale <= 1
    if kelly_fraction(p, payoff) == 0:
        assert decision.contracts == 0


@settings(max_examples=100, deadline=None)
@given(p1=probabilities, p2=probabilities, equity=st.floats(10_000, 1_000_000), stop=st.floats(0.5, 20.0))
def test_size_never_shrinks_as_the_probability_rises(p1, p2, equity, stop):
    low, high = sorted((p1, p2))
    kw = {"payoff": 3.0, "equity": equity, "stop_distance": stop, "multiplier": 2.0, "cap": 1000}
    a = size_entry(probability=low, settings=SizingSettings(max_risk_fraction=0.25), **kw)
    b = size_entry(probability=high, settings=SizingSettings(max_risk_fraction=0.25), **kw)
    assert a.contracts <= b.contracts


def test_sizing_respects_the_futures_multiplier_which_fixed_risk_sizer_cannot():
    """MIA sizes futures itself: nautilus 1.221's FixedRiskSizer ignores the multiplier (a point of ES
    counts as $1, #4696) and cannot even size a FuturesContract (its max_quantity is always None)."""
    markets = load_markets()
    es = build_futures_contract(parse_contract_symbol("ESZ25", markets), markets)
    settings_ = SizingSettings(kelly_fraction=1.0, max_risk_fraction=0.01)
    # 1% of 100k at a 4-point stop: $1000 / (4 x $50) = 5 ES contracts
    ours = size_entry(
        probability=0.9,
        payoff=3.0,
        equity=100_000,
        stop_distance=4.0,
        multiplier=es.multiplier.as_double(),
        cap=100,
        settings=settings_,
    )
    assert ours.contracts == 5
    with pytest.raises(TypeError):
        FixedRiskSizer(es).calculate(
            entry=Price.from_str("6830.00"),
            stop_loss=Price.from_str("6826.00"),
            equity=Money(100_000, es.quote_currency),
            risk=Decimal("0.01"),
        )


def test_scales_shrink_size_beyond_their_thresholds_and_treat_nan_conservatively():
    assert volatility_scale(None, 1.5, 0.5) == 1.0  # the feature set does not carry it
    assert volatility_scale(float("nan"), 1.5, 0.5) == 0.5  # carried but absent now
    assert volatility_scale(1.0, 1.5, 0.5) == 1.0
    assert volatility_scale(3.0, 1.5, 0.5) == pytest.approx(0.5)
    assert orderflow_scale(0.5, 0.9, 0.5) == 1.0
    assert orderflow_scale(-0.95, 0.9, 0.5) == pytest.approx(0.5)
    assert orderflow_scale(1.0, 0.9, 0.5) == 0.0
    assert orderflow_scale(float("nan"), 0.9, 0.25) == 0.25


def test_caps_leverage_margin_and_limits():
    assert leverage_contracts(100_000, 6830.0, 50.0, 5.0) == 1  # 341,500 per ES contract
    assert leverage_contracts(100_000, 6830.0, 50.0, 1.0) == 0
    assert leverage_contracts(100_000, 25_400.0, 2.0, 1.0) == 1
    assert margin_contracts(100_000, 6830.0, 50.0, 0.06, 0.8) == 3
    # no margin data: charged the full notional, never less margin than the real one
    assert margin_contracts(100_000, 6830.0, 50.0, 0.0, 0.8) == 0
    assert margin_contracts(1_000_000, 6830.0, 50.0, float("nan"), 1.0) == 2
    assert contract_room(2, 12, 1, 5) == 1
    assert contract_room(2, 12, 0, 12) == 0
    assert contract_room(2, 12, 3, 3) == 0


# -- exits ----------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    side=st.sampled_from([1, -1]),
    entry=prices,
    stop=st.floats(0.1, 60.0),
    qty=st.integers(1, 40),
    levels=st.lists(st.tuples(st.sampled_from(["call_wall", "put_wall", "key_strikes_1"]), prices), max_size=4),
)
def test_exit_plan_stop_loses_targets_win_quantities_add_up(side, entry, stop, qty, levels):
    settings_ = ExitSettings()
    plan = plan_exits(
        side=side, entry_price=entry, stop_distance=stop, quantity=qty, tick=TICK, settings=settings_, levels=levels
    )
    assert plan.quantity == qty
    assert side * (entry - plan.stop_price) >= max(stop, TICK) - 1e-9  # never tighter than asked
    assert abs(plan.stop_price / TICK - round(plan.stop_price / TICK)) < 1e-9
    prices_ = [leg.price for leg in plan.legs]
    assert all(side * (px - entry) > 0 for px in prices_)  # every target on the profit side
    assert prices_ == sorted(prices_, reverse=side < 0)  # nearest target first
    assert len(set(prices_)) == len(prices_)
    for leg in plan.legs:
        assert leg.quantity >= 1
        assert abs(leg.price / TICK - round(leg.price / TICK)) < 1e-9
        if leg.source == "r":
            assert leg.r_multiple <= settings_.targets_r[-1] + 1e-9
        else:
            assert leg.r_multiple >= settings_.min_level_r - 1e-9  # a level target still pays the risk


def test_option_level_replaces_a_farther_target_one_tick_before_it():
    settings_ = ExitSettings()
    plan = plan_exits(
        side=1,
        entry_price=6830.0,
        stop_distance=4.0,
        quantity=2,
        tick=TICK,
        settings=settings_,
        levels=[("call_wall", 6840.0), ("put_wall", 6800.0), ("key_strikes_1", 6831.0)],
    )
    # 1:2 is 6838; the call wall at 6840 is farther so 1:2 stays; 1:4 (6846) is beyond the wall: 6839.75
    assert [(leg.price, leg.source) for leg in plan.legs] == [(6838.0, "r"), (6839.75, "call_wall")]
    short = plan_exits(
        side=-1, entry_price=6830.0, stop_distance=4.0, quantity=1, tick=TICK, settings=settings_,
        levels=[("put_wall", 6825.0)],
    )  # fmt: skip
    assert [(leg.price, leg.source) for leg in short.legs] == [(6825.25, "put_wall")]


def test_split_quantity_fills_nearest_targets_first():
    assert split_quantity(1, [0.5, 0.5]) == [1, 0]
    assert split_quantity(2, [0.5, 0.5]) == [1, 1]
    assert split_quantity(5, [0.5, 0.5]) == [2, 3]
    assert split_quantity(7, [0.2, 0.3, 0.5]) == [1, 2, 4]
    assert payoff_ratio(ExitSettings()) == pytest.approx(3.0)


def test_stop_must_clear_the_spread():
    assert stop_clears_spread(2.0, 100.0, 100.25, TICK, 4)
    assert not stop_clears_spread(1.0, 100.0, 100.25, TICK, 4)
    assert not stop_clears_spread(1.0, 100.0, 101.0, TICK, 1)


@settings(max_examples=300, deadline=None)
@given(
    side=st.sampled_from([1, -1]),
    market=prices,
    offset=st.integers(1, 200),
    trail=st.floats(0.25, 30.0),
    step=st.floats(0.0, 5.0),
)
def test_trailing_stop_only_tightens_and_never_reaches_the_market(side, market, offset, trail, step):
    current = market - side * offset * TICK
    new = trail_stop(side, current, market, trail, TICK, step)
    if new is None:
        return
    assert side * (new - current) >= max(step, TICK) - 1e-9  # toward the market by at least the step
    assert side * (market - new) >= TICK - 1e-9  # still at least a tick away from the market
    assert abs(new / TICK - round(new / TICK)) < 1e-9


# -- CVaR -----------------------------------------------------------------------------------------------


def test_cvar_is_the_mean_of_the_worst_tail():
    returns = [0.01] * 95 + [-0.05, -0.1, -0.2, -0.3, -0.4]
    assert cvar_loss(returns, 0.95) == pytest.approx(0.21)
    assert cvar_loss([0.01, 0.02], 0.95) == 0.0  # the tail made money: no loss
    assert cvar_loss([], 0.95) == 0.0
    assert cvar_loss([-0.2, float("nan")], 0.95) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        cvar_loss([0.1], 1.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=1, max_size=200), st.floats(0.5, 0.99))
def test_cvar_bounds(returns, alpha):
    loss = cvar_loss(returns, alpha)
    assert 0 <= loss <= max(0.0, -min(returns)) + 1e-12


# -- blocks, features, regimes -------------------------------------------------------------------------


def test_market_blocks_read_missing_anomalies_as_blocks_and_missing_news_as_none():
    s = BlockSettings()
    assert market_blocks(spoofing_score=None, volume_anomaly=None, news_sentiment=None, settings=s) == []
    assert market_blocks(spoofing_score=0.9, volume_anomaly=1.0, news_sentiment=0.0, settings=s) == ["anomaly:spoofing"]
    assert market_blocks(spoofing_score=0.1, volume_anomaly=4.0, news_sentiment=-0.7, settings=s) == [
        "anomaly:volume",
        "news:bearish",
    ]
    nan = float("nan")
    assert market_blocks(spoofing_score=nan, volume_anomaly=None, news_sentiment=nan, settings=s) == [
        "anomaly:spoofing_missing",
    ]
    ignore = BlockSettings(anomaly_missing="ignore")
    assert market_blocks(spoofing_score=nan, volume_anomaly=nan, news_sentiment=None, settings=ignore) == []
    assert blocks_side(["news:bearish"], 1) and not blocks_side(["news:bearish"], -1)
    assert blocks_side(["anomaly:volume"], -1)


def _vector(names_values: dict[str, float], ts: int, feature_set: str = "ES.test") -> FeatureVector:
    return FeatureVector(
        instrument_id=ES,
        feature_set=feature_set,
        values=np.array(list(names_values.values()), dtype=np.float64),
        ts_event=ts,
        ts_init=ts,
    )


def test_feature_book_reads_by_name_with_none_for_uncarried_and_nan_for_stale():
    values = {"atr_14": 2.5, "spoofing_score": float("nan"), "call_wall": 6850.0}
    book = FeatureBook({"ES.test": list(values)}, stale_after_ns=300 * 10**9)
    assert book.update(_vector(values, 10**12))
    assert book.get(ES.value, "atr_14", 10**12) == 2.5
    assert math.isnan(book.get(ES.value, "spoofing_score", 10**12))
    assert book.get(ES.value, "orderflow_imbalance", 10**12) is None  # not in any feature set
    assert math.isnan(book.get(ES.value, "atr_14", 10**12 + 301 * 10**9))  # stale
    snapshot = book.snapshot(ES.value, 10**12)
    assert snapshot["atr_14"] == 2.5 and math.isnan(snapshot["spoofing_score"])
    zero = FeatureBook({"z": ["x"]}, stale_after_ns=10**12)
    zero.update(_vector({"x": 0.0}, 10**12, feature_set="z"))
    assert zero.snapshot(ES.value, 10**12) == {"x": 0.0}  # a zero is a value, not a missing one
    assert not book.update(_vector({"x": 1.0}, 10**12, feature_set="NQ.unknown"))
    assert book.unknown_sets == {"NQ.unknown"}


def test_option_levels_map_chain_units_onto_the_futures_price():
    names = FeatureNameSettings()
    values = {
        "call_wall": 6800.0,
        "call_wall_distance": math.log(6850.0 / 6830.0),
        "put_wall": 6700.0,
        "put_wall_distance": float("nan"),
        "key_strikes_1": 6750.0,
    }
    book = FeatureBook({"ES.test": list(values)}, stale_after_ns=10**12)
    book.update(_vector(values, 10**12))
    levels = dict(option_levels(book, ES.value, 10**12, names, close=6830.0))
    assert levels["call_wall"] == pytest.approx(6850.0)
    assert "put_wall" not in levels  # its mapping is missing now
    assert levels["key_strikes_1"] == pytest.approx(6750.0 * 6850.0 / 6800.0)
    plain = FeatureBook({"x": ["call_wall"]}, stale_after_ns=10**12)
    plain.update(_vector({"call_wall": 6850.0}, 10**12, feature_set="x"))
    assert option_levels(plain, ES.value, 10**12, names, close=6830.0) == [("call_wall", 6850.0)]


def test_regime_routes_to_defensive_when_unknown_stale_or_unsure():
    state = RegimeState(
        instrument_id=ES,
        regime="trend",
        probabilities=np.array([0.7, 0.2, 0.1]),
        confidence=0.7,
        ts_event=1_000,
        ts_init=1_000,
    )
    view = RegimeView.from_state(state)
    assert view.probabilities == {"trend": 0.7, "range": 0.2, "defensive": 0.1}
    assert effective_regime(view, 1_000, 10, 0.5) == "trend"
    assert effective_regime(view, 1_000, 10, 0.8) == "defensive"
    assert effective_regime(view, 2_000, 10, 0.5) == "defensive"
    assert effective_regime(None, 1_000, 10, 0.0) == "defensive"


# -- kill switches and the ledger ----------------------------------------------------------------------


def test_kill_switches_name_each_breach():
    kill = KillSwitches(KillSwitchSettings(max_daily_loss=1000, max_drawdown=0.1, max_contracts={"ES": 2}))
    assert kill.check_equity(99_500, 100_000, 100_000) == []
    assert [b.switch for b in kill.check_equity(99_000, 100_000, 100_000)] == ["max_daily_loss"]
    assert [b.switch for b in kill.check_equity(95_000, 99_000, 110_000)] == ["max_daily_loss", "max_drawdown"]
    assert kill.check_contracts({"ES": 2, "MNQ": 3}) == []
    assert [b.switch for b in kill.check_contracts({"ES": -3})] == ["max_contracts"]
    assert kill.check_order_rate(61) and not kill.check_order_rate(60)
    rate = OrderRate()
    assert [rate.add(t * 10**9) for t in (0, 30, 59, 60, 121)] == [1, 2, 3, 3, 1]


def test_ledger_survives_a_restart_the_same_day_and_lifts_halts_the_next(tmp_path):
    import datetime as dt

    path = tmp_path / "state" / "risk.json"
    ledger = RiskLedger()
    ledger.roll_day(dt.date(2025, 12, 10), 100_000.0)
    ledger.halt(Breach("max_daily_loss", "loss 5000"), 1, sticky=False)
    ledger.halt(Breach("max_drawdown", "dd 0.2"), 2, sticky=True)
    assert ledger.halt(Breach("max_daily_loss", "again"), 3, sticky=False) is None
    save_ledger(path, ledger)
    restored = load_ledger(path)
    assert restored == ledger
    lifted = restored.roll_day(dt.date(2025, 12, 11), 95_000.0)
    assert [h.switch for h in lifted] == ["max_daily_loss"]
    assert [h.switch for h in restored.halts] == ["max_drawdown"]  # sticky until `mia risk reset`
    assert restored.day_start_equity == 95_000.0 and restored.peak_equity == 100_000.0
    assert load_ledger(tmp_path / "none.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(RiskStateError, match="unreadable"):
        load_ledger(tmp_path / "bad.json")


# -- method 5: the adaptive reward ---------------------------------------------------------------------


def test_adaptive_reward_factors():
    assert adaptive_reward(1.0).reward == 1.0
    assert adaptive_reward(1.0, news_sentiment=0.3).reward == pytest.approx(1.2)
    assert adaptive_reward(-1.0, news_sentiment=0.3).reward == pytest.approx(-1.0)  # news never worsens a loss
    assert adaptive_reward(1.0, vix=30.0).reward == pytest.approx(0.9)
    assert adaptive_reward(1.0, news_sentiment=0.3, vix=30.0).reward == pytest.approx(1.08)
    assert adaptive_reward(1.0, atr_dynamic=1.0).reward == pytest.approx(0.5)
    assert adaptive_reward(1.0, atr_dynamic=-2.0).reward == pytest.approx(1.0)  # quiet markets keep their scale
    nan = float("nan")
    assert adaptive_reward(2.0, news_sentiment=nan, vix=nan, atr_dynamic=nan).reward == 2.0
    with pytest.raises(ValueError):
        adaptive_reward(nan)


@settings(max_examples=200, deadline=None)
@given(
    base=st.floats(-10, 10),
    news=st.one_of(st.none(), st.floats(-1, 1)),
    vix=st.one_of(st.none(), st.floats(5, 80)),
    atr_dynamic=st.one_of(st.none(), st.floats(-5, 50)),
)
def test_adaptive_reward_keeps_the_sign_and_stays_within_its_factors(base, news, vix, atr_dynamic):
    out = adaptive_reward(base, news_sentiment=news, vix=vix, atr_dynamic=atr_dynamic)
    assert out.reward == pytest.approx(base * out.news_multiplier * out.vix_multiplier / out.volatility_divisor)
    assert (out.reward > 0) == (base > 0) and (out.reward < 0) == (base < 0)
    assert abs(out.reward) <= abs(base) * 1.2 + 1e-12
    assert 1.0 <= out.volatility_divisor <= 5.0


def test_money_quantities_stay_whole():
    # whole contracts are what the venue takes: a fractional size would be rejected by the instrument
    markets = load_markets()
    es = build_futures_contract(parse_contract_symbol("ESZ25", markets), markets)
    assert es.make_qty(3) == Quantity.from_int(3)


@given(
    bid_ticks=st.integers(1, 400_000),
    spread_ticks=st.integers(0, 40),
    min_ticks=st.integers(1, 50),
)
def test_the_minimum_stop_distance_is_the_nearest_grid_stop_that_clears_the_spread(bid_ticks, spread_ticks, min_ticks):
    bid, ask = bid_ticks * TICK, (bid_ticks + spread_ticks) * TICK
    distance = minimum_stop_distance(bid, ask, TICK, min_ticks)
    assert stop_clears_spread(distance, bid, ask, TICK, min_ticks)
    assert not stop_clears_spread(distance - TICK, bid, ask, TICK, min_ticks)
    assert distance / TICK == round(distance / TICK)
