"""The MIA strategy end to end: ES and MNQ at once on the demo week (rolls included), routing by
regime, brackets held at the venue, partial targets, trailing stops, snapshots and risk events in the
run folder; and its reactions to features (option levels, bearish news, anomalies) on stress paths."""

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import DataType
from nautilus_trader.model.enums import OrderType
from test_mia_strategy_properties import MARKETS
from test_mia_strategy_properties import mia_run
from test_mia_strategy_properties import new_monitor

from catalog.types import FeatureVector
from mia_strategies.actors.risk import RiskActor
from mia_strategies.backtest import build_run_config
from mia_strategies.backtest import plan_backtest
from mia_strategies.config import BacktestConfig
from mia_strategies.config import FillModelSettings
from mia_strategies.config import VenueSettings
from mia_strategies.risk.config import ExitSettings
from mia_strategies.risk.config import KillSwitchSettings
from mia_strategies.risk.config import ModeSettings
from mia_strategies.risk.config import RiskConfig
from mia_strategies.risk.config import RouterConfig
from mia_strategies.risk.config import load_risk
from mia_strategies.risk.config import load_router
from mia_strategies.risk.journal import RISK_EVENTS
from mia_strategies.risk.journal import RISK_STATES
from mia_strategies.risk.journal import TRADE_SNAPSHOTS
from mia_strategies.risk.journal import read_journal
from mia_strategies.risk.journal import risk_event_summary
from mia_strategies.risk.journal import risk_event_table
from mia_strategies.risk.stress import Segment
from mia_strategies.risk.stress import StressPath
from mia_strategies.risk.stress import build_ticks
from mia_strategies.risk.wiring import MIA_STRATEGY_PATHS
from mia_strategies.risk.wiring import mia_actor_configs
from mia_strategies.risk.wiring import mia_strategy_extra
from mia_strategies.risk.wiring import run_mia_node
from mia_strategies.risk.wiring import with_actors


CONFIG = REPO / "config"
SNAPSHOT_KEYS = {"kind", "trade_id", "instrument_id", "root", "ts", "side", "quantity", "price", "mode", "decision"}
DECISION_KEYS = {"regime", "features", "signal", "risk_state", "size", "plan", "reference_price"}


@dataclasses.dataclass
class WeekRun:
    out: Path
    trades: list
    orders: list
    fills: list
    decisions: list
    alerts: list


@pytest.fixture(scope="module")
def week(roll_week_catalog, tmp_path_factory) -> WeekRun:
    """The shipped risk and router configs on the demo week, ES and MNQ, through the runner."""
    out = tmp_path_factory.mktemp("mia") / "run"
    config = BacktestConfig(venue=VenueSettings(fill_model=FillModelSettings(prob_slippage=0.0)))
    plan = plan_backtest(config, CONFIG, catalog=roll_week_catalog, out=out)
    risk, router = load_risk(CONFIG / "risk.yaml"), load_router(CONFIG / "router_config.yaml")
    plan = dataclasses.replace(
        plan, strategy_impl=MIA_STRATEGY_PATHS, strategy_extra=mia_strategy_extra(router, risk, out)
    )
    run_config = with_actors(
        build_run_config(plan), mia_actor_configs(plan.slots, "GLBX", risk, out, out / "state.json")
    )
    with run_mia_node(run_config) as run:
        orders = list(run.engine.cache.orders())
        return WeekRun(
            out=out,
            trades=list(run.strategy.recorder.trades),
            orders=[(o.client_order_id.value, o.order_type, o.is_reduce_only, tuple(o.tags or [])) for o in orders],
            fills=run.engine.trader.generate_fills_report().reset_index().to_dict("records"),
            decisions=list(run.strategy.decisions),
            alerts=list(run.actor(RiskActor).alerts),
        )


def test_trades_es_and_mnq_with_brackets_held_at_the_venue(week):
    roots = Counter(t.root for t in week.trades)
    assert roots["ES"] > 5 and roots["MNQ"] > 5
    entries = [o for o in week.orders if "entry" in o[3]]
    stops = [o for o in week.orders if "exit:stop" in o[3]]
    targets = [o for o in week.orders if any(t.startswith("exit:target") for t in o[3])]
    assert len(stops) == len(entries)  # every entry carries its own stop for the whole size
    assert all(o[1] == OrderType.STOP_MARKET and o[2] for o in stops)
    assert all(o[1] == OrderType.LIMIT and o[2] for o in targets)
    assert len(targets) >= len(entries)


def test_every_entry_and_exit_fill_writes_a_snapshot(week):
    snapshots = read_journal(week.out / TRADE_SNAPSHOTS)
    fills = [f for f in week.fills if str(f["client_order_id"])]
    assert len(snapshots) == len(fills)
    for snap in snapshots:
        assert set(snap) >= SNAPSHOT_KEYS
        assert set(snap["decision"]) >= DECISION_KEYS
        assert snap["decision"]["regime"]["probabilities"]
        assert snap["decision"]["signal"]["probability"] > 0.65  # the router's threshold
        assert snap["decision"]["risk_state"]["trading_state"] == "ACTIVE"
        if snap["kind"] == "exit":
            assert snap["reason"] and snap["risk_state"] is not None and "regime" in snap
    kinds = Counter(s["kind"] for s in snapshots)
    assert kinds["entry"] > 0 and kinds["exit"] > 0


def test_entries_follow_the_regime_router_and_the_risk_state(week):
    snapshots = [s for s in read_journal(week.out / TRADE_SNAPSHOTS) if s["kind"] == "entry"]
    modes = Counter(s["mode"] for s in snapshots)
    assert "defensive" not in modes  # the defensive mode is disabled in router_config.yaml
    assert modes["trend"] > 0 and modes["range"] > 0
    for snap in snapshots:
        decision = snap["decision"]
        providers = {"trend": "momentum", "range": "mean_reversion"}
        assert decision["signal"]["provider"] == providers[snap["mode"]]
        assert decision["size"]["contracts"] <= decision["risk_state"]["allowed_contracts"]
        assert decision["plan"]["stop_distance"] >= decision["risk_state"]["stop_distance"] - 1e-9
        r = [t["r"] for t in decision["plan"]["targets"]]
        assert all(x <= 4.0 + 1e-9 for x in r) and r == sorted(r)


def test_trend_entries_trail_their_stop_and_range_entries_do_not(week):
    events = read_journal(week.out / RISK_EVENTS)
    modes = {s["trade_id"]: s["mode"] for s in read_journal(week.out / TRADE_SNAPSHOTS) if s["kind"] == "entry"}
    trailed = {e["trade_id"] for e in events if e["event"] == "trail"}
    assert trailed and all(modes[t] == "trend" for t in trailed)
    kinds = Counter(e["event"] for e in events)
    for kind in ("stop", "trailing_stop", "trail", "partial", "target", "exit"):
        assert kinds[kind] > 0, kinds


def test_risk_events_are_summarised_per_instrument(week):
    table = risk_event_summary(risk_event_table(week.out))
    assert list(table.index) == ["ES", "MNQ"]
    assert {"stop", "trail", "partial", "target", "halt"} <= set(table.columns)
    assert table.loc["ES", "stop"] + table.loc["ES", "trailing_stop"] > 0
    states = read_journal(week.out / RISK_STATES)
    assert {s["instrument_id"] for s in states} >= {"ESZ25.GLBX", "ESH26.GLBX", "MNQZ25.GLBX", "MNQH26.GLBX"}


def test_trade_records_carry_the_mode_and_why_they_closed(week):
    reasons = Counter(t.exit_reason for t in week.trades)
    assert set(reasons) <= {
        "stop", "trailing_stop", "target", "regime_change", "session_close", "roll",
        "anomaly:spoofing", "anomaly:volume", "news:bearish", "macro:soon",
    }  # fmt: skip
    assert {t.regime for t in week.trades} <= {"trend", "range"}


# -- reactions to features, on stress paths --------------------------------------------------------------


class FeatureScript(Actor):
    """Publishes a feature vector on every bar: ``values(ts)`` gives name -> value."""

    def __init__(self, names: list[str], values, bar_types: list[str]) -> None:
        super().__init__(ActorConfig(component_id="FeatureScript"))
        self.names = names
        self.values = values
        self.bar_types = bar_types

    def on_start(self) -> None:
        for bar_type in self.bar_types:
            self.subscribe_bars(BarType.from_str(bar_type))

    def on_bar(self, bar: Bar) -> None:
        current = self.values(bar.ts_event, bar.close.as_double())
        vector = FeatureVector(
            instrument_id=bar.bar_type.instrument_id,
            feature_set="TEST.script",
            values=np.array([current[n] for n in self.names], dtype=np.float64),
            ts_event=bar.ts_event,
            ts_init=bar.ts_init,
        )
        self.publish_data(DataType(FeatureVector), vector)


TRENDING = (Segment(35, 0.5, 2.0, 1, 10), Segment(60, 3.0, 2.5, 1, 12), Segment(40, -3.0, 2.5, 1, 12))
BARS = ["ESZ25.GLBX-1-MINUTE-LAST-INTERNAL", "MNQZ25.GLBX-1-MINUTE-LAST-INTERNAL"]
ROUTER = RouterConfig(probability_threshold=0.55)


def _run_with_features(tmp_path, names, values, risk=None):
    ticks = build_ticks(StressPath("plain", TRENDING, 11), MARKETS)
    risk = risk or RiskConfig()
    monitor = new_monitor(ticks, risk)
    script = FeatureScript(names, values, BARS)
    with mia_run(
        ticks, tmp_path, risk, ROUTER, extra_actors=[script, monitor], feature_sets={"TEST.script": names}
    ) as (run, out):
        return run.strategy.decisions, list(run.strategy.recorder.trades), read_journal(out / TRADE_SNAPSHOTS), monitor


def test_a_closer_call_wall_becomes_the_target(tmp_path):
    names = ["call_wall", "call_wall_distance", "put_wall", "put_wall_distance"]

    def values(ts, close):  # walls 3 points beyond the close, in chain units 40 points lower
        return {
            "call_wall": close - 37.0,
            "call_wall_distance": np.log((close + 3.0) / close),
            "put_wall": close - 43.0,
            "put_wall_distance": np.log((close - 3.0) / close),
        }

    _, _, snapshots, monitor = _run_with_features(tmp_path, names, values)
    assert monitor.violations == []
    entries = [s for s in snapshots if s["kind"] == "entry"]
    sources = Counter(t["source"] for s in entries for t in s["decision"]["plan"]["targets"])
    assert sources["call_wall"] + sources["put_wall"] > 0, sources
    for snap in entries:
        for target in snap["decision"]["plan"]["targets"]:
            if target["source"] != "r":
                assert target["r"] >= 1.0  # a level target still pays at least the risk


def test_bearish_news_blocks_and_closes_longs_only(tmp_path):
    names = ["news_sentiment_score"]
    start = StressPath("plain", TRENDING, 11).start_ns
    switch = start + (TRENDING[0].minutes + 40) * 60_000_000_000  # well into the climb: longs are open

    def values(ts, close):
        return {names[0]: -0.8 if ts >= switch else 0.3}

    decisions, trades, snapshots, monitor = _run_with_features(tmp_path, names, values)
    assert monitor.violations == []
    entries = [s for s in snapshots if s["kind"] == "entry"]
    assert any(s["side"] == "BUY" for s in entries)
    late = [s for s in entries if _ns(s["ts"]) >= switch]
    assert all(s["side"] == "SELL" for s in late)  # shorts still allowed
    assert any("blocks a long" in d[3] for d in decisions if d[2] == "skip")
    open_longs = [t for t in trades if t.side == "LONG" and t.opened_ts.value < switch <= t.closed_ts.value]
    assert open_longs and all(t.exit_reason in ("news:bearish", "stop", "trailing_stop", "target") for t in open_longs)
    assert any(t.exit_reason == "news:bearish" for t in open_longs)


def _ns(iso: str) -> int:
    return int(pd.Timestamp(iso).value)


def test_anomalies_block_entries_and_close_positions(tmp_path):
    names = ["spoofing_score", "volume_anomaly"]
    switch = TRENDING[0].minutes * 60_000_000_000 + 45 * 60_000_000_000  # after 45 minutes of the trend
    start = StressPath("plain", TRENDING, 11).start_ns

    def values(ts, close):
        return {"spoofing_score": 0.95 if ts >= start + switch else 0.1, "volume_anomaly": 0.0}

    decisions, trades, _, monitor = _run_with_features(tmp_path, names, values)
    assert monitor.violations == []
    entries = [d for d in decisions if d[2] == "entry"]
    assert entries and all(ts < start + switch for ts, *_ in entries)
    closed_by_anomaly = [t for t in trades if t.exit_reason == "anomaly:spoofing"]
    open_at_switch = [t for t in trades if t.opened_ts.value < start + switch <= t.closed_ts.value]
    assert len(closed_by_anomaly) == len(open_at_switch)


def test_a_carried_but_missing_anomaly_feature_blocks_entries(tmp_path):
    names = ["spoofing_score"]
    decisions, trades, _, _ = _run_with_features(tmp_path, names, lambda ts, c: {names[0]: float("nan")})
    assert [d for d in decisions if d[2] == "entry"] == [] and trades == []


def test_a_stop_closer_than_the_spread_is_widened_not_skipped(tmp_path):
    # a quiet, steady climb quoted 3 ticks wide, stops kept 12 ticks beyond the spread: 2 x ATR is closer
    quiet = (Segment(35, 0.5, 0.5, 3, 10), Segment(60, 1.0, 0.5, 3, 12))
    ticks = build_ticks(StressPath("plain", quiet, 3), MARKETS)
    risk = RiskConfig(exits=ExitSettings(min_stop_ticks=12))
    monitor = new_monitor(ticks, risk)
    with mia_run(ticks, tmp_path, risk, ROUTER, extra_actors=[monitor]) as (run, out):
        decisions = list(run.strategy.decisions)
    assert monitor.violations == []
    assert [d for d in decisions if d[2] == "widen"]
    entries = [s for s in read_journal(out / TRADE_SNAPSHOTS) if s["kind"] == "entry"]
    plans = [(s["decision"]["plan"], s["decision"]["risk_state"]) for s in entries]
    widened = [plan for plan, state in plans if plan["stop_distance"] > state["stop_distance"]]
    assert widened  # entered on the wider stop rather than skipped
    tick = 0.25  # ES and MNQ
    for snap in entries:
        decision = snap["decision"]
        stop, bid, ask = decision["plan"]["stop_price"], decision["bid"], decision["ask"]
        beyond = bid - stop if snap["side"] == "BUY" else stop - ask
        assert beyond >= risk.exits.min_stop_ticks * tick - 1e-9, snap


def test_an_unconfident_regime_trades_on_the_defensive_leverage_cap(tmp_path):
    # the router trusts no regime (confidence 0.99 needed), so it trades the defensive mode; the risk
    # actor still reads the regime's label and publishes its 5x / 4x cap: the strategy holds to 1x
    router = RouterConfig(
        probability_threshold=0.55,
        min_regime_confidence=0.99,
        modes={
            "trend": ModeSettings(providers=["momentum"]),
            "range": ModeSettings(providers=["mean_reversion"]),
            "defensive": ModeSettings(providers=["momentum"]),
        },
    )
    risk = RiskConfig(kill_switches=KillSwitchSettings(max_contracts={"ES": 4, "MNQ": 10}, max_contracts_total=14))
    ticks = build_ticks(StressPath("plain", TRENDING, 11), MARKETS)
    monitor = new_monitor(ticks, risk)
    with mia_run(ticks, tmp_path, risk, router, extra_actors=[monitor]) as (_, out):
        pass
    assert monitor.violations == []
    snapshots = read_journal(out / TRADE_SNAPSHOTS)
    entries = [s for s in snapshots if s["kind"] == "entry" and s["root"] == "ES" and s["mode"] == "defensive"]
    assert entries
    assert any(s["decision"]["risk_state"]["leverage_cap"] > 1 for s in entries)
    # $1M at 1x buys two ES contracts (about $341k each); 4x would allow the limit of four
    assert all(s["decision"]["size"]["contracts"] <= 2 for s in entries)
