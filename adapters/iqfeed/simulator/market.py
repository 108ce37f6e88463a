"""The simulated market behind the fake IQConnect: symbols, live books, trade history, feeds.

Prices are held as whole ticks so nothing drifts off the grid. Every trade is appended to the
symbol's history the moment it happens, whoever watches, so history lookups and bar backfills
after a client's disconnect serve exactly what the live feed would have sent. A feed moves the
market: :class:`GeneratedFeed` (a seeded random walk on the wall clock), :class:`ReplayFeed` (a
catalog's ticks streamed as the current contracts); :func:`load_catalog_history` puts a catalog's
trades into the history as they are, for ``HTT``/``HIT``/``HDT`` downloads.
"""

import asyncio
import datetime as dt
import random
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from mia_strategies.config import MarketsConfig
from mia_strategies.instruments import ContractRef
from mia_strategies.instruments import active_contract
from mia_strategies.instruments import expiry_ns
from mia_strategies.instruments import next_contract
from mia_strategies.instruments import parse_contract_symbol


IntArray = npt.NDArray[np.int64]
Clock = Callable[[], int]

#: Listed market / security type ids used in fundamentals (illustrative, as in the spec's sample).
CME_MARKET_ID = 34
FUTURES_TYPE_ID = 8
EQUITY_TYPE_ID = 1
INDEX_TYPE_ID = 6
ARCA_MARKET_ID = 11
CBOE_MARKET_ID = 30

BUY, SELL, NEITHER = 1, 2, 3


def wall_clock() -> int:
    """UTC ns now."""
    return time.time_ns()


@dataclass(frozen=True)
class SymbolSpec:
    """One symbol the simulator knows: how it is quoted and what its fundamentals say."""

    symbol: str
    kind: str  # "future" | "equity" | "index"
    root: str
    description: str
    tick: float
    precision: int
    base_price: float
    expiration: dt.date | None = None
    contract_months: str = ""
    listed_market: int = CME_MARKET_ID
    security_type: int = FUTURES_TYPE_ID
    has_depth: bool = True
    tradable: bool = True

    def ticks(self, price: float) -> int:
        """A price as whole ticks."""
        return round(price / self.tick)


@dataclass
class Universe:
    """Symbols, continuous aliases (``@ES#`` → ``@ESZ26``) and symbols the login is not entitled to."""

    specs: dict[str, SymbolSpec] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    unauthorized: set[str] = field(default_factory=set)

    def add(self, spec: SymbolSpec) -> None:
        """Add (or replace) a symbol."""
        self.specs[spec.symbol] = spec

    def resolve(self, symbol: str) -> str | None:
        """The canonical symbol of ``symbol`` (aliases followed), or None when unknown."""
        symbol = self.aliases.get(symbol, symbol)
        return symbol if symbol in self.specs else None

    def names_for(self, canonical: str) -> list[str]:
        """``canonical`` and every alias pointing at it (what watchers may have asked for)."""
        return [canonical, *(a for a, c in self.aliases.items() if c == canonical)]


_BASE_PRICES = {"SPX": 6800.0, "NDX": 25000.0}


def contract_spec(ref: ContractRef, markets: MarketsConfig, base_price: float | None = None) -> SymbolSpec:
    """The spec of a CME contract from ``markets.yaml`` (tick, precision, third-Friday expiry)."""
    spec = markets.root(ref.root)
    expiry = dt.datetime.fromtimestamp(expiry_ns(ref, spec) / 1e9, tz=dt.UTC).date()
    base = base_price if base_price is not None else _BASE_PRICES.get(spec.underlying, 5000.0)
    month = "FGHJKMNQUVXZ"[ref.month - 1]
    return SymbolSpec(
        symbol=f"@{ref.symbol}",
        kind="future",
        root=ref.root,
        description=f"{spec.description.upper()} {dt.date(ref.year, ref.month, 1):%B %Y}".upper() + f" ({month})",
        tick=float(spec.tick_size),
        precision=spec.price_precision,
        base_price=base,
        expiration=expiry,
        contract_months=spec.months,
    )


def default_universe(markets: MarketsConfig, now_ns: int, roots: Sequence[str] = ("ES", "MNQ")) -> Universe:
    """Active and next contracts of ``roots`` at ``now_ns``, their ``@ROOT#`` aliases, SPY and VIX."""
    universe = Universe()
    for root in roots:
        active = active_contract(root, now_ns, markets)
        spec = markets.root(root)
        for ref in (active, next_contract(active, spec)):
            universe.add(contract_spec(ref, markets))
        universe.aliases[f"@{root}#"] = f"@{active.symbol}"
    universe.add(
        SymbolSpec(
            "SPY", "equity", "SPY", "SPDR S&P 500 ETF TRUST", 0.01, 2, 680.0,
            listed_market=ARCA_MARKET_ID, security_type=EQUITY_TYPE_ID, has_depth=False,
        ),
    )  # fmt: skip
    universe.add(
        SymbolSpec(
            "VIX.XO", "index", "VIX", "CBOE VOLATILITY INDEX", 0.01, 2, 16.0,
            listed_market=CBOE_MARKET_ID, security_type=INDEX_TYPE_ID, has_depth=False, tradable=False,
        ),
    )  # fmt: skip
    return universe


# -- live state -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trade:
    """One print."""

    ts_ns: int
    price: int  # ticks
    size: int
    aggressor: int  # 1 buy, 2 sell, 3 neither
    tick_id: int
    total_volume: int
    bid: int
    ask: int


@dataclass
class Level:
    """One price level of the simulated book, with the single order resting there."""

    size: int
    order_id: int


@dataclass
class DepthChange:
    """What one quote update did to the ladder of one side: (price ticks, size, order id) lists."""

    side: str  # "B" or "A"
    added: list[tuple[int, int, int]] = field(default_factory=list)
    updated: list[tuple[int, int, int]] = field(default_factory=list)
    deleted: list[tuple[int, int, int]] = field(default_factory=list)


@dataclass
class Book:
    """Top of book, last trade and day statistics of one symbol, plus its depth ladder."""

    spec: SymbolSpec
    bid: int = 0
    ask: int = 0
    bid_size: int = 0
    ask_size: int = 0
    bid_time: int = 0
    ask_time: int = 0
    last: Trade | None = None
    total_volume: int = 0
    trades_today: int = 0
    open: int | None = None
    high: int | None = None
    low: int | None = None
    tick_id: int = 0
    levels: dict[str, dict[int, Level]] = field(default_factory=lambda: {"B": {}, "A": {}})

    def px(self, ticks: int) -> str:
        """Ticks formatted as a price."""
        return f"{ticks * self.spec.tick:.{self.spec.precision}f}"


class TradeHistory:
    """Every trade of one symbol, oldest first: loaded blocks plus live appends."""

    def __init__(self) -> None:
        self._blocks: list[dict[str, IntArray]] = []
        self._live: list[Trade] = []
        self._cache: dict[str, IntArray] | None = None

    def extend(self, columns: dict[str, IntArray]) -> None:
        """Add a block (``ts, price, size, aggressor, tick_id, total_volume, bid, ask`` int arrays)."""
        self._blocks.append(columns)
        self._cache = None

    def append(self, trade: Trade) -> None:
        """Add one live trade."""
        self._live.append(trade)
        self._cache = None

    def __len__(self) -> int:
        return sum(len(b["ts"]) for b in self._blocks) + len(self._live)

    def arrays(self) -> dict[str, IntArray]:
        """All trades as columns, sorted by time (stable)."""
        if self._cache is None:
            names = ("ts", "price", "size", "aggressor", "tick_id", "total_volume", "bid", "ask")
            parts = list(self._blocks)
            if self._live:
                live = self._live
                parts.append(
                    {
                        "ts": np.array([t.ts_ns for t in live], dtype=np.int64),
                        "price": np.array([t.price for t in live], dtype=np.int64),
                        "size": np.array([t.size for t in live], dtype=np.int64),
                        "aggressor": np.array([t.aggressor for t in live], dtype=np.int64),
                        "tick_id": np.array([t.tick_id for t in live], dtype=np.int64),
                        "total_volume": np.array([t.total_volume for t in live], dtype=np.int64),
                        "bid": np.array([t.bid for t in live], dtype=np.int64),
                        "ask": np.array([t.ask for t in live], dtype=np.int64),
                    },
                )
            if not parts:
                self._cache = {n: np.zeros(0, dtype=np.int64) for n in names}
            else:
                merged = {n: np.concatenate([p[n] for p in parts]) for n in names}
                order = np.argsort(merged["ts"], kind="stable")
                self._cache = {n: v[order] for n, v in merged.items()}
        return self._cache

    def window(self, start_ns: int | None, end_ns: int | None) -> dict[str, IntArray]:
        """Trades with ``start <= ts <= end`` (either bound may be open)."""
        cols = self.arrays()
        ts = cols["ts"]
        lo = 0 if start_ns is None else int(np.searchsorted(ts, start_ns, side="left"))
        hi = len(ts) if end_ns is None else int(np.searchsorted(ts, end_ns, side="right"))
        return {n: v[lo:hi] for n, v in cols.items()}


class MarketListener(Protocol):
    """What the server implements to fan market events out to its sessions."""

    def on_quote(self, symbol: str, book: Book, depth: list[DepthChange]) -> None:
        """The top of book (and possibly the ladder) of ``symbol`` changed."""

    def on_trade(self, symbol: str, book: Book, trade: Trade) -> None:
        """``symbol`` printed ``trade``."""


class Market:
    """Live books and trade history of every symbol; feeds call :meth:`quote` and :meth:`trade`."""

    def __init__(self, universe: Universe, clock: Clock = wall_clock, depth_levels: int = 10, seed: int = 7) -> None:
        self.universe = universe
        self.clock = clock
        self.depth_levels = depth_levels
        self.books: dict[str, Book] = {}
        self.history: dict[str, TradeHistory] = {}
        self.listeners: list[MarketListener] = []
        self._order_ids = 648_907_593_900
        self._rng = random.Random(f"{seed}:depth")
        for spec in universe.specs.values():
            self._ensure(spec.symbol)

    def _ensure(self, symbol: str) -> Book:
        book = self.books.get(symbol)
        if book is None:
            spec = self.universe.specs[symbol]
            book = Book(spec)
            base = spec.ticks(spec.base_price)
            book.bid, book.ask = base - 1, base
            book.bid_size = book.ask_size = 10
            self.books[symbol] = book
            self.history.setdefault(symbol, TradeHistory())
            self._rebuild_ladder(book, notify=False)
        return book

    def book(self, symbol: str) -> Book:
        """The book of a canonical symbol."""
        return self._ensure(symbol)

    def quote(self, symbol: str, bid: int, ask: int, bid_size: int, ask_size: int, ts_ns: int | None = None) -> None:
        """Set the top of book (prices in ticks) and update the ladder."""
        book = self._ensure(symbol)
        now = self.clock() if ts_ns is None else ts_ns
        if bid != book.bid or bid_size != book.bid_size:
            book.bid_time = now
        if ask != book.ask or ask_size != book.ask_size:
            book.ask_time = now
        book.bid, book.ask, book.bid_size, book.ask_size = bid, ask, bid_size, ask_size
        changes = self._rebuild_ladder(book, notify=True) if book.spec.has_depth else []
        for listener in self.listeners:
            listener.on_quote(symbol, book, changes)

    def trade(self, symbol: str, price: int, size: int, aggressor: int, ts_ns: int | None = None) -> Trade:
        """Print a trade (price in ticks), record it in the history and fan it out."""
        book = self._ensure(symbol)
        now = self.clock() if ts_ns is None else ts_ns
        if book.last is not None and now < book.last.ts_ns:
            now = book.last.ts_ns  # history must stay in time order
        book.tick_id += 1
        book.total_volume += size
        book.trades_today += 1
        book.open = price if book.open is None else book.open
        book.high = price if book.high is None else max(book.high, price)
        book.low = price if book.low is None else min(book.low, price)
        trade = Trade(now, price, size, aggressor, book.tick_id, book.total_volume, book.bid, book.ask)
        book.last = trade
        self.history[symbol].append(trade)
        for listener in self.listeners:
            listener.on_trade(symbol, book, trade)
        return trade

    def _rebuild_ladder(self, book: Book, notify: bool) -> list[DepthChange]:
        """Move the ladder to the new top of book: levels below the bid / above the ask keep sizes."""
        n = self.depth_levels
        changes: list[DepthChange] = []
        for side, top, top_size, step in (("B", book.bid, book.bid_size, -1), ("A", book.ask, book.ask_size, 1)):
            old = book.levels[side]
            wanted = [top + step * k for k in range(n)]
            change = DepthChange(side)
            new: dict[int, Level] = {}
            for k, px in enumerate(wanted):
                size = top_size if k == 0 else (old[px].size if px in old else self._rng.randint(5, 60))
                level = old.get(px)
                if level is None:
                    self._order_ids += 1
                    level = Level(size, self._order_ids)
                    change.added.append((px, size, level.order_id))
                elif level.size != size:
                    level = Level(size, level.order_id)
                    change.updated.append((px, size, level.order_id))
                new[px] = level
            for px, level in old.items():
                if px not in new:
                    change.deleted.append((px, 0, level.order_id))
            book.levels[side] = new
            if change.added or change.updated or change.deleted:
                changes.append(change)
        return changes if notify else []


# -- feeds ------------------------------------------------------------------------------------------


class GeneratedFeed:
    """A seeded random walk on the wall clock: quote moves and trades at the bid or ask.

    ``rate`` is the number of market events per second per symbol (a third of them trades).
    Symbols are the universe's tradable ones; index symbols get quotes only.
    """

    def __init__(self, rate: float = 20.0, seed: int = 7, trade_share: float = 0.35, interval: float = 0.05) -> None:
        self.rate = rate
        self.trade_share = trade_share
        self.interval = interval
        self._seed = seed
        self._rngs: dict[str, random.Random] = {}

    def _rng(self, symbol: str) -> random.Random:
        rng = self._rngs.get(symbol)
        if rng is None:
            rng = self._rngs[symbol] = random.Random(f"{self._seed}:{symbol}")
        return rng

    def step(self, market: Market, symbol: str, ts_ns: int | None = None) -> None:
        """One market event for ``symbol``: a trade or a quote change."""
        book = market.book(symbol)
        rng = self._rng(symbol)
        if book.spec.kind != "index" and rng.random() < self.trade_share:
            buy = rng.random() < 0.5
            shown = book.ask_size if buy else book.bid_size
            size = max(1, min(shown, int(rng.expovariate(1 / 3.0)) + 1))
            market.trade(symbol, book.ask if buy else book.bid, size, BUY if buy else SELL, ts_ns)
            return
        move = rng.random()
        bid = book.bid
        if move < 0.2:
            bid -= 1
        elif move < 0.4:
            bid += 1
        spread = 1 if rng.random() < 0.9 else 2
        market.quote(symbol, bid, bid + spread, rng.randint(1, 60), rng.randint(1, 60), ts_ns)

    def symbols(self, market: Market) -> list[str]:
        """Symbols this feed moves."""
        return sorted(market.universe.specs)

    async def run(self, market: Market) -> None:
        """Move every symbol until cancelled (Poisson event counts per interval)."""
        symbols = self.symbols(market)
        rng = random.Random(f"{self._seed}:counts")
        while True:
            await asyncio.sleep(self.interval)
            lam = self.rate * self.interval
            for symbol in symbols:
                for _ in range(_poisson(rng, lam)):
                    self.step(market, symbol)


def _poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth; small means only)."""
    limit = pow(2.718281828459045, -lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


@dataclass(frozen=True)
class ReplayEvent:
    """One catalog tick to replay: a quote (prices in ticks) or a trade."""

    ts_ns: int
    symbol: str
    is_trade: bool
    a: int  # bid or price
    b: int  # ask or size
    c: int  # bid size or aggressor
    d: int  # ask size


class ReplayFeed:
    """A catalog's quotes and trades streamed live, stamped with the simulator's clock.

    ``mapping`` sends each source contract (``ESZ25.GLBX``) to the symbol it is streamed as
    (``@ESZ26``), so a recorded session can drive today's contracts; ``speed`` compresses time.
    """

    def __init__(self, events: list[ReplayEvent], speed: float = 1.0, loop_forever: bool = False) -> None:
        self.events = events
        self.speed = speed
        self.loop_forever = loop_forever

    @classmethod
    def from_catalog(
        cls,
        path: Path,
        mapping: dict[str, str],
        start_ns: int | None = None,
        end_ns: int | None = None,
        speed: float = 1.0,
        loop_forever: bool = False,
    ) -> "ReplayFeed":
        """Load the ticks of the mapped contracts between ``start_ns`` and ``end_ns``."""
        from nautilus_trader.persistence.catalog import ParquetDataCatalog

        catalog = ParquetDataCatalog(str(path))
        events: list[ReplayEvent] = []
        for source, target in mapping.items():
            tick = float(_instrument_tick(catalog, source))
            for q in catalog.quote_ticks(instrument_ids=[source], start=start_ns, end=end_ns):
                events.append(
                    ReplayEvent(
                        q.ts_event, target, False,
                        round(q.bid_price.as_double() / tick), round(q.ask_price.as_double() / tick),
                        int(q.bid_size.as_double()), int(q.ask_size.as_double()),
                    ),
                )  # fmt: skip
            for t in catalog.trade_ticks(instrument_ids=[source], start=start_ns, end=end_ns):
                events.append(
                    ReplayEvent(
                        t.ts_event, target, True, round(t.price.as_double() / tick), int(t.size.as_double()),
                        int(t.aggressor_side), 0,
                    ),
                )  # fmt: skip
        events.sort(key=lambda e: e.ts_ns)
        return cls(events, speed, loop_forever)

    async def run(self, market: Market) -> None:
        """Stream the events paced by their original spacing divided by ``speed``."""
        while True:
            if not self.events:
                return
            origin = self.events[0].ts_ns
            started = time.monotonic()
            for event in self.events:
                due = started + (event.ts_ns - origin) / 1e9 / self.speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if event.is_trade:
                    aggressor = {1: BUY, 2: SELL}.get(event.c, NEITHER)
                    market.trade(event.symbol, event.a, event.b, aggressor)
                else:
                    market.quote(event.symbol, event.a, event.b, event.c, event.d)
            if not self.loop_forever:
                return


def _instrument_tick(catalog: object, instrument_id: str) -> float:
    found = catalog.instruments(instrument_ids=[instrument_id])  # type: ignore[attr-defined]
    if not found:
        raise ValueError(f"catalog has no instrument {instrument_id}")
    return float(found[0].price_increment.as_double())


# -- catalog history ---------------------------------------------------------------------------------


def load_catalog_history(
    path: Path,
    market: Market,
    markets: MarketsConfig,
    instrument_ids: Iterable[str] | None = None,
) -> list[str]:
    """Put a catalog's futures trades into the market's history under ``@<symbol>``; return the symbols.

    Each contract becomes a symbol (spec from ``markets.yaml``, first price as its base); TickIDs
    count from 1 in time order; Total Volume restarts at each Globex session open (18:00 ET); the
    bid and ask at each trade are the catalog quote in force, or the trade price without quotes.
    """
    from nautilus_trader.model.instruments import FuturesContract
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from mia_strategies import sessions

    catalog = ParquetDataCatalog(str(path))
    wanted = set(instrument_ids) if instrument_ids is not None else None
    loaded: list[str] = []
    for instrument in catalog.instruments():
        if not isinstance(instrument, FuturesContract):
            continue
        key = instrument.id.value
        if wanted is not None and key not in wanted:
            continue
        trades = catalog.trade_ticks(instrument_ids=[key])
        if not trades:
            continue
        ref = parse_contract_symbol(instrument.id.symbol.value, markets)
        tick = instrument.price_increment.as_double()
        ts = np.array([t.ts_event for t in trades], dtype=np.int64)
        price = np.rint(np.array([t.price.as_double() for t in trades]) / tick).astype(np.int64)
        size = np.array([t.size.as_double() for t in trades]).astype(np.int64)
        aggressor = np.array([{1: BUY, 2: SELL}.get(int(t.aggressor_side), NEITHER) for t in trades], dtype=np.int64)
        order = np.argsort(ts, kind="stable")
        ts, price, size, aggressor = ts[order], price[order], size[order], aggressor[order]
        days = np.array([sessions.trading_day(int(t)).toordinal() for t in ts], dtype=np.int64)
        volume = np.zeros(len(ts), dtype=np.int64)
        for day in np.unique(days):
            mask = days == day
            volume[mask] = np.cumsum(size[mask])
        bid, ask = _quotes_at(catalog, key, ts, tick, price)
        spec = contract_spec(ref, markets, base_price=float(price[0]) * tick)
        market.universe.add(spec)
        book = market.book(spec.symbol)
        market.history[spec.symbol].extend(
            {
                "ts": ts,
                "price": price,
                "size": size,
                "aggressor": aggressor,
                "tick_id": np.arange(1, len(ts) + 1, dtype=np.int64),
                "total_volume": volume,
                "bid": bid,
                "ask": ask,
            },
        )
        book.tick_id = max(book.tick_id, len(ts))
        loaded.append(spec.symbol)
    return loaded


def _quotes_at(
    catalog: object, instrument_id: str, ts: IntArray, tick: float, price: IntArray
) -> tuple[IntArray, IntArray]:
    quotes = catalog.quote_ticks(instrument_ids=[instrument_id])  # type: ignore[attr-defined]
    if not quotes:
        return price.copy(), price.copy()
    q_ts = np.array([q.ts_event for q in quotes], dtype=np.int64)
    q_bid = np.rint(np.array([q.bid_price.as_double() for q in quotes]) / tick).astype(np.int64)
    q_ask = np.rint(np.array([q.ask_price.as_double() for q in quotes]) / tick).astype(np.int64)
    idx = np.searchsorted(q_ts, ts, side="right") - 1
    have = idx >= 0
    bid = np.where(have, q_bid[np.maximum(idx, 0)], price)
    ask = np.where(have, q_ask[np.maximum(idx, 0)], price)
    return bid.astype(np.int64), ask.astype(np.int64)
