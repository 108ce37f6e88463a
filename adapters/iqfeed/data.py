"""``IQFeedDataClient``: IQFeed market data inside a nautilus ``TradingNode``.

Level 1 gives quote and trade ticks (µs times, TickID, the CME aggressor), Level 2 order book
deltas (``WPL`` by price, ``WOR`` by order), port 9400 external time bars, the lookup port history
requests, option chain snapshots and news lookups; streaming news arrive on Level 1. VIX and SPY
are cross-market instruments. Every port reconnects on its own (see ``adapters.iqfeed.client``);
after a reconnect the symbols are watched again and each bar stream asks for the bars since the
last one it delivered, which are emitted only when newer than that one: no bar is lost or sent
twice. The state of the feed (each port's connection, IQConnect's own link to DTN from ``S,SERVER
DISCONNECTED``/``CONNECTED``, staleness, a ``delayed`` service from ``S,CUST``) is kept in
:attr:`IQFeedDataClient.feed_state` and logged; lines that cannot be parsed are counted
(:meth:`IQFeedDataClient.stats`) and skipped.
"""

import asyncio
import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.core.data import Data
from nautilus_trader.data.messages import RequestBars
from nautilus_trader.data.messages import RequestData
from nautilus_trader.data.messages import RequestInstrument
from nautilus_trader.data.messages import RequestInstruments
from nautilus_trader.data.messages import RequestQuoteTicks
from nautilus_trader.data.messages import RequestTradeTicks
from nautilus_trader.data.messages import SubscribeBars
from nautilus_trader.data.messages import SubscribeData
from nautilus_trader.data.messages import SubscribeInstrument
from nautilus_trader.data.messages import SubscribeInstruments
from nautilus_trader.data.messages import SubscribeOrderBook
from nautilus_trader.data.messages import SubscribeQuoteTicks
from nautilus_trader.data.messages import SubscribeTradeTicks
from nautilus_trader.data.messages import UnsubscribeBars
from nautilus_trader.data.messages import UnsubscribeData
from nautilus_trader.data.messages import UnsubscribeInstrument
from nautilus_trader.data.messages import UnsubscribeInstruments
from nautilus_trader.data.messages import UnsubscribeOrderBook
from nautilus_trader.data.messages import UnsubscribeQuoteTicks
from nautilus_trader.data.messages import UnsubscribeTradeTicks
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import CustomData
from nautilus_trader.model.data import DataType
from nautilus_trader.model.enums import BarAggregation
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.enums import PriceType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Price

from adapters.iqfeed.client import AdminClient
from adapters.iqfeed.client import BarHandlers
from adapters.iqfeed.client import BarsClient
from adapters.iqfeed.client import BarWatch
from adapters.iqfeed.client import ConnectionOptions
from adapters.iqfeed.client import DepthClient
from adapters.iqfeed.client import DepthHandlers
from adapters.iqfeed.client import Fields
from adapters.iqfeed.client import IQFeedConnection
from adapters.iqfeed.client import IQFeedError
from adapters.iqfeed.client import IQFeedNoDataError
from adapters.iqfeed.client import Level1Client
from adapters.iqfeed.client import Level1Handlers
from adapters.iqfeed.client import LookupClient
from adapters.iqfeed.client import ReconnectPolicy
from adapters.iqfeed.config import IQFeedDataClientConfig
from adapters.iqfeed.constants import LEVEL1_UPDATE_FIELDS
from adapters.iqfeed.constants import NEWS_INSTRUMENT_ID
from adapters.iqfeed.parsing import BarRow
from adapters.iqfeed.parsing import FundamentalParser
from adapters.iqfeed.parsing import Level1Parser
from adapters.iqfeed.parsing import Level2Parser
from adapters.iqfeed.parsing import NewsItem
from adapters.iqfeed.parsing import PriceCodec
from adapters.iqfeed.parsing import bar_from_row
from adapters.iqfeed.parsing import bars_from_history
from adapters.iqfeed.parsing import compact_timestamp_ns
from adapters.iqfeed.parsing import format_request_date
from adapters.iqfeed.parsing import format_request_datetime
from adapters.iqfeed.parsing import parse_bar_fields
from adapters.iqfeed.parsing import parse_chain_fields
from adapters.iqfeed.parsing import parse_daily_rows
from adapters.iqfeed.parsing import parse_interval_rows
from adapters.iqfeed.parsing import parse_news_fields
from adapters.iqfeed.parsing import parse_news_row
from adapters.iqfeed.parsing import parse_tick_rows
from adapters.iqfeed.parsing import quote_ticks_from_history
from adapters.iqfeed.parsing import trade_ticks_from_history
from adapters.iqfeed.parsing import utc_ns_to_eastern
from adapters.iqfeed.providers import IQFeedInstrumentProvider
from catalog.types import NewsHeadline
from catalog.types import OptionChainSnapshot
from mia_strategies.instruments import third_friday


_NS = 1_000_000_000
_SECONDS = {BarAggregation.SECOND: 1, BarAggregation.MINUTE: 60, BarAggregation.HOUR: 3600}


#: The topic the alert actor listens on (``mia_strategies.ops.alerts.ALERTS_TOPIC``).
ALERTS_TOPIC = "mia.alerts"


@dataclass
class _BarStream:
    """One external bar subscription: its watch, type, price decoding and last delivered close."""

    watch: BarWatch
    bar_type: BarType
    prices: PriceCodec
    interval_ns: int
    last_close_ns: int


def _ns(value: object) -> int | None:
    """A request's start or end (datetime, Timestamp or None) as UTC ns; naive values are UTC."""
    if value is None:
        return None
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value)


class IQFeedDataClient(LiveMarketDataClient):
    """
    Provides market data from DTN IQFeed (IQConnect) to a nautilus node.

    Parameters
    ----------
    loop : asyncio.AbstractEventLoop
        The event loop of the node.
    client_id : ClientId
        The client id (``IQFEED``).
    msgbus : MessageBus
        The message bus.
    cache : Cache
        The cache (instruments are added to it on connect).
    clock : LiveClock
        The clock (``ts_init`` of every object is its receive time).
    instrument_provider : IQFeedInstrumentProvider
        Maps IQFeed symbols to the project's instruments.
    config : IQFeedDataClientConfig
        Hosts, ports, timeouts and behaviour.

    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client_id: ClientId,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        instrument_provider: IQFeedInstrumentProvider,
        config: IQFeedDataClientConfig,
    ) -> None:
        super().__init__(
            loop=loop,
            client_id=client_id,
            venue=None,  # futures, VIX and SPY: one client for several venues (default routing)
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=instrument_provider,
            config=config,
        )
        self._config = config
        self._provider = instrument_provider
        self._level1_parser = Level1Parser()
        self._level2_parser = Level2Parser()
        self._fundamental_parser = FundamentalParser()
        self._quote_subs: set[InstrumentId] = set()
        self._trade_subs: set[InstrumentId] = set()
        self._depth_subs: set[InstrumentId] = set()
        self._bar_streams: dict[str, _BarStream] = {}
        self._bar_ids = 0
        self._news_types: list[DataType] = []
        self._chain_tasks: dict[DataType, asyncio.Task[None]] = {}
        self._depth_symbols: dict[str, InstrumentId] = {}
        self.feed_state: dict[str, str] = {}
        self.server_time_ns: int | None = None
        self.counts: dict[str, int] = {
            "quotes": 0, "trades": 0, "depth": 0, "bars": 0, "bars_duplicate": 0,
            "news": 0, "chains": 0, "errors": 0, "unknown_symbols": 0,
        }  # fmt: skip
        options = ConnectionOptions(
            client_name=config.client_name,
            reconnect=ReconnectPolicy(config.reconnect_initial_delay_secs, config.reconnect_max_delay_secs),
            handshake_timeout=config.handshake_timeout_secs,
            stale_after=config.stale_after_secs,
        )
        host = config.host
        self.level1 = Level1Client(
            host,
            config.level1_port,
            Level1Handlers(
                update=self._on_level1,
                fundamental=self._on_fundamental,
                news=self._on_news,
                timestamp=self._on_timestamp,
                not_found=self._on_not_found,
                system=self._on_level1_system,
                error=self._on_error,
            ),
            LEVEL1_UPDATE_FIELDS,
            options,
            self._on_port_state,
        )
        self.lookup = LookupClient(
            host,
            config.lookup_port,
            request_timeout=config.request_timeout_secs,
            rate_per_second=config.lookup_rate_per_second,
            options=options,
            on_state=self._on_port_state,
        )
        self.depth = DepthClient(
            host,
            config.depth_port,
            DepthHandlers(
                update=self._on_depth,
                clear=self._on_clear_depth,
                rewatch=self._on_depth_rewatch,
                not_found=self._on_not_found,
                no_depth=self._on_no_depth,
                error=self._on_error,
            ),
            options,
            self._on_port_state,
        )
        self.bars = BarsClient(
            host,
            config.bars_port,
            BarHandlers(bar=self._on_bar, not_found=self._on_not_found, error=self._on_error),
            format_request_datetime,
            options,
            self._on_port_state,
        )
        self.admin = AdminClient(host, config.admin_port, options=options, on_state=self._on_port_state)

    # -- CONNECTION ----------------------------------------------------------------------------------

    def connections(self) -> list[IQFeedConnection]:
        """Every port this client uses."""
        conns: list[IQFeedConnection] = [self.level1, self.lookup]
        if self._config.use_depth_port:
            conns.append(self.depth)
        if self._config.use_bars_port:
            conns.append(self.bars)
        if self._config.use_admin_port:
            conns.append(self.admin)
        return conns

    async def _connect(self) -> None:
        await self.level1.start(required=True)
        await self.lookup.start(required=True)
        for conn in self.connections()[2:]:
            await conn.start(required=False)
        self._provider.attach(self.level1)
        await self._provider.initialize()
        for instrument in self._provider.list_all():
            self._add_instrument(instrument)
        self._log.info(f"IQFeed connected to {self._config.host} ({len(self._provider.list_all())} instruments)")

    async def _disconnect(self) -> None:
        for task in self._chain_tasks.values():
            task.cancel()
        self._chain_tasks.clear()
        for conn in reversed(self.connections()):
            await conn.stop()
        self._provider.attach(None)

    def _add_instrument(self, instrument: Instrument) -> None:
        self._cache.add_instrument(instrument)
        self._handle_data(instrument)

    def stats(self) -> dict[str, Any]:
        """Counters of every port and parser (lines, reconnects, malformed, unknown, late...)."""
        ports = {c.name: c.stats.as_dict() for c in self.connections()}
        return {
            "ports": ports,
            "level1_parser": self._level1_parser.counters.as_dict(),
            "level2_parser": self._level2_parser.counters.as_dict(),
            "data": dict(self.counts),
            "unattributed_lookup_lines": self.lookup.unattributed,
        }

    def _on_port_state(self, port: str, state: str) -> None:
        previous = self.feed_state.get(port)
        self.feed_state[port] = state
        if state == "connected" and previous is not None and previous != "connected":
            self._log.info(f"IQFeed {port} reconnected; session state re-applied")
            self._publish_alert("reconnect", f"IQFeed {port} reconnected", port)
        elif state in ("disconnected", "reconnecting", "stale", "protocol_error"):
            self._log.warning(f"IQFeed {port} {state}")
            if previous != state:
                self._publish_alert("disconnect", f"IQFeed {port} {state}", port)

    def _publish_alert(self, kind: str, title: str, port: str) -> None:
        """Tell people (the alert actor listens on ``mia.alerts``); a plain dict keeps adapters free of ops."""
        payload = {
            "kind": kind,
            "title": title,
            "source": "IQFEED",
            "ts_event": self._clock.timestamp_ns(),
            "dedup_key": f"iqfeed|{port}|{kind}",
            "fields": {"port": port},
        }
        self._msgbus.publish(ALERTS_TOPIC, payload)

    # -- INSTRUMENTS ---------------------------------------------------------------------------------

    async def _instrument(self, instrument_id: InstrumentId) -> Instrument | None:
        instrument = self._cache.instrument(instrument_id) or self._provider.find(instrument_id)
        if instrument is None:
            try:
                await self._provider.load_async(instrument_id)
            except Exception as exc:  # a bad id must not kill the client
                self._log.error(f"IQFeed cannot load {instrument_id}: {exc}")
                return None
            instrument = self._provider.find(instrument_id)
            if instrument is not None:
                self._add_instrument(instrument)
        return instrument

    async def _subscribe_instruments(self, command: SubscribeInstruments) -> None:
        for instrument in self._provider.list_all():
            self._handle_data(instrument)

    async def _subscribe_instrument(self, command: SubscribeInstrument) -> None:
        instrument = await self._instrument(command.instrument_id)
        if instrument is not None:
            self._handle_data(instrument)

    async def _unsubscribe_instruments(self, command: UnsubscribeInstruments) -> None:
        return None  # instrument definitions are static for the session

    async def _unsubscribe_instrument(self, command: UnsubscribeInstrument) -> None:
        return None

    # -- SUBSCRIPTIONS -------------------------------------------------------------------------------

    async def _watch_level1(self, instrument_id: InstrumentId) -> None:
        instrument = await self._instrument(instrument_id)
        if instrument is None:
            return
        symbol = self._provider.symbol_of(instrument_id)
        self._level1_parser.register(symbol, instrument_id, instrument.price_precision)
        self.level1.watch(symbol)

    def _maybe_unwatch_level1(self, instrument_id: InstrumentId) -> None:
        if instrument_id in self._quote_subs or instrument_id in self._trade_subs:
            return
        symbol = self._provider.symbol_of(instrument_id)
        self.level1.unwatch(symbol)
        self._level1_parser.forget(symbol)

    async def _subscribe_quote_ticks(self, command: SubscribeQuoteTicks) -> None:
        self._quote_subs.add(command.instrument_id)
        await self._watch_level1(command.instrument_id)

    async def _subscribe_trade_ticks(self, command: SubscribeTradeTicks) -> None:
        self._trade_subs.add(command.instrument_id)
        await self._watch_level1(command.instrument_id)

    async def _unsubscribe_quote_ticks(self, command: UnsubscribeQuoteTicks) -> None:
        self._quote_subs.discard(command.instrument_id)
        self._maybe_unwatch_level1(command.instrument_id)

    async def _unsubscribe_trade_ticks(self, command: UnsubscribeTradeTicks) -> None:
        self._trade_subs.discard(command.instrument_id)
        self._maybe_unwatch_level1(command.instrument_id)

    async def _subscribe_order_book_deltas(self, command: SubscribeOrderBook) -> None:
        instrument = await self._instrument(command.instrument_id)
        if instrument is None:
            return
        if not self._config.use_depth_port:
            self._log.error("IQFeed depth port is disabled (use_depth_port=False): no order book")
            return
        symbol = self._provider.symbol_of(command.instrument_id)
        self._depth_subs.add(command.instrument_id)
        self._depth_symbols[symbol] = command.instrument_id
        self._level2_parser.register(symbol, command.instrument_id, instrument.price_precision)
        by_order = command.book_type == BookType.L3_MBO
        self.depth.watch(
            symbol, by_order=by_order, levels=0 if by_order else (command.depth or self._config.depth_levels)
        )

    async def _unsubscribe_order_book_deltas(self, command: UnsubscribeOrderBook) -> None:
        self._depth_subs.discard(command.instrument_id)
        symbol = self._provider.symbol_of(command.instrument_id)
        self.depth.unwatch(symbol)
        self._level2_parser.forget(symbol)
        self._depth_symbols.pop(symbol, None)

    async def _subscribe_bars(self, command: SubscribeBars) -> None:
        bar_type = command.bar_type
        spec = bar_type.spec
        seconds = _SECONDS.get(spec.aggregation)
        if seconds is None or spec.price_type != PriceType.LAST:
            self._log.error(f"IQFeed streams time bars of LAST prices only (SECOND, MINUTE, HOUR), not {bar_type}")
            return
        instrument = await self._instrument(bar_type.instrument_id)
        if instrument is None:
            return
        interval_ns = seconds * spec.step * _NS
        now = self._clock.timestamp_ns()
        start = now - now % interval_ns  # the forming bar: no history replayed into a live stream
        self._bar_ids += 1
        rid = f"B{self._bar_ids}"
        watch = BarWatch(self._provider.symbol_of(bar_type.instrument_id), seconds * spec.step, rid, start)
        self._bar_streams[rid] = _BarStream(watch, bar_type, PriceCodec(instrument.price_precision), interval_ns, start)
        self.bars.watch(watch)

    async def _unsubscribe_bars(self, command: UnsubscribeBars) -> None:
        for rid, stream in list(self._bar_streams.items()):
            if stream.bar_type == command.bar_type:
                self.bars.unwatch(rid)
                del self._bar_streams[rid]

    async def _subscribe(self, command: SubscribeData) -> None:
        data_type = command.data_type
        if data_type.type is NewsHeadline:
            self._news_types.append(data_type)
            self.level1.set_news(True)
        elif data_type.type is OptionChainSnapshot:
            underlying = data_type.metadata.get("instrument_id") if data_type.metadata else None
            if underlying is None:
                self._log.error("OptionChainSnapshot subscriptions need metadata {'instrument_id': <future>}")
                return
            interval = float((data_type.metadata or {}).get("interval_secs", self._config.chain_interval_secs))
            instrument_id = InstrumentId.from_str(str(underlying))
            self._chain_tasks[data_type] = self._loop.create_task(self._poll_chain(data_type, instrument_id, interval))
        else:
            self._log.error(f"IQFeed has no {data_type.type.__name__} data")

    async def _unsubscribe(self, command: UnsubscribeData) -> None:
        data_type = command.data_type
        if data_type.type is NewsHeadline:
            self._news_types = [t for t in self._news_types if t != data_type]
            if not self._news_types:
                self.level1.set_news(False)
        task = self._chain_tasks.pop(data_type, None)
        if task is not None:
            task.cancel()

    # -- LEVEL 1 -------------------------------------------------------------------------------------

    def _on_level1(self, fields: Fields) -> None:
        trade, quote = self._level1_parser.parse(fields, self._clock.timestamp_ns())
        if trade is not None and trade.instrument_id in self._trade_subs:
            self.counts["trades"] += 1
            self._handle_data(trade)
        if quote is not None and quote.instrument_id in self._quote_subs:
            self.counts["quotes"] += 1
            self._handle_data(quote)

    def _on_fundamental(self, fields: Fields) -> None:
        return None  # fundamentals are awaited by the instrument provider

    def _on_timestamp(self, fields: Fields) -> None:
        if len(fields) > 1:
            try:
                self.server_time_ns = compact_timestamp_ns(fields[1])
            except (ValueError, IndexError):
                self._level1_parser.counters.malformed += 1

    def _on_not_found(self, fields: Fields) -> None:
        self.counts["unknown_symbols"] += 1
        self._log.error(f"IQFeed does not know symbol {fields[1] if len(fields) > 1 else '?'}")

    def _on_no_depth(self, fields: Fields) -> None:
        self._log.error(f"IQFeed has no market depth for {fields[1] if len(fields) > 1 else '?'}")

    def _on_error(self, fields: Fields) -> None:
        self.counts["errors"] += 1
        self._log.error(f"IQFeed error: {','.join(fields[1:])[:200]}")

    def _on_level1_system(self, fields: Fields) -> None:
        kind = fields[1] if len(fields) > 1 else ""
        if kind == "CURRENT UPDATE FIELDNAMES":
            self._level1_parser.set_fieldnames(fields[2:])
        elif kind == "FUNDAMENTAL FIELDNAMES":
            self._fundamental_parser.set_fieldnames(fields[2:])
        elif kind == "SERVER DISCONNECTED":
            self.feed_state["server"] = "disconnected"
            self._log.warning("IQConnect lost its connection to DTN: no market data until it reconnects")
        elif kind == "SERVER CONNECTED":
            if self.feed_state.get("server") == "disconnected":
                self._log.info("IQConnect reconnected to DTN")
            self.feed_state["server"] = "connected"
        elif kind == "SERVER RECONNECT FAILED":
            self.feed_state["server"] = "reconnect_failed"
            self._log.error("IQConnect failed to reconnect to DTN")
        elif kind == "CUST":
            service = fields[2] if len(fields) > 2 else ""
            self.feed_state["service"] = service
            if service != "real_time":
                self._log.error(
                    f"IQConnect serves {service or 'an unknown'} data, not real_time: prices are minutes old "
                    "(no real-time exchange entitlement on this login); do not trade on this feed",
                )
        elif kind == "SYMBOL LIMIT REACHED":
            self._log.error(f"IQFeed symbol limit reached: {fields[2] if len(fields) > 2 else '?'} not watched")

    def _on_news(self, fields: Fields) -> None:
        try:
            item = parse_news_fields(fields)
        except (ValueError, IndexError):
            self._level1_parser.counters.malformed += 1
            return
        headline = self._headline(item, self._clock.timestamp_ns())
        for data_type in self._news_types:
            self.counts["news"] += 1
            self._handle_data(CustomData(data_type, headline))

    def _headline(self, item: NewsItem, ts_init: int) -> NewsHeadline:
        instrument_id = NEWS_INSTRUMENT_ID
        for symbol in item.symbols:
            found = self._instrument_for_news(symbol)
            if found is not None:
                instrument_id = found
                break
        return NewsHeadline(
            instrument_id=instrument_id,
            story_id=item.story_id,
            source=item.source,
            headline=item.headline,
            symbols=":".join(item.symbols),
            ts_event=item.ts_ns,
            ts_init=max(ts_init, item.ts_ns),
        )

    def _instrument_for_news(self, symbol: str) -> InstrumentId | None:
        """A news symbol (``@ES``, ``@ESZ25``, ``SPY``) to a loaded instrument, or None."""
        found = self._provider.instrument_id_of(symbol)
        if found is not None and self._provider.find(found) is not None:
            return found
        root = symbol.lstrip("@").rstrip("#")
        for instrument in self._provider.list_all():
            if getattr(instrument, "underlying", None) is not None and instrument.id.symbol.value[:-3] == root:
                return instrument.id
        return None

    # -- LEVEL 2 -------------------------------------------------------------------------------------

    def _on_depth(self, fields: Fields) -> None:
        deltas = self._level2_parser.parse(fields, self._clock.timestamp_ns())
        if deltas is not None:
            self.counts["depth"] += 1
            self._handle_data(deltas)

    def _on_clear_depth(self, fields: Fields) -> None:
        if len(fields) < 4:
            self._level2_parser.counters.malformed += 1
            return
        deltas = self._level2_parser.clear_side(fields[2], fields[3], self._clock.timestamp_ns())
        if deltas is not None:
            self._handle_data(deltas)

    def _on_depth_rewatch(self, symbol: str) -> None:
        deltas = self._level2_parser.reset(symbol, self._clock.timestamp_ns())
        if deltas is not None:
            self._handle_data(deltas)

    # -- BARS ----------------------------------------------------------------------------------------

    def _on_bar(self, fields: Fields) -> None:
        try:
            row = parse_bar_fields(fields)
        except (ValueError, IndexError):
            self._level1_parser.counters.malformed += 1
            return
        if row is None or row.kind == "BU":
            return
        stream = self._bar_streams.get(row.request_id)
        if stream is None:
            return
        self._emit_bar(stream, row)

    def _emit_bar(self, stream: _BarStream, row: BarRow) -> None:
        now = self._clock.timestamp_ns()
        close_ns = row.start_ns + stream.interval_ns
        if close_ns <= stream.last_close_ns:
            self.counts["bars_duplicate"] += 1  # already delivered (a backfill overlapping the live stream)
            return
        if close_ns > now + _NS:
            return  # a forming bar in a backfill: it arrives again as BC when complete
        try:
            bar = bar_from_row(row, stream.bar_type, stream.prices, stream.interval_ns, now)
        except (ValueError, IndexError):
            self._level1_parser.counters.malformed += 1
            return
        stream.last_close_ns = close_ns
        stream.watch.resume_from_ns = close_ns  # a re-watch backfills from the next bar on
        self.counts["bars"] += 1
        self._handle_data(bar)

    # -- REQUESTS ------------------------------------------------------------------------------------

    async def _lookup(self, command: str) -> list[str]:
        try:
            return await self.lookup.request(command)
        except IQFeedNoDataError:
            return []
        except IQFeedError as exc:
            self._log.warning(f"IQFeed lookup failed: {exc}")
            return []

    def _range(self, start: object, end: object) -> tuple[str, str]:
        start_ns = _ns(start)
        end_ns = _ns(end) or self._clock.timestamp_ns()
        if start_ns is None:
            start_ns = end_ns - 86_400 * _NS
        return format_request_datetime(start_ns), format_request_datetime(end_ns)

    async def _tick_history(self, instrument_id: InstrumentId, start: object, end: object, limit: int) -> Any:
        symbol = self._provider.symbol_of(instrument_id)
        begin, finish = self._range(start, end)
        max_points = str(limit) if limit and limit > 0 else ""
        rows = await self._lookup(f"HTT,{symbol},{begin},{finish},{max_points},,,1,{{rid}},5000")
        history = parse_tick_rows(rows)
        if limit and len(history) > limit:
            history = parse_tick_rows(rows[-limit:])
        return history

    async def _request_trade_ticks(self, request: RequestTradeTicks) -> None:
        instrument = await self._instrument(request.instrument_id)
        ticks: list = []
        if instrument is not None:
            history = await self._tick_history(request.instrument_id, request.start, request.end, request.limit)
            tick = instrument.price_increment.as_double()
            ticks = trade_ticks_from_history(history, request.instrument_id, instrument.price_precision, tick)
        self._handle_trade_ticks(request.instrument_id, ticks, request.id, request.start, request.end, request.params)

    async def _request_quote_ticks(self, request: RequestQuoteTicks) -> None:
        """The bid and ask at each historical trade (IQFeed keeps no quote history; sizes are 0)."""
        instrument = await self._instrument(request.instrument_id)
        quotes: list = []
        if instrument is not None:
            history = await self._tick_history(request.instrument_id, request.start, request.end, request.limit)
            tick = instrument.price_increment.as_double()
            quotes = quote_ticks_from_history(history, request.instrument_id, instrument.price_precision, tick)
        self._handle_quote_ticks(request.instrument_id, quotes, request.id, request.start, request.end, request.params)

    async def _request_bars(self, request: RequestBars) -> None:
        bar_type = request.bar_type
        instrument = await self._instrument(bar_type.instrument_id)
        bars: list[Bar] = []
        if instrument is not None:
            bars = await self.history_bars(bar_type, instrument, _ns(request.start), _ns(request.end))
            if request.limit and len(bars) > request.limit:
                bars = bars[-request.limit :]
        self._handle_bars(bar_type, bars, request.id, request.start, request.end, request.params)

    async def history_bars(
        self, bar_type: BarType, instrument: Instrument, start_ns: int | None, end_ns: int | None
    ) -> list[Bar]:
        """Historical time bars (``HIT``) or daily bars (``HDT``), stamped at their close."""
        spec = bar_type.spec
        symbol = self._provider.symbol_of(bar_type.instrument_id)
        end = end_ns or self._clock.timestamp_ns()
        start = start_ns if start_ns is not None else end - 86_400 * _NS
        if spec.aggregation == BarAggregation.DAY:
            rows = await self._lookup(
                f"HDT,{symbol},{format_request_date(start)},{format_request_date(end)},,1,{{rid}},5000"
            )
            daily = parse_daily_rows(rows)
            closes = np.array([_session_close_ns(int(ts)) for ts in daily.ts_ns], dtype=np.int64)
            return bars_from_history(bar_type, instrument, daily, closes)
        seconds = _SECONDS.get(spec.aggregation)
        if seconds is None:
            self._log.error(f"IQFeed history has time and daily bars only, not {bar_type}")
            return []
        interval = seconds * spec.step
        rows = await self._lookup(
            f"HIT,{symbol},{interval},{format_request_datetime(start)},{format_request_datetime(end)},,,,1,{{rid}},5000,s,0"
        )
        intervals = parse_interval_rows(rows)  # labelled at the end (LabelAtBeginning 0): the close
        keep = (intervals.ts_ns > start) & (intervals.ts_ns <= end)
        return bars_from_history(bar_type, instrument, intervals, intervals.ts_ns, keep)

    async def _request_instrument(self, request: RequestInstrument) -> None:
        instrument = await self._instrument(request.instrument_id)
        if instrument is not None:
            self._handle_instrument(instrument, request.id, request.start, request.end, request.params)

    async def _request_instruments(self, request: RequestInstruments) -> None:
        instruments = [i for i in self._provider.list_all() if i.id.venue == request.venue]
        self._handle_instruments(request.venue, instruments, request.id, request.start, request.end, request.params)

    async def _request(self, request: RequestData) -> None:
        data_type = request.data_type
        data: list[Data] = []
        if data_type.type is OptionChainSnapshot:
            underlying = (data_type.metadata or {}).get("instrument_id")
            if underlying is not None:
                snapshot = await self.chain_snapshot(InstrumentId.from_str(str(underlying)))
                if snapshot is not None:
                    data = [snapshot]
        elif data_type.type is NewsHeadline:
            data = list(await self.news_headlines((data_type.metadata or {}).get("symbols", ""), request.limit or 100))
        else:
            self._log.error(f"IQFeed has no {data_type.type.__name__} data")
        self._handle_data_response(data_type, data, request.id, request.start, request.end, request.params)

    # -- OPTION CHAINS AND NEWS ------------------------------------------------------------------------

    async def chain_snapshot(self, underlying: InstrumentId) -> OptionChainSnapshot | None:
        """The listed options of ``underlying``'s contract month (``CFO``) around its last price.

        IQFeed's chain lookup lists symbols only: strikes, rights and expiries come from them, the
        underlying price from the last Level 1 trade; implied volatility, greeks, open interest
        and volume are NaN (unknown, never zero).
        """
        symbol = self._provider.symbol_of(underlying)
        root, month, yy = symbol[1:-3], symbol[-3], symbol[-2:]
        rows = await self._lookup(f"CFO,@{root},pc,{month},{yy[-1]},1,{{rid}}")
        options = [o for row in rows for o in parse_chain_fields(row.split(","))]
        options = [o for o in options if o.year % 100 == int(yy) and "FGHJKMNQUVXZ"[o.month - 1] == month]
        if not options:
            return None
        state = self._level1_parser.symbols.get(symbol)
        instrument = self._cache.instrument(underlying)
        price = math.nan
        if state is not None and state.last_price_raw is not None and instrument is not None:
            price = Price.from_raw(state.last_price_raw, instrument.price_precision).as_double()
        strikes = np.array([o.strike for o in options], dtype=np.float64)
        keep = np.ones(len(options), dtype=bool)
        if self._config.chain_strikes > 0 and math.isfinite(price):
            unique = np.unique(strikes)
            nearest = unique[np.argsort(np.abs(unique - price), kind="stable")[: 2 * self._config.chain_strikes + 1]]
            keep = np.isin(strikes, nearest)
        chosen = [o for o, k in zip(options, keep, strict=True) if k]
        expiry = _option_expiry_ns(chosen[0].year, chosen[0].month)
        n = len(chosen)
        nan = np.full(n, np.nan)
        now = self._clock.timestamp_ns()
        self.counts["chains"] += 1
        return OptionChainSnapshot(
            instrument_id=underlying,
            underlying_price=price,
            source="IQFEED",
            expiries_ns=np.full(n, float(expiry)),
            strikes=np.array([o.strike for o in chosen], dtype=np.float64),
            rights=np.array([float(o.right) for o in chosen], dtype=np.float64),
            implied_vols=nan,
            deltas=nan.copy(),
            gammas=nan.copy(),
            open_interest=nan.copy(),
            volumes=nan.copy(),
            ts_event=now,
            ts_init=now,
        )

    async def _poll_chain(self, data_type: DataType, underlying: InstrumentId, interval: float) -> None:
        while True:
            snapshot = await self.chain_snapshot(underlying)
            if snapshot is not None:
                self._handle_data(CustomData(data_type, snapshot))
            await asyncio.sleep(interval)

    async def news_headlines(self, symbols: str, limit: int) -> list[NewsHeadline]:
        """Recent headlines (``NHL``, text format) for colon-separated ``symbols`` (all when empty)."""
        rows = await self._lookup(f"NHL,,{symbols},t,{limit},,{{rid}}")
        now = self._clock.timestamp_ns()
        result: list[NewsHeadline] = []
        for row in rows:
            try:
                item = parse_news_row(row)
            except (ValueError, IndexError):
                self._level1_parser.counters.malformed += 1
                continue
            result.append(self._headline(item, now))
        return sorted(result, key=lambda h: h.ts_event)


def _session_close_ns(day_midnight_utc_ns: int) -> int:
    """17:00 Eastern (the CME daily close) of the date whose Eastern midnight is given."""
    day = utc_ns_to_eastern(day_midnight_utc_ns).date()
    return int(pd.Timestamp(dt.datetime.combine(day, dt.time(17, 0)), tz="America/New_York").tz_convert("UTC").value)


def _option_expiry_ns(year: int, month: int) -> int:
    """Quarterly equity-index futures options expire with the future: 09:30 ET, third Friday."""
    local = dt.datetime.combine(third_friday(year, month), dt.time(9, 30))
    return int(pd.Timestamp(local, tz="America/New_York").tz_convert("UTC").value)
