"""The MIA strategy: signal providers routed by regime, sized and bounded by the risk actor.

One instance trades every configured root (ES and MNQ by default) on its active contract. On each
decision bar of a root:

- with a position open, it manages it: it trails the venue-held stop (entries made in a mode whose
  regime has a trailing distance in ``risk.yaml``, 1.5 x ATR in trend), and closes the position on a
  regime change (when the entry's mode says so), a microstructure anomaly, bearish news (longs) or
  an imminent high-impact release;
- flat, it routes to the mode of the instrument's regime (trend, range or defensive, from
  ``RegimeState``; defensive when unknown, stale or unconfident), asks that mode's providers for a
  ``TradeSignal`` and enters only if the best one's probability exceeds the mode's threshold (0.65 by
  default), nothing blocks that side, and the risk actor's latest ``RiskState`` for the contract is
  ACTIVE with contracts allowed. A 2 x ATR stop closer than the spread plus ``min_stop_ticks`` is
  widened to that distance (and the size computed on the wider stop), never placed inside the spread.

Size is fractional Kelly on the signal's probability and the plan's reward-to-risk
(``mia_strategies.risk.sizing``), scaled by ``atr_dynamic``, order-flow imbalance and the mode, and
capped by the risk state (and by the routing regime's leverage cap when the router reads a more
defensive regime than the risk actor did). Exits are placed at entry and held by the venue: a stop
at the risk state's stop distance (2 x ATR) and partial targets at 1:2 and 1:4 (or before a call
wall, put wall or key strike when closer). The risk actor's flatten commands (halts, CVaR, macro
windows) and the session close are handled by the base class. At most one entry is made per bar time
across roots, so every entry is sized against a risk state that already knows every other position.

Every entry and exit fill writes a JSON snapshot (``trade_snapshots.jsonl``: trade id, instrument,
price, regime probabilities, the features and signal behind the decision, the risk state) and every
stop, trailing move, partial, target and exit a line of ``risk_events.jsonl``, in the run folder.
"""

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import DataType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import PositionSide
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.events import PositionClosed
from nautilus_trader.model.events import PositionOpened
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import InstrumentId

from catalog.types import FeatureVector
from catalog.types import RegimeState
from catalog.types import RiskState
from mia_strategies import sessions
from mia_strategies.ops.alerts import METRICS_TOPIC
from mia_strategies.risk.bar_rules import BUILTIN_FEATURE_SETS
from mia_strategies.risk.config import RiskConfig
from mia_strategies.risk.config import RouterConfig
from mia_strategies.risk.exits import ExitPlan
from mia_strategies.risk.exits import minimum_stop_distance
from mia_strategies.risk.exits import payoff_ratio
from mia_strategies.risk.exits import plan_exits
from mia_strategies.risk.exits import stop_clears_spread
from mia_strategies.risk.exits import trail_stop
from mia_strategies.risk.journal import RISK_EVENTS
from mia_strategies.risk.journal import TRADE_SNAPSHOTS
from mia_strategies.risk.journal import Journal
from mia_strategies.risk.journal import iso
from mia_strategies.risk.market import FeatureBook
from mia_strategies.risk.market import RegimeView
from mia_strategies.risk.market import blocks_side
from mia_strategies.risk.market import effective_regime
from mia_strategies.risk.market import market_blocks
from mia_strategies.risk.market import option_levels
from mia_strategies.risk.sizing import SizeDecision
from mia_strategies.risk.sizing import contract_room
from mia_strategies.risk.sizing import leverage_contracts
from mia_strategies.risk.sizing import size_entry
from mia_strategies.signals import SignalContext
from mia_strategies.signals import TradeSignal
from mia_strategies.signals import best_signal
from mia_strategies.signals import build_providers
from mia_strategies.signals import close_providers
from mia_strategies.signals import history_needed
from mia_strategies.signals import prepare_providers
from mia_strategies.strategies.base import MiaStrategy
from mia_strategies.strategies.base import MiaStrategyConfig


_NS_PER_S = 1_000_000_000
_WORKING = (OrderStatus.ACCEPTED, OrderStatus.TRIGGERED, OrderStatus.PARTIALLY_FILLED)
#: After a partial target, the stop is resized this long later (once the venue's own sync is seen).
_RESIZE_DELAY_NS = 1_000_000


class MiaRouterConfig(MiaStrategyConfig, frozen=True):
    """Settings of the MIA strategy (``trade_size`` is unused: size comes from the risk rules).

    Parameters
    ----------
    router : dict
        ``config/router_config.yaml`` as a mapping (validated by ``RouterConfig`` at start).
    risk : dict
        ``config/risk.yaml`` as a mapping (the same one the risk actor runs with).
    run_dir : str, optional
        Folder for ``trade_snapshots.jsonl`` and ``risk_events.jsonl``; None writes nothing.
    feature_sets : dict[str, list[str]]
        Ordered feature names of each feature set; the bar-rule set is always known.
    """

    router: dict[str, Any] = msgspec.field(default_factory=dict)
    risk: dict[str, Any] = msgspec.field(default_factory=dict)
    run_dir: str | None = None
    feature_sets: dict[str, list[str]] = msgspec.field(default_factory=dict)


class _History:
    """Recent bars of one contract, oldest first."""

    def __init__(self, size: int) -> None:
        self.close: deque[float] = deque(maxlen=size)
        self.high: deque[float] = deque(maxlen=size)
        self.low: deque[float] = deque(maxlen=size)

    def update(self, bar: Bar) -> None:
        self.close.append(bar.close.as_double())
        self.high.append(bar.high.as_double())
        self.low.append(bar.low.as_double())


@dataclass
class _Trade:
    """One entry and what was decided for it, until its position closes."""

    trade_id: str
    root: str
    instrument_id: str
    side: int
    mode: str
    stop_id: str
    target_ids: list[str]
    initial_stop: float
    trail: bool
    decision: dict[str, Any]
    trailed: bool = False
    #: Consecutive decision bars whose routing regime differed from ``mode``.
    regime_mismatch_bars: int = 0
    trail_distance: float = 0.0
    exit_reason: str = ""


def _risk_state_dict(state: RiskState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "instrument_id": state.instrument_id.value,
        "allowed_contracts": state.allowed_contracts,
        "leverage_cap": state.leverage_cap,
        "stop_distance": state.stop_distance,
        "target_distance": state.target_distance,
        "trailing_distance": state.trailing_distance,
        "trading_state": state.trading_state,
        "halt_reason": state.halt_reason,
        "ts": iso(state.ts_event),
    }


def _regime_dict(view: RegimeView | None, effective: str) -> dict[str, Any]:
    if view is None:
        return {"label": None, "effective": effective, "probabilities": {}, "confidence": None}
    return {
        "label": view.label,
        "effective": effective,
        "probabilities": dict(view.probabilities),
        "confidence": view.confidence,
        "ts": iso(view.ts),
    }


def _plan_dict(plan: ExitPlan) -> dict[str, Any]:
    return {
        "stop_price": plan.stop_price,
        "stop_distance": plan.stop_distance,
        "targets": [
            {"quantity": leg.quantity, "price": leg.price, "r": leg.r_multiple, "source": leg.source}
            for leg in plan.legs
        ],
    }


def _size_dict(size: SizeDecision) -> dict[str, Any]:
    return {
        "contracts": size.contracts,
        "kelly": size.kelly,
        "risk_fraction": size.risk_fraction,
        "kelly_contracts": size.kelly_contracts,
        "volatility_scale": size.volatility_scale,
        "orderflow_scale": size.orderflow_scale,
        "cap": size.cap,
    }


class MiaRouterStrategy(MiaStrategy):
    """The MIA strategy for every configured root at once (see the module docstring)."""

    def __init__(self, config: MiaRouterConfig) -> None:
        super().__init__(config)
        self._mia = config
        self.router = RouterConfig.model_validate(config.router)
        self.risk = RiskConfig.model_validate(config.risk)
        self._providers = build_providers(self.router)
        self._history_size = history_needed(self._providers)
        self._stale_ns = self.risk.features.stale_after_s * _NS_PER_S
        self._features = FeatureBook({**BUILTIN_FEATURE_SETS, **config.feature_sets}, self._stale_ns)
        self._regimes: dict[str, RegimeView] = {}
        self._risk_states: dict[str, RiskState] = {}
        self._histories: dict[str, _History] = {}
        self._trades: dict[str, _Trade] = {}
        self._order_trade: dict[str, _Trade] = {}
        self._cooldown: dict[str, int] = {}
        self._last_entry_ts = -1
        self._resizes = 0
        self._resize_queue: deque[_Trade] = deque()
        run_dir = Path(config.run_dir) if config.run_dir else None
        self._snapshots = Journal(run_dir, TRADE_SNAPSHOTS)
        self._events = Journal(run_dir, RISK_EVENTS)
        #: Every decision made (entries, exits, trailing moves), for tests and diagnostics.
        self.decisions: list[tuple[int, str, str, str]] = []

    # -- LIFECYCLE ----------------------------------------------------------------------------------

    def on_mia_start(self) -> None:
        """Load the providers' models (no file read on a bar), subscribe features, regimes, risk states."""
        prepare_providers(self._providers, sorted({slot.root for slot in self._slots_by_id.values()}))
        self.subscribe_data(DataType(FeatureVector))
        self.subscribe_data(DataType(RegimeState))
        self.subscribe_data(DataType(RiskState))

    def on_stop(self) -> None:
        """Close the journals and stop the providers' background workers."""
        super().on_stop()
        close_providers(self._providers)
        self._snapshots.close()
        self._events.close()

    # -- DATA ---------------------------------------------------------------------------------------

    def on_data(self, data: Any) -> None:
        """Keep the latest features, regime and risk state of every contract."""
        if isinstance(data, RiskState):
            self._risk_states[data.instrument_id.value] = data
        elif isinstance(data, FeatureVector):
            self._features.update(data)
        elif isinstance(data, RegimeState):
            self._regimes[data.instrument_id.value] = RegimeView.from_state(data)

    def _history(self, key: str) -> _History:
        history = self._histories.get(key)
        if history is None:
            history = self._histories[key] = _History(self._history_size)
        return history

    def on_warmup_bar(self, root: str, bar: Bar) -> None:
        """Keep the next contract's history warm before its roll."""
        self._history(bar.bar_type.instrument_id.value).update(bar)

    def on_decision_bar(self, root: str, bar: Bar) -> None:
        """Manage the open trade of ``root``, or look for an entry when flat."""
        key = bar.bar_type.instrument_id.value
        self._history(key).update(bar)
        ts = bar.ts_event
        if not self.is_flat(root):
            trade = self._trade_of_root(root)
            if trade is not None:
                self._cooldown[root] = self.router.modes[trade.mode].cooldown_bars  # type: ignore[index]
                self._manage(trade, ts)
            return
        if self._cooldown.get(root, 0) > 0:
            self._cooldown[root] -= 1
            return
        self._try_enter(root, key, ts)

    # -- MARKET VIEW --------------------------------------------------------------------------------

    def _regime(self, key: str, ts: int) -> str:
        return effective_regime(self._regimes.get(key), ts, self._stale_ns, self.router.min_regime_confidence)

    def regime_label(self, instrument_id: str, ts_ns: int) -> str:
        """The routing regime (defensive when unknown, stale or unconfident): what this strategy trades on."""
        return self._regime(instrument_id, ts_ns)

    def _feature(self, key: str, name: str, ts: int) -> float | None:
        return self._features.get(key, name, ts)

    def _blocks(self, key: str, ts: int) -> list[str]:
        names = self.risk.features
        blocks = market_blocks(
            spoofing_score=self._feature(key, names.spoofing_score, ts),
            volume_anomaly=self._feature(key, names.volume_anomaly, ts),
            news_sentiment=self._feature(key, names.news_sentiment, ts),
            settings=self.risk.blocks,
        )
        minutes = self._feature(key, names.minutes_to_event, ts)
        if minutes is not None and math.isfinite(minutes) and 0 <= minutes <= self.risk.macro.flat_minutes_before:
            blocks.append("macro:soon")
        return blocks

    def _equity(self) -> float:
        account = self.portfolio.account(self._venue)
        if account is None:
            return math.nan
        balance = account.balance_total(account.base_currency)
        equity = balance.as_double() if balance is not None else math.nan
        for position in self.cache.positions_open(venue=self._venue, strategy_id=self.id):
            quote = self.cache.quote_tick(position.instrument_id)
            if quote is not None:
                px = quote.bid_price if position.side == PositionSide.LONG else quote.ask_price
                equity += position.unrealized_pnl(px).as_double()
        return equity

    def _held(self) -> tuple[dict[str, int], int]:
        """Contracts this strategy holds per root and in total (open positions)."""
        held: dict[str, int] = {}
        for position in self.cache.positions_open(venue=self._venue, strategy_id=self.id):
            slot = self._slots_by_id.get(position.instrument_id.value)
            if slot is not None:
                held[slot.root] = held.get(slot.root, 0) + int(position.quantity.as_double())
        return held, sum(held.values())

    # -- ENTRIES ------------------------------------------------------------------------------------

    def _try_enter(self, root: str, key: str, ts: int) -> None:
        if ts == self._last_entry_ts or not self.can_enter(ts):
            return
        state = self._risk_states.get(key)
        if state is None or state.trading_state != "ACTIVE" or state.allowed_contracts <= 0:
            return
        if not (math.isfinite(state.stop_distance) and state.stop_distance > 0):
            return  # warm-up: no ATR yet, so no stop distance and no entry
        regime = self._regime(key, ts)
        mode = self.router.modes[regime]  # type: ignore[index]
        if not mode.enabled or (mode.rth_only and not sessions.is_rth(ts)):
            return
        history = self._histories[key]
        atr = state.stop_distance / self.risk.exits.stop_atr
        view = self._regimes.get(key)
        context = SignalContext(
            root=root,
            instrument_id=key,
            ts_ns=ts,
            close=np.fromiter(history.close, dtype=np.float64),
            high=np.fromiter(history.high, dtype=np.float64),
            low=np.fromiter(history.low, dtype=np.float64),
            atr=atr,
            regime=regime,
            regime_probabilities=dict(view.probabilities) if view is not None else {},
            features=self._features.snapshot(key, ts),
            position=0,  # entries are looked for only when flat; RL observations include the position
        )
        signal = best_signal([self._providers[name] for name in mode.providers], context)
        self._publish_diagnostics(mode.providers, root, key, ts)
        if signal is None or not signal.probability > self.router.threshold(regime):
            return
        blocks = self._blocks(key, ts)
        if blocks_side(blocks, signal.direction):
            self._decide(ts, key, "skip", f"{','.join(blocks)} blocks a {'long' if signal.direction > 0 else 'short'}")
            return
        self._enter(root, key, ts, regime, signal, state, context)

    def _publish_diagnostics(self, names: list[str], root: str, key: str, ts: int) -> None:
        """Providers that report their health (the RL ensemble) publish it on ``mia.metrics`` once per ask."""
        for name in names:
            diagnostics = getattr(self._providers[name], "diagnostics", None)
            payload = diagnostics(root) if diagnostics is not None else None
            if payload:
                self.msgbus.publish(METRICS_TOPIC, {"instrument_id": key, "ts_event": ts, **payload})

    def _enter(
        self,
        root: str,
        key: str,
        ts: int,
        regime: str,
        signal: TradeSignal,
        state: RiskState,
        context: SignalContext,
    ) -> None:
        instrument_id = InstrumentId.from_str(key)
        instrument = self.instrument(instrument_id)
        quote = self.cache.quote_tick(instrument_id)
        if quote is None:
            return  # no market yet: never enter blind
        bid, ask = quote.bid_price.as_double(), quote.ask_price.as_double()
        tick = instrument.price_increment.as_double()
        stop_distance = state.stop_distance  # checked finite and positive in _try_enter
        if not stop_clears_spread(stop_distance, bid, ask, tick, self.risk.exits.min_stop_ticks):
            stop_distance = minimum_stop_distance(bid, ask, tick, self.risk.exits.min_stop_ticks)
            self._decide(ts, key, "widen", f"stop {state.stop_distance:g} -> {stop_distance:g} (spread {ask - bid:g})")
        held, held_total = self._held()
        limits = self.risk.kill_switches
        room = contract_room(limits.contracts_limit(root), limits.max_contracts_total, held.get(root, 0), held_total)
        names = self.risk.features
        mode = self.router.modes[regime]  # type: ignore[index]
        equity = self._equity()
        multiplier = instrument.multiplier.as_double()
        cap = min(state.allowed_contracts, room)
        mode_leverage = float(self.risk.leverage[regime])  # type: ignore[index]
        if mode_leverage < state.leverage_cap:
            # the risk actor trusts a regime the router does not (defensive here): the tighter cap rules
            cap = min(cap, self._leverage_room(key, mode_leverage, equity, (bid + ask) / 2, multiplier))
        size = size_entry(
            probability=signal.probability,
            payoff=signal.payoff if signal.payoff else payoff_ratio(self.risk.exits),
            equity=equity,
            stop_distance=stop_distance,
            multiplier=multiplier,
            cap=cap,
            settings=self.risk.sizing,
            atr_dynamic=self._feature(key, names.atr_dynamic, ts),
            orderflow_imbalance=self._feature(key, names.orderflow_imbalance, ts),
            mode_scale=mode.size_scale,
        )
        if size.contracts <= 0:
            return
        reference = ask if signal.direction > 0 else bid
        plan = plan_exits(
            side=signal.direction,
            entry_price=reference,
            stop_distance=stop_distance,
            quantity=size.contracts,
            tick=tick,
            settings=self.risk.exits,
            levels=option_levels(self._features, key, ts, names, self._histories[key].close[-1]),
        )
        side = OrderSide.BUY if signal.direction > 0 else OrderSide.SELL
        order_list = self.enter_with_exits(
            root,
            instrument_id,
            side,
            size.contracts,
            plan.stop_price,
            [(leg.quantity, leg.price) for leg in plan.legs],
            reference,
        )
        if order_list is None:
            return
        self._last_entry_ts = ts
        entry, stop, *targets = order_list.orders
        decision = {
            "ts": iso(ts),
            "mode": regime,
            "reference_price": reference,
            "bid": bid,
            "ask": ask,
            "regime": _regime_dict(self._regimes.get(key), regime),
            "features": dict(context.features),
            "signal": signal.to_dict(),
            "risk_state": _risk_state_dict(state),
            "size": _size_dict(size),
            "plan": _plan_dict(plan),
        }
        trail_atr = self.risk.exits.trail_atr.get(regime)  # type: ignore[call-overload]
        trade = _Trade(
            trade_id=entry.client_order_id.value,
            root=root,
            instrument_id=key,
            side=signal.direction,
            mode=regime,
            stop_id=stop.client_order_id.value,
            target_ids=[t.client_order_id.value for t in targets],
            initial_stop=plan.stop_price,
            trail=trail_atr is not None,
            decision=decision,
            trail_distance=state.trailing_distance,
        )
        self._track(trade, [o.client_order_id.value for o in order_list.orders])
        self._decide(
            ts, key, "entry", f"{side.name} {size.contracts} @~{reference:g} p={signal.probability:.3f} {regime}"
        )

    def _leverage_room(self, key: str, leverage: float, equity: float, price: float, multiplier: float) -> int:
        """Contracts of ``key`` that keep this strategy's total notional within ``leverage x equity``."""
        others = 0.0
        for position in self.cache.positions_open(venue=self._venue, strategy_id=self.id):
            if position.instrument_id.value == key:
                continue
            quote = self.cache.quote_tick(position.instrument_id)
            mark = (
                (quote.bid_price.as_double() + quote.ask_price.as_double()) / 2
                if quote is not None
                else position.avg_px_open
            )
            others += abs(position.quantity.as_double()) * position.multiplier.as_double() * mark
        return leverage_contracts(equity - others / leverage, price, multiplier, leverage)

    def _track(self, trade: _Trade, order_ids: list[str]) -> None:
        self._trades[trade.instrument_id] = trade
        for order_id in order_ids:
            self._order_trade[order_id] = trade

    def _trade_of_root(self, root: str) -> _Trade | None:
        for trade in self._trades.values():
            if trade.root == root:
                return trade
        return None

    # -- MANAGING A TRADE ---------------------------------------------------------------------------

    def _manage(self, trade: _Trade, ts: int) -> None:
        key = trade.instrument_id
        if not self.cache.positions_open(instrument_id=InstrumentId.from_str(key), strategy_id=self.id):
            return  # entry still working, or a close already filled
        blocks = self._blocks(key, ts)
        if blocks_side(blocks, trade.side):
            reason = next(b for b in blocks if b != "news:bearish" or trade.side > 0)
            self._exit(trade, ts, reason)
            return
        mode = self.router.modes[trade.mode]  # type: ignore[index]
        if mode.exit_on_regime_change:
            changed = self._regime(key, ts) != trade.mode
            trade.regime_mismatch_bars = trade.regime_mismatch_bars + 1 if changed else 0
            if trade.regime_mismatch_bars >= mode.regime_exit_confirm_bars:
                self._exit(trade, ts, "regime_change")
                return
        if trade.trail:
            self._trail(trade, ts)

    def _exit(self, trade: _Trade, ts: int, reason: str) -> None:
        if trade.exit_reason:
            return
        trade.exit_reason = reason
        self._decide(ts, trade.instrument_id, "exit", reason)
        self.flatten_root(trade.root, reason)

    def _trail(self, trade: _Trade, ts: int) -> None:
        """Move the venue-held stop toward the market by the current trailing distance (never back)."""
        instrument_id = InstrumentId.from_str(trade.instrument_id)
        stop = self.cache.order(ClientOrderId(trade.stop_id))
        quote = self.cache.quote_tick(instrument_id)
        if stop is None or quote is None or stop.status not in _WORKING:
            return
        state = self._risk_states.get(trade.instrument_id)
        if state is not None and state.trailing_distance > 0:
            trade.trail_distance = state.trailing_distance
        if trade.trail_distance <= 0:
            return
        instrument = self.instrument(instrument_id)
        market = quote.bid_price.as_double() if trade.side > 0 else quote.ask_price.as_double()
        current = stop.trigger_price.as_double()
        tick = instrument.price_increment.as_double()
        atr = trade.trail_distance / max(self.risk.exits.trail_atr.get(trade.mode, 1.0), 1e-9)  # type: ignore[call-overload]
        new = trail_stop(trade.side, current, market, trade.trail_distance, tick, self.risk.exits.trail_step_atr * atr)
        if new is None:
            return
        self.modify_order(stop, trigger_price=instrument.make_price(new))
        trade.trailed = True
        self._event(ts, trade, "trail", f"{current:g} -> {new:g} ({trade.trail_distance:.2f} behind {market:g})")
        self._decide(ts, trade.instrument_id, "trail", f"{current:g}->{new:g}")

    def reopen_after_roll(
        self, root: str, instrument_id: InstrumentId, side: OrderSide, quantity: int, ref: float
    ) -> None:
        """Reopen a rolled trade in the new contract with the risk state's stop and fresh targets."""
        key = instrument_id.value
        state = self._risk_states.get(key)
        old = self._trade_of_root(root)
        if state is None or state.allowed_contracts <= 0 or state.stop_distance <= 0 or old is None:
            self.log.warning(f"roll of {root} into {key} not reopened (no risk state or nothing allowed)")
            return
        instrument = self.instrument(instrument_id)
        quantity = min(quantity, state.allowed_contracts)
        direction = 1 if side == OrderSide.BUY else -1
        tick = instrument.price_increment.as_double()
        stop_distance = state.stop_distance
        quote = self.cache.quote_tick(instrument_id)
        if quote is not None:  # the new contract's spread may be wider: a stop inside it would fire at once
            bid, ask = quote.bid_price.as_double(), quote.ask_price.as_double()
            if not stop_clears_spread(stop_distance, bid, ask, tick, self.risk.exits.min_stop_ticks):
                stop_distance = minimum_stop_distance(bid, ask, tick, self.risk.exits.min_stop_ticks)
        plan = plan_exits(
            side=direction,
            entry_price=ref,
            stop_distance=stop_distance,
            quantity=quantity,
            tick=tick,
            settings=self.risk.exits,
            levels=option_levels(self._features, key, self.clock.timestamp_ns(), self.risk.features, ref),
        )
        order_list = self.enter_with_exits(
            root, instrument_id, side, quantity, plan.stop_price, [(leg.quantity, leg.price) for leg in plan.legs], ref
        )
        if order_list is None:
            return
        entry, stop, *targets = order_list.orders
        decision = {**old.decision, "rolled_from": old.instrument_id, "plan": _plan_dict(plan)}
        trade = _Trade(
            trade_id=entry.client_order_id.value,
            root=root,
            instrument_id=key,
            side=direction,
            mode=old.mode,
            stop_id=stop.client_order_id.value,
            target_ids=[t.client_order_id.value for t in targets],
            initial_stop=plan.stop_price,
            trail=old.trail,
            decision=decision,
            trail_distance=state.trailing_distance or old.trail_distance,
        )
        self._track(trade, [o.client_order_id.value for o in order_list.orders])
        self._decide(self.clock.timestamp_ns(), key, "entry", f"roll reopen {side.name} {quantity}")

    # -- EVENTS -------------------------------------------------------------------------------------

    def on_order_filled(self, event: OrderFilled) -> None:
        """Snapshot every entry and exit fill; shrink the stop after a partial target."""
        super().on_order_filled(event)
        order_id = event.client_order_id.value
        trade = self._order_trade.get(order_id) or self._trades.get(event.instrument_id.value)
        order = self.cache.order(event.client_order_id)
        if trade is None or order is None:
            return
        tags = order.tags or []
        ts = event.ts_event
        if "entry" in tags:
            self._snapshot("entry", trade, event, ts)
            return
        reason = next((t.removeprefix("exit:") for t in tags if t.startswith("exit:")), "exit")
        remaining = self._position_qty(event.instrument_id)
        if reason == "stop":
            kind = "trailing_stop" if trade.trailed else "stop"
        elif reason.startswith("target"):
            kind = "partial" if remaining > 0 else "target"
        else:
            kind = "exit"
        if kind != "exit":
            self._exit_reason[event.instrument_id.value] = kind  # the trade record's exit reason
        self._event(ts, trade, kind, f"{reason} {event.order_side.name} {event.last_qty} @ {event.last_px}")
        self._snapshot("exit", trade, event, ts, event_kind=kind, reason=reason, remaining=remaining)
        if kind == "partial":
            # Check once every event of this fill has been handled: a venue that syncs reduce-only
            # orders itself (the simulated one does) has resized the stop by then.
            self._resizes += 1
            self.clock.set_time_alert_ns(f"resize-stop-{self._resizes}", ts + _RESIZE_DELAY_NS, self._on_resize)
            self._resize_queue.append(trade)

    def _on_resize(self, event: object) -> None:
        if self._resize_queue:
            self.resize_stop(self._resize_queue.popleft())

    def resize_stop(self, trade: _Trade) -> None:
        """After a partial target, make the stop cover exactly the remaining position (never more)."""
        stop = self.cache.order(ClientOrderId(trade.stop_id))
        remaining = self._position_qty(InstrumentId.from_str(trade.instrument_id))
        if stop is None or stop.status not in _WORKING or remaining <= 0:
            return
        if int(stop.leaves_qty.as_double()) > remaining:
            instrument = self.instrument(stop.instrument_id)
            self.modify_order(stop, quantity=instrument.make_qty(stop.filled_qty.as_double() + remaining))

    def on_order_denied(self, event: OrderDenied) -> None:
        """A denied entry drops its trade; closes may be retried (base class)."""
        super().on_order_denied(event)
        self._drop_if_entry(event.client_order_id.value, f"denied: {event.reason}", event.ts_event)

    def on_order_rejected(self, event: OrderRejected) -> None:
        """A rejected entry drops its trade; closes may be retried (base class)."""
        super().on_order_rejected(event)
        self._drop_if_entry(event.client_order_id.value, f"rejected: {event.reason}", event.ts_event)

    def _drop_if_entry(self, order_id: str, why: str, ts: int) -> None:
        trade = self._order_trade.get(order_id)
        if trade is not None and order_id == trade.trade_id:
            self._trades.pop(trade.instrument_id, None)
            self._decide(ts, trade.instrument_id, "entry_failed", why)

    def on_position_opened(self, event: PositionOpened) -> None:
        """Tag the trade record with the mode the entry was made in."""
        super().on_position_opened(event)
        trade = self._trades.get(event.instrument_id.value)
        opened = self._open.get(event.instrument_id.value)
        if trade is not None and opened is not None:
            opened.regime = trade.mode

    def on_position_closed(self, event: PositionClosed) -> None:
        """Finish the trade (the base class records it and may reopen a roll)."""
        key = event.instrument_id.value
        closed = self._trades.get(key)
        super().on_position_closed(event)
        if closed is not None and self._trades.get(key) is closed:
            del self._trades[key]
            for order_id in [closed.trade_id, closed.stop_id, *closed.target_ids]:
                self._order_trade.pop(order_id, None)

    # -- RECORDS ------------------------------------------------------------------------------------

    def _position_qty(self, instrument_id: InstrumentId) -> int:
        positions = self.cache.positions_open(instrument_id=instrument_id, strategy_id=self.id)
        return sum(int(p.quantity.as_double()) for p in positions)

    def _decide(self, ts: int, key: str, kind: str, detail: str) -> None:
        self.decisions.append((ts, key, kind, detail))

    def _event(self, ts: int, trade: _Trade, kind: str, detail: str) -> None:
        self._events.write(
            {
                "ts": iso(ts),
                "root": trade.root,
                "instrument_id": trade.instrument_id,
                "trade_id": trade.trade_id,
                "event": kind,
                "detail": detail,
            },
        )

    def _snapshot(self, kind: str, trade: _Trade, fill: OrderFilled, ts: int, **extra: Any) -> None:
        key = trade.instrument_id
        position = self.cache.position(fill.position_id) if fill.position_id is not None else None
        record: dict[str, Any] = {
            "kind": kind,
            "trade_id": trade.trade_id,
            "position_id": fill.position_id.value if fill.position_id is not None else None,
            "client_order_id": fill.client_order_id.value,
            "instrument_id": key,
            "root": trade.root,
            "ts": iso(ts),
            "side": fill.order_side.name,
            "quantity": fill.last_qty.as_double(),
            "price": fill.last_px.as_double(),
            "commission": fill.commission.as_double(),
            "mode": trade.mode,
            "decision": trade.decision,
            **extra,
        }
        if kind == "exit":
            record["regime"] = _regime_dict(self._regimes.get(key), self._regime(key, ts))
            record["features"] = self._features.snapshot(key, ts)
            record["risk_state"] = _risk_state_dict(self._risk_states.get(key))
            record["trailed"] = trade.trailed
            if position is not None:
                record["realized_pnl"] = position.realized_pnl.as_double() if position.realized_pnl else None
        self._snapshots.write(record)
