"""Helpers for the Sierra Chart tests: a replay data client, probe strategies, and a TradingNode wired to
the DTC simulator over real sockets.

Everything runs in one event loop: the simulator (``DtcSimulator`` on 127.0.0.1, port 0), the
nautilus ``TradingNode`` with the real ``SierraChartExecutionClient`` and a small data client that
publishes whatever ticks a test pushes. A test drives the market through ``LiveRig.tick``/``quote``,
which feeds the same tick to the simulator (fills) and the node (strategy), like the IQFeed feed and
Sierra Chart's own feed see one market in production.
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.config import LiveDataClientConfig
from nautilus_trader.config import LiveExecEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.config import TradingNodeConfig
from nautilus_trader.data.messages import SubscribeBars
from nautilus_trader.data.messages import SubscribeQuoteTicks
from nautilus_trader.data.messages import SubscribeTradeTicks
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.events import OrderEvent
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.trading.strategy import Strategy

from adapters.sierrachart.config import SierraChartExecClientConfig
from adapters.sierrachart.execution import SierraChartExecutionClient
from adapters.sierrachart.factories import SierraChartLiveExecClientFactory
from adapters.sierrachart.providers import SierraChartInstrumentProvider
from adapters.sierrachart.providers import SymbolMapper
from adapters.sierrachart.simulator import DtcSimulator
from adapters.sierrachart.simulator import SimulatorConfig
from adapters.sierrachart.simulator import SymbolSpec
from mia_strategies.config import MarketsConfig
from mia_strategies.config import load_markets
from mia_strategies.instruments import build_futures_contract
from mia_strategies.instruments import parse_contract_symbol
from mia_strategies.strategies.base import ContractSlot
from mia_strategies.strategies.base import MiaStrategy
from mia_strategies.strategies.base import MiaStrategyConfig


REPO = Path(__file__).resolve().parents[1]
MARKETS_FILE = REPO / "config" / "markets.yaml"
ES = "ESZ25.GLBX"
MNQ = "MNQZ25.GLBX"


# -- simulator set-up ------------------------------------------------------------------------------


def sim_symbols(
    instrument_ids: list[str], markets: MarketsConfig, template: str = "{root}{month}{yy}-CME", multiplier: float = 1.0
) -> dict[str, SymbolSpec]:
    """Simulator symbols for contracts, spelled as the adapter's template spells them."""
    mapper = SymbolMapper(markets, template)
    specs = {}
    for value in instrument_ids:
        instrument_id = InstrumentId.from_str(value)
        ref = parse_contract_symbol(instrument_id.symbol.value, markets)
        root = markets.root(ref.root)
        symbol = mapper.to_sierra(instrument_id)
        specs[symbol] = SymbolSpec(
            symbol=symbol,
            min_tick=float(root.tick_size),
            tick_value=float(root.tick_size) * root.multiplier,
            display_price_multiplier=multiplier,
            description=root.description,
            underlying=ref.root,
            margin_per_contract=1000.0,
            commission_per_contract=float(root.commission_per_contract),
        )
    return specs


def sim_config(instrument_ids: list[str] | None = None, **overrides: Any) -> SimulatorConfig:
    """A simulator configured for the project's contracts; keyword arguments override settings."""
    markets = load_markets(MARKETS_FILE)
    multiplier = overrides.pop("display_price_multiplier", 1.0)
    config = SimulatorConfig(
        symbols=sim_symbols(instrument_ids or [ES, MNQ], markets, multiplier=multiplier), starting_balance=100_000.0
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


# -- data client -----------------------------------------------------------------------------------


class ReplayDataClientConfig(LiveDataClientConfig, frozen=True):
    """Instruments the replay client defines (built from markets.yaml)."""

    instrument_ids: tuple[str, ...] = ()
    markets_file: str = str(MARKETS_FILE)


class ReplayDataClient(LiveMarketDataClient):
    """Publishes the ticks a test pushes; subscriptions are accepted and recorded."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client_id: ClientId,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        config: ReplayDataClientConfig,
    ) -> None:
        markets = load_markets(Path(config.markets_file))
        super().__init__(
            loop=loop,
            client_id=client_id,
            venue=None,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=SierraChartInstrumentProvider(markets),
            config=config,
        )
        self._markets = markets
        self._ids = [InstrumentId.from_str(i) for i in config.instrument_ids]
        self.subscriptions: list[str] = []

    async def _connect(self) -> None:
        for instrument_id in self._ids:
            instrument = build_futures_contract(
                parse_contract_symbol(instrument_id.symbol.value, self._markets), self._markets
            )
            if self._cache.instrument(instrument_id) is None:
                self._cache.add_instrument(instrument)
            self._handle_data(instrument)

    async def _disconnect(self) -> None:
        return None

    async def _subscribe_quote_ticks(self, command: SubscribeQuoteTicks) -> None:
        self.subscriptions.append(f"quotes:{command.instrument_id}")

    async def _subscribe_trade_ticks(self, command: SubscribeTradeTicks) -> None:
        self.subscriptions.append(f"trades:{command.instrument_id}")

    async def _subscribe_bars(self, command: SubscribeBars) -> None:
        self.subscriptions.append(f"bars:{command.bar_type}")

    def push(self, tick: QuoteTick | TradeTick) -> None:
        """Publish one tick to the node."""
        self._handle_data(tick)


class ReplayDataClientFactory(LiveDataClientFactory):
    """Builds ``ReplayDataClient``; the last one built is kept for the test to push ticks into."""

    last: ReplayDataClient | None = None

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: ReplayDataClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> ReplayDataClient:
        client = ReplayDataClient(loop, ClientId(name), msgbus, cache, clock, config)
        ReplayDataClientFactory.last = client
        return client


# -- strategies ------------------------------------------------------------------------------------


class ProbeConfig(StrategyConfig, frozen=True):
    """The instrument the probe subscribes to."""

    instrument_id: str = ES


class Probe(Strategy):
    """A strategy the test drives by hand; it records every order event it sees."""

    def __init__(self, config: ProbeConfig) -> None:
        super().__init__(config)
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.events: list[OrderEvent] = []

    def on_start(self) -> None:
        self.subscribe_quote_ticks(self.instrument_id)

    def on_order_event(self, event: OrderEvent) -> None:
        self.events.append(event)

    def events_of(self, kind: type, client_order_id: Any = None) -> list[Any]:
        """Recorded events of a type (optionally of one order)."""
        return [
            e
            for e in self.events
            if isinstance(e, kind) and (client_order_id is None or e.client_order_id == client_order_id)
        ]


# -- the rig ---------------------------------------------------------------------------------------


@dataclass
class LiveRig:
    """A running simulator + TradingNode pair (see the module docstring)."""

    sim: DtcSimulator
    node: TradingNode
    data: ReplayDataClient
    exec_client: SierraChartExecutionClient
    strategies: list[Strategy]
    markets: MarketsConfig
    run_task: asyncio.Task[None] | None = None
    _trade_seq: int = field(default=0)

    @property
    def strategy(self) -> Any:
        """The first strategy."""
        return self.strategies[0]

    @property
    def cache(self) -> Any:
        """The node's cache."""
        return self.node.cache

    def instrument(self, instrument_id: str = ES) -> Any:
        """A cached instrument."""
        return self.node.cache.instrument(InstrumentId.from_str(instrument_id))

    def symbol(self, instrument_id: str = ES) -> str:
        """The Sierra symbol of an instrument."""
        definition = self.exec_client.definition(InstrumentId.from_str(instrument_id))
        assert definition is not None
        return definition.symbol

    def quote(
        self, bid: float, ask: float, bid_size: float = 10, ask_size: float = 10, instrument_id: str = ES
    ) -> None:
        """Move the market: the same quote to the node and to the simulator."""
        instrument = self.instrument(instrument_id)
        now = time.time_ns()
        tick = QuoteTick(
            instrument_id=instrument.id,
            bid_price=instrument.make_price(bid),
            ask_price=instrument.make_price(ask),
            bid_size=instrument.make_qty(bid_size),
            ask_size=instrument.make_qty(ask_size),
            ts_event=now,
            ts_init=now,
        )
        self.data.push(tick)
        self.sim.quote(self.symbol(instrument_id), bid, bid_size, ask, ask_size)

    def trade(self, price: float, size: float = 1, instrument_id: str = ES) -> None:
        """A trade print to the node and the simulator."""
        instrument = self.instrument(instrument_id)
        now = time.time_ns()
        self._trade_seq += 1
        tick = TradeTick(
            instrument_id=instrument.id,
            price=instrument.make_price(price),
            size=instrument.make_qty(size),
            aggressor_side=AggressorSide.BUYER,
            trade_id=TradeId(str(self._trade_seq)),
            ts_event=now,
            ts_init=now,
        )
        self.data.push(tick)
        self.sim.trade(self.symbol(instrument_id), price, size)

    async def wait(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        """Poll until ``predicate()`` holds; fail the test with ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.01)

    async def settle(self, quiet: float = 0.05) -> None:
        """Let in-flight messages land: wait until the node's queues and the simulator traffic stay still."""
        kernel = self.node.kernel
        last = (-1, -1)
        still_since = time.monotonic()
        while True:
            state = (
                len(self.sim.received) + len(self.sim.sent),
                kernel.exec_engine.evt_qsize() + kernel.exec_engine.cmd_qsize(),
            )
            now = time.monotonic()
            if state != last or state[1] > 0:
                last, still_since = state, now
            elif now - still_since >= quiet:
                return
            await asyncio.sleep(0.005)

    async def lockstep(self, stable_iterations: int = 4, timeout: float = 5.0) -> None:
        """Return when nothing moves any more: every node queue empty and no socket traffic for a few loop turns.

        Loopback sockets are readable on the next loop iteration, so a handful of quiet iterations means
        every consequence of the last tick (orders, acknowledgements, fills, position events) has landed.
        """
        kernel = self.node.kernel
        data, risk, execution = kernel.data_engine, kernel.risk_engine, kernel.exec_engine
        deadline = time.monotonic() + timeout
        last: tuple[int, ...] = ()
        quiet = 0
        while quiet < stable_iterations:
            state = (
                len(self.sim.received),
                len(self.sim.sent),
                data.data_qsize() + data.cmd_qsize(),
                risk.cmd_qsize() + risk.evt_qsize(),
                execution.cmd_qsize() + execution.evt_qsize(),
            )
            busy = any(state[2:])
            quiet = quiet + 1 if state == last and not busy else 0
            last = state
            if time.monotonic() > deadline:
                raise AssertionError(f"the node did not settle within {timeout}s: {state}")
            await asyncio.sleep(0)

    async def stop(self) -> None:
        """Stop the node (the simulator keeps running)."""
        await self.node.stop_async()
        if self.run_task is not None:
            await asyncio.wait([self.run_task], timeout=5.0)


def build_node(
    loop: asyncio.AbstractEventLoop,
    port: int,
    *,
    instrument_ids: list[str],
    strategies: list[Strategy],
    exec_overrides: dict[str, Any] | None = None,
    reconciliation: bool = True,
    trader_id: str = "MIA-TEST-001",
    log_level: str = "ERROR",
    timeout_connection: float = 8.0,
) -> TradingNode:
    """A TradingNode with the replay data client and the Sierra Chart execution client on ``port``."""
    exec_config: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "trade_account": "Sim1",
        "heartbeat_interval_secs": 2,
        "reconnect_initial_delay_secs": 0.1,
        "reconnect_max_delay_secs": 0.5,
        "request_timeout_secs": 5.0,
        "connect_attempts": 1,
        "markets_file": str(MARKETS_FILE),
        "instrument_provider": InstrumentProviderConfig(
            load_ids=frozenset(InstrumentId.from_str(i) for i in instrument_ids)
        ),
    }
    exec_config.update(exec_overrides or {})
    node = TradingNode(
        config=TradingNodeConfig(
            trader_id=trader_id,
            logging=LoggingConfig(log_level=log_level),
            exec_engine=LiveExecEngineConfig(reconciliation=reconciliation, inflight_check_threshold_ms=5_000),
            data_clients={"REPLAY": ReplayDataClientConfig(instrument_ids=tuple(instrument_ids))},
            exec_clients={"GLBX": SierraChartExecClientConfig(**exec_config)},
            timeout_connection=timeout_connection,
            timeout_reconciliation=5.0,
            timeout_portfolio=2.0,
            timeout_disconnection=2.0,
            timeout_post_stop=0.2,
        ),
        loop=loop,
    )
    for strategy in strategies:
        node.trader.add_strategy(strategy)
    node.add_data_client_factory("REPLAY", ReplayDataClientFactory)
    node.add_exec_client_factory("GLBX", SierraChartLiveExecClientFactory)
    node.build()
    _NODES.append(node)
    return node


async def start_rig(
    sim: DtcSimulator,
    *,
    instrument_ids: list[str] | None = None,
    strategies: list[Strategy] | None = None,
    exec_overrides: dict[str, Any] | None = None,
    expect_running: bool = True,
    timeout: float = 15.0,
    timeout_connection: float = 8.0,
) -> LiveRig:
    """Build and start a node against a started simulator; wait until its trader runs."""
    ids = instrument_ids or [ES]
    strategies = strategies or [Probe(ProbeConfig(instrument_id=ids[0]))]
    loop = asyncio.get_running_loop()
    node = build_node(
        loop,
        sim.port,
        instrument_ids=ids,
        strategies=strategies,
        exec_overrides=exec_overrides,
        timeout_connection=timeout_connection,
    )
    exec_client = _exec_client(node)
    data = ReplayDataClientFactory.last
    assert data is not None
    rig = LiveRig(
        sim=sim,
        node=node,
        data=data,
        exec_client=exec_client,
        strategies=strategies,
        markets=load_markets(MARKETS_FILE),
    )
    rig.run_task = loop.create_task(node.run_async())
    if expect_running:
        await rig.wait(lambda: node.trader.is_running or exec_client.startup_error is not None, timeout, "node running")
        if exec_client.startup_error is not None:
            raise AssertionError(f"execution client refused to start: {exec_client.startup_error}")
    return rig


def _exec_client(node: TradingNode) -> SierraChartExecutionClient:
    engine = node.kernel.exec_engine
    client = engine._clients.get(ClientId("GLBX"))  # the engine keeps clients by id
    assert isinstance(client, SierraChartExecutionClient)
    return client


#: Nodes built by the running scenario; ``run_async`` stops and disposes them.
_NODES: list[TradingNode] = []


def run_async(scenario: Callable[[], Awaitable[None]], timeout: float = 60.0) -> None:
    """Run a scenario on a fresh loop, then stop and dispose every node it built (even on failure)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    _NODES.clear()
    try:
        loop.run_until_complete(asyncio.wait_for(scenario(), timeout))
    finally:
        for node in _NODES:
            if node.kernel.is_running():
                with contextlib.suppress(Exception):  # best effort: the test already failed or passed
                    loop.run_until_complete(asyncio.wait_for(node.stop_async(), 10.0))
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        for node in _NODES:
            node.dispose()
        _NODES.clear()
        if not loop.is_closed():
            loop.close()


# -- parity ----------------------------------------------------------------------------------------


class TickBracketConfig(MiaStrategyConfig, frozen=True):
    """Enter a bracket every ``every_quotes`` quotes while flat, alternating sides."""

    every_quotes: int = 30
    stop_points: float = 2.0
    target_points: float = 2.0


class TickBracket(MiaStrategy):
    """A deterministic, tick-driven MiaStrategy: decisions depend on quotes and fills only (no clock, no bars).

    Backtest and live see the same quotes in the same order, so the orders it sends must match one to one;
    it records them (with the quote count that caused them) for the parity test.
    """

    def __init__(self, config: TickBracketConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self.quotes = 0
        self.sent: list[tuple[int, str, str, float, float | None, float | None]] = []
        self.order_index: dict[str, int] = {}

    def on_decision_bar(self, root: str, bar: Bar) -> None:
        return None  # bars are aggregated on the wall clock live: this strategy does not use them

    def on_quote_tick(self, tick: QuoteTick) -> None:
        super().on_quote_tick(tick)
        self.quotes += 1
        slot = self.active_slot_of(tick.instrument_id.value)
        if slot is None or self.quotes % self._cfg.every_quotes or not self.is_flat(slot.root):
            return
        side = OrderSide.BUY if (self.quotes // self._cfg.every_quotes) % 2 else OrderSide.SELL
        reference = tick.ask_price.as_double() if side == OrderSide.BUY else tick.bid_price.as_double()
        self.enter_bracket(
            slot.root, tick.instrument_id, side, 1, self._cfg.stop_points, self._cfg.target_points, reference
        )

    def active_slot_of(self, instrument_id: str) -> ContractSlot | None:
        """The configured slot of a contract."""
        return next((s for s in self.config.slots if s.instrument_id == instrument_id), None)

    def submit_order_list(self, order_list: Any, *args: Any, **kwargs: Any) -> None:
        for order in order_list.orders:
            self.order_index[order.client_order_id.value] = len(self.sent)
            self.sent.append(
                (
                    self.quotes,
                    order.side_string(),
                    order.type_string(),
                    order.quantity.as_double(),
                    order.price.as_double() if order.has_price else None,
                    order.trigger_price.as_double() if order.has_trigger_price else None,
                ),
            )
        super().submit_order_list(order_list, *args, **kwargs)
