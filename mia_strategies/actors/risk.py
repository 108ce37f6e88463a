"""The risk actor (``risk_manager``): watches the portfolio, publishes ``RiskState``, enforces halts.

On every bar of every traded contract, and after every position change, it publishes what risk
allows now for that instrument (``RiskState``: contracts allowed by leverage cap, margin and
contract limits, stop, target and trailing distances, trading state), when any of it changed, and
appends it to ``risk_states.jsonl`` in the run folder. It watches equity on every quote while a
position is open, and on every fill: a kill-switch breach (daily loss, drawdown from the peak,
contracts held, order rate) halts trading **in the same event**.

Halts are enforced by nautilus's risk engine, not by the strategy's good will. nautilus 1.221 has no
message or actor API for the trading state: ``RiskEngine.set_trading_state`` is the one public
setter, and the engine is public on the node's kernel (``kernel.risk_engine``). The node owner hands
it over with ``bind_risk_engine`` (``bind_risk_actors(kernel)`` does it for every risk actor); when
nobody did, the actor finds the engine on the message bus at start (the engine subscribes its
``_handle_event`` to ``events.order.*``; ``MessageBus.subscriptions`` and ``Subscription.handler`` are
public), and refuses to start if neither works.

States: ``REDUCING`` while a halt or block is in force and exposure remains (closing orders pass),
``HALTED`` once a halted account is flat. nautilus's ``REDUCING`` only refuses orders that add to an
open position, so a flat instrument could still be opened: the actor closes that gap by setting
the risk engine's maximum notional per order of every flat instrument to one cent while not
``ACTIVE`` (and restores the configured values after). With ``flatten_on_halt`` it publishes a
``FlattenCommand`` that every MIA strategy obeys; every change is a ``RiskAlert`` on ``mia.alerts``
and a line in ``risk_alerts.jsonl``.

Halts are persisted (``RiskLedger``) after every change, so a node restarted within the same
trading day starts halted with the same daily-loss reference; they lift when the next trading day
starts, except sticky ones (drawdown by default), which wait for ``mia risk reset``.
"""

import math
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.core.datetime import unix_nanos_to_dt
from nautilus_trader.indicators import AverageTrueRange
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import DataType
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import PositionSide
from nautilus_trader.model.enums import TradingState
from nautilus_trader.model.enums import trading_state_to_str
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderSubmitted
from nautilus_trader.model.events import PositionClosed
from nautilus_trader.model.events import PositionEvent
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.position import Position
from nautilus_trader.risk.engine import RiskEngine

from catalog.types import FeatureVector
from catalog.types import MacroEvent
from catalog.types import RegimeState
from catalog.types import RiskState
from mia_strategies import sessions
from mia_strategies.risk.bar_rules import BUILTIN_FEATURE_SETS
from mia_strategies.risk.config import RiskConfig
from mia_strategies.risk.cvar import cvar_loss
from mia_strategies.risk.journal import RISK_ALERTS
from mia_strategies.risk.journal import RISK_STATES
from mia_strategies.risk.journal import Journal
from mia_strategies.risk.journal import iso
from mia_strategies.risk.limits import Breach
from mia_strategies.risk.limits import KillSwitches
from mia_strategies.risk.limits import OrderRate
from mia_strategies.risk.limits import RiskLedger
from mia_strategies.risk.limits import load_ledger
from mia_strategies.risk.limits import save_ledger
from mia_strategies.risk.market import FeatureBook
from mia_strategies.risk.market import RegimeView
from mia_strategies.risk.market import effective_regime
from mia_strategies.risk.market import market_blocks
from mia_strategies.risk.messages import ALERT_TOPIC
from mia_strategies.risk.messages import FLATTEN_TOPIC
from mia_strategies.risk.messages import FlattenCommand
from mia_strategies.risk.messages import RiskAlert
from mia_strategies.risk.sizing import contract_room
from mia_strategies.risk.sizing import leverage_contracts
from mia_strategies.risk.sizing import margin_contracts
from mia_strategies.strategies.base import ContractSlot


_NS_PER_S = 1_000_000_000
_HOUR_NS = 3600 * _NS_PER_S
#: Maximum notional per order that locks a flat instrument while not ACTIVE (one cent).
_LOCK_NOTIONAL = Decimal("0.01")
_PEAK_PERSIST_NS = 60 * 60 * _NS_PER_S
_EVENT_PRIORITY = 5


class RiskActorConfig(ActorConfig, frozen=True):
    """Settings of the risk actor.

    Parameters
    ----------
    slots : list[ContractSlot]
        The contract schedule of every traded root (the same as the strategy's).
    venue : str, default "GLBX"
        The venue whose account is watched.
    risk : dict
        ``config/risk.yaml`` as a mapping (validated by ``RiskConfig`` at start).
    run_dir : str, optional
        Folder for ``risk_states.jsonl`` and ``risk_alerts.jsonl``; None writes nothing.
    state_path : str, optional
        The persisted ledger (halts, daily-loss reference); None keeps it in memory only.
    feature_sets : dict[str, list[str]]
        Ordered feature names of each feature set (from ``config/feature_sets.yaml``); the bar-rule
        set is always known.
    macro_calendar : str, optional
        A macro calendar file (``config/macro_calendar.csv``): its high-impact releases open flat
        windows without a ``MacroEvent`` stream on the bus (each from the time it became known).
    """

    slots: list[ContractSlot]
    venue: str = "GLBX"
    risk: dict[str, Any] = msgspec.field(default_factory=dict)
    run_dir: str | None = None
    state_path: str | None = None
    feature_sets: dict[str, list[str]] = msgspec.field(default_factory=dict)
    macro_calendar: str | None = None


class _Contract:
    """Static facts and running measurements of one traded contract."""

    def __init__(self, slot: ContractSlot, multiplier: float, tick: float, margin_init: float, atr_period: int) -> None:
        self.slot = slot
        self.root = slot.root
        self.multiplier = multiplier
        self.tick = tick
        self.margin_init = margin_init
        self.atr = AverageTrueRange(atr_period)
        self.last_close = math.nan


def find_risk_engine(actor: Actor) -> RiskEngine | None:
    """nautilus's risk engine of ``actor``'s kernel, found among the message bus's subscribers."""
    for subscription in actor.msgbus.subscriptions("events.order.*"):
        owner = getattr(subscription.handler, "__self__", None)
        if isinstance(owner, RiskEngine):
            return owner
    return None


def bind_risk_actors(kernel: Any) -> int:
    """Hand the kernel's risk engine to every actor that halts trading (the risk actor, operator
    control); return how many were bound."""
    count = 0
    for actor in kernel.trader.actors():
        bind = getattr(actor, "bind_risk_engine", None)
        if bind is not None:
            bind(kernel.risk_engine)
            count += 1
    return count


class RiskActor(Actor):
    """Publishes ``RiskState`` on every change and halts trading through the risk engine (module doc)."""

    def __init__(self, config: RiskActorConfig) -> None:
        super().__init__(config)
        self._config = config
        self.risk = RiskConfig.model_validate(config.risk)
        self._venue = Venue(config.venue)
        self._risk_engine: RiskEngine | None = None
        self._contracts: dict[str, _Contract] = {}
        self._ids: dict[str, InstrumentId] = {}
        self._by_bar: dict[str, str] = {s.bar_type: s.instrument_id for s in config.slots}
        self._quotes: dict[str, QuoteTick] = {}
        self._positions: dict[str, Position] = {}
        self._features = FeatureBook(
            {**BUILTIN_FEATURE_SETS, **config.feature_sets},
            self.risk.features.stale_after_s * _NS_PER_S,
        )
        self._regimes: dict[str, RegimeView] = {}
        self._kill = KillSwitches(self.risk.kill_switches)
        self._orders = OrderRate()
        self._trade_returns: deque[float] = deque(maxlen=self.risk.cvar.window_trades)
        self._blocks: dict[str, str] = {}
        self._macro_seen: set[tuple[str, int]] = set()
        self._ledger = RiskLedger()
        self._state_path = Path(config.state_path) if config.state_path else None
        run_dir = Path(config.run_dir) if config.run_dir else None
        self._states_journal = Journal(run_dir, RISK_STATES)
        self._alerts_journal = Journal(run_dir, RISK_ALERTS)
        self._published: dict[str, tuple[Any, ...]] = {}
        self._locked: dict[InstrumentId, Any] = {}
        self._day_boundary_ns = 0
        self._state = TradingState.ACTIVE
        self._account: Any = None
        self._balance: float | None = None
        self._free: float | None = None
        self._marks: dict[str, tuple[float, float, bool]] = {}
        self._persisted_ns = 0
        self.alerts: list[RiskAlert] = []
        self.breaches: list[tuple[int, Breach]] = []

    # -- RISK ENGINE --------------------------------------------------------------------------------

    def bind_risk_engine(self, risk_engine: RiskEngine) -> None:
        """Use ``risk_engine`` (``kernel.risk_engine``) to set the trading state."""
        self._risk_engine = risk_engine

    @property
    def risk_engine(self) -> RiskEngine:
        """The bound risk engine (checked at start)."""
        assert self._risk_engine is not None
        return self._risk_engine

    # -- LIFECYCLE ----------------------------------------------------------------------------------

    def on_start(self) -> None:
        """Reach the risk engine, subscribe data and events, restore persisted halts."""
        if self._risk_engine is None:
            self._risk_engine = find_risk_engine(self)
        if self._risk_engine is None:
            raise RuntimeError(
                "the risk actor cannot reach nautilus's risk engine: bind it with "
                "bind_risk_engine(kernel.risk_engine) before the node runs",
            )
        period = self.risk.exits.atr_period
        for slot in self._config.slots:
            instrument_id = InstrumentId.from_str(slot.instrument_id)
            instrument = self.cache.instrument(instrument_id)
            if instrument is None:
                self.log.error(f"instrument {slot.instrument_id} not in cache; it gets no risk state (no entries)")
                continue
            margin = float(instrument.margin_init) if instrument.margin_init is not None else 0.0
            if margin <= 0:
                self.log.warning(f"{slot.instrument_id} has no margin data: sized as if fully collateralised")
            self._contracts[slot.instrument_id] = _Contract(
                slot,
                instrument.multiplier.as_double(),
                instrument.price_increment.as_double(),
                margin,
                period,
            )
            self._ids[slot.instrument_id] = instrument_id
            self.subscribe_quote_ticks(instrument_id)
            self.subscribe_bars(BarType.from_str(slot.bar_type))
        self.subscribe_data(DataType(FeatureVector))
        self.subscribe_data(DataType(RegimeState))
        self.subscribe_data(DataType(MacroEvent))
        # after the portfolio and the risk engine (priority 10), before every strategy (0)
        self.msgbus.subscribe("events.order.*", self._on_order_event, priority=_EVENT_PRIORITY)
        self.msgbus.subscribe("events.position.*", self._on_position_event, priority=_EVENT_PRIORITY)
        self._restore(self.clock.timestamp_ns())
        if self._config.macro_calendar:
            self._load_calendar(Path(self._config.macro_calendar))

    def on_stop(self) -> None:
        """Persist the ledger and close the journals."""
        self.msgbus.unsubscribe("events.order.*", self._on_order_event)
        self.msgbus.unsubscribe("events.position.*", self._on_position_event)
        self._persist()
        self._states_journal.close()
        self._alerts_journal.close()

    def _restore(self, now_ns: int) -> None:
        """Load the ledger; halts of today (or sticky ones) are in force again before any order."""
        if self._state_path is not None:
            loaded = load_ledger(self._state_path)
            if loaded is not None:
                self._ledger = loaded
        if self._ledger.halts:
            for halt in self._ledger.halts:
                self._alert(now_ns, "halt", halt.switch, f"restored: {halt.detail}")
        self._refresh_positions()
        self._update_trading_state(now_ns)

    # -- DATA ---------------------------------------------------------------------------------------

    def on_data(self, data: Any) -> None:
        """Features and regimes feed the risk state; macro releases open flat windows."""
        if isinstance(data, FeatureVector):
            if not self._features.update(data) and len(self._features.unknown_sets) == 1:
                self.log.warning(f"feature set {data.feature_set!r} has no known names: its features are ignored")
        elif isinstance(data, RegimeState):
            self._regimes[data.instrument_id.value] = RegimeView.from_state(data)
        elif isinstance(data, MacroEvent):
            self._schedule_macro(data)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        """Keep the latest quote; while positions are open, check equity against the kill switches."""
        key = tick.instrument_id.value
        self._quotes[key] = tick
        ts = tick.ts_event
        if ts >= self._day_boundary_ns:
            self._maybe_roll_day(ts)
        if key in self._positions:
            self._check_equity(ts)  # only this instrument's mark moved

    def on_bar(self, bar: Bar) -> None:
        """Update the contract's ATR and publish its risk state if anything changed."""
        key = self._by_bar.get(str(bar.bar_type))
        contract = self._contracts.get(key) if key else None
        if contract is None or key is None:
            return
        contract.atr.handle_bar(bar)
        contract.last_close = bar.close.as_double()
        if bar.ts_event >= self._day_boundary_ns:
            self._maybe_roll_day(bar.ts_event)
        self._publish(key, bar.ts_event)

    # -- EVENTS -------------------------------------------------------------------------------------

    def _on_order_event(self, event: Any) -> None:
        ts = event.ts_event
        if isinstance(event, OrderSubmitted):
            breaches = self._kill.check_order_rate(self._orders.add(ts))
            if breaches:
                self._breach(breaches, ts)
        elif isinstance(event, OrderFilled):
            self._refresh_positions()
            breaches = self._kill.check_contracts(self._held_by_root())
            if breaches:
                self._breach(breaches, ts)
            self._check_equity(ts)
        if self._state != TradingState.ACTIVE:
            self._update_trading_state(ts)

    def _on_position_event(self, event: PositionEvent) -> None:
        ts = event.ts_event
        self._refresh_positions()
        if isinstance(event, PositionClosed):
            self._record_trade(event)
        self._update_trading_state(ts)
        for key in self._contracts:  # a fill moves what is allowed now: publish it, not at the next bar
            if key in self._published:
                self._publish(key, ts)

    def _record_trade(self, event: PositionClosed) -> None:
        """A closed trade's return on equity feeds the CVaR window."""
        realized = event.realized_pnl.as_double()
        measured = self._equity()
        if measured is None:
            return
        before = measured[0] - realized
        if before <= 0:
            return
        self._trade_returns.append(realized / before)
        if event.ts_event - self._persisted_ns >= _PEAK_PERSIST_NS:
            self._persist()  # keeps the equity peak current across a restart (at most hourly)
        cfg = self.risk.cvar
        if len(self._trade_returns) < cfg.min_trades or "cvar" in self._blocks:
            return
        loss = cvar_loss(list(self._trade_returns), cfg.alpha)
        if loss > cfg.limit:
            detail = f"CVaR{cfg.alpha:g} of the last {len(self._trade_returns)} trades {loss:.4f} > {cfg.limit:g}"
            self._block("cvar", detail, event.ts_event, cfg.flatten)

    # -- MEASUREMENT --------------------------------------------------------------------------------

    def _refresh_positions(self) -> None:
        """Re-read open positions and the account after a fill or a position event."""
        positions = self.cache.positions_open(venue=self._venue)
        self._positions = {p.instrument_id.value: p for p in positions if p.instrument_id.value in self._contracts}
        self._marks = {
            key: (p.avg_px_open, p.signed_qty * self._contracts[key].multiplier, p.side == PositionSide.LONG)
            for key, p in self._positions.items()
        }
        self._refresh_account()

    def _refresh_account(self) -> None:
        account = self._account
        if account is None:
            account = self._account = self.portfolio.account(self._venue)
            if account is None:
                return
        balance = account.balance_total(account.base_currency)
        free = account.balance_free(account.base_currency)
        if balance is not None and free is not None:
            self._balance, self._free = balance.as_double(), free.as_double()

    def _held_by_root(self) -> dict[str, int]:
        held: dict[str, int] = {}
        for key, position in self._positions.items():
            root = self._contracts[key].root
            qty = int(position.quantity.as_double())
            held[root] = held.get(root, 0) + (qty if position.side == PositionSide.LONG else -qty)
        return held

    def _equity(self) -> tuple[float, float] | None:
        """Equity (balance plus open P&L at the liquidation side of the last quote) and free balance.

        Open P&L is ``(mark - average entry) x signed quantity x multiplier`` per position, with the
        bid for longs and the ask for shorts, as nautilus's portfolio computes it. The balance is
        re-read after every fill (the only thing that changes it), so a quote costs a few additions.
        """
        if self._balance is None:
            self._refresh_account()
            if self._balance is None or self._free is None:
                return None
        equity = self._balance
        quotes = self._quotes
        for key, (avg, signed, long) in self._marks.items():
            quote = quotes.get(key)
            if quote is not None:
                mark = quote.bid_price.as_double() if long else quote.ask_price.as_double()
                equity += (mark - avg) * signed
        return equity, self._free or 0.0

    def current_equity(self) -> float | None:
        """Equity as the kill switches see it now."""
        measured = self._equity()
        return None if measured is None else measured[0]

    def _check_equity(self, ts: int) -> None:
        measured = self._equity()
        if measured is None:
            return
        equity = measured[0]
        ledger = self._ledger
        if ledger.day_start_equity is None:
            ledger.day_start_equity = equity
        if ledger.peak_equity is None or equity > ledger.peak_equity:
            ledger.peak_equity = equity
        breaches = self._kill.check_equity(equity, ledger.day_start_equity, ledger.peak_equity)
        if breaches:
            self._breach(breaches, ts)

    def _maybe_roll_day(self, ts: int) -> None:
        """At the first event of a new trading day: new daily-loss reference, lift yesterday's halts."""
        day = sessions.trading_day(ts)
        _, close = sessions.session_bounds(day)
        self._day_boundary_ns = close + _HOUR_NS  # the next session opens an hour after this one closes
        if self._ledger.trading_day == day.isoformat():
            return
        measured = self._equity()
        equity = measured[0] if measured is not None else math.nan
        first_day = not self._ledger.trading_day
        lifted = self._ledger.roll_day(day, equity if math.isfinite(equity) else 0.0)
        if not math.isfinite(equity):
            self._ledger.day_start_equity = None
            if first_day:
                self._ledger.peak_equity = None
        for halt in lifted:
            self._alert(ts, "lift", halt.switch, f"new trading day {day}: {halt.detail}")
        if "cvar" in self._blocks:
            self._unblock("cvar", ts, f"new trading day {day}: fresh CVaR window")
            self._trade_returns.clear()
        self._persist()
        self._update_trading_state(ts)
        self._check_equity(ts)  # a drawdown still beyond its limit halts again at once

    # -- HALTS AND BLOCKS ---------------------------------------------------------------------------

    def _breach(self, breaches: list[Breach], ts: int) -> None:
        """Halt on every new breach, in this event: state first, then the flatten command."""
        new = []
        for breach in breaches:
            sticky = breach.switch in self.risk.kill_switches.sticky
            halt = self._ledger.halt(breach, ts, sticky)
            if halt is not None:
                new.append(breach)
                self.breaches.append((ts, breach))
        if not new:
            return
        self._persist()
        self._update_trading_state(ts)
        for breach in new:
            self._alert(ts, "halt", breach.switch, breach.detail)
        if self.risk.kill_switches.flatten_on_halt:
            self._flatten(ts, f"risk_halt:{new[0].switch}")

    def _block(self, reason: str, detail: str, ts: int, flatten: bool) -> None:
        if reason in self._blocks:
            return
        self._blocks[reason] = detail
        self._update_trading_state(ts)
        self._alert(ts, "block", reason, detail)
        if flatten:
            self._flatten(ts, reason)

    def _unblock(self, reason: str, ts: int, detail: str) -> None:
        if self._blocks.pop(reason, None) is None:
            return
        self._alert(ts, "unblock", reason, detail)
        self._update_trading_state(ts)

    def _flatten(self, ts: int, reason: str) -> None:
        self.msgbus.publish(FLATTEN_TOPIC, FlattenCommand(ts, reason))

    def _desired_state(self) -> TradingState:
        if not self._ledger.halts and not self._blocks:
            return TradingState.ACTIVE
        if self._ledger.halts and self._is_flat():
            return TradingState.HALTED
        return TradingState.REDUCING

    def _is_flat(self) -> bool:
        return not self._positions and self.cache.orders_open_count() == 0 and self.cache.orders_inflight_count() == 0

    def _update_trading_state(self, ts: int) -> None:
        """Bring the risk engine (and the entry locks) to the state halts and blocks call for."""
        desired = self._desired_state()
        engine = self.risk_engine
        if engine.trading_state != desired:
            engine.set_trading_state(desired)
        self._sync_locks(desired)
        if desired == self._state:
            return
        previous, self._state = self._state, desired
        if desired == TradingState.ACTIVE:
            self._alert(ts, "resume", "", f"trading state {trading_state_to_str(previous)} -> ACTIVE")
        elif desired == TradingState.REDUCING:
            self._alert(ts, "reducing", self.halt_reason(), "only closing orders pass")
        for key in self._contracts:
            self._publish(key, ts)

    def _sync_locks(self, state: TradingState) -> None:
        """Cap the order notional of flat instruments at one cent unless ACTIVE (see module doc)."""
        engine = self.risk_engine
        for key, instrument_id in self._ids.items():
            lock = state != TradingState.ACTIVE and key not in self._positions
            if lock and instrument_id not in self._locked:
                self._locked[instrument_id] = engine.max_notional_per_order(instrument_id)
                engine.set_max_notional_per_order(instrument_id, _LOCK_NOTIONAL)
            elif not lock and instrument_id in self._locked:
                engine.set_max_notional_per_order(instrument_id, self._locked.pop(instrument_id))

    def halt_reason(self) -> str:
        """Why trading is not active: the halts' switches, then the blocks (empty when active)."""
        reasons = [h.switch for h in self._ledger.halts] + sorted(self._blocks)
        return ",".join(reasons)

    @property
    def trading_state(self) -> TradingState:
        """The state this actor put the risk engine in."""
        return self._state

    @property
    def ledger(self) -> RiskLedger:
        """The persisted ledger (trading day, daily-loss reference, peak, halts)."""
        return self._ledger

    def _persist(self) -> None:
        if self._state_path is not None:
            save_ledger(self._state_path, self._ledger)
            self._persisted_ns = self.clock.timestamp_ns()

    def _alert(self, ts: int, kind: str, reason: str, detail: str) -> None:
        alert = RiskAlert(ts, kind, reason, detail, trading_state_to_str(self._state))
        self.alerts.append(alert)
        self.msgbus.publish(ALERT_TOPIC, alert)
        self._alerts_journal.write(
            {
                "ts": iso(ts),
                "ts_ns": ts,
                "kind": kind,
                "reason": reason,
                "detail": detail,
                "trading_state": alert.trading_state,
            },
        )
        if kind in ("halt", "reducing"):
            self.log.warning(f"risk {kind}: {reason} {detail}")

    # -- MACRO EVENTS -------------------------------------------------------------------------------

    def _load_calendar(self, path: Path) -> None:
        """Schedule the calendar's releases, each once it is known (``ts_init``): no look-ahead."""
        from catalog.macro import load_macro_calendar

        now = self.clock.timestamp_ns()
        horizon = self.risk.macro.resume_minutes_after * 60 * _NS_PER_S
        for event in load_macro_calendar(path):
            if event.importance < self.risk.macro.min_importance or event.ts_event + horizon <= now:
                continue
            if event.ts_init <= now:
                self._schedule_macro(event)
            else:
                self.clock.set_time_alert(
                    f"known-macro:{event.name}@{event.ts_event}",
                    unix_nanos_to_dt(event.ts_init),
                    lambda _, known=event: self._schedule_macro(known),
                )

    def _schedule_macro(self, event: MacroEvent) -> None:
        """Open a flat window ``flat_minutes_before`` a high-impact release, close it after."""
        cfg = self.risk.macro
        key = (event.name, event.ts_event)
        if event.importance < cfg.min_importance or key in self._macro_seen:
            return
        self._macro_seen.add(key)
        start = event.ts_event - cfg.flat_minutes_before * 60 * _NS_PER_S
        end = event.ts_event + cfg.resume_minutes_after * 60 * _NS_PER_S
        now = self.clock.timestamp_ns()
        if end <= now:
            return
        reason = f"macro:{event.name}"
        name = f"{reason}@{event.ts_event}"

        def open_window(_: object) -> None:
            self._block(reason, f"{event.name} at {iso(event.ts_event)}", self.clock.timestamp_ns(), cfg.flatten)

        def close_window(_: object) -> None:
            self._unblock(reason, self.clock.timestamp_ns(), f"{event.name} window over")

        if start <= now:
            open_window(None)
        else:
            self.clock.set_time_alert(f"open-{name}", unix_nanos_to_dt(start), open_window)
        self.clock.set_time_alert(f"close-{name}", unix_nanos_to_dt(end), close_window)

    # -- RISK STATE ---------------------------------------------------------------------------------

    def atr(self, key: str, now_ns: int) -> float:
        """ATR of a contract: the feature when published and finite, else the actor's own ATR."""
        contract = self._contracts[key]
        value = self._features.get(key, self.risk.features.atr, now_ns)
        if value is not None and math.isfinite(value) and value > 0:
            return value
        return float(contract.atr.value) if contract.atr.initialized else math.nan

    def regime(self, key: str, now_ns: int) -> str:
        """The regime driving the leverage cap and the trailing stop (defensive when unknown)."""
        stale = self.risk.features.stale_after_s * _NS_PER_S
        return effective_regime(self._regimes.get(key), now_ns, stale, 0.0)

    def _blocks_for(self, key: str, now_ns: int) -> list[str]:
        names = self.risk.features
        book = self._features
        blocks = market_blocks(
            spoofing_score=book.get(key, names.spoofing_score, now_ns),
            volume_anomaly=book.get(key, names.volume_anomaly, now_ns),
            news_sentiment=book.get(key, names.news_sentiment, now_ns),
            settings=self.risk.blocks,
        )
        minutes = book.get(key, names.minutes_to_event, now_ns)
        if minutes is not None and math.isfinite(minutes) and 0 <= minutes <= self.risk.macro.flat_minutes_before:
            blocks.append("macro:soon")
        return blocks

    def compute_state(self, key: str, now_ns: int) -> tuple[RiskState, dict[str, Any]]:
        """The risk state of contract ``key`` now, and the inputs behind it (for the journal)."""
        self._refresh_account()  # margin in use moves with prices: read the free balance afresh
        contract = self._contracts[key]
        cfg = self.risk
        atr = self.atr(key, now_ns)
        regime = self.regime(key, now_ns)
        warm = math.isfinite(atr) and atr > 0
        tick = contract.tick
        # distances on the tick grid (rounded away from the entry): what orders can use, and a state
        # that changes when an order would change rather than with every wiggle of ATR
        stop = math.ceil(cfg.exits.stop_atr * atr / tick - 1e-9) * tick if warm else 0.0
        trail_atr = cfg.exits.trail_atr.get(regime, 0.0)  # type: ignore[call-overload]
        trail = math.ceil(trail_atr * atr / tick - 1e-9) * tick if warm and trail_atr else 0.0
        leverage = float(cfg.leverage[regime])  # type: ignore[index]
        blocks = self._blocks_for(key, now_ns)
        measured = self._equity()
        allowed = 0
        equity = free = math.nan
        quote = self._quotes.get(key)
        price = (quote.bid_price.as_double() + quote.ask_price.as_double()) / 2 if quote else contract.last_close
        if measured is not None:
            equity, free = measured
        if (
            warm
            and measured is not None
            and self._state == TradingState.ACTIVE
            and math.isfinite(price)
            and not [b for b in blocks if b != "news:bearish"]
        ):
            held = self._held_by_root()
            held_root = abs(held.get(contract.root, 0))
            room = contract_room(
                cfg.kill_switches.contracts_limit(contract.root),
                cfg.kill_switches.max_contracts_total,
                held_root,
                sum(abs(v) for v in held.values()),
            )
            others = sum(
                abs(p.quantity.as_double()) * self._contracts[k].multiplier * self._mark(k, p)
                for k, p in self._positions.items()
            )
            lev_room = leverage_contracts(equity - others / max(leverage, 1.0), price, contract.multiplier, leverage)
            margin_room = margin_contracts(
                free, price, contract.multiplier, contract.margin_init, cfg.sizing.margin_buffer
            )
            allowed = max(0, min(room, lev_room, margin_room))
        state = RiskState(
            instrument_id=self._ids[key],
            allowed_contracts=int(allowed),
            leverage_cap=leverage,
            stop_distance=stop,
            target_distance=math.floor(stop * cfg.exits.targets_r[0] / tick + 1e-9) * tick,
            trailing_distance=trail,
            trading_state=trading_state_to_str(self._state),
            halt_reason=self.halt_reason() if self._state != TradingState.ACTIVE else "",
            ts_event=now_ns,
            ts_init=now_ns,
        )
        inputs = {"regime": regime, "atr": atr, "blocks": blocks, "equity": equity, "price": price}
        return state, inputs

    def _mark(self, key: str, position: Position) -> float:
        quote = self._quotes.get(key)
        if quote is None:
            return position.avg_px_open
        return (quote.bid_price.as_double() + quote.ask_price.as_double()) / 2

    def _publish(self, key: str, ts: int) -> None:
        state, inputs = self.compute_state(key, ts)
        signature = (
            state.allowed_contracts,
            state.leverage_cap,
            state.stop_distance,
            state.target_distance,
            state.trailing_distance,
            state.trading_state,
            state.halt_reason,
        )
        if self._published.get(key) == signature:
            return
        self._published[key] = signature
        self.publish_data(DataType(RiskState), state)
        self._states_journal.write(
            {
                "ts": iso(ts),
                "instrument_id": key,
                "allowed_contracts": state.allowed_contracts,
                "leverage_cap": state.leverage_cap,
                "stop_distance": state.stop_distance,
                "target_distance": state.target_distance,
                "trailing_distance": state.trailing_distance,
                "trading_state": state.trading_state,
                "halt_reason": state.halt_reason,
                **inputs,
            },
        )
