"""The risk actor in a real BacktestNode: kill switches halt through the risk engine, halts persist
across restarts within the trading day, blocks (macro, CVaR) reduce and flatten, the risk state is
published and written, the conservative fallbacks hold. Every run also carries the property monitor."""

import dataclasses
import itertools
import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import DataType
from nautilus_trader.model.enums import TradingState
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import FuturesContract
from test_mia_strategy_properties import MARKETS
from test_mia_strategy_properties import mia_run
from test_mia_strategy_properties import new_monitor

from catalog.types import MacroEvent
from mia_strategies.actors import risk as risk_actor_module
from mia_strategies.actors.risk import RiskActor
from mia_strategies.risk.config import CvarSettings
from mia_strategies.risk.config import KillSwitchSettings
from mia_strategies.risk.config import MacroSettings
from mia_strategies.risk.config import RiskConfig
from mia_strategies.risk.config import RouterConfig
from mia_strategies.risk.journal import RISK_ALERTS
from mia_strategies.risk.journal import RISK_STATES
from mia_strategies.risk.journal import read_journal
from mia_strategies.risk.limits import load_ledger
from mia_strategies.risk.messages import ALERT_TOPIC
from mia_strategies.risk.stress import PathTicks
from mia_strategies.risk.stress import Segment
from mia_strategies.risk.stress import StressPath
from mia_strategies.risk.stress import build_ticks


ROUTER = RouterConfig(probability_threshold=0.55)
#: A calm start then a steady climb: the trend mode buys, so trades happen early and often.
TRENDING = (
    Segment(35, 0.5, 2.0, 1, 10),
    Segment(40, 3.0, 2.5, 1, 12),
    Segment(30, -4.0, 4.0, 2, 20),
    Segment(30, 3.0, 2.5, 1, 12),
)


def _path(start: str = "", anchor: str = "plain", segments: tuple[Segment, ...] = TRENDING, seed: int = 5):
    return StressPath(anchor, segments, seed, start=start)


def _risk(**kill: object) -> RiskConfig:
    return RiskConfig(kill_switches=KillSwitchSettings(**kill))  # type: ignore[arg-type]


class AlertCollector(Actor):
    """Records every risk alert published on the message bus."""

    def __init__(self) -> None:
        super().__init__(ActorConfig(component_id="AlertCollector"))
        self.alerts: list = []

    def on_start(self) -> None:
        self.msgbus.subscribe(ALERT_TOPIC, self.alerts.append)


def _entries(run) -> list[tuple[int, str, str, str]]:
    return [d for d in run.strategy.decisions if d[2] == "entry"]


def test_risk_state_is_published_on_change_and_written_with_warm_up_first(tmp_path):
    ticks = build_ticks(_path(), MARKETS)
    monitor = new_monitor(ticks, RiskConfig())
    with mia_run(ticks, tmp_path, RiskConfig(), ROUTER, extra_actors=[monitor]) as (run, out):
        actor = run.actor(RiskActor)
        assert actor.risk_engine is run.engine.kernel.risk_engine  # bound by the runner
        entries = _entries(run)
    assert monitor.violations == []
    states = read_journal(out / RISK_STATES)
    assert {s["instrument_id"] for s in states} == {"ESZ25.GLBX", "MNQZ25.GLBX"}
    first = next(s for s in states if s["instrument_id"] == "ESZ25.GLBX")
    assert first["stop_distance"] == 0 and first["allowed_contracts"] == 0  # no ATR yet: no entries
    warm = [s for s in states if s["stop_distance"] > 0]
    # 2 x ATR rounded up to the tick grid
    assert warm and all(2 * s["atr"] <= s["stop_distance"] < 2 * s["atr"] + 0.25 for s in warm)
    assert all(s["stop_distance"] / 0.25 == round(s["stop_distance"] / 0.25) for s in warm)
    assert all(s["trading_state"] == "ACTIVE" and s["halt_reason"] == "" for s in states)
    # consecutive records of one instrument always differ: published on change only
    for key in ("ESZ25.GLBX", "MNQZ25.GLBX"):
        mine = [
            {k: v for k, v in s.items() if k not in ("ts", "atr", "equity", "price", "blocks", "regime")}
            for s in states
            if s["instrument_id"] == key
        ]
        assert all(a != b for a, b in itertools.pairwise(mine))
    # a fill changes what is allowed: published at the position event, not only at the next bar
    between_bars = [s for s in states if pd.Timestamp(s["ts"]).value % 60_000_000_000]
    assert between_bars and any(s["allowed_contracts"] < 2 for s in between_bars if s["instrument_id"] == "ESZ25.GLBX")
    assert entries
    first_warm = min(pd.Timestamp(s["ts"]).value for s in warm)
    assert all(ts >= first_warm for ts, *_ in entries)


def test_daily_loss_breach_halts_in_the_same_event_flattens_alerts_and_persists(tmp_path):
    ticks = build_ticks(_path(), MARKETS)
    risk = _risk(max_daily_loss=1.0, flatten_on_halt=True)  # the first commission breaches it
    collector = AlertCollector()
    monitor = new_monitor(ticks, risk)
    with mia_run(ticks, tmp_path, risk, ROUTER, extra_actors=[collector, monitor]) as (run, out):
        engine = run.engine.kernel.risk_engine
        actor = run.actor(RiskActor)
        assert engine.trading_state == TradingState.HALTED  # flat, so fully halted
        for instrument in ("ESZ25.GLBX", "MNQZ25.GLBX"):  # flat instruments are locked too
            assert engine.max_notional_per_order(InstrumentId.from_str(instrument)) == Decimal("0.01")
        halt_ts = actor.breaches[0][0]
        entries = _entries(run)
        trades = run.strategy.recorder.trades
    assert monitor.violations == [] and monitor.checks["kill_switch"] > 0
    assert [b.switch for _, b in actor.breaches] == ["max_daily_loss"]
    assert len(entries) == 1 and all(ts <= halt_ts for ts, *_ in entries)  # nothing entered after it
    assert trades and trades[-1].exit_reason == "risk_halt:max_daily_loss"  # flattened by the strategy
    kinds = [a.kind for a in collector.alerts]
    assert "halt" in kinds and "reducing" in kinds
    assert collector.alerts[kinds.index("halt")].ts_ns == halt_ts
    journal = read_journal(out / RISK_ALERTS)
    assert [r["kind"] for r in journal] == kinds
    ledger = load_ledger(out / "risk_state.json")
    assert ledger is not None and [h.switch for h in ledger.halts] == ["max_daily_loss"]
    assert ledger.trading_day == "2025-12-09"
    halted = [s for s in read_journal(out / RISK_STATES) if s["trading_state"] != "ACTIVE"]
    assert halted and all(s["halt_reason"] == "max_daily_loss" and s["allowed_contracts"] == 0 for s in halted)


def test_a_halt_survives_a_restart_the_same_trading_day_and_lifts_the_next(tmp_path):
    state = tmp_path / "state" / "risk_state.json"
    ticks = build_ticks(_path(), MARKETS)
    with mia_run(ticks, tmp_path / "a", _risk(max_daily_loss=1.0), ROUTER, state_path=state) as (run, _):
        assert run.actor(RiskActor).breaches
    # restart later the same trading day with generous limits: halted from the first event, no order
    later = build_ticks(_path(start="2025-12-09T19:30:00Z", segments=TRENDING[:3]), MARKETS)  # ends before 16:00 CT
    with mia_run(later, tmp_path / "b", RiskConfig(), ROUTER, state_path=state) as (run, out):
        assert run.engine.kernel.risk_engine.trading_state == TradingState.HALTED
        assert run.engine.cache.orders() == []
    assert all(s["trading_state"] == "HALTED" for s in read_journal(out / RISK_STATES))
    # the next trading day (Globex reopens 17:00 CT the same evening) starts active again
    next_day = build_ticks(_path(start="2025-12-10T14:00:00Z"), MARKETS)
    with mia_run(next_day, tmp_path / "c", RiskConfig(), ROUTER, state_path=state) as (run, out):
        assert run.engine.kernel.risk_engine.trading_state == TradingState.ACTIVE
        assert _entries(run)
        lifted = [a.kind for a in run.actor(RiskActor).alerts]
    assert lifted[:1] == ["halt"] and "resume" in lifted  # restored, then lifted at the day's start
    ledger = load_ledger(state)
    assert ledger is not None and ledger.halts == [] and ledger.trading_day == "2025-12-10"


def test_sticky_drawdown_halt_outlives_the_day(tmp_path):
    state = tmp_path / "risk_state.json"
    ticks = build_ticks(_path(), MARKETS)
    with mia_run(ticks, tmp_path / "a", _risk(max_drawdown=1e-7), ROUTER, state_path=state) as (run, _):
        assert {b.switch for _, b in run.actor(RiskActor).breaches} >= {"max_drawdown"}
    next_day = build_ticks(_path(start="2025-12-10T14:00:00Z"), MARKETS)
    with mia_run(next_day, tmp_path / "b", RiskConfig(), ROUTER, state_path=state) as (run, _):
        assert run.engine.kernel.risk_engine.trading_state == TradingState.HALTED
        assert run.engine.cache.orders() == []


def test_order_rate_breach_halts_without_flattening_when_not_configured(tmp_path):
    ticks = build_ticks(_path(), MARKETS)
    risk = _risk(max_orders_per_minute=3, flatten_on_halt=False)  # one bracket is four orders
    monitor = new_monitor(ticks, risk)
    with mia_run(ticks, tmp_path, risk, ROUTER, extra_actors=[monitor]) as (run, _):
        actor = run.actor(RiskActor)
        trades = run.strategy.recorder.trades
        entries = _entries(run)
    assert monitor.violations == []
    assert [b.switch for _, b in actor.breaches] == ["max_orders_per_minute"]
    assert len(entries) == 1
    # the position stays under its venue-held exits (no flatten was asked for)
    assert not trades or not trades[0].exit_reason.startswith("risk_halt")


class MacroCalendar(Actor):
    """Publishes one high-impact release at start, as the macro calendar loader does."""

    def __init__(self, release_ns: int) -> None:
        super().__init__(ActorConfig(component_id="MacroCalendar"))
        self.release_ns = release_ns

    def on_start(self) -> None:
        self.subscribe_bars(BarType.from_str("ESZ25.GLBX-1-MINUTE-LAST-INTERNAL"))

    def on_bar(self, bar: Bar) -> None:
        if getattr(self, "_sent", False):
            return
        self._sent = True
        event = MacroEvent(
            instrument_id=InstrumentId.from_str("ESZ25.GLBX"),
            name="FOMC",
            importance=3,
            ts_event=self.release_ns,
            ts_init=bar.ts_event,
        )
        self.publish_data(DataType(MacroEvent), event)


def test_macro_release_opens_a_flat_window_and_closes_it(tmp_path):
    path = _path(segments=(Segment(35, 0.5, 2.0, 1, 10), Segment(90, 3.0, 2.5, 1, 12)))
    ticks = build_ticks(path, MARKETS)
    release = pd.Timestamp("2025-12-09T18:30:00Z").value
    risk = RiskConfig(macro=MacroSettings(flat_minutes_before=10, resume_minutes_after=5))
    collector = AlertCollector()
    monitor = new_monitor(ticks, risk)
    extra = [MacroCalendar(release), collector, monitor]
    with mia_run(ticks, tmp_path, risk, ROUTER, extra_actors=extra) as (run, _):
        entries = _entries(run)
        final_state = run.engine.kernel.risk_engine.trading_state
        exits = [t.exit_reason for t in run.strategy.recorder.trades]
    assert monitor.violations == []
    blocks = [(a.ts_ns, a.kind, a.reason) for a in collector.alerts if a.kind in ("block", "unblock")]
    window = (release - 10 * 60 * 10**9, release + 5 * 60 * 10**9)
    assert blocks == [(window[0], "block", "macro:FOMC"), (window[1], "unblock", "macro:FOMC")]
    assert not [ts for ts, *_ in entries if window[0] <= ts < window[1]]
    assert entries and any(ts >= window[1] for ts, *_ in entries)  # trading resumed after it
    assert final_state == TradingState.ACTIVE
    assert "macro:FOMC" in exits or all(ts >= window[1] or ts < window[0] for ts, *_ in entries)


def test_a_macro_calendar_file_opens_flat_windows_once_each_release_is_known(tmp_path):
    calendar = tmp_path / "calendar.csv"
    calendar.write_text(
        "date,time,timezone,name,importance,country,known_from\n"
        "2025-12-09,13:30,America/New_York,FOMC: rate decision,3,US,\n"
        "2025-12-09,13:40,America/New_York,PPI: producer prices,2,US,\n"  # below min_importance
        "2025-12-09,13:50,America/New_York,CPI: rescheduled,3,US,2025-12-09 13:45\n"  # known 5 minutes before
    )
    path = _path(segments=(Segment(35, 0.5, 2.0, 1, 10), Segment(90, 3.0, 2.5, 1, 12)))
    risk = RiskConfig(macro=MacroSettings(flat_minutes_before=10, resume_minutes_after=5))
    collector = AlertCollector()
    with mia_run(
        build_ticks(path, MARKETS), tmp_path / "run", risk, ROUTER, extra_actors=[collector], macro_calendar=calendar
    ) as _:
        pass
    blocks = [(a.ts_ns, a.kind, a.reason) for a in collector.alerts if a.kind in ("block", "unblock")]

    def at(text: str) -> int:
        return pd.Timestamp(text).value

    assert blocks == [
        (at("2025-12-09T18:20:00Z"), "block", "macro:FOMC: rate decision"),
        (at("2025-12-09T18:35:00Z"), "unblock", "macro:FOMC: rate decision"),
        (at("2025-12-09T18:45:00Z"), "block", "macro:CPI: rescheduled"),  # not at 18:40: unknown until 18:45
        (at("2025-12-09T18:55:00Z"), "unblock", "macro:CPI: rescheduled"),
    ]


def test_cvar_breach_blocks_and_flattens_for_the_rest_of_the_day(tmp_path):
    ticks = build_ticks(_path(), MARKETS)
    risk = RiskConfig(cvar=CvarSettings(limit=1e-9, window_trades=5, min_trades=1))
    monitor = new_monitor(ticks, risk)
    with mia_run(ticks, tmp_path, risk, ROUTER, extra_actors=[monitor]) as (run, _):
        actor = run.actor(RiskActor)
        first_loss = next(t for t in run.strategy.recorder.trades if t.realized_pnl < 0)
        entries = _entries(run)
        state = run.engine.kernel.risk_engine.trading_state
    assert monitor.violations == []
    block = next(a for a in actor.alerts if a.kind == "block")
    assert block.reason == "cvar" and block.ts_ns == first_loss.closed_ts.value
    assert all(ts <= block.ts_ns for ts, *_ in entries)
    assert state == TradingState.REDUCING  # a block, not a kill switch: never HALTED


def test_instrument_without_margin_data_is_sized_as_fully_collateralised(tmp_path):
    ticks = build_ticks(_path(), MARKETS)
    patched: list[PathTicks] = []
    for item in ticks:
        spec = FuturesContract.to_dict(item.instrument)
        spec["margin_init"] = "0"
        spec["margin_maint"] = "0"
        patched.append(dataclasses.replace(item, instrument=FuturesContract.from_dict(spec)))
    risk = RiskConfig(leverage={"trend": 50.0, "range": 50.0, "defensive": 50.0})
    with mia_run(patched, tmp_path, risk, ROUTER) as (run, out):
        assert run.engine.cache.instrument(InstrumentId.from_str("ESZ25.GLBX")).margin_init == 0
    states = [s for s in read_journal(out / RISK_STATES) if s["allowed_contracts"] > 0]
    assert states
    for s in states:
        multiplier = 50 if s["instrument_id"].startswith("ES") else 2
        # 80% of a $1M balance over the full notional, whatever the 50x leverage cap would allow
        assert s["allowed_contracts"] <= int(0.8 * 1_000_000 / (s["price"] * multiplier)) + 1e-9


def test_the_risk_actor_finds_the_risk_engine_on_the_bus_and_refuses_to_run_without_one(tmp_path, monkeypatch):
    ticks = build_ticks(_path(segments=(Segment(20, 0.0, 1.0),)), MARKETS)
    monkeypatch.setattr(risk_actor_module, "bind_risk_actors", lambda kernel: 0)  # nobody hands it over
    with mia_run(ticks, tmp_path / "found", RiskConfig(), ROUTER) as (run, _):
        assert run.actor(RiskActor).risk_engine is run.engine.kernel.risk_engine  # discovered at start
    monkeypatch.setattr(risk_actor_module, "find_risk_engine", lambda actor: None)  # a fault: no engine
    with (
        pytest.raises(RuntimeError, match="cannot reach nautilus's risk engine"),
        mia_run(ticks, tmp_path / "none", RiskConfig(), ROUTER),
    ):
        pass


def test_alert_journal_lines_are_strict_json(tmp_path):
    ticks = build_ticks(_path(), MARKETS)
    with mia_run(ticks, tmp_path, _risk(max_daily_loss=1.0), ROUTER) as (_, out):
        pass
    for name in (RISK_ALERTS, RISK_STATES):
        for line in (out / name).read_text().splitlines():
            record = json.loads(line)  # strict: no NaN, no Infinity
            assert record["ts"].endswith("Z")
    assert np.isfinite([r["stop_distance"] for r in read_journal(out / RISK_STATES)]).all()
