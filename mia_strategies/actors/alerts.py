"""The alert actor: turns what happens in a node into alerts for people.

It listens, never decides: risk events, order events, client state changes and model diagnostics
arrive on the message bus; regimes and risk states arrive as custom data. Each becomes an
:class:`~mia_strategies.ops.alerts.Alert` handed to the :class:`AlertManager`, whose worker threads
do the network I/O, so the event loop only pays for a dictionary lookup and a queue put.

Sources, and the alert kind each raises (rules in ``config/alerts.yaml``):

=========================================  ======================================================
``mia.alerts`` payloads (mappings)          whatever ``kind`` they carry (``disconnect`` /
                                            ``reconnect`` from adapters, anything else)
``mia.alerts`` ``RiskAlert`` objects        ``kill_switch`` (halt: urgent; reducing: error),
                                            ``resume``, ``risk_block`` (block; unblock as info)
``events.risk`` ``TradingStateChanged``     ``halt`` / ``resume``, only when the risk actor has not
                                            explained the change within ``engine_state_grace_s``
``RiskState`` data                          ``risk_state`` (off by default)
``events.order.*``                          ``rejection`` (rejected, denied, modify/cancel
                                            rejected), ``slippage`` (fill vs reference price)
``events.system.*`` for data/exec clients   ``disconnect`` (DEGRADED, FAULTED), ``reconnect``
quotes of ``instrument_ids``                ``stale_data`` while the session is open, then
                                            ``reconnect`` when quotes resume
``RegimeState`` data                        ``regime_change``
``mia.metrics`` bus payloads                ``cvar_breach``, ``tail_risk``, ``ensemble_imbalance``
session close (timer)                       ``daily_pnl``
=========================================  ======================================================

The ``mia.metrics`` payload (any component may publish it, once per bar):
``{"instrument_id": "ESZ25.GLBX", "ts_event": ns, "source": "qrdqn", "cvar_loss": 0.8,
"cvar_limit": 0.5, "quantiles": [...ascending return quantiles...], "ensemble_weights":
{"sac": 0.2, "ppo": 0.7, "qrdqn": 0.1}}``; every key but ``instrument_id`` is optional.
"""

import datetime as dt
import math
import os
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from pathlib import Path
from typing import Any

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.enums import ComponentState
from nautilus_trader.common.messages import ComponentStateChanged
from nautilus_trader.common.messages import TradingStateChanged
from nautilus_trader.config import ActorConfig
from nautilus_trader.config import ImportableActorConfig
from nautilus_trader.core.data import Data
from nautilus_trader.core.datetime import unix_nanos_to_dt
from nautilus_trader.model.data import DataType
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.enums import TradingState
from nautilus_trader.model.events import OrderCancelRejected
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderInitialized
from nautilus_trader.model.events import OrderModifyRejected
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.events import PositionClosed
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Venue

from catalog.types import RegimeState
from catalog.types import RiskState
from mia_strategies import sessions
from mia_strategies.ops.alerts import ALERTS_TOPIC
from mia_strategies.ops.alerts import METRICS_TOPIC
from mia_strategies.ops.alerts import Alert
from mia_strategies.ops.alerts import AlertManager
from mia_strategies.ops.alerts import AlertsConfig
from mia_strategies.ops.alerts import Channel
from mia_strategies.ops.alerts import LogChannel
from mia_strategies.ops.alerts import LogSettings
from mia_strategies.ops.alerts import Priority
from mia_strategies.ops.alerts import build_channels
from mia_strategies.ops.alerts import load_alerts_config


#: File the actor appends every raised alert to, inside the run folder (read by the dashboard).
ALERTS_FILE = "alerts.jsonl"

_NS = 1_000_000_000


class AlertActorConfig(ActorConfig, frozen=True):
    """Configuration of :class:`AlertActor`.

    Parameters
    ----------
    alerts_file : str, optional
        Path of ``alerts.yaml``; default: the config folder's (defaults when there is none).
    run_dir : str, optional
        Run folder: every raised alert is appended to ``RUN_DIR/alerts.jsonl``.
    deliver : bool, default True
        Send through the configured channels; False keeps alerts in the log and ``alerts.jsonl``
        (backtests, dry runs).
    venue : str, default "GLBX"
        Venue of the account whose equity the daily summary reports.
    instrument_ids : tuple[str, ...], default ()
        Instruments whose quotes the stale-data watchdog watches (``thresholds.stale_data_s``).
    daily_summary : bool, default True
        Send the daily P&L summary at each session close.
    engine_state_grace_s : float, default 2.0
        A risk-engine trading-state change is only alerted if the risk actor has not explained it
        (a ``RiskAlert`` with the same state) within this many seconds of node time.
    """

    alerts_file: str | None = None
    run_dir: str | None = None
    deliver: bool = True
    venue: str = "GLBX"
    instrument_ids: tuple[str, ...] = ()
    daily_summary: bool = True
    engine_state_grace_s: float = 2.0


def alert_actor_config(
    run_dir: Path | None,
    *,
    alerts_file: Path | None = None,
    deliver: bool = True,
    instrument_ids: list[str] | None = None,
    venue: str = "GLBX",
) -> ImportableActorConfig:
    """The actor's importable config, for any node builder (``mia paper``, ``mia live``, backtests)."""
    return ImportableActorConfig(
        actor_path="mia_strategies.actors.alerts:AlertActor",
        config_path="mia_strategies.actors.alerts:AlertActorConfig",
        config={
            "alerts_file": str(alerts_file) if alerts_file else None,
            "run_dir": str(run_dir) if run_dir else None,
            "deliver": deliver,
            "instrument_ids": list(instrument_ids or []),
            "venue": venue,
        },
    )


def tail_mean(quantiles: Sequence[float], fraction: float) -> float:
    """Mean of the lowest ``fraction`` of the quantiles (at least one): a CVaR estimate from QR-DQN."""
    values = sorted(float(q) for q in quantiles if math.isfinite(float(q)))
    if not values:
        return math.nan
    count = max(1, math.ceil(fraction * len(values) - 1e-9))
    return sum(values[:count]) / count


def ensemble_balance(weights: Mapping[str, float]) -> tuple[str, float, float]:
    """(heaviest model, its normalised weight, effective number of models ``1 / sum(w^2)``)."""
    clean = {k: max(0.0, float(v)) for k, v in weights.items() if math.isfinite(float(v))}
    total = sum(clean.values())
    if total <= 0:
        return "", math.nan, math.nan
    norm = {k: v / total for k, v in clean.items()}
    top = max(norm, key=lambda k: (norm[k], k))
    return top, norm[top], 1.0 / sum(v * v for v in norm.values())


def slippage_in_ticks(side: OrderSide, fill_px: float, reference_px: float, tick: float) -> float:
    """Adverse slippage in ticks: positive when a buy paid more or a sell got less than the reference."""
    sign = 1.0 if side == OrderSide.BUY else -1.0
    return sign * (fill_px - reference_px) / tick


@dataclass
class _DayBook:
    """Realised P&L of the current trading day, by instrument."""

    day: str = ""
    pnl: dict[str, float] = field(default_factory=dict)
    trades: dict[str, int] = field(default_factory=dict)
    wins: int = 0
    currency: str = ""


class AlertActor(Actor):
    """Raise alerts from node events; delivery happens in the alert manager's threads."""

    def __init__(self, config: AlertActorConfig) -> None:
        super().__init__(config)
        self.manager: AlertManager | None = None
        self._regimes: dict[str, str] = {}
        self._regime_run: dict[str, tuple[str, int]] = {}
        self._risk_states: dict[str, str] = {}
        self._trading_state = TradingState.ACTIVE
        self._client_states: dict[str, ComponentState] = {}
        self._reference_px: dict[str, float] = {}
        self._day = _DayBook()
        self._last_quote_ns: dict[str, int] = {}
        self._stale: set[str] = set()
        self._started_ns = 0
        self._settings: AlertsConfig = AlertsConfig()
        self._explained: dict[str, int] = {}
        self._engine_pending: dict[str, tuple[str, Callable[[], None]]] = {}

    # -- LIFECYCLE ---------------------------------------------------------------------------------

    def on_start(self) -> None:
        """Build the manager, subscribe to every source, arm the daily summary and the watchdog."""
        cfg: AlertActorConfig = self.config
        self._settings = load_alerts_config(Path(cfg.alerts_file) if cfg.alerts_file else None)
        self.manager = self._build_manager(cfg)
        self._started_ns = self.clock.timestamp_ns()
        self.msgbus.subscribe(ALERTS_TOPIC, self._on_bus_alert)
        self.msgbus.subscribe(METRICS_TOPIC, self._on_metrics)
        self.msgbus.subscribe("events.risk", self._on_risk_event)
        self.msgbus.subscribe("events.order.*", self._on_order_event)
        self.msgbus.subscribe("events.position.*", self._on_position_event)
        self.msgbus.subscribe("events.system.*", self._on_system_event)
        self.subscribe_data(DataType(RegimeState))
        self.subscribe_data(DataType(RiskState))
        stale_s = self._settings.thresholds.stale_data_s
        if stale_s > 0 and cfg.instrument_ids:
            for value in cfg.instrument_ids:
                self.subscribe_quote_ticks(InstrumentId.from_str(value))
            self.clock.set_timer(
                "mia-alerts-stale-data",
                interval=dt.timedelta(seconds=max(1.0, stale_s / 4)),
                callback=self._check_stale,
            )
        if cfg.daily_summary:
            self._arm_daily_summary(self._started_ns)
        channels = ", ".join(self.manager.channel_names) or "none"
        self.log.info(f"alerts: channels {channels}; deliver={cfg.deliver}")

    def _build_manager(self, cfg: AlertActorConfig) -> AlertManager:
        run_log = Path(cfg.run_dir) / ALERTS_FILE if cfg.run_dir else None
        channels: list[Channel] = []
        if cfg.deliver:
            try:
                channels = build_channels(self._settings, os.environ, run_log)
            except Exception as err:  # a missing secret must not stop trading: log, keep the log channel
                self.log.error(f"alerts: {err}; delivering to the log only")
        if not any(c.name == "log" for c in channels):
            channels.append(LogChannel(LogSettings(min_priority="info"), run_log))
        return AlertManager(
            self._settings,
            channels=channels,
            clock=lambda: self.clock.timestamp_ns() / _NS,
        ).start()

    def on_stop(self) -> None:
        """Unsubscribe and give queued alerts a moment to leave."""
        for topic, handler in (
            (ALERTS_TOPIC, self._on_bus_alert),
            (METRICS_TOPIC, self._on_metrics),
            ("events.risk", self._on_risk_event),
            ("events.order.*", self._on_order_event),
            ("events.position.*", self._on_position_event),
            ("events.system.*", self._on_system_event),
        ):
            self.msgbus.unsubscribe(topic, handler)
        if "mia-alerts-stale-data" in self.clock.timer_names:
            self.clock.cancel_timer("mia-alerts-stale-data")
        for timer, send in list(self._engine_pending.values()):  # a state change just before stop is not lost
            if timer in self.clock.timer_names:
                self.clock.cancel_timer(timer)
            send()
        if self.manager is not None:
            self.manager.close(timeout=5.0)

    # -- RAISING -------------------------------------------------------------------------------------

    def raise_alert(
        self,
        kind: str,
        title: str,
        message: str = "",
        *,
        instrument_id: str = "",
        ts_event: int = 0,
        priority: Priority | None = None,
        fields: Mapping[str, str | int | float | bool] | None = None,
        dedup_key: str = "",
    ) -> None:
        """Build an alert of ``kind`` (priority from its rule unless given) and submit it."""
        if self.manager is None or not self.manager.is_enabled(kind):
            return
        alert = Alert(
            kind=kind,
            priority=priority if priority is not None else self.manager.priority_of(kind),
            title=title,
            message=message,
            instrument_id=instrument_id,
            ts_event=ts_event or self.clock.timestamp_ns(),
            source=self.id.value,
            dedup_key=dedup_key,
            fields=dict(fields or {}),
        )
        self._submit(alert)

    def _submit(self, alert: Alert) -> None:
        assert self.manager is not None
        outcome = self.manager.submit(alert)
        text = f"ALERT {alert.priority.name} {alert.kind}: {alert.title} ({outcome})"
        if alert.priority >= Priority.ERROR:
            self.log.error(text)
        elif alert.priority >= Priority.WARNING:
            self.log.warning(text)
        else:
            self.log.info(text)

    # -- BUS -----------------------------------------------------------------------------------------

    def _on_bus_alert(self, payload: Any) -> None:
        """An alert published on ``mia.alerts`` by another component (risk actor, adapters)."""
        if self.manager is None:
            return
        if _is_risk_alert(payload):
            self._on_risk_alert(payload)
            return
        kind = str(payload.get("kind", "")) if isinstance(payload, Mapping) else getattr(payload, "kind", "")
        try:
            alert = Alert.from_payload(payload, default_priority=self.manager.priority_of(kind))
        except (ValueError, TypeError) as err:
            self.log.error(f"alerts: ignored malformed payload on {ALERTS_TOPIC}: {err}")
            return
        if not alert.ts_event:
            alert = replace(alert, ts_event=self.clock.timestamp_ns())
        self._submit(alert)

    def _on_risk_alert(self, alert: Any) -> None:
        """The risk actor's ``RiskAlert`` (kind halt, reducing, resume, block, unblock)."""
        ts = int(getattr(alert, "ts_ns", 0) or self.clock.timestamp_ns())
        kind = str(alert.kind)
        reason = str(getattr(alert, "reason", "") or "")
        detail = str(getattr(alert, "detail", "") or "")
        state = str(getattr(alert, "trading_state", "") or "")
        self._explained[state] = ts
        pending = self._engine_pending.pop(state, None)
        if pending is not None and pending[0] in self.clock.timer_names:
            self.clock.cancel_timer(pending[0])
        fields: dict[str, str | int | float | bool] = {"reason": reason, "trading_state": state}
        title_reason = f": {reason}" if reason else ""
        if kind == "halt":
            self.raise_alert("kill_switch", f"risk HALT{title_reason}", detail, ts_event=ts, fields=fields)
        elif kind == "reducing":
            self.raise_alert(
                "kill_switch",
                f"risk REDUCING{title_reason}",
                detail,
                ts_event=ts,
                priority=Priority.ERROR,
                fields=fields,
            )
        elif kind == "resume":
            self.raise_alert("resume", "risk: trading ACTIVE again", detail, ts_event=ts, dedup_key=f"resume|{ts}")
        elif kind in ("block", "unblock"):
            priority = Priority.INFO if kind == "unblock" else None
            self.raise_alert("risk_block", f"risk {kind}{title_reason}", detail, ts_event=ts, priority=priority)
        else:
            self.raise_alert("risk_state", f"risk {kind}{title_reason}", detail, ts_event=ts, fields=fields)

    def _on_metrics(self, payload: Any) -> None:
        """Model diagnostics: CVaR against its limit, the QR-DQN tail, the ensemble's balance."""
        if not isinstance(payload, Mapping):
            self.log.error(f"alerts: ignored {type(payload).__name__} on {METRICS_TOPIC} (expected a mapping)")
            return
        limits = self._settings.thresholds
        iid = str(payload.get("instrument_id", ""))
        ts = int(payload.get("ts_event", 0) or 0)
        source = str(payload.get("source", "model"))
        cvar = _number(payload.get("cvar_loss"))
        limit = _number(payload.get("cvar_limit"))
        limit = limit if limit is not None else limits.cvar_loss_limit
        if cvar is not None and limit is not None and cvar > limit:
            self.raise_alert(
                "cvar_breach",
                f"{_short(iid)} cvar_loss {cvar:.4g} above limit {limit:.4g}",
                f"{source}: expected shortfall of the policy exceeds its constraint",
                instrument_id=iid,
                ts_event=ts,
                fields={"cvar_loss": cvar, "limit": limit, "source": source},
                dedup_key=f"cvar_breach|{iid}|{source}",
            )
        quantiles = payload.get("quantiles")
        if limits.tail_loss_limit is not None and isinstance(quantiles, Sequence) and quantiles:
            tail = tail_mean([float(q) for q in quantiles], limits.tail_fraction)
            if math.isfinite(tail) and tail < -limits.tail_loss_limit:
                self.raise_alert(
                    "tail_risk",
                    f"{_short(iid)} QR-DQN tail risk: lowest {limits.tail_fraction:.0%} mean {tail:.4g}",
                    f"{source}: the return distribution's lower tail is beyond -{limits.tail_loss_limit:g}",
                    instrument_id=iid,
                    ts_event=ts,
                    fields={"tail_mean": tail, "limit": -limits.tail_loss_limit, "quantiles": len(quantiles)},
                    dedup_key=f"tail_risk|{iid}|{source}",
                )
        weights = payload.get("ensemble_weights")
        if isinstance(weights, Mapping) and weights:
            top, top_weight, effective = ensemble_balance(weights)
            if top and (top_weight > limits.ensemble_max_weight or effective < limits.ensemble_min_effective):
                self.raise_alert(
                    "ensemble_imbalance",
                    f"{_short(iid)} ensemble dominated by {top} ({top_weight:.0%})",
                    f"effective number of models {effective:.2f} of {len(weights)}",
                    instrument_id=iid,
                    ts_event=ts,
                    fields={"model": top, "weight": round(top_weight, 4), "effective": round(effective, 4)},
                    dedup_key=f"ensemble_imbalance|{iid}",
                )

    def _on_risk_event(self, event: Any) -> None:
        """The risk engine's trading state: alerted after a grace period unless the risk actor explained it."""
        if not isinstance(event, TradingStateChanged):
            return
        state = event.state
        previous, self._trading_state = self._trading_state, state
        if state == previous:
            return
        name = state.name
        grace_ns = int(self.config.engine_state_grace_s * _NS)
        explained = self._explained.get(name)
        if explained is not None and abs(event.ts_event - explained) <= grace_ns:
            return
        timer = f"mia-alerts-engine-{name}-{event.ts_event}"

        def send() -> None:
            self._engine_state_alert(state, previous, event.ts_event)

        self._engine_pending[name] = (timer, send)
        self.clock.set_time_alert(timer, unix_nanos_to_dt(self.clock.timestamp_ns() + grace_ns), lambda _: send())

    def _engine_state_alert(self, state: TradingState, previous: TradingState, ts: int) -> None:
        self._engine_pending.pop(state.name, None)
        if state == TradingState.HALTED:
            message = "no new orders are accepted"
            self.raise_alert("halt", "trading HALTED by the risk engine", message, ts_event=ts)
        elif state == TradingState.REDUCING:
            self.raise_alert(
                "halt",
                "trading REDUCING: only orders that reduce positions are accepted",
                ts_event=ts,
                priority=Priority.ERROR,
            )
        else:
            self.raise_alert(
                "resume", f"trading ACTIVE again (was {previous.name})", ts_event=ts, dedup_key=f"resume|{ts}"
            )

    def _on_order_event(self, event: Any) -> None:
        """Rejections and denials; slippage of fills against the reference price at submission."""
        if isinstance(event, OrderInitialized):
            self._remember_reference(event)
        elif isinstance(event, OrderFilled):
            self._check_slippage(event)
        elif isinstance(event, OrderRejected | OrderDenied | OrderModifyRejected | OrderCancelRejected):
            what = {
                OrderRejected: "rejected by the venue",
                OrderDenied: "denied by the risk engine",
                OrderModifyRejected: "modify rejected",
                OrderCancelRejected: "cancel rejected",
            }[type(event)]
            iid = event.instrument_id.value
            reason = str(getattr(event, "reason", ""))
            self.raise_alert(
                "rejection",
                f"{_short(iid)} order {what}",
                reason,
                instrument_id=iid,
                ts_event=event.ts_event,
                fields={"client_order_id": event.client_order_id.value, "strategy": event.strategy_id.value},
                dedup_key=f"rejection|{iid}|{type(event).__name__}|{reason[:60]}",
            )

    def _remember_reference(self, event: OrderInitialized) -> None:
        if event.order_type != OrderType.MARKET:
            return
        quote = self.cache.quote_tick(event.instrument_id)
        if quote is None:
            return
        px = quote.ask_price if event.side == OrderSide.BUY else quote.bid_price
        self._reference_px[event.client_order_id.value] = px.as_double()

    def _check_slippage(self, event: OrderFilled) -> None:
        key = event.client_order_id.value
        order = self.cache.order(event.client_order_id)
        instrument = self.cache.instrument(event.instrument_id)
        reference = self._reference_px.get(key)
        if order is not None and order.is_closed:
            self._reference_px.pop(key, None)
        if order is not None and reference is None and order.order_type == OrderType.STOP_MARKET:
            reference = order.trigger_price.as_double()
        if reference is None or instrument is None:
            return
        tick = instrument.price_increment.as_double()
        fill_px = event.last_px.as_double()
        ticks = slippage_in_ticks(event.order_side, fill_px, reference, tick)
        if ticks < self._settings.thresholds.slippage_ticks:
            return
        iid = event.instrument_id.value
        cost = ticks * tick * instrument.multiplier.as_double() * event.last_qty.as_double()
        self.raise_alert(
            "slippage",
            f"{_short(iid)} fill slipped {ticks:.1f} ticks",
            f"{event.order_side.name} {event.last_qty} at {fill_px:g} vs {reference:g} ({cost:,.2f} {event.currency})",
            instrument_id=iid,
            ts_event=event.ts_event,
            fields={"ticks": round(ticks, 2), "fill_px": fill_px, "reference_px": reference, "cost": round(cost, 2)},
            dedup_key=f"slippage|{key}",
        )

    def _on_position_event(self, event: Any) -> None:
        """Closed positions feed the day's realised P&L."""
        if not isinstance(event, PositionClosed):
            return
        self._roll_day(event.ts_event)
        iid = event.instrument_id.value
        pnl = event.realized_pnl.as_double()
        book = self._day
        book.pnl[iid] = book.pnl.get(iid, 0.0) + pnl
        book.trades[iid] = book.trades.get(iid, 0) + 1
        book.wins += int(pnl > 0)
        book.currency = event.realized_pnl.currency.code

    def _on_system_event(self, event: Any) -> None:
        """Data and execution clients that degrade or fault are disconnected; RUNNING again reconnects."""
        if not isinstance(event, ComponentStateChanged) or not isinstance(event.component_id, ClientId):
            return
        name = event.component_id.value
        previous = self._client_states.get(name)
        state = event.state
        self._client_states[name] = state
        if state in (ComponentState.DEGRADED, ComponentState.FAULTED):
            self.raise_alert(
                "disconnect",
                f"{name} {state.name.lower()}: connection lost",
                f"{event.component_type} is {state.name}",
                ts_event=event.ts_event,
                dedup_key=f"disconnect|{name}",
            )
        elif state == ComponentState.RUNNING and previous in (ComponentState.DEGRADED, ComponentState.FAULTED):
            self.raise_alert(
                "reconnect",
                f"{name} reconnected",
                f"{event.component_type} is RUNNING again",
                ts_event=event.ts_event,
                dedup_key=f"reconnect|{name}|{event.ts_event}",
            )

    # -- DATA ----------------------------------------------------------------------------------------

    def on_data(self, data: Data) -> None:
        """Regime changes and (when enabled) risk-state transitions."""
        if isinstance(data, RegimeState):
            self._on_regime(data)
        elif isinstance(data, RiskState):
            self._on_risk_state(data)

    def _on_regime(self, state: RegimeState) -> None:
        """Announce a new regime once it has held ``regime_min_bars`` bars at enough confidence."""
        iid = state.instrument_id.value
        label, count = self._regime_run.get(iid, ("", 0))
        count = count + 1 if state.regime == label else 1
        self._regime_run[iid] = (state.regime, count)
        announced = self._regimes.get(iid)
        if announced is None:  # the first regime seen is the baseline, not a change
            self._regimes[iid] = state.regime
            return
        limits = self._settings.thresholds
        if state.regime == announced or count < limits.regime_min_bars:
            return
        if state.confidence < limits.regime_min_confidence:
            return
        self._regimes[iid] = state.regime
        priority = None
        if state.regime == "defensive" and self.manager is not None:
            priority = max(self.manager.priority_of("regime_change"), Priority.WARNING)
        self.raise_alert(
            "regime_change",
            f"{_short(iid)} regime {announced} -> {state.regime}",
            f"confidence {state.confidence:.0%}, {count} bars",
            instrument_id=iid,
            ts_event=state.ts_event,
            priority=priority,
            fields={"from": announced, "to": state.regime, "confidence": round(float(state.confidence), 4)},
            dedup_key=f"regime_change|{iid}|{announced}|{state.regime}",
        )

    def _on_risk_state(self, state: RiskState) -> None:
        iid = state.instrument_id.value
        previous = self._risk_states.get(iid, "ACTIVE")
        self._risk_states[iid] = state.trading_state
        if state.trading_state == previous or state.trading_state == "ACTIVE":
            return
        priority = Priority.URGENT if state.trading_state == "HALTED" else None
        self.raise_alert(
            "risk_state",
            f"{_short(iid)} risk state {state.trading_state}",
            state.halt_reason,
            instrument_id=iid,
            ts_event=state.ts_event,
            priority=priority,
            dedup_key=f"risk_state|{iid}|{state.trading_state}",
        )

    def on_quote_tick(self, tick: QuoteTick) -> None:
        """Remember when each watched instrument last quoted; say so when a stale feed comes back."""
        iid = tick.instrument_id.value
        self._last_quote_ns[iid] = self.clock.timestamp_ns()
        if iid in self._stale:
            self._stale.discard(iid)
            self.raise_alert(
                "reconnect",
                f"{_short(iid)} quotes resumed",
                instrument_id=iid,
                dedup_key=f"stale_resumed|{iid}|{tick.ts_event}",
            )

    def _check_stale(self, event: Any) -> None:
        now = self.clock.timestamp_ns()
        in_session_only = self._settings.thresholds.stale_data_in_session_only
        if in_session_only and not sessions.is_open(now):
            return
        limit_ns = int(self._settings.thresholds.stale_data_s * _NS)
        session_open = sessions.session_bounds(sessions.trading_day(now))[0] if in_session_only else 0
        for iid in self.config.instrument_ids:
            last = max(self._last_quote_ns.get(iid, 0), self._started_ns, session_open)
            if iid not in self._stale and now - last > limit_ns:
                self._stale.add(iid)
                self.raise_alert(
                    "stale_data",
                    f"{_short(iid)} no quotes for {(now - last) / _NS:.0f} s"
                    + (" in session" if in_session_only else ""),
                    "the data feed may be disconnected",
                    instrument_id=iid,
                    dedup_key=f"stale_data|{iid}",
                )

    # -- DAILY SUMMARY -------------------------------------------------------------------------------

    def _arm_daily_summary(self, now_ns: int) -> None:
        close = sessions.next_close_ns(now_ns)
        if close <= now_ns:
            close = sessions.next_close_ns(now_ns + 3600 * _NS)
        self.clock.set_time_alert(f"mia-daily-pnl-{close}", unix_nanos_to_dt(close), self._on_session_close)

    def _roll_day(self, ts_ns: int) -> None:
        day = sessions.trading_day(ts_ns).isoformat()
        if self._day.day != day:
            self._day = _DayBook(day=day)

    def _on_session_close(self, event: Any) -> None:
        """Send the day's realised P&L by instrument and the account equity, then arm the next one."""
        now = self.clock.timestamp_ns()
        day = sessions.trading_day(now - 1).isoformat()
        book = self._day if self._day.day == day else _DayBook(day=day)
        total = sum(book.pnl.values())
        trades = sum(book.trades.values())
        equity = self._equity()
        lines = [f"{_short(i)} {p:+,.2f} ({book.trades[i]} trades)" for i, p in sorted(book.pnl.items())]
        ccy = f" {book.currency}" if book.currency else ""
        message = "; ".join(lines) if lines else "no closed trades"
        if equity is not None:
            message += f"; equity {equity:,.2f}"
        fields: dict[str, str | int | float | bool] = {"day": day, "pnl": round(total, 2), "trades": trades}
        if trades:
            fields["win_rate"] = round(book.wins / trades, 4)
        self.raise_alert(
            "daily_pnl",
            f"daily P&L {day}: {total:+,.2f}{ccy}",
            message,
            ts_event=now,
            fields=fields,
            dedup_key=f"daily_pnl|{day}",
        )
        self._arm_daily_summary(now + 1)

    def _equity(self) -> float | None:
        venue = Venue(self.config.venue)
        account = self.portfolio.account(venue)
        if account is None:
            return None
        balance = account.balance_total(account.base_currency)
        unrealized = self.portfolio.unrealized_pnls(venue)
        total = balance.as_double() if balance is not None else 0.0
        return total + sum(m.as_double() for m in unrealized.values())


def _is_risk_alert(payload: Any) -> bool:
    """Duck-type the risk actor's ``RiskAlert`` (no import: the alert path must not need the risk package)."""
    return not isinstance(payload, Mapping) and all(
        hasattr(payload, name) for name in ("kind", "reason", "detail", "trading_state", "ts_ns")
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _short(instrument_id: str) -> str:
    """``ESZ25.GLBX`` -> ``ESZ25`` for compact titles."""
    return instrument_id.split(".")[0] if instrument_id else "account"


__all__ = [
    "ALERTS_FILE",
    "AlertActor",
    "AlertActorConfig",
    "alert_actor_config",
    "ensemble_balance",
    "slippage_in_ticks",
    "tail_mean",
]
