"""The base class of every MIA strategy: contract rolls, session closes, brackets, trade records.

A MIA strategy trades *roots* (ES, MNQ), not contracts. The runner hands it a schedule of contract
slots (which contract is active when, from the roll calendar); the base class routes bars of the
active contract to ``on_decision_bar`` and of the others to ``on_warmup_bar``, closes or rolls open
positions at the roll time, flattens before the daily halt, and records every closed trade with its
maximum adverse and favourable excursion (MAE/MFE) measured on the bid (longs) or ask (shorts).
Entries always carry a bracket (stop + target, one cancels the other) so the venue holds the
protection. The same class runs in backtest, paper and live.

Every MIA strategy also obeys the risk actor: it tracks nautilus's trading state (``events.risk``)
and enters only while it is ACTIVE, skips a roll's reopen otherwise, and flattens everything on a
``FlattenCommand`` (``mia.risk.flatten``). Flattening closes positions before cancelling their exit
orders, so a position is never left without its venue-held stop in between.
"""

from dataclasses import dataclass
from dataclasses import field

import msgspec
import pandas as pd
from nautilus_trader.common.messages import TradingStateChanged
from nautilus_trader.config import StrategyConfig
from nautilus_trader.core.datetime import unix_nanos_to_dt
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import ContingencyType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import PositionSide
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.enums import TradingState
from nautilus_trader.model.enums import TriggerType
from nautilus_trader.model.events import OrderCanceled
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.events import PositionClosed
from nautilus_trader.model.events import PositionOpened
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Quantity
from nautilus_trader.model.orders import LimitOrder
from nautilus_trader.model.orders import MarketOrder
from nautilus_trader.model.orders import OrderList
from nautilus_trader.model.orders import StopMarketOrder
from nautilus_trader.trading.strategy import Strategy

from mia_strategies import sessions
from mia_strategies.risk.messages import FLATTEN_TOPIC
from mia_strategies.risk.messages import FlattenCommand


class ContractSlot(msgspec.Struct, frozen=True):
    """One contract of a root and the window ``[active_from_ns, active_to_ns)`` it is traded in."""

    root: str
    instrument_id: str
    bar_type: str
    active_from_ns: int
    active_to_ns: int


class MiaStrategyConfig(StrategyConfig, frozen=True):
    """Settings every MIA strategy shares.

    Parameters
    ----------
    slots : list[ContractSlot]
        The contract schedule from the roll calendar, for every traded root.
    trade_size : dict[str, int]
        Contracts per entry by root.
    roll_policy : str, default "roll"
        At the roll time: "roll" closes the old contract and reopens in the new one, "close" only closes.
    flat_minutes_before_close : int, default 5
        Flatten and stop entering this many minutes before the daily halt or weekend close.
    venue : str, default "GLBX"
        The venue of every contract.
    """

    slots: list[ContractSlot]
    trade_size: dict[str, int]
    roll_policy: str = "roll"
    flat_minutes_before_close: int = 5
    venue: str = "GLBX"


@dataclass
class _OpenTrade:
    """MAE/MFE bookkeeping for one open position."""

    root: str
    side: PositionSide
    entry_px: float
    multiplier: float
    worst_px: float
    best_px: float
    regime: str = ""


@dataclass
class _Geometry:
    """Stop and target distances (points) of the last entry per root, reused when rolling."""

    stop_points: float
    target_points: float


@dataclass
class TradeRecord:
    """One closed round trip, as written to ``positions.csv``."""

    position_id: str
    instrument_id: str
    root: str
    side: str
    quantity: float
    opened_ts: pd.Timestamp
    closed_ts: pd.Timestamp
    avg_px_open: float
    avg_px_close: float
    realized_pnl: float
    commissions: float
    mae: float
    mfe: float
    mae_points: float
    mfe_points: float
    regime: str
    exit_reason: str


@dataclass
class RunRecorder:
    """What the strategy observed, read by the runner after the run (equity curve, closed trades)."""

    equity_ts: list[int] = field(default_factory=list)
    equity: list[float] = field(default_factory=list)
    trades: list[TradeRecord] = field(default_factory=list)
    rolls: list[tuple[int, str, str, str]] = field(default_factory=list)
    decision_bars: dict[str, int] = field(default_factory=dict)
    #: Decision bars per root and the regime the strategy saw at each (``unknown`` before the first).
    regime_bars: dict[str, dict[str, int]] = field(default_factory=dict)


class MiaStrategy(Strategy):
    """Base class: subclasses implement ``on_decision_bar`` (and optionally ``on_warmup_bar``)."""

    def __init__(self, config: MiaStrategyConfig) -> None:
        super().__init__(config)
        self._venue = Venue(config.venue)
        self._slots_by_bar: dict[str, ContractSlot] = {s.bar_type: s for s in config.slots}
        self._slots_by_id: dict[str, ContractSlot] = {s.instrument_id: s for s in config.slots}
        self._open: dict[str, _OpenTrade] = {}
        self._geometry: dict[str, _Geometry] = {}
        self._pending_roll: dict[str, tuple[str, OrderSide, Quantity]] = {}
        self._exit_reason: dict[str, str] = {}
        self._closing: set[str] = set()
        self.recorder = RunRecorder()
        #: nautilus's risk engine state as last announced on ``events.risk`` (ACTIVE until told).
        self.trading_state = TradingState.ACTIVE
        self._session_cache = (0, 0)  # (a time inside the session, its close): close lookups are slow

    # -- LIFECYCLE ---------------------------------------------------------------------------------

    def on_start(self) -> None:
        """Subscribe quotes (fills, MAE/MFE, paper trading) and bars of every slot; arm roll alerts."""
        now = self.clock.timestamp_ns()
        for slot in self.config.slots:
            instrument_id = InstrumentId.from_str(slot.instrument_id)
            if self.cache.instrument(instrument_id) is None:
                self.log.error(f"instrument {slot.instrument_id} not in cache; slot ignored")
                continue
            self.subscribe_quote_ticks(instrument_id)
            self.subscribe_bars(BarType.from_str(slot.bar_type))
            if slot.active_to_ns > now and self._successor(slot) is not None:
                self.clock.set_time_alert(
                    f"roll-{slot.instrument_id}",
                    unix_nanos_to_dt(slot.active_to_ns),
                    self._on_roll_alert,
                )
        if self.config.flat_minutes_before_close > 0:
            self._arm_session_flat(now)
        self.msgbus.subscribe("events.risk", self._on_risk_event)
        self.msgbus.subscribe(FLATTEN_TOPIC, self._on_flatten_command)
        self.on_mia_start()

    def on_stop(self) -> None:
        """Leave the risk topics."""
        self.msgbus.unsubscribe("events.risk", self._on_risk_event)
        self.msgbus.unsubscribe(FLATTEN_TOPIC, self._on_flatten_command)

    def _on_risk_event(self, event: object) -> None:
        if isinstance(event, TradingStateChanged):
            self.trading_state = event.state

    def _on_flatten_command(self, command: FlattenCommand) -> None:
        """The risk actor says close everything: drop any pending roll and flatten every root."""
        self._pending_roll.clear()
        for root in sorted({s.root for s in self.config.slots}):
            self.flatten_root(root, command.reason)

    def _arm_session_flat(self, now_ns: int) -> None:
        """Alert at the next session's flat time: it fires even when no data arrives before the close."""
        lead = self.config.flat_minutes_before_close * 60_000_000_000
        close = sessions.next_close_ns(now_ns)
        if close - lead <= now_ns:
            close = sessions.next_close_ns(close + 61 * 60_000_000_000)
        self.clock.set_time_alert(
            f"session-flat-{close}",
            unix_nanos_to_dt(close - lead),
            self._on_session_flat,
        )

    def _on_session_flat(self, event: object) -> None:
        for root in sorted({s.root for s in self.config.slots}):
            self.flatten_root(root, "session_close")
        self._arm_session_flat(self.clock.timestamp_ns())

    def on_mia_start(self) -> None:
        """Hook for subclasses (indicator set-up)."""

    # -- DATA ----------------------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        """Route a bar to the decision or warm-up hook depending on the roll calendar."""
        slot = self._slots_by_bar.get(str(bar.bar_type))
        if slot is None:
            return
        if slot.active_from_ns <= bar.ts_event < slot.active_to_ns:
            self._sample_equity(bar.ts_event)
            counts = self.recorder.decision_bars
            counts[slot.root] = counts.get(slot.root, 0) + 1
            per_regime = self.recorder.regime_bars.setdefault(slot.root, {})
            label = self.regime_label(slot.instrument_id, bar.ts_event) or "unknown"
            per_regime[label] = per_regime.get(label, 0) + 1
            self.on_decision_bar(slot.root, bar)
        else:
            self.on_warmup_bar(slot.root, bar)

    def on_decision_bar(self, root: str, bar: Bar) -> None:
        """Decide on a closed bar of the active contract of ``root``."""
        raise NotImplementedError

    def regime_label(self, instrument_id: str, ts_ns: int) -> str:
        """The regime the strategy acts on for ``instrument_id`` at ``ts_ns`` ("" when it uses none).

        Counted per decision bar and stamped on every round trip, so a run reports time and P&L per regime.
        """
        return ""

    def on_warmup_bar(self, root: str, bar: Bar) -> None:
        """Update state from a bar of a contract that is not traded now (the next one before a roll)."""

    def on_quote_tick(self, tick: QuoteTick) -> None:
        """Track the worst and best liquidation prices of an open position (MAE/MFE)."""
        trade = self._open.get(tick.instrument_id.value)
        if trade is None:
            return
        if trade.side == PositionSide.LONG:
            px = tick.bid_price.as_double()
            if px < trade.worst_px:
                trade.worst_px = px
            elif px > trade.best_px:
                trade.best_px = px
        else:
            px = tick.ask_price.as_double()
            if px > trade.worst_px:
                trade.worst_px = px
            elif px < trade.best_px:
                trade.best_px = px

    # -- ORDERS --------------------------------------------------------------------------------------

    def active_slot(self, root: str, ts_ns: int) -> ContractSlot | None:
        """The slot of ``root`` active at ``ts_ns``."""
        for slot in self.config.slots:
            if slot.root == root and slot.active_from_ns <= ts_ns < slot.active_to_ns:
                return slot
        return None

    def is_flat(self, root: str) -> bool:
        """No open position and no working order on any contract of ``root``."""
        for slot in self.config.slots:
            if slot.root != root:
                continue
            instrument_id = InstrumentId.from_str(slot.instrument_id)
            if not self.portfolio.is_flat(instrument_id):
                return False
            if self.cache.orders_open_count(instrument_id=instrument_id) > 0:
                return False
            if self.cache.orders_inflight_count(instrument_id=instrument_id) > 0:
                return False
        return root not in self._pending_roll

    def can_enter(self, ts_ns: int) -> bool:
        """Entries need an ACTIVE trading state and no session close within ``flat_minutes_before_close``."""
        return self.trading_state == TradingState.ACTIVE and not self._near_close(ts_ns)

    def enter_bracket(
        self,
        root: str,
        instrument_id: InstrumentId,
        side: OrderSide,
        quantity: int,
        stop_points: float,
        target_points: float,
        reference_px: float,
    ) -> None:
        """Enter at market with a protective stop and a take-profit held at the venue (OCO)."""
        instrument = self.cache.instrument(instrument_id)
        if instrument is None or quantity <= 0:
            return
        tick = instrument.price_increment.as_double()
        stop_points = max(stop_points, tick)
        target_points = max(target_points, tick)
        if side == OrderSide.BUY:
            sl = self._round_down(reference_px - stop_points, tick)
            tp = self._round_up(reference_px + target_points, tick)
        else:
            sl = self._round_up(reference_px + stop_points, tick)
            tp = self._round_down(reference_px - target_points, tick)
        order_list = self.order_factory.bracket(
            instrument_id=instrument_id,
            order_side=side,
            quantity=instrument.make_qty(quantity),
            sl_trigger_price=instrument.make_price(sl),
            tp_price=instrument.make_price(tp),
            entry_tags=["entry"],
            sl_tags=["exit:stop"],
            tp_tags=["exit:target"],
        )
        self._geometry[root] = _Geometry(stop_points, target_points)
        self.submit_order_list(order_list)

    def enter_with_exits(
        self,
        root: str,
        instrument_id: InstrumentId,
        side: OrderSide,
        quantity: int,
        stop_price: float,
        targets: list[tuple[int, float]],
        reference_px: float,
    ) -> OrderList | None:
        """Enter at market with a venue-held stop for the whole size and one take-profit per target.

        The entry is the OTO parent of every exit; the stop (reduce-only stop-market) covers the full
        quantity, each target (reduce-only limit) its own share. No OCO/OUO link joins them: after a
        partial target the venue's reduce-only sync (and ``resize_stop``) shrinks the stop to the
        position, and whichever exit flattens the position cancels the rest. Prices must already lie
        on the tick grid with the stop on the loss side and the targets on the profit side of
        ``reference_px`` (the price the plan was made at; kept for a roll's reopen).
        """
        instrument = self.cache.instrument(instrument_id)
        if instrument is None or quantity <= 0 or sum(q for q, _ in targets) != quantity:
            return None
        factory = self.order_factory
        now = self.clock.timestamp_ns()
        exit_side = OrderSide.SELL if side == OrderSide.BUY else OrderSide.BUY
        list_id = factory.generate_order_list_id()
        entry_id = factory.generate_client_order_id()
        stop_id = factory.generate_client_order_id()
        target_ids = [factory.generate_client_order_id() for _ in targets]
        entry = MarketOrder(
            trader_id=self.trader_id,
            strategy_id=self.id,
            instrument_id=instrument_id,
            client_order_id=entry_id,
            order_side=side,
            quantity=instrument.make_qty(quantity),
            init_id=UUID4(),
            ts_init=now,
            time_in_force=TimeInForce.GTC,
            contingency_type=ContingencyType.OTO,
            order_list_id=list_id,
            linked_order_ids=[stop_id, *target_ids],
            tags=["entry"],
        )
        stop = StopMarketOrder(
            trader_id=self.trader_id,
            strategy_id=self.id,
            instrument_id=instrument_id,
            client_order_id=stop_id,
            order_side=exit_side,
            quantity=instrument.make_qty(quantity),
            trigger_price=instrument.make_price(stop_price),
            trigger_type=TriggerType.DEFAULT,
            init_id=UUID4(),
            ts_init=now,
            time_in_force=TimeInForce.GTC,
            reduce_only=True,
            order_list_id=list_id,
            parent_order_id=entry_id,
            tags=["exit:stop"],
        )
        legs = [
            LimitOrder(
                trader_id=self.trader_id,
                strategy_id=self.id,
                instrument_id=instrument_id,
                client_order_id=target_id,
                order_side=exit_side,
                quantity=instrument.make_qty(qty),
                price=instrument.make_price(px),
                init_id=UUID4(),
                ts_init=now,
                time_in_force=TimeInForce.GTC,
                reduce_only=True,
                order_list_id=list_id,
                parent_order_id=entry_id,
                tags=[f"exit:target{i + 1}"],
            )
            for i, (target_id, (qty, px)) in enumerate(zip(target_ids, targets, strict=True))
        ]
        order_list = OrderList(list_id, [entry, stop, *legs])
        far = max(px for _, px in targets) if side == OrderSide.BUY else min(px for _, px in targets)
        self._geometry[root] = _Geometry(abs(reference_px - stop_price), abs(far - reference_px))
        self.submit_order_list(order_list)
        return order_list

    def flatten_root(self, root: str, reason: str) -> None:
        """Cancel working orders and close positions of every contract of ``root``."""
        for slot in self.config.slots:
            if slot.root == root:
                self._flatten_instrument(InstrumentId.from_str(slot.instrument_id), reason)

    def _flatten_instrument(self, instrument_id: InstrumentId, reason: str) -> None:
        """Cancel entries, close the position, then cancel exits: the stop stays until the close fills."""
        for order in self.cache.orders_open(instrument_id=instrument_id, strategy_id=self.id):
            if not order.is_reduce_only:
                self.cancel_order(order)
        key = instrument_id.value
        positions = self.cache.positions_open(instrument_id=instrument_id, strategy_id=self.id)
        if not positions:
            if self.cache.orders_open_count(instrument_id=instrument_id, strategy_id=self.id) > 0:
                self.cancel_all_orders(instrument_id)
            return
        if key in self._closing:
            return  # a reduce-only close is already working; never send a second one
        for position in positions:
            self._exit_reason[key] = reason
            self._closing.add(key)
            self.close_position(position, tags=[f"exit:{reason}"])

    # -- ROLLS ---------------------------------------------------------------------------------------

    def _successor(self, slot: ContractSlot) -> ContractSlot | None:
        for other in self.config.slots:
            if other.root == slot.root and other.active_from_ns == slot.active_to_ns:
                return other
        return None

    def _on_roll_alert(self, event: object) -> None:
        name = getattr(event, "name", "")
        old_id = name.removeprefix("roll-")
        slot = self._slots_by_id.get(old_id)
        if slot is None:
            return
        successor = self._successor(slot)
        instrument_id = InstrumentId.from_str(old_id)
        positions = self.cache.positions_open(instrument_id=instrument_id, strategy_id=self.id)
        self.recorder.rolls.append(
            (self.clock.timestamp_ns(), slot.root, old_id, successor.instrument_id if successor else ""),
        )
        if positions and successor is not None and self.config.roll_policy == "roll":
            position = positions[0]
            side = OrderSide.BUY if position.side == PositionSide.LONG else OrderSide.SELL
            self._pending_roll[slot.root] = (successor.instrument_id, side, position.quantity)
        self._flatten_instrument(instrument_id, "roll")

    def _complete_roll(self, root: str) -> None:
        """After the old contract is flat, reopen the same exposure in the new one with a bracket."""
        pending = self._pending_roll.pop(root, None)
        if pending is None:
            return
        new_id, side, quantity = pending
        instrument_id = InstrumentId.from_str(new_id)
        quote = self.cache.quote_tick(instrument_id)
        if quote is None or not self.can_enter(self.clock.timestamp_ns()):
            self.log.warning(f"roll of {root} into {new_id} not reopened (no quote, session close or trading state)")
            return
        ref = quote.ask_price.as_double() if side == OrderSide.BUY else quote.bid_price.as_double()
        self.reopen_after_roll(root, instrument_id, side, int(quantity.as_double()), ref)

    def reopen_after_roll(
        self, root: str, instrument_id: InstrumentId, side: OrderSide, quantity: int, ref: float
    ) -> None:
        """Reopen a rolled position in the new contract with the last entry's stop and target distances."""
        geometry = self._geometry.get(root)
        if geometry is None:
            self.log.warning(f"roll of {root} into {instrument_id} not reopened (no entry geometry)")
            return
        self.enter_bracket(root, instrument_id, side, quantity, geometry.stop_points, geometry.target_points, ref)

    # -- EVENTS --------------------------------------------------------------------------------------

    def on_order_filled(self, event: OrderFilled) -> None:
        """Remember which exit closed a position (stop, target, roll, session close)."""
        order = self.cache.order(event.client_order_id)
        if order is None or not order.tags:
            return
        for tag in order.tags:
            if tag.startswith("exit:"):
                self._exit_reason[event.instrument_id.value] = tag.removeprefix("exit:")

    def on_order_rejected(self, event: OrderRejected) -> None:
        """A rejected close may be retried: forget that it was working."""
        self._forget_close(event.client_order_id, event.instrument_id)

    def on_order_denied(self, event: OrderDenied) -> None:
        """A close denied by the risk engine may be retried later."""
        self._forget_close(event.client_order_id, event.instrument_id)

    def on_order_canceled(self, event: OrderCanceled) -> None:
        """A canceled close may be retried later."""
        self._forget_close(event.client_order_id, event.instrument_id)

    def _forget_close(self, client_order_id: ClientOrderId, instrument_id: InstrumentId) -> None:
        order = self.cache.order(client_order_id)
        if order is not None and order.is_reduce_only and not any(t == "exit:stop" for t in order.tags or []):
            self._closing.discard(instrument_id.value)

    def on_position_opened(self, event: PositionOpened) -> None:
        """Start MAE/MFE tracking from the average entry price."""
        instrument = self.cache.instrument(event.instrument_id)
        slot = self._slots_by_id.get(event.instrument_id.value)
        if instrument is None or slot is None:
            return
        px = event.avg_px_open
        self._open[event.instrument_id.value] = _OpenTrade(
            root=slot.root,
            side=event.side,
            entry_px=px,
            multiplier=instrument.multiplier.as_double(),
            worst_px=px,
            best_px=px,
            regime=self.regime_label(event.instrument_id.value, event.ts_event),
        )

    def on_position_closed(self, event: PositionClosed) -> None:
        """Record the round trip; cancel the sibling bracket leg; complete a pending roll."""
        key = event.instrument_id.value
        trade = self._open.pop(key, None)
        slot = self._slots_by_id.get(key)
        if self.cache.orders_open_count(instrument_id=event.instrument_id) > 0:
            self.cancel_all_orders(event.instrument_id)
        if trade is not None and slot is not None:
            self.recorder.trades.append(self._trade_record(event, trade))
        self._exit_reason.pop(key, None)
        self._closing.discard(key)
        if slot is not None and slot.root in self._pending_roll:
            self._complete_roll(slot.root)

    def _trade_record(self, event: PositionClosed, trade: _OpenTrade) -> TradeRecord:
        """Build the round trip from the closed event's final averages (entries may fill in parts)."""
        sign = 1.0 if trade.side == PositionSide.LONG else -1.0
        entry_px = float(event.avg_px_open)
        exit_px = float(event.avg_px_close)
        quantity = event.peak_qty.as_double()
        worst = min(trade.worst_px, exit_px) if sign > 0 else max(trade.worst_px, exit_px)
        best = max(trade.best_px, exit_px) if sign > 0 else min(trade.best_px, exit_px)
        mae_points = min(0.0, sign * (worst - entry_px))
        mfe_points = max(0.0, sign * (best - entry_px))
        scale = quantity * trade.multiplier
        commissions = sum(m.as_double() for m in self._commissions_of(event))
        return TradeRecord(
            position_id=event.position_id.value,
            instrument_id=event.instrument_id.value,
            root=trade.root,
            side="LONG" if sign > 0 else "SHORT",
            quantity=quantity,
            opened_ts=pd.Timestamp(event.ts_opened, tz="UTC"),
            closed_ts=pd.Timestamp(event.ts_closed, tz="UTC"),
            avg_px_open=entry_px,
            avg_px_close=exit_px,
            realized_pnl=event.realized_pnl.as_double(),
            commissions=commissions,
            mae=mae_points * scale,
            mfe=mfe_points * scale,
            mae_points=mae_points,
            mfe_points=mfe_points,
            regime=trade.regime,
            exit_reason=self._exit_reason.get(event.instrument_id.value, "unknown"),
        )

    def _commissions_of(self, event: PositionClosed) -> list:  # type: ignore[type-arg]
        position = self.cache.position(event.position_id)
        return list(position.commissions()) if position is not None else []

    # -- HELPERS -------------------------------------------------------------------------------------

    def _near_close(self, ts_ns: int) -> bool:
        minutes = self.config.flat_minutes_before_close
        if minutes <= 0:
            return False
        opened, close = self._session_cache
        if not opened <= ts_ns < close:  # the session of ts_ns is not the cached one
            close = sessions.next_close_ns(ts_ns)
            self._session_cache = (ts_ns, close)
        return close - ts_ns <= minutes * 60_000_000_000

    def _sample_equity(self, ts_ns: int) -> None:
        rec = self.recorder
        if rec.equity_ts and rec.equity_ts[-1] == ts_ns:
            return
        account = self.portfolio.account(self._venue)
        if account is None:
            return
        currency = account.base_currency
        balance = account.balance_total(currency)
        unrealized = self.portfolio.unrealized_pnls(self._venue)
        total = balance.as_double() if balance is not None else 0.0
        total += sum(m.as_double() for m in unrealized.values())
        rec.equity_ts.append(ts_ns)
        rec.equity.append(total)

    def instrument(self, instrument_id: InstrumentId) -> Instrument:
        """The cached instrument (it was checked at start)."""
        instrument = self.cache.instrument(instrument_id)
        assert instrument is not None
        return instrument

    @staticmethod
    def _round_down(px: float, tick: float) -> float:
        return int(px / tick + 1e-9) * tick if px >= 0 else -MiaStrategy._round_up(-px, tick)

    @staticmethod
    def _round_up(px: float, tick: float) -> float:
        steps = px / tick
        whole = int(steps)
        return (whole + (1 if steps - whole > 1e-9 else 0)) * tick
