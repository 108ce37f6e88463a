"""The feature actor: updates feature state on every tick and publishes a ``FeatureVector`` at each bar close.

It subscribes to the decision bars it is given (one bar type per contract, like the strategy's
slots), to the quotes, trades and optionally the 10-level book of their instruments, to the
reference series (VIX, the ETF proxy) and to option chains, news and macro events. Every event goes
to a ``FeatureHub`` (``mia_strategies.features``), the same engine the offline build replays the
catalog through, so what a strategy sees live equals what research saw.

Each vector carries the bar's ``ts_event``/``ts_init`` and is published as
``DataType(FeatureVector, metadata={"instrument_id": ...})``; subscribe with
``subscribe_data(DataType(FeatureVector))`` to receive every instrument's. The values follow the
order of ``feature_set`` in ``config/feature_sets.yaml``. Bad input (an invalid bar, a quote with a
NaN, a chain without strikes near the money) is skipped and logged as a warning; it never stops
the actor.

In a backtest, add it before the strategy (``BacktestEngineConfig.actors``) so the strategy's own
bar handler runs after the vector was published::

    ImportableActorConfig(
        actor_path="mia_strategies.actors.features:FeatureActor",
        config_path="mia_strategies.actors.features:FeatureActorConfig",
        config={"bar_types": ["ESZ25.GLBX-1-MINUTE-LAST-INTERNAL"], "feature_sets": {"ES": "ES.inference"}},
    )
"""

from pathlib import Path
from typing import Any

import msgspec
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.core.data import Data
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import DataType
from nautilus_trader.model.data import OrderBookDeltas
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId

from catalog.types import FeatureVector
from catalog.types import MacroEvent
from catalog.types import NewsHeadline
from catalog.types import OptionChainSnapshot


class FeatureActorConfig(ActorConfig, frozen=True):
    """Configuration of the feature actor.

    Parameters
    ----------
    bar_types : list[str]
        Decision bar types, one per contract (e.g. ``ESZ25.GLBX-1-MINUTE-LAST-INTERNAL``).
    feature_sets : dict[str, str], default {}
        Root → feature set published for it; a root not listed gets ``<ROOT>.inference``.
    feature_sets_file : str, optional
        ``feature_sets.yaml`` to use (default: the config folder's).
    markets_file : str, optional
        ``markets.yaml`` to use (default: the config folder's); gives roots, ticks and roll times.
    subscribe_quotes : bool, default True
        Subscribe to the instruments' quotes (order flow, spread, book features).
    subscribe_trades : bool, default True
        Subscribe to their trades (aggressiveness, velocity, VPIN).
    subscribe_depth : bool, default False
        Subscribe to 10-level book snapshots (depth features; NaN without).
    depth_from_deltas : bool, default False
        With ``subscribe_depth``: subscribe to the data client's ``OrderBookDeltas`` (IQFeed Level 2)
        instead, keep the L2 book here and hand its best 10 levels to the features before each bar.
        The features read the latest book at the bar close either way, so a live session built from
        deltas computes what a backtest replaying ``OrderBookDepth10`` snapshots does.
    reference_bar_types : list[str], default []
        Reference series to subscribe (VIX, VIX3M, VIX9D, ETF proxy bar types named in the
        feature-sets parameters); in a backtest they must be in the run's data.
    subscribe_custom : bool, default True
        Subscribe to ``OptionChainSnapshot``, ``NewsHeadline`` and ``MacroEvent`` data.
    custom_client_id : str, optional
        Data client serving the custom data live (e.g. ``IQFEED``); None in backtests.
    macro_calendar : str, optional
        Calendar file loaded at start (``config/macro_calendar.csv``).
    history_catalog : str, optional
        Catalog to preload reference bars, chains and news from at start.
    history_days : float, default 0.0
        How far back to preload (0 disables preloading).
    keep_vectors : bool, default False
        Keep every published vector in ``self.vectors`` (tests and benchmarks).
    """

    bar_types: list[str]
    feature_sets: dict[str, str] = msgspec.field(default_factory=dict)
    feature_sets_file: str | None = None
    markets_file: str | None = None
    subscribe_quotes: bool = True
    subscribe_trades: bool = True
    subscribe_depth: bool = False
    depth_from_deltas: bool = False
    reference_bar_types: list[str] = msgspec.field(default_factory=list)
    subscribe_custom: bool = True
    custom_client_id: str | None = None
    macro_calendar: str | None = None
    history_catalog: str | None = None
    history_days: float = 0.0
    keep_vectors: bool = False


class FeatureActor(Actor):
    """Computes features incrementally and publishes one ``FeatureVector`` per decision bar."""

    def __init__(self, config: FeatureActorConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._hub: Any = None
        self._decision: dict[str, tuple[str, str]] = {}
        self._reference: set[str] = set(config.reference_bar_types)
        self._by_id: dict[InstrumentId, str] = {}
        self._tick_topics: list[tuple[str, Any]] = []
        self._data_types: dict[str, DataType] = {}
        self._books: dict[InstrumentId, OrderBook] = {}
        self.vectors: list[FeatureVector] = []
        self.published = 0

    # -- LIFECYCLE ----------------------------------------------------------------------------------

    def on_start(self) -> None:
        """Load configuration, build the hub, preload history, subscribe."""
        from catalog.macro import load_macro_calendar
        from mia_strategies.config import load_markets
        from mia_strategies.features.engine import FeatureHub
        from mia_strategies.features.feed import feed_history
        from mia_strategies.features.history import load_history
        from mia_strategies.features.sets import load_feature_sets

        cfg = self._cfg
        feature_sets = load_feature_sets(cfg.feature_sets_file)
        markets = load_markets(Path(cfg.markets_file) if cfg.markets_file else None)
        events = load_macro_calendar(cfg.macro_calendar) if cfg.macro_calendar else []
        self._hub = FeatureHub(feature_sets, dict(cfg.feature_sets), markets, events)
        for text in cfg.bar_types:
            bar_type = BarType.from_str(text)
            instrument_id = bar_type.instrument_id
            instrument = self.cache.instrument(instrument_id)
            tick = instrument.price_increment.as_double() if instrument is not None else None
            state = self._hub.register(instrument_id.value, tick)
            self._decision[str(bar_type)] = (instrument_id.value, state.feature_set.name)
            self._by_id[instrument_id] = instrument_id.value
        seconds = self._hub.warm_up()
        self.log.info(f"feature kernels ready in {seconds:.2f} s")
        if cfg.history_catalog and cfg.history_days > 0:
            start = self.clock.timestamp_ns()
            items = load_history(Path(cfg.history_catalog), start, cfg.history_days, sorted(self._reference))
            used = feed_history(self._hub, items)
            self.log.info(f"preloaded {used} history items from {cfg.history_catalog}")
        self._subscribe()
        self._log_warnings()

    def _subscribe(self) -> None:
        cfg = self._cfg
        client = ClientId(cfg.custom_client_id) if cfg.custom_client_id else None
        for instrument_id, key in self._by_id.items():
            if cfg.subscribe_quotes:
                self.subscribe_quote_ticks(instrument_id)
            if cfg.subscribe_trades:
                self.subscribe_trade_ticks(instrument_id)
            self._queue_ticks(instrument_id, key)
            if cfg.subscribe_depth and cfg.depth_from_deltas:
                self._books[instrument_id] = OrderBook(instrument_id, BookType.L2_MBP)
                self.subscribe_order_book_deltas(instrument_id, BookType.L2_MBP, depth=10, client_id=client)
            elif cfg.subscribe_depth:
                self.subscribe_order_book_depth(instrument_id, BookType.L2_MBP, depth=10)
        for text in self._decision:
            self.subscribe_bars(BarType.from_str(text))
        for text in sorted(self._reference):
            self.subscribe_bars(BarType.from_str(text))
        if cfg.subscribe_custom and client is None:  # a backtest: the run's data holds whatever exists
            for cls in (OptionChainSnapshot, NewsHeadline, MacroEvent):
                self.subscribe_data(DataType(cls))
        elif cfg.subscribe_custom:
            # a live data client polls one chain per underlying future and streams news; macro
            # releases come from the calendar file loaded at start (no feed publishes them)
            self.subscribe_data(DataType(NewsHeadline), client_id=client)
            for instrument_id in self._by_id:
                chain = DataType(OptionChainSnapshot, metadata={"instrument_id": instrument_id.value})
                self.subscribe_data(chain, client_id=client)

    def _queue_ticks(self, instrument_id: InstrumentId, key: str) -> None:
        """Let the message bus append the instrument's quotes and trades straight to its order-flow queue.

        A Python ``on_quote_tick`` would cost a method call and five accessor calls per tick, more
        than the engine's own work per tick; ``list.append`` as the handler costs almost nothing, and
        the queue is converted and applied in one compiled call at the instrument's next bar. The
        ``subscribe_*`` calls above still tell the data client what to stream.
        """
        queue = self._hub.tick_queue(key)
        if queue is None:
            return
        topic = f"{instrument_id.venue}.{instrument_id.symbol.topic()}"
        kinds = (("quotes", self._cfg.subscribe_quotes), ("trades", self._cfg.subscribe_trades))
        for kind, wanted in kinds:
            if wanted:
                self.msgbus.subscribe(topic=f"data.{kind}.{topic}", handler=queue.append)
                self._tick_topics.append((f"data.{kind}.{topic}", queue.append))

    def on_stop(self) -> None:
        """Apply what is queued, drop the direct tick subscriptions, log the counters."""
        for topic, handler in self._tick_topics:
            self.msgbus.unsubscribe(topic=topic, handler=handler)
        self._tick_topics.clear()
        if self._hub is not None:
            self._hub.flush_ticks()
            self._log_warnings()
            self.log.info(f"feature actor stats: {self._hub.stats}")

    # -- DATA ---------------------------------------------------------------------------------------

    def on_order_book_depth(self, depth: OrderBookDepth10) -> None:
        """Depth state: the latest 10 levels."""
        from mia_strategies.features.feed import feed_depth

        feed_depth(self._hub, depth)

    def on_order_book_deltas(self, deltas: OrderBookDeltas) -> None:
        """Live Level 2: keep the instrument's book (read at the next bar)."""
        book = self._books.get(deltas.instrument_id)
        if book is not None:
            book.apply_deltas(deltas)

    def on_bar(self, bar: Bar) -> None:
        """A decision bar closes: compute and publish its vector; a reference bar updates shared state."""
        from mia_strategies.features.feed import bar_input
        from mia_strategies.features.feed import feed_book

        key = str(bar.bar_type)
        decision = self._decision.get(key)
        self._hub.flush_ticks()  # every bar applies every queue, so none grows while its market has no bars
        if decision is None:
            if key in self._reference:
                self._hub.on_reference_bar(key, bar_input(bar))
                self._log_warnings()
            return
        instrument_id, set_name = decision
        if self._books:
            book = self._books.get(bar.bar_type.instrument_id)
            if book is not None and book.update_count > 0:
                feed_book(self._hub, book)
        values = self._hub.on_bar(instrument_id, bar_input(bar))
        self._log_warnings()
        if values is None:
            return
        vector = FeatureVector(
            instrument_id=bar.bar_type.instrument_id,
            feature_set=set_name,
            values=values,
            ts_event=bar.ts_event,
            ts_init=bar.ts_init,
        )
        data_type = self._data_types.get(instrument_id)
        if data_type is None:
            data_type = DataType(FeatureVector, metadata={"instrument_id": instrument_id})
            self._data_types[instrument_id] = data_type
        self.publish_data(data_type, vector)
        self.published += 1
        if self._cfg.keep_vectors:
            self.vectors.append(vector)

    def on_data(self, data: Data) -> None:
        """Option chains, news and macro events."""
        from mia_strategies.features.feed import feed_custom

        if isinstance(data, FeatureVector):
            return
        if feed_custom(self._hub, data):
            self._log_warnings()

    # -- HELPERS ------------------------------------------------------------------------------------

    def _log_warnings(self) -> None:
        hub = self._hub
        if hub is None or not hub.shared.warnings:
            return
        for warning in hub.drain_warnings():
            self.log.warning(warning)


def warm_up_kernels(actors: list[Any]) -> float:
    """Compile (or load) the feature kernels of every feature actor in ``actors``; seconds taken.

    ``mia paper`` and ``mia live`` call this before the node starts: on a fresh install compiling
    takes tens of seconds, which inside ``on_start`` would hold the event loop while the data and
    execution clients connect. Entries that are not ``ImportableActorConfig`` of this actor are skipped.
    """
    from mia_strategies.config import load_markets
    from mia_strategies.features.engine import FeatureHub
    from mia_strategies.features.sets import load_feature_sets

    seconds = 0.0
    for actor in actors:
        if getattr(actor, "actor_path", None) != f"{__name__}:FeatureActor":
            continue
        cfg = FeatureActorConfig(**actor.config)
        markets = load_markets(Path(cfg.markets_file) if cfg.markets_file else None)
        hub = FeatureHub(load_feature_sets(cfg.feature_sets_file), dict(cfg.feature_sets), markets)
        for text in cfg.bar_types:
            hub.register(BarType.from_str(text).instrument_id.value)
        seconds += hub.warm_up()
    return seconds
