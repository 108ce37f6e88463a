"""The node builder shared by ``mia paper`` and ``mia live``: a nautilus ``TradingNode`` for the roots.

The same strategy and actors as ``mia backtest`` (``mia_strategies.assembly.strategy_parts``: the
feature, regime and risk actors and the strategy ``strategy.yaml`` names) run on the
contracts the roll calendar makes active at start (the current one and the next, so a roll during
the run works), with decision bars aggregated from trades exactly as in a backtest. Only the two
clients change between modes, and they are passed in:

- paper: ``data=ClientSpec("IQFEED", IQFeedLiveDataClientFactory, IQFeedDataClientConfig(...))``,
  ``execution=ClientSpec("GLBX", PaperLiveExecClientFactory, PaperExecClientConfig(...))``;
- live: the same data client and the Sierra Chart execution client, for example
  ``execution=ClientSpec("GLBX", SierraChartLiveExecClientFactory, SierraChartExecClientConfig(...),
  reconciliation=True)``.

The execution client must be named after the venue (``GLBX``: nautilus keys accounts by the
client id); the data client may have any name. While the node runs, every order event, fill and
closed position is written to the run folder (``orders.csv``, ``fills.csv``, ``positions.csv``,
``equity.csv``, each replaced atomically), and when it stops (``--duration``, Ctrl-C or SIGTERM:
nautilus stops the node on both) the folder is completed like a backtest's: ``summary.json``,
``report.html`` and ``run.json``.

Usage::

    run = build_live_node(LiveNodeSpec(mode="paper", roots=("ES", "MNQ"), markets=markets,
                                       strategy=strategy, data=data_spec, execution=exec_spec,
                                       out_dir=Path("runs/paper-1")))
    outcome = run.run(duration_s=600)   # blocks; returns after a stop, with the folder written
"""

import asyncio
import datetime as dt
import json
import shutil
import time
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from nautilus_trader.config import ImportableActorConfig
from nautilus_trader.config import LiveDataClientConfig
from nautilus_trader.config import LiveDataEngineConfig
from nautilus_trader.config import LiveExecClientConfig
from nautilus_trader.config import LiveExecEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import TradingNodeConfig
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.live.factories import LiveExecClientFactory
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.events import OrderEvent
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import PositionClosed
from nautilus_trader.model.identifiers import TraderId

from mia_strategies import results
from mia_strategies.actors.features import warm_up_kernels
from mia_strategies.actors.risk import bind_risk_actors
from mia_strategies.assembly import StrategyParts
from mia_strategies.assembly import strategy_parts
from mia_strategies.backtest import strategy_config
from mia_strategies.config import MarketsConfig
from mia_strategies.config import StrategyFile
from mia_strategies.config import config_dir
from mia_strategies.errors import ConfigError
from mia_strategies.instruments import build_futures_contract
from mia_strategies.instruments import contract_windows
from mia_strategies.instruments import parse_contract_symbol
from mia_strategies.risk.journal import risk_event_summary
from mia_strategies.risk.journal import risk_event_table
from mia_strategies.strategies.base import ContractSlot
from mia_strategies.strategies.base import RunRecorder
from mia_strategies.strategies.base import TradeRecord


#: Columns of ``orders.csv`` (one row per order, its latest state).
ORDER_COLUMNS: tuple[str, ...] = (
    "ts_init",
    "ts_last",
    "client_order_id",
    "venue_order_id",
    "instrument_id",
    "side",
    "order_type",
    "quantity",
    "price",
    "trigger_price",
    "status",
    "filled_qty",
    "avg_px",
    "tags",
    "reason",
)


@dataclass(frozen=True)
class ClientSpec:
    """One nautilus client of the node: its name, its factory class and its config.

    For execution the name must be the venue (``GLBX``). ``reconciliation`` (execution only) turns
    on nautilus's start-up reconciliation against the client's reports: off for the paper sandbox
    (its reports are empty), on for a broker.
    """

    name: str
    factory: type[LiveDataClientFactory] | type[LiveExecClientFactory]
    config: LiveDataClientConfig | LiveExecClientConfig
    reconciliation: bool = False


@dataclass(frozen=True)
class LiveNodeSpec:
    """Everything a paper or live node needs.

    ``starting_balance`` is the account value the summary measures returns against (the paper
    sandbox's starting balance; the broker account's value at start for live). ``bar_spec`` is the
    decision bar (``1-MINUTE`` as in ``mia backtest``; tests use seconds). ``strategy_impl`` and
    ``strategy_extra`` swap in another ``MiaStrategy`` (tests do); without them the strategy file's
    strategy runs with its actors, as in a backtest. ``actors`` are added after those.
    ``config_base`` is the config folder the strategy's files are read from (default: the project's).
    ``risk_state_path`` is where halts persist across restarts (default: the run folder's).
    """

    mode: str  # "paper" | "live"
    roots: tuple[str, ...]
    markets: MarketsConfig
    strategy: StrategyFile
    data: ClientSpec
    execution: ClientSpec
    out_dir: Path
    starting_balance: Decimal = Decimal(100_000)
    currency: str = "USD"
    bar_spec: str = "1-MINUTE"
    roll_policy: str = "roll"
    trader_id: str = "MIA-PAPER-001"
    log_level: str = "WARNING"
    strategy_impl: tuple[str, str] | None = None
    strategy_extra: dict[str, Any] = field(default_factory=dict)
    actors: tuple[ImportableActorConfig, ...] = ()
    timeout_connection: float = 20.0
    extra_run_info: dict[str, Any] = field(default_factory=dict)
    config_base: Path | None = None
    risk_state_path: Path | None = None


@dataclass(frozen=True)
class LiveOutcome:
    """A finished paper or live run: its folder and summary."""

    out_dir: Path
    summary: dict[str, Any]
    fills: pd.DataFrame
    trades: pd.DataFrame
    orders: pd.DataFrame
    strategy: Any = None


def plan_slots(
    roots: tuple[str, ...] | list[str],
    markets: MarketsConfig,
    now_ns: int,
    bar_spec: str = "1-MINUTE",
) -> list[ContractSlot]:
    """The contract schedule at ``now_ns``: per root the active contract and the next one (a roll mid-run).

    Decision bars are ``<id>-<bar_spec>-LAST-INTERNAL``, aggregated from trades as in a backtest.
    """
    slots: list[ContractSlot] = []
    for root in roots:
        markets.root(root)
        current = contract_windows(root, now_ns, now_ns, markets)[0]
        following = contract_windows(root, current.active_to_ns, current.active_to_ns, markets)[0]
        for window in (current, following):
            instrument_id = window.contract.instrument_id(markets.venue).value
            bar_type = f"{instrument_id}-{bar_spec}-LAST-INTERNAL"
            slots.append(ContractSlot(root, instrument_id, bar_type, window.active_from_ns, window.active_to_ns))
    return slots


class RunFolderWriter:
    """Keeps the run folder current while the node runs: orders, fills, closed positions, equity."""

    #: Seconds an order-status change may wait before ``orders.csv`` is rewritten (events come in bursts).
    ORDERS_DELAY_S = 0.5

    def __init__(self, out_dir: Path, node: TradingNode, recorder: RunRecorder) -> None:
        self.out_dir = out_dir
        self.node = node
        self.recorder = recorder
        self.fills: list[dict[str, Any]] = []
        self.order_events = 0
        self.reasons: dict[str, str] = {}
        self._orders_due: asyncio.TimerHandle | None = None

    def on_order_event(self, event: OrderEvent) -> None:
        """Record fills and rewrite the tables at once; batch other order events into one refresh."""
        self.order_events += 1
        reason = getattr(event, "reason", None)
        if reason:  # rejected, denied, cancel/modify rejected: why, next to the order
            self.reasons[event.client_order_id.value] = str(reason)
        if isinstance(event, OrderFilled):
            self.fills.append(_fill_row(event, self.node))
            self.write_tables()
        elif self._orders_due is None:
            loop = self.node.get_event_loop()
            if loop is not None and loop.is_running():
                self._orders_due = loop.call_later(self.ORDERS_DELAY_S, self._refresh_orders)
            else:
                self.write_orders()

    def _refresh_orders(self) -> None:
        self._orders_due = None
        self.write_orders()

    def on_position_event(self, event: object) -> None:
        """A closed position is a new row in ``positions.csv``."""
        if isinstance(event, PositionClosed):
            self.write_tables()

    def fills_frame(self) -> pd.DataFrame:
        """Every fill so far (``fills.csv`` columns)."""
        if not self.fills:
            return pd.DataFrame(columns=list(results.FILL_COLUMNS))
        return pd.DataFrame(self.fills, columns=list(results.FILL_COLUMNS))

    def trades_frame(self) -> pd.DataFrame:
        """Every closed round trip so far, with MAE/MFE (``positions.csv`` columns)."""
        rows = [t.__dict__ for t in self.recorder.trades]
        columns = list(TradeRecord.__dataclass_fields__)
        return pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)

    def equity(self) -> pd.Series:
        """Equity sampled at each decision bar."""
        return pd.Series(
            self.recorder.equity,
            index=pd.to_datetime(self.recorder.equity_ts, utc=True),
            dtype=float,
            name="equity",
        )

    def orders_frame(self) -> pd.DataFrame:
        """Every order of the node with its latest state (``orders.csv``)."""
        rows = []
        for order in self.node.cache.orders():
            rows.append(
                {
                    "ts_init": pd.Timestamp(order.ts_init, tz="UTC"),
                    "ts_last": pd.Timestamp(order.ts_last, tz="UTC"),
                    "client_order_id": order.client_order_id.value,
                    "venue_order_id": order.venue_order_id.value if order.venue_order_id else "",
                    "instrument_id": order.instrument_id.value,
                    "side": str(order.side_string()),
                    "order_type": str(order.type_string()),
                    "quantity": order.quantity.as_double(),
                    "price": order.price.as_double() if getattr(order, "price", None) is not None else None,
                    "trigger_price": (
                        order.trigger_price.as_double() if getattr(order, "trigger_price", None) is not None else None
                    ),
                    "status": str(order.status_string()),
                    "filled_qty": order.filled_qty.as_double(),
                    "avg_px": order.avg_px if order.avg_px else None,
                    "tags": ";".join(order.tags or []),
                    "reason": self.reasons.get(order.client_order_id.value, ""),
                },
            )
        frame = pd.DataFrame(rows, columns=list(ORDER_COLUMNS))
        return frame.sort_values(["ts_init", "client_order_id"], kind="stable").reset_index(drop=True)

    def write_orders(self) -> None:
        """``orders.csv`` (atomically replaced)."""
        results._atomic_write(self.out_dir / "orders.csv", _csv(self.orders_frame()))

    def write_tables(self) -> None:
        """``fills.csv``, ``positions.csv``, ``equity.csv`` and ``orders.csv`` (atomically replaced)."""
        results.write_tables(self.out_dir, self.fills_frame(), self.trades_frame(), self.equity())
        self.write_orders()


def _csv(frame: pd.DataFrame) -> str:
    out = frame.copy()
    for name in ("ts_init", "ts_last"):
        if name in out.columns and len(out):
            out[name] = pd.to_datetime(out[name], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(out.to_csv(index=False, lineterminator="\n"))


def _fill_row(event: OrderFilled, node: TradingNode) -> dict[str, Any]:
    order = node.cache.order(event.client_order_id)
    return {
        "ts": pd.Timestamp(event.ts_event, tz="UTC"),
        "instrument_id": event.instrument_id.value,
        "client_order_id": event.client_order_id.value,
        "venue_order_id": event.venue_order_id.value,
        "trade_id": event.trade_id.value,
        "side": "BUY" if event.is_buy else "SELL",
        "quantity": event.last_qty.as_double(),
        "price": event.last_px.as_double(),
        "commission": event.commission.as_double(),
        "liquidity_side": str(event.liquidity_side.name)
        if hasattr(event.liquidity_side, "name")
        else str(event.liquidity_side),
        "order_type": str(order.type_string()) if order is not None else "",
    }


class LiveRun:
    """A built node and its run folder; :meth:`run` blocks until the node stops."""

    def __init__(
        self,
        spec: LiveNodeSpec,
        node: TradingNode,
        slots: list[ContractSlot],
        started_ns: int,
        parts: StrategyParts | None = None,
    ) -> None:
        self.spec = spec
        self.node = node
        self.slots = slots
        self.started_ns = started_ns
        self.parts = parts
        self.writer: RunFolderWriter | None = None

    @property
    def notes(self) -> tuple[str, ...]:
        """What the user should know before trading starts (markets without a regime model)."""
        return self.parts.notes if self.parts is not None else ()

    @property
    def strategy(self) -> Any:
        """The running strategy instance."""
        return self.node.trader.strategies()[0]

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The node's event loop."""
        loop = self.node.get_event_loop()
        assert loop is not None, "the node was built with its own loop"
        return loop

    def stop(self) -> None:
        """Ask the node to stop (thread-safe)."""
        self.loop.call_soon_threadsafe(self.node.stop)

    def run(self, duration_s: float | None = None) -> LiveOutcome:
        """Run until stopped (``duration_s``, Ctrl-C, SIGTERM or :meth:`stop`), then complete the folder."""
        out_dir = self.spec.out_dir
        recorder: RunRecorder = self.strategy.recorder
        self.writer = RunFolderWriter(out_dir, self.node, recorder)
        msgbus = self.node.kernel.msgbus
        msgbus.subscribe(topic="events.order.*", handler=self.writer.on_order_event)
        msgbus.subscribe(topic="events.position.*", handler=self.writer.on_position_event)
        self.writer.write_tables()
        _write_run_info(self, status="running")
        if duration_s is not None:
            self.loop.call_later(duration_s, self.node.stop)
        started = time.perf_counter()
        try:
            self.node.run()
        finally:
            elapsed = time.perf_counter() - started
            outcome = self._finish(elapsed)
            self.node.dispose()
        return outcome

    def _finish(self, elapsed: float) -> LiveOutcome:
        assert self.writer is not None
        writer = self.writer
        writer.write_tables()
        fills, trades, orders, equity = (
            writer.fills_frame(),
            writer.trades_frame(),
            writer.orders_frame(),
            writer.equity(),
        )
        events = int(self.node.kernel.data_engine.data_count)
        summary: dict[str, Any] = results.compute_summary(
            equity,
            trades,
            fills,
            starting_balance=float(self.spec.starting_balance),
            total_events=events,
            elapsed_s=elapsed,
        )
        summary["rolls"] = len(writer.recorder.rolls)
        summary["decision_bars"] = int(sum(writer.recorder.decision_bars.values()))
        summary["orders"] = len(orders)
        summary["open_positions"] = len(self.node.cache.positions_open())
        regimes = results.per_regime(trades, writer.recorder.regime_bars)
        regimes.reset_index().to_csv(self.spec.out_dir / "per_regime.csv", index=False)
        sections = results.add_breakdowns(summary, regimes, risk_event_summary(risk_event_table(self.spec.out_dir)))
        if self.parts is not None:
            summary["regime_sources"] = dict(self.parts.regime_sources)
            for artifact in self.parts.artifacts:
                shutil.copy2(artifact, self.spec.out_dir / artifact.name)
        results.write_summary(self.spec.out_dir, summary)
        title = f"MIA {self.spec.mode} {', '.join(self.spec.roots)}"
        results.write_report(self.spec.out_dir, equity, trades, summary, title=title, sections=sections)
        _write_run_info(self, status="stopped")
        return LiveOutcome(self.spec.out_dir, summary, fills, trades, orders, self.strategy)


def _write_run_info(run: LiveRun, status: str) -> None:
    spec = run.spec
    writer = run.writer
    info = {
        "mode": spec.mode,
        "status": status,
        "instruments": list(spec.roots),
        "started": pd.Timestamp(run.started_ns, tz="UTC").isoformat(),
        "updated": dt.datetime.now(dt.UTC).isoformat(),
        "contracts": [s.instrument_id for s in run.slots],
        "slots": [
            {
                "root": s.root,
                "instrument_id": s.instrument_id,
                "bar_type": s.bar_type,
                "active_from": pd.Timestamp(s.active_from_ns, tz="UTC").isoformat(),
                "active_to": pd.Timestamp(s.active_to_ns, tz="UTC").isoformat(),
            }
            for s in run.slots
        ],
        "rolls": [
            {"ts": pd.Timestamp(ts, tz="UTC").isoformat(), "root": root, "from": old, "to": new}
            for ts, root, old, new in (writer.recorder.rolls if writer else [])
        ],
        "data_client": spec.data.name,
        "execution_client": spec.execution.name,
        "strategy": json.loads(spec.strategy.model_dump_json()),
        **spec.extra_run_info,
    }
    results._atomic_write(spec.out_dir / "run.json", json.dumps(results._jsonable(info), indent=2, sort_keys=True))


def build_live_node(spec: LiveNodeSpec, now_ns: int | None = None) -> LiveRun:
    """Build (not start) the node: clients, instruments of the schedule, the strategy.

    Raises ``ConfigError`` when the run folder is not empty or the execution client is not named
    after the venue. The node gets a fresh event loop of its own.
    """
    venue = spec.markets.venue
    if spec.execution.name != venue:
        raise ConfigError(f"the execution client must be named after the venue {venue!r}, was {spec.execution.name!r}")
    out_dir = spec.out_dir
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"--out {out_dir} is not empty: choose a new folder so no result is overwritten")
    out_dir.mkdir(parents=True, exist_ok=True)
    now = now_ns if now_ns is not None else time.time_ns()
    slots = plan_slots(spec.roots, spec.markets, now, spec.bar_spec)
    parts: StrategyParts | None = None
    impl, extra, actors = spec.strategy_impl, spec.strategy_extra, list(spec.actors)
    if spec.strategy_impl is None:
        parts = strategy_parts(
            spec.strategy,
            spec.config_base or config_dir(),
            slots,
            venue,
            out_dir,
            state_path=spec.risk_state_path,
            custom_client_id=spec.data.name,
            mode=spec.mode,
            live_depth=bool(getattr(spec.data.config, "use_depth_port", False)),
        )
        impl, extra = parts.strategy_impl, {**parts.strategy_extra, **spec.strategy_extra}
        actors = [*parts.actors, *actors]
    strategy = strategy_config(spec.strategy, slots, list(spec.roots), spec.roll_policy, venue, impl, extra)
    warm_up_kernels(actors)  # compile before the event loop runs, not in on_start while clients connect
    config = TradingNodeConfig(
        trader_id=TraderId(spec.trader_id),
        logging=LoggingConfig(
            log_level=spec.log_level,
            log_level_file="INFO",
            log_directory=str(out_dir),
            log_file_name="nautilus",
        ),
        data_engine=LiveDataEngineConfig(
            time_bars_build_with_no_updates=False,  # no empty bars across the halt or the weekend
            time_bars_timestamp_on_close=True,
        ),
        exec_engine=LiveExecEngineConfig(reconciliation=spec.execution.reconciliation),
        data_clients={spec.data.name: spec.data.config},  # type: ignore[dict-item]
        exec_clients={spec.execution.name: spec.execution.config},  # type: ignore[dict-item]
        strategies=[strategy],
        actors=actors,
        timeout_connection=spec.timeout_connection,
        timeout_reconciliation=5.0,
        timeout_portfolio=5.0,
        timeout_disconnection=5.0,
        timeout_post_stop=1.0,
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    node = TradingNode(config=config, loop=loop)
    for slot in slots:
        node.cache.add_instrument(
            build_futures_contract(parse_contract_symbol(slot.instrument_id, spec.markets), spec.markets)
        )
    node.add_data_client_factory(spec.data.name, spec.data.factory)  # type: ignore[arg-type]
    node.add_exec_client_factory(spec.execution.name, spec.execution.factory)  # type: ignore[arg-type]
    node.build()
    bind_risk_actors(node.kernel)  # halts go through nautilus's risk engine, as in a backtest
    engine = node.kernel.exec_engine
    for client in list(getattr(engine, "_clients", {}).values()):
        attach = getattr(client, "process_events_synchronously", None)
        if attach is not None:  # an in-process simulated venue (paper): events in backtest order
            attach(engine)
    return LiveRun(spec, node, slots, now, parts)
