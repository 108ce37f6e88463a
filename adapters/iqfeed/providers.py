"""IQFeed symbols to the project's instruments: ``@ESZ25`` → ``ESZ25.GLBX``, ``@ES#``, VIX and SPY.

Futures contracts are built by ``mia_strategies.instruments`` from ``markets.yaml`` (multiplier,
tick, margins, third-Friday expiry), so backtest, paper and live trade the same definitions. When
the Level 1 connection is attached, each contract's fundamental message is checked: its Expiration
Date and Minimum Tick Size win over the calendar's (a disagreement is logged), and a continuous
symbol (``@ES#``) is resolved to the contract its expiry names. Without fundamentals (a timeout, an
unknown symbol) the roll calendar's definition is used.
"""

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from decimal import Decimal

import pandas as pd
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Symbol
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.instruments import FuturesContract
from nautilus_trader.model.instruments import IndexInstrument
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity

from adapters.iqfeed.client import IQFeedError
from adapters.iqfeed.client import Level1Client
from adapters.iqfeed.constants import CROSS_MARKET_SYMBOLS
from adapters.iqfeed.parsing import FundamentalParser
from adapters.iqfeed.parsing import Fundamentals
from mia_strategies.config import MONTH_CODES
from mia_strategies.config import MarketsConfig
from mia_strategies.errors import ConfigError
from mia_strategies.instruments import ContractRef
from mia_strategies.instruments import active_contract
from mia_strategies.instruments import build_futures_contract
from mia_strategies.instruments import next_contract
from mia_strategies.instruments import parse_contract_symbol


_log = logging.getLogger("adapters.iqfeed")

#: nautilus id → IQFeed symbol of the cross-market instruments.
_CROSS_BY_ID = {v: k for k, v in CROSS_MARKET_SYMBOLS.items()}


def iqfeed_symbol(instrument_id: InstrumentId | str, markets: MarketsConfig) -> str:
    """The IQFeed symbol of a project instrument: ``ESZ25.GLBX`` → ``@ESZ25``, ``SPY.ARCA`` → ``SPY``."""
    key = str(instrument_id)
    if key in _CROSS_BY_ID:
        return _CROSS_BY_ID[key]
    ref = parse_contract_symbol(key, markets)
    return f"@{ref.symbol}"


def instrument_id_from_symbol(symbol: str, markets: MarketsConfig) -> InstrumentId:
    """The project instrument of a dated IQFeed symbol: ``@MNQZ25`` → ``MNQZ25.GLBX``."""
    if symbol in CROSS_MARKET_SYMBOLS:
        return InstrumentId.from_str(CROSS_MARKET_SYMBOLS[symbol])
    if symbol.endswith(("#", "#C")):
        raise ConfigError(f"{symbol} is a continuous symbol: resolve it with the instrument provider")
    ref = parse_contract_symbol(symbol.lstrip("@"), markets)
    return ref.instrument_id(markets.venue)


def cross_market_instrument(instrument_id: InstrumentId, ts_ns: int) -> Instrument:
    """VIX (a cash index, not tradable) or SPY (an ETF), with 0.01 ticks."""
    symbol = _CROSS_BY_ID[instrument_id.value]
    if instrument_id.symbol.value == "VIX":
        return IndexInstrument(
            instrument_id=instrument_id,
            raw_symbol=Symbol(symbol),
            currency=USD,
            price_precision=2,
            size_precision=0,
            price_increment=Price.from_str("0.01"),
            size_increment=Quantity.from_int(1),
            ts_event=ts_ns,
            ts_init=ts_ns,
        )
    return Equity(
        instrument_id=instrument_id,
        raw_symbol=Symbol(symbol),
        currency=USD,
        price_precision=2,
        price_increment=Price.from_str("0.01"),
        lot_size=Quantity.from_int(1),
        ts_event=ts_ns,
        ts_init=ts_ns,
    )


class IQFeedInstrumentProvider(InstrumentProvider):
    """
    Provides the project's futures contracts (and VIX, SPY) for IQFeed symbols.

    Parameters
    ----------
    markets : MarketsConfig
        Contract specs and the roll calendar.
    config : InstrumentProviderConfig, optional
        ``load_all`` loads the current and next contract of every root (plus VIX and SPY);
        ``load_ids`` loads those ids.
    roots : tuple[str, ...], default ("ES", "MNQ")
        Roots ``load_all`` loads.
    cross_market : bool, default True
        Whether ``load_all`` adds VIX and SPY.
    fundamentals_timeout : float, default 5.0
        Seconds to wait for a symbol's fundamental message.
    clock : Callable[[], int], default time.time_ns
        Now in UTC ns (for the roll calendar).

    """

    def __init__(
        self,
        markets: MarketsConfig,
        config: InstrumentProviderConfig | None = None,
        roots: tuple[str, ...] = ("ES", "MNQ"),
        cross_market: bool = True,
        fundamentals_timeout: float = 5.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        super().__init__(config=config)
        self.markets = markets
        self.roots = roots
        self.cross_market = cross_market
        self.fundamentals_timeout = fundamentals_timeout
        self._clock = clock
        self._level1: Level1Client | None = None
        self._fundamentals = FundamentalParser()
        self.fundamentals: dict[str, Fundamentals] = {}
        self.continuous: dict[str, InstrumentId] = {}

    def attach(self, level1: Level1Client | None) -> None:
        """Use this Level 1 connection for fundamental messages (None: calendar only)."""
        self._level1 = level1

    def symbol_of(self, instrument_id: InstrumentId) -> str:
        """The IQFeed symbol to watch for ``instrument_id``."""
        return iqfeed_symbol(instrument_id, self.markets)

    def instrument_id_of(self, symbol: str) -> InstrumentId | None:
        """The instrument of an IQFeed symbol (continuous ones once resolved), or None."""
        if symbol in self.continuous:
            return self.continuous[symbol]
        try:
            return instrument_id_from_symbol(symbol, self.markets)
        except ConfigError:
            return None

    # -- loading -------------------------------------------------------------------------------------

    async def load_all_async(self, filters: dict | None = None) -> None:
        """The active and next contract of every root at now, plus VIX and SPY."""
        now = self._clock()
        ids: list[InstrumentId] = []
        for root in self.roots:
            active = active_contract(root, now, self.markets)
            for ref in (active, next_contract(active, self.markets.root(root))):
                ids.append(ref.instrument_id(self.markets.venue))
        if self.cross_market:
            ids.extend(InstrumentId.from_str(v) for v in CROSS_MARKET_SYMBOLS.values())
        await self.load_ids_async(ids, filters)

    async def load_ids_async(self, instrument_ids: list[InstrumentId], filters: dict | None = None) -> None:
        """Load every id (one fundamentals round trip each, in parallel)."""
        await asyncio.gather(*(self.load_async(i, filters) for i in instrument_ids))

    async def load_async(self, instrument_id: InstrumentId, filters: dict | None = None) -> None:
        """Load one instrument; a bad id raises ``ConfigError`` naming the accepted forms."""
        now = self._clock()
        if instrument_id.value in _CROSS_BY_ID:
            self.add(cross_market_instrument(instrument_id, now))
            return
        if instrument_id.venue.value != self.markets.venue:
            raise ConfigError(f"{instrument_id}: IQFeed futures are on venue {self.markets.venue}")
        ref = parse_contract_symbol(instrument_id.symbol.value, self.markets)
        fundamentals = await self._fundamentals_of(f"@{ref.symbol}")
        self.add(self._contract(ref, fundamentals))

    async def resolve_continuous(self, symbol: str) -> InstrumentId:
        """``@ES#`` → the contract its fundamentals' expiry names (the roll calendar's without them)."""
        root = symbol.lstrip("@").rstrip("C").rstrip("#")
        spec = self.markets.root(root)
        fundamentals = await self._fundamentals_of(symbol)
        ref: ContractRef
        if fundamentals is not None and fundamentals.expiration is not None:
            exp = fundamentals.expiration
            if MONTH_CODES[exp.month - 1] not in spec.months:
                raise ConfigError(f"{symbol}: expiry {exp} is not a listed {root} month ({spec.months})")
            ref = ContractRef(exp.year, exp.month, root)
        else:
            ref = active_contract(root, self._clock(), self.markets)
        instrument_id = ref.instrument_id(self.markets.venue)
        self.continuous[symbol] = instrument_id
        if self.find(instrument_id) is None:
            await self.load_async(instrument_id)
        return instrument_id

    async def _fundamentals_of(self, symbol: str) -> Fundamentals | None:
        if symbol in self.fundamentals:
            return self.fundamentals[symbol]
        level1 = self._level1
        if level1 is None or not level1.is_connected:
            return None
        try:
            fields = await level1.fundamentals(symbol, self.fundamentals_timeout)
        except IQFeedError as exc:
            _log.warning("iqfeed: no fundamentals for %s (%s); using the roll calendar", symbol, exc)
            return None
        if level1.fundamental_fieldnames:
            self._fundamentals.set_fieldnames(level1.fundamental_fieldnames)
        result = Fundamentals.from_values(self._fundamentals.parse(fields))
        self.fundamentals[symbol] = result
        return result

    def _contract(self, ref: ContractRef, fundamentals: Fundamentals | None) -> FuturesContract:
        """The calendar's contract, with the fundamentals' expiry date and tick size when they differ."""
        base = build_futures_contract(ref, self.markets)
        if fundamentals is None:
            return base
        spec = self.markets.root(ref.root)
        expiration_ns = base.expiration_ns
        if fundamentals.expiration is not None:
            local = dt.datetime.combine(fundamentals.expiration, spec.expiry_time)
            expiration_ns = int(pd.Timestamp(local, tz=spec.expiry_timezone).tz_convert("UTC").value)
            if expiration_ns != base.expiration_ns:
                _log.warning(
                    "iqfeed: %s expires %s per IQFeed, the roll calendar says %s; using IQFeed's",
                    ref.symbol,
                    fundamentals.expiration,
                    pd.Timestamp(base.expiration_ns, tz="UTC").date(),
                )
        increment = base.price_increment
        if fundamentals.tick_size:
            try:
                tick = Decimal(fundamentals.tick_size)
            except ArithmeticError:
                tick = Decimal(str(base.price_increment))
            if tick > 0 and tick != Decimal(str(base.price_increment)):
                _log.warning(
                    "iqfeed: %s tick %s per IQFeed, markets.yaml says %s", ref.symbol, tick, base.price_increment
                )
                increment = Price(tick, base.price_precision)
        if expiration_ns == base.expiration_ns and increment == base.price_increment:
            return base
        return FuturesContract(
            instrument_id=base.id,
            raw_symbol=base.raw_symbol,
            asset_class=base.asset_class,
            currency=base.quote_currency,
            price_precision=base.price_precision,
            price_increment=increment,
            multiplier=base.multiplier,
            lot_size=base.lot_size,
            underlying=base.underlying,
            activation_ns=base.activation_ns,
            expiration_ns=expiration_ns,
            ts_event=base.ts_event,
            ts_init=base.ts_init,
            margin_init=base.margin_init,
            margin_maint=base.margin_maint,
            maker_fee=base.maker_fee,
            taker_fee=base.taker_fee,
            exchange=base.exchange,
        )
