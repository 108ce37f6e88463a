"""Helpers for the IQFeed tests: simulators on free ports, a data-collecting actor, nodes, catalogs."""

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.config import LiveExecEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import TradingNodeConfig
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import DataType
from nautilus_trader.model.data import OrderBookDeltas
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from adapters.iqfeed import IQFEED
from adapters.iqfeed import IQFeedDataClientConfig
from adapters.iqfeed import IQFeedLiveDataClientFactory
from adapters.iqfeed.simulator import IQFeedSimulator
from adapters.iqfeed.simulator import SimulatorConfig
from adapters.iqfeed.simulator import SimulatorSource
from adapters.iqfeed.simulator import SimulatorThread
from adapters.iqfeed.simulator import build_simulator
from mia_strategies.config import MarketsConfig
from mia_strategies.instruments import active_contract
from mia_strategies.strategies.base import MiaStrategy
from mia_strategies.strategies.base import MiaStrategyConfig


def current_ids(markets: MarketsConfig, roots: tuple[str, ...] = ("ES", "MNQ")) -> dict[str, InstrumentId]:
    """The active contract of each root now (what the simulator lists and the node trades)."""
    now = time.time_ns()
    return {root: active_contract(root, now, markets).instrument_id(markets.venue) for root in roots}


@contextlib.contextmanager
def simulator_thread(
    markets: MarketsConfig,
    source: SimulatorSource | None = None,
    config: SimulatorConfig | None = None,
) -> Iterator[SimulatorThread]:
    """A simulator on free ports on its own thread; stopped on exit.

    The feature kernels are compiled first: compiling holds the GIL for tens of seconds on a fresh
    checkout, and a simulator sharing this process would fall that far behind (a real IQConnect is
    another process; ``mia paper``/``mia live`` compile before their node starts as well).
    """
    warm_feature_kernels(markets)
    cfg = config or SimulatorConfig()
    thread = SimulatorThread(lambda: build_simulator(markets, source or SimulatorSource(rate=40), cfg))
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


def warm_feature_kernels(markets: MarketsConfig) -> None:
    """Compile (or load) every feature kernel the ES and MNQ sets use."""
    from pathlib import Path

    from mia_strategies.features.engine import FeatureHub
    from mia_strategies.features.sets import load_feature_sets

    sets = load_feature_sets(Path(__file__).resolve().parents[1] / "config" / "feature_sets.yaml")
    hub = FeatureHub(sets, {"ES": "ES.training", "MNQ": "MNQ.training"}, markets)
    for instrument_id in current_ids(markets).values():
        hub.register(instrument_id.value)
    hub.warm_up()


def client_config(ports: dict[str, int], **overrides: Any) -> IQFeedDataClientConfig:
    """An IQFeed data client config pointing at a simulator, with short timeouts for tests."""
    values: dict[str, Any] = {
        "instrument_provider": InstrumentProviderConfig(load_all=True),
        "level1_port": ports["level1"],
        "lookup_port": ports["lookup"],
        "depth_port": ports["depth"],
        "admin_port": ports["admin"],
        "bars_port": ports["bars"],
        "request_timeout_secs": 5.0,
        # the simulator shares this process (and two cores with another test worker): a node's start
        # can keep it from answering for a few seconds, which a separate IQConnect would not notice
        "handshake_timeout_secs": 10.0,
        "fundamentals_timeout_secs": 3.0,
        "reconnect_initial_delay_secs": 0.1,
        "reconnect_max_delay_secs": 0.5,
        "stale_after_secs": 3.0,
        "chain_interval_secs": 1.0,
    }
    values.update(overrides)
    return IQFeedDataClientConfig(**values)


class CollectorConfig(ActorConfig, frozen=True):
    """What the collector subscribes to."""

    quotes: tuple[str, ...] = ()
    trades: tuple[str, ...] = ()
    depth_by_price: tuple[str, ...] = ()
    depth_by_order: tuple[str, ...] = ()
    bars: tuple[str, ...] = ()
    news: bool = False
    chain_of: str = ""


class Collector(Actor):
    """Subscribes through the IQFeed client and keeps everything it receives."""

    def __init__(self, config: CollectorConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self.quotes: list[QuoteTick] = []
        self.trades: list[TradeTick] = []
        self.deltas: list[OrderBookDeltas] = []
        self.bars: list[Bar] = []
        self.custom: list[Any] = []
        self.responses: list[Any] = []

    def on_start(self) -> None:
        from nautilus_trader.model.enums import BookType
        from nautilus_trader.model.identifiers import ClientId

        from catalog.types import NewsHeadline
        from catalog.types import OptionChainSnapshot

        for i in self.cfg.quotes:
            self.subscribe_quote_ticks(InstrumentId.from_str(i))
        for i in self.cfg.trades:
            self.subscribe_trade_ticks(InstrumentId.from_str(i))
        for i in self.cfg.depth_by_price:
            self.subscribe_order_book_deltas(InstrumentId.from_str(i), book_type=BookType.L2_MBP, depth=5)
        for i in self.cfg.depth_by_order:
            self.subscribe_order_book_deltas(InstrumentId.from_str(i), book_type=BookType.L3_MBO)
        for b in self.cfg.bars:
            self.subscribe_bars(BarType.from_str(b))
        if self.cfg.news:
            self.subscribe_data(DataType(NewsHeadline), client_id=ClientId(IQFEED))
        if self.cfg.chain_of:
            metadata = {"instrument_id": self.cfg.chain_of, "interval_secs": 1}
            self.subscribe_data(DataType(OptionChainSnapshot, metadata=metadata), client_id=ClientId(IQFEED))

    def on_stop(self) -> None:
        """Nothing to release."""

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self.quotes.append(tick)

    def on_trade_tick(self, tick: TradeTick) -> None:
        self.trades.append(tick)

    def on_order_book_deltas(self, deltas: OrderBookDeltas) -> None:
        self.deltas.append(deltas)

    def on_bar(self, bar: Bar) -> None:
        self.bars.append(bar)

    def on_data(self, data: Any) -> None:
        self.custom.append(data)

    def on_historical_data(self, data: Any) -> None:
        self.responses.append(data)


def build_node(ports: dict[str, int], collector: Actor, **client_overrides: Any) -> TradingNode:
    """A TradingNode (its own event loop) with the IQFeed data client and ``collector``."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    config = TradingNodeConfig(
        trader_id="TESTER-001",
        logging=LoggingConfig(log_level="ERROR"),
        exec_engine=LiveExecEngineConfig(reconciliation=False),
        data_clients={IQFEED: client_config(ports, **client_overrides)},
        timeout_connection=10.0,
        timeout_disconnection=3.0,
        timeout_post_stop=0.2,
    )
    node = TradingNode(config=config, loop=loop)
    node.trader.add_actor(collector)
    node.add_data_client_factory(IQFEED, IQFeedLiveDataClientFactory)
    node.build()
    return node


def run_node(
    node: TradingNode, seconds: float, script: Callable[[asyncio.AbstractEventLoop], None] | None = None
) -> None:
    """Run the node for ``seconds`` (``script`` may schedule actions on its loop), then dispose it."""
    loop = node.get_event_loop()
    if script is not None:
        script(loop)
    loop.call_later(seconds, node.stop)
    watchdog = threading.Timer(seconds + 30.0, lambda: loop.call_soon_threadsafe(node.stop))
    watchdog.start()
    try:
        node.run()
    finally:
        watchdog.cancel()
        node.dispose()


def data_client(node: TradingNode) -> Any:
    """The node's IQFeed data client."""
    from nautilus_trader.model.identifiers import ClientId

    return node.kernel.data_engine._clients[ClientId(IQFEED)]


def simulator(thread: SimulatorThread) -> IQFeedSimulator:
    """The simulator object of a thread (only touch it through ``thread.call``)."""
    assert thread.simulator is not None
    return thread.simulator


def write_trades_catalog(source: Path, target: Path, with_quotes: bool = False) -> list[str]:
    """Copy a catalog's futures and trade ticks with timestamps floored to the microsecond.

    IQFeed stamps ticks in microseconds and keeps no quote history beyond the bid and ask in force
    at each trade, so the data IQFeed can hold without loss is: µs trades and, with
    ``with_quotes``, one quote (sizes unknown: 0) at each trade where the bid or ask changed.
    Returns the instrument ids written.
    """
    from nautilus_trader.model.data import QuoteTick
    from nautilus_trader.model.instruments import FuturesContract

    src = ParquetDataCatalog(str(source))
    dst = ParquetDataCatalog(str(target))
    written = []
    for instrument in src.instruments():
        if not isinstance(instrument, FuturesContract):
            continue
        trades = src.trade_ticks(instrument_ids=[instrument.id.value])
        if not trades:
            continue
        ts = np.array([t.ts_event // 1000 * 1000 for t in trades], dtype=np.uint64)
        price = np.array([t.price.as_double() for t in trades])
        floored = TradeTick.from_raw_arrays_to_list(
            instrument.id,
            instrument.price_precision,
            0,
            price,
            np.array([t.size.as_double() for t in trades]),
            np.array([int(t.aggressor_side) for t in trades], dtype=np.uint8),
            [t.trade_id.value for t in trades],
            ts,
            ts,
        )
        dst.write_data([instrument])
        dst.write_data(floored)
        if with_quotes:
            quotes = src.quote_ticks(instrument_ids=[instrument.id.value])
            q_ts = np.array([q.ts_event for q in quotes], dtype=np.int64)
            bids = np.array([q.bid_price.as_double() for q in quotes])
            asks = np.array([q.ask_price.as_double() for q in quotes])
            t_ns = np.array([t.ts_event for t in trades], dtype=np.int64)
            idx = np.searchsorted(q_ts, t_ns, side="right") - 1
            bid = np.where(idx >= 0, bids[np.maximum(idx, 0)], price)
            ask = np.where(idx >= 0, asks[np.maximum(idx, 0)], price)
            changed = np.ones(len(bid), dtype=bool)
            changed[1:] = (bid[1:] != bid[:-1]) | (ask[1:] != ask[:-1])
            zeros = np.zeros(int(changed.sum()))
            dst.write_data(
                QuoteTick.from_raw_arrays_to_list(
                    instrument.id, instrument.price_precision, 0, bid[changed], ask[changed], zeros, zeros.copy(),
                    ts[changed], ts[changed],
                ),
            )  # fmt: skip
        written.append(instrument.id.value)
    return written


def trade_key(tick: TradeTick) -> tuple[str, int, int, int, AggressorSide]:
    """What must survive a round trip through IQFeed: instrument, time, price, size, aggressor."""
    return (tick.instrument_id.value, tick.ts_event, tick.price.raw, tick.size.raw, tick.aggressor_side)


# -- a strategy that trades within seconds (paper tests) ---------------------------------------------


class RoundTripperConfig(MiaStrategyConfig, frozen=True):
    """Enter on every decision bar when flat, alternating sides, with a tight bracket."""

    stop_ticks: int = 4
    target_ticks: int = 2


class RoundTripper(MiaStrategy):
    """Trades a round trip every few seconds so fills, commissions and closed positions appear fast."""

    def __init__(self, config: RoundTripperConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._buy = True

    def on_decision_bar(self, root: str, bar: Bar) -> None:
        instrument_id = bar.bar_type.instrument_id
        if not self.is_flat(root) or not self.can_enter(bar.ts_event):
            return
        quote = self.cache.quote_tick(instrument_id)
        if quote is None:
            return
        side = OrderSide.BUY if self._buy else OrderSide.SELL
        self._buy = not self._buy
        ref = quote.ask_price.as_double() if side == OrderSide.BUY else quote.bid_price.as_double()
        tick = self.instrument(instrument_id).price_increment.as_double()
        size = self.config.trade_size.get(root, 1)
        self.enter_bracket(
            root, instrument_id, side, size, self._cfg.stop_ticks * tick, self._cfg.target_ticks * tick, ref
        )
