"""Price feeds for the simulator: a catalog replay, or any external feed through a callback.

Sierra Chart fills simulated orders against its own data feed; real SC does not serve CME data over
DTC, so the simulator takes prices from the test harness. ``CatalogReplay`` replays a nautilus
catalog's quotes and trades (the same ticks a nautilus data client can be fed, so the strategy and
the fills see one market), paced by their timestamps or as fast as a consumer allows. ``apply_tick``
is the callback any other feed (the IQFeed simulator's, a test's) uses to move the simulated market.
"""

import asyncio
import heapq
import importlib
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol
from typing import TypeAlias

from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.persistence.catalog import ParquetDataCatalog


Tick: TypeAlias = QuoteTick | TradeTick


class MarketSink(Protocol):
    """What a feed drives: the simulator (or anything with the same two methods)."""

    def quote(
        self,
        symbol: str,
        bid: float | None,
        bid_size: float,
        ask: float | None,
        ask_size: float,
        ts_ns: int | None = None,
    ) -> None:
        """A top-of-book update in display prices."""

    def trade(self, symbol: str, price: float, size: float, ts_ns: int | None = None) -> None:
        """A trade print in display prices."""


def apply_tick(sink: MarketSink, symbol: str, tick: Tick, ts_ns: int | None = None) -> None:
    """Move the simulated market of Sierra ``symbol`` with one nautilus tick."""
    if isinstance(tick, QuoteTick):
        sink.quote(
            symbol,
            tick.bid_price.as_double(),
            tick.bid_size.as_double(),
            tick.ask_price.as_double(),
            tick.ask_size.as_double(),
            ts_ns,
        )
    else:
        sink.trade(symbol, tick.price.as_double(), tick.size.as_double(), ts_ns)


def load_catalog_ticks(
    catalog_path: Path | str,
    instrument_ids: Iterable[str],
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> list[Tick]:
    """Quotes and trades of the instruments, merged in time order (a quote before a trade at one time)."""
    catalog = ParquetDataCatalog(str(catalog_path))
    ids = list(instrument_ids)
    quotes: list[QuoteTick] = catalog.quote_ticks(instrument_ids=ids, start=start_ns, end=end_ns) or []
    trades: list[TradeTick] = catalog.trade_ticks(instrument_ids=ids, start=start_ns, end=end_ns) or []
    return list(merge_ticks(quotes, trades))


def merge_ticks(quotes: Iterable[QuoteTick], trades: Iterable[TradeTick]) -> Iterator[Tick]:
    """Merge two time-ordered tick streams by ``ts_init``; quotes first at equal times (stable)."""
    keyed_quotes = ((q.ts_init, 0, n, q) for n, q in enumerate(quotes))
    keyed_trades = ((t.ts_init, 1, n, t) for n, t in enumerate(trades))
    for _, _, _, tick in heapq.merge(keyed_quotes, keyed_trades):
        yield tick


class CatalogReplay:
    """Replay ticks into the simulator and to listeners (a test data client), in order.

    ``speed`` paces the replay by the ticks' own time stamps (1.0 = real time, 10.0 = ten times
    faster); ``speed=0`` replays as fast as possible. ``settle``, when given, is awaited after each
    tick: a lock-step replay awaits the whole system's reaction there before the next tick moves the
    market, which is how the parity test removes scheduling noise.
    """

    def __init__(
        self,
        sink: MarketSink,
        ticks: list[Tick],
        symbols: Mapping[str, str],
        *,
        speed: float = 0.0,
        listeners: Iterable[Callable[[Tick], None]] = (),
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._sink = sink
        self._ticks = ticks
        self._symbols = dict(symbols)
        self._speed = speed
        self._listeners = list(listeners)
        self._settle = settle
        self.replayed = 0

    async def run(self) -> int:
        """Replay every tick; return how many were replayed."""
        if not self._ticks:
            return 0
        first_ts = self._ticks[0].ts_init
        started = time.monotonic()
        for tick in self._ticks:
            if self._speed > 0:
                due = started + (tick.ts_init - first_ts) / 1e9 / self._speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            symbol = self._symbols.get(tick.instrument_id.value)
            for listener in self._listeners:
                listener(tick)
            if symbol is not None:
                apply_tick(self._sink, symbol, tick)
            self.replayed += 1
            if self._settle is not None:
                await self._settle()
            elif self._speed <= 0 and self.replayed % 256 == 0:
                await asyncio.sleep(0)
        return self.replayed


class IQFeedMarketBridge:
    """Forward an in-process IQFeed simulator's market to the DTC simulator (both on one event loop).

    Attach with ``iqfeed_market.listeners.append(bridge)``: every quote and trade the IQFeed
    simulator serves moves the DTC simulator's market at the same instant, so ``mia live --dry-run``
    fills orders against exactly the prices the strategy sees. ``symbols`` maps IQFeed symbols
    (``@ESZ26``) to Sierra symbols (``ESZ26-CME``).
    """

    def __init__(self, sink: MarketSink, symbols: Mapping[str, str]) -> None:
        self._sink = sink
        self._symbols = dict(symbols)

    def on_quote(self, symbol: str, book: object, depth: object) -> None:
        """Top of book changed."""
        target = self._symbols.get(symbol)
        if target is None:
            return
        tick = book.spec.tick  # type: ignore[attr-defined]
        self._sink.quote(
            target,
            book.bid * tick,  # type: ignore[attr-defined]
            float(book.bid_size),  # type: ignore[attr-defined]
            book.ask * tick,  # type: ignore[attr-defined]
            float(book.ask_size),  # type: ignore[attr-defined]
        )

    def on_trade(self, symbol: str, book: object, trade: object) -> None:
        """A print."""
        target = self._symbols.get(symbol)
        if target is None:
            return
        tick = book.spec.tick  # type: ignore[attr-defined]
        self._sink.trade(target, trade.price * tick, float(trade.size))  # type: ignore[attr-defined]


#: Level 1 fields the IQConnect follower selects.
_L1_FIELDS = ("Bid", "Bid Size", "Ask", "Ask Size", "Most Recent Trade", "Most Recent Trade Size", "Message Contents")
_TRADE_CONTENTS = frozenset("CEO")


class IQFeedLevel1Feed:
    """Follow an IQConnect (or IQConnect simulator) Level 1 port and move the DTC simulator's market.

    Used by ``mia dtc-sim --iqfeed HOST:PORT`` so a separately running ``mia iqfeed-sim`` (or a real
    IQConnect) prices the simulated fills. ``symbols`` maps IQFeed symbols to Sierra symbols.
    """

    def __init__(self, sink: MarketSink, host: str, port: int, symbols: Mapping[str, str]) -> None:
        self._sink = sink
        self._host = host
        self._port = port
        self._symbols = dict(symbols)
        self._client: object | None = None
        self.updates = 0

    async def start(self) -> None:
        """Connect, select fields and watch every mapped symbol (reconnects on its own)."""
        # Imported by name: the simulator package does not depend on the IQFeed adapter unless this is used.
        iqfeed = importlib.import_module("adapters.iqfeed.client")
        client = iqfeed.Level1Client(self._host, self._port, iqfeed.Level1Handlers(update=self._on_update), _L1_FIELDS)
        await client.start()
        for symbol in self._symbols:
            client.watch(symbol)
        self._client = client

    async def stop(self) -> None:
        """Disconnect."""
        if self._client is not None:
            await self._client.stop()  # type: ignore[attr-defined]
            self._client = None

    def _on_update(self, fields: list[str]) -> None:
        if len(fields) < 2 + len(_L1_FIELDS):
            return
        target = self._symbols.get(fields[1])
        if target is None:
            return
        bid, bid_size, ask, ask_size, last, last_size, contents = fields[2 : 2 + len(_L1_FIELDS)]
        self.updates += 1
        try:
            if not contents or "b" in contents or "a" in contents:
                self._sink.quote(target, float(bid), float(bid_size or 0), float(ask), float(ask_size or 0))
            if _TRADE_CONTENTS.intersection(contents) and last:
                self._sink.trade(target, float(last), float(last_size or 0))
        except ValueError:
            return  # an empty price before the first quote of the day
