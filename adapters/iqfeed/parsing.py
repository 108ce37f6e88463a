"""IQFeed wire lines to nautilus objects: Eastern times to UTC, Level 1, Level 2, bars, history, chains, news.

Everything on the wire is US/Eastern wall time. :class:`EasternTime` converts it to UTC nanoseconds
exactly, DST included, with one zone-database lookup per calendar day (a DST-change day takes the
exact per-call path; the repeated autumn hour resolves to its first, daylight-time occurrence, which
CME futures never need because Globex is closed on Sunday mornings).

The streaming parsers (:class:`Level1Parser`, :class:`Level2Parser`, :func:`parse_bar_fields`)
work on the comma-split fields of one line and build nautilus objects from raw fixed-point integers
(``from_raw``), caching the decoded prices: a busy CME open is tens of thousands of lines a second
and this path runs for each one. Fields of ``P``/``Q`` lines are located by the ``S,CURRENT UPDATE
FIELDNAMES`` list the server announced, never by a hard-coded position; unknown names are ignored.
History rows are parsed in bulk (pandas) because ingestion handles millions of them.
"""

import datetime as dt
import io
import re
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import OrderBookDelta
from nautilus_trader.model.data import OrderBookDeltas
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.enums import BookAction
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import RecordFlag
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import FIXED_PRECISION
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity


EASTERN = ZoneInfo("America/New_York")
_UTC = dt.UTC
_NS = 1_000_000_000
_HOUR_NS = 3_600 * _NS
_DAY_NS = 86_400 * _NS
_HALF_DAY_NS = 12 * _HOUR_NS
_SCALE = 10**FIXED_PRECISION
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# -- Eastern time ---------------------------------------------------------------------------------


class EasternTime:
    """US/Eastern wall time to UTC nanoseconds, exactly, with a per-day cache.

    For a day whose UTC offset is the same at 00:00 and 23:59:59 the UTC instant of local midnight
    is cached and a conversion is one addition; a DST-change day goes through ``zoneinfo`` on every
    call (``fold=0``: a repeated time is its first occurrence, a skipped one keeps the old offset).
    """

    def __init__(self) -> None:
        self._midnight: dict[tuple[int, int, int], int | None] = {}

    def _day(self, key: tuple[int, int, int]) -> int | None:
        y, m, d = key
        start = dt.datetime(y, m, d, tzinfo=EASTERN)
        end = dt.datetime(y, m, d, 23, 59, 59, tzinfo=EASTERN)
        value: int | None = None
        if start.utcoffset() == end.utcoffset():
            value = _to_ns(start)
        self._midnight[key] = value
        return value

    def to_utc_ns(self, year: int, month: int, day: int, ns_of_day: int) -> int:
        """UTC ns of ``ns_of_day`` nanoseconds after local midnight of ``year-month-day`` Eastern."""
        key = (year, month, day)
        try:
            midnight = self._midnight[key]
        except KeyError:
            midnight = self._day(key)
        if midnight is not None:
            return midnight + ns_of_day
        micros, nanos = divmod(ns_of_day, 1000)
        local = dt.datetime(year, month, day, tzinfo=EASTERN) + dt.timedelta(microseconds=micros)
        # timedelta arithmetic on aware datetimes is wall-clock arithmetic: re-attach the zone so
        # the offset is looked up for the resulting wall time.
        local = local.replace(tzinfo=None).replace(tzinfo=EASTERN)
        return _to_ns(local) + nanos


def _to_ns(value: dt.datetime) -> int:
    delta = value.astimezone(_UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1000


#: Shared converter (its cache only ever grows by one entry per calendar day seen).
ET = EasternTime()


def eastern_to_utc_ns(value: dt.datetime) -> int:
    """A naive Eastern wall time (or an aware one in any zone) to UTC ns."""
    if value.tzinfo is not None:
        return _to_ns(value)
    ns_of_day = (value.hour * 3600 + value.minute * 60 + value.second) * _NS + value.microsecond * 1000
    return ET.to_utc_ns(value.year, value.month, value.day, ns_of_day)


def utc_ns_to_eastern(ts_ns: int) -> dt.datetime:
    """UTC ns to an aware Eastern datetime (floored to the microsecond)."""
    return (_EPOCH + dt.timedelta(microseconds=ts_ns // 1000)).astimezone(EASTERN)


def format_request_datetime(ts_ns: int) -> str:
    """UTC ns to the ``CCYYMMDD HHmmSS`` Eastern form history and bar requests take."""
    return utc_ns_to_eastern(ts_ns).strftime("%Y%m%d %H%M%S")


def format_request_date(ts_ns: int) -> str:
    """UTC ns to the ``CCYYMMDD`` Eastern date of daily requests."""
    return utc_ns_to_eastern(ts_ns).strftime("%Y%m%d")


def parse_time_of_day(text: str) -> int:
    """``HH:MM:SS`` or ``HH:MM:SS.ffffff`` (any number of fraction digits) to ns after midnight."""
    seconds = int(text[0:2]) * 3600 + int(text[3:5]) * 60 + int(text[6:8])
    ns = seconds * _NS
    if len(text) > 9:
        frac = text[9:]
        ns += int(frac) * 10 ** (9 - len(frac)) if len(frac) <= 9 else int(frac[:9])
    return ns


def parse_mdy(text: str) -> tuple[int, int, int]:
    """``MM/DD/YYYY`` to (year, month, day)."""
    return int(text[6:10]), int(text[0:2]), int(text[3:5])


def parse_ymd(text: str) -> tuple[int, int, int]:
    """``YYYY-MM-DD`` to (year, month, day)."""
    return int(text[0:4]), int(text[5:7]), int(text[8:10])


def history_timestamp_ns(text: str) -> int:
    """``YYYY-MM-DD[ HH:MM:SS[.ffffff]]`` Eastern to UTC ns."""
    y, m, d = parse_ymd(text)
    ns_of_day = parse_time_of_day(text[11:]) if len(text) > 10 else 0
    return ET.to_utc_ns(y, m, d, ns_of_day)


def compact_timestamp_ns(text: str) -> int:
    """``YYYYMMDD HH:MM:SS`` (``T`` lines) or ``YYYYMMDD HHMMSS`` / ``YYYYMMDDHHMMSS`` (news) to UTC ns."""
    y, m, d = int(text[0:4]), int(text[4:6]), int(text[6:8])
    rest = text[8:].strip().replace(":", "")
    hh, mm, ss = int(rest[0:2] or 0), int(rest[2:4] or 0), int(rest[4:6] or 0)
    return ET.to_utc_ns(y, m, d, (hh * 3600 + mm * 60 + ss) * _NS)


class EasternDay:
    """The Eastern calendar day a bare time of day belongs to, judged against a reference UTC time.

    Level 1 quote times carry no date. The day whose reading of the time lies within twelve hours
    of the reference (the receive time) is the right one, also across midnight; the Eastern day of
    the reference is cached so the usual case costs one comparison.
    """

    def __init__(self) -> None:
        self._start = 0
        self._end = -1
        self._ymd = (1970, 1, 1)

    def _locate(self, ref_ns: int) -> None:
        local = utc_ns_to_eastern(ref_ns)
        self._ymd = (local.year, local.month, local.day)
        self._start = ET.to_utc_ns(*self._ymd, 0)
        nxt = local.date() + dt.timedelta(days=1)
        self._end = ET.to_utc_ns(nxt.year, nxt.month, nxt.day, 0)

    def resolve(self, ns_of_day: int, ref_ns: int) -> int:
        """UTC ns of ``ns_of_day`` on the Eastern day that puts it nearest ``ref_ns``."""
        if not self._start <= ref_ns < self._end:
            self._locate(ref_ns)
        ts = ET.to_utc_ns(*self._ymd, ns_of_day)
        if ts - ref_ns > _HALF_DAY_NS:
            day = dt.date(*self._ymd) - dt.timedelta(days=1)
            ts = ET.to_utc_ns(day.year, day.month, day.day, ns_of_day)
        elif ref_ns - ts > _HALF_DAY_NS:
            day = dt.date(*self._ymd) + dt.timedelta(days=1)
            ts = ET.to_utc_ns(day.year, day.month, day.day, ns_of_day)
        return ts


# -- prices ---------------------------------------------------------------------------------------


class PriceCodec:
    """Decimal text to nautilus raw fixed-point prices of one precision, exactly, with a cache.

    Digits beyond the precision are rounded half up (``6012.2500`` is exact, ``6012.125`` at
    precision 2 becomes ``6012.13``). Busy books repeat a few hundred prices, so the cache makes
    almost every conversion one dict lookup.
    """

    __slots__ = ("_cache", "_unit", "precision")

    def __init__(self, precision: int) -> None:
        self.precision = precision
        self._unit = 10 ** (FIXED_PRECISION - precision)
        self._cache: dict[str, int] = {}

    def raw(self, text: str) -> int:
        """Raw value of a decimal string; ``ValueError`` for anything that is not a number."""
        try:
            return self._cache[text]
        except KeyError:
            pass
        value = self._convert(text)
        if len(self._cache) < 100_000:
            self._cache[text] = value
        return value

    def _convert(self, text: str) -> int:
        body = text.strip()
        negative = body.startswith("-")
        if negative or body.startswith("+"):
            body = body[1:]
        whole, _, frac = body.partition(".")
        if not (whole or frac) or not (whole.isdigit() or whole == "") or not (frac.isdigit() or frac == ""):
            raise ValueError(f"not a decimal price: {text!r}")
        p = self.precision
        kept = (frac + "0" * p)[:p]
        units = int(whole or "0") * 10**p + int(kept or "0")
        rest = frac[p:]
        if rest and rest[0] >= "5":
            units += 1
        value = units * self._unit
        return -value if negative else value

    def level_id(self, raw: int) -> int:
        """A price as a small integer id (price in units of the precision) for price-level book orders."""
        return raw // self._unit

    def price(self, text: str) -> Price:
        """A nautilus Price of this precision."""
        return Price.from_raw(self.raw(text), self.precision)


def size_raw(text: str) -> int:
    """Raw value of a whole-contract size (``12`` or ``12.0``)."""
    try:
        return int(text) * _SCALE
    except ValueError:
        return round(float(text)) * _SCALE


# -- Level 1 --------------------------------------------------------------------------------------


_AGGRESSOR = {"1": AggressorSide.BUYER, "2": AggressorSide.SELLER}
_TRADE_CODES = frozenset("CE")  # last-qualified and extended-hours trades; "O" (other) is not a print


@dataclass
class WatchedSymbol:
    """Parsing state of one watched IQFeed symbol."""

    symbol: str
    instrument_id: InstrumentId
    prices: PriceCodec
    last_quote: tuple[int, int, int, int] | None = None
    last_tick_id: str = ""
    last_volume: int = -1
    trade_seq: int = 0
    last_trade_ns: int = 0
    last_price_raw: int | None = None


@dataclass
class ParseCounters:
    """Lines a parser could not turn into data, by reason (surfaced in the data client's stats)."""

    malformed: int = 0
    unknown_symbol: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict for logs and tests."""
        return {"malformed": self.malformed, "unknown_symbol": self.unknown_symbol, "skipped": self.skipped}


class Level1Parser:
    """``P``/``Q`` lines to quote and trade ticks, driven by the announced update field names.

    A quote is emitted when the top of book (prices or sizes) changed; a trade when Message
    Contents carries a last-qualified (``C``) or extended (``E``) trade code, or, without that
    field, when TickID or Total Volume moved. ``P`` (summary) lines refresh state and the quote but
    never emit a trade: their trade already happened before the watch.

    The positions of the fields it reads are resolved once per field-name announcement (``0`` when
    absent: position 0 of a line is its message type, never a value), so a line costs a few list
    lookups, cached price and time conversions and one ``from_raw`` per object.
    """

    def __init__(self) -> None:
        self.symbols: dict[str, WatchedSymbol] = {}
        self.counters = ParseCounters()
        self.day = EasternDay()
        self.fieldnames: tuple[str, ...] = ()
        self._n_fields = 0
        self._pos: dict[str, int] = {}
        self._seconds: dict[str, int] = {}
        (
            self._bid, self._bid_size, self._bid_time, self._ask, self._ask_size, self._ask_time, self._price,
            self._size, self._time, self._date, self._aggressor, self._tick_id, self._volume, self._contents,
        ) = (0,) * 14  # fmt: skip

    def register(self, symbol: str, instrument_id: InstrumentId, price_precision: int) -> WatchedSymbol:
        """Parse lines of ``symbol`` into ``instrument_id`` data (idempotent)."""
        state = self.symbols.get(symbol)
        if state is None or state.instrument_id != instrument_id:
            state = WatchedSymbol(symbol, instrument_id, PriceCodec(price_precision))
            self.symbols[symbol] = state
        return state

    def forget(self, symbol: str) -> None:
        """Stop parsing ``symbol`` (after an unwatch)."""
        self.symbols.pop(symbol, None)

    def set_fieldnames(self, names: Sequence[str]) -> None:
        """Use the layout of ``S,CURRENT UPDATE FIELDNAMES`` (``names`` starts with ``Symbol``)."""
        self.fieldnames = tuple(n.strip() for n in names)
        self._n_fields = len(self.fieldnames)
        self._pos = {name: i + 1 for i, name in enumerate(self.fieldnames) if name}
        get = self._pos.get
        self._bid, self._bid_size, self._bid_time = get("Bid", 0), get("Bid Size", 0), get("Bid Time", 0)
        self._ask, self._ask_size, self._ask_time = get("Ask", 0), get("Ask Size", 0), get("Ask Time", 0)
        self._price, self._size = get("Most Recent Trade", 0), get("Most Recent Trade Size", 0)
        self._time, self._date = get("Most Recent Trade Time", 0), get("Most Recent Trade Date", 0)
        self._aggressor, self._tick_id = get("Most Recent Trade Aggressor", 0), get("TickID", 0)
        self._volume, self._contents = get("Total Volume", 0), get("Message Contents", 0)

    def parse(self, fields: list[str], ts_init: int) -> tuple[TradeTick | None, QuoteTick | None]:
        """Turn one split ``P``/``Q`` line into (trade or None, quote or None)."""
        state = self.symbols.get(fields[1]) if len(fields) > 1 else None
        if state is None:
            self.counters.unknown_symbol += 1
            return None, None
        if len(fields) <= self._n_fields or not self._pos:
            self.counters.malformed += 1
            return None, None
        try:
            quote = self._quote(fields, state, ts_init) if self._bid and self._ask else None
            if fields[0] == "Q":
                trade = self._trade(fields, state, ts_init)
            else:
                trade = None
                self._remember_trade(fields, state)
        except (ValueError, IndexError):
            self.counters.malformed += 1
            return None, None
        return trade, quote

    def _ns_of_day(self, text: str) -> int:
        """``HH:MM:SS[.ffffff]`` to ns after midnight; the whole-second part is cached."""
        seconds = self._seconds.get(text[:8])
        if seconds is None:
            seconds = int(text[0:2]) * 3600 + int(text[3:5]) * 60 + int(text[6:8])
            if len(self._seconds) > 200_000:
                self._seconds.clear()
            self._seconds[text[:8]] = seconds
        frac = text[9:]
        if not frac:
            return seconds * _NS
        return seconds * _NS + (int(frac) * 10 ** (9 - len(frac)) if len(frac) <= 9 else int(frac[:9]))

    def _quote(self, fields: list[str], state: WatchedSymbol, ts_init: int) -> QuoteTick | None:
        bid_txt, ask_txt = fields[self._bid], fields[self._ask]
        if not bid_txt or not ask_txt:
            return None
        bid_size = size_raw(fields[self._bid_size]) if self._bid_size and fields[self._bid_size] else 0
        ask_size = size_raw(fields[self._ask_size]) if self._ask_size and fields[self._ask_size] else 0
        prices = state.prices
        top = (prices.raw(bid_txt), prices.raw(ask_txt), bid_size, ask_size)
        if top == state.last_quote:
            return None
        state.last_quote = top
        bid_t = fields[self._bid_time] if self._bid_time else ""
        ask_t = fields[self._ask_time] if self._ask_time else ""
        if len(bid_t) < 8:
            bid_t, ask_t = ask_t, ""
        if len(bid_t) < 8:
            ts_event = ts_init
        elif len(ask_t) < 8 or bid_t == ask_t:
            ts_event = self.day.resolve(self._ns_of_day(bid_t), ts_init)
        elif bid_t[:2] == ask_t[:2]:  # same hour: the later time is the larger text
            ts_event = self.day.resolve(self._ns_of_day(bid_t if bid_t > ask_t else ask_t), ts_init)
        else:  # around midnight only the resolved times compare
            resolve = self.day.resolve
            ts_event = max(resolve(self._ns_of_day(bid_t), ts_init), resolve(self._ns_of_day(ask_t), ts_init))
        p = prices.precision
        return QuoteTick.from_raw(
            state.instrument_id, top[0], top[1], p, p, bid_size, ask_size, 0, 0, ts_event, ts_init
        )

    def _remember_trade(self, fields: list[str], state: WatchedSymbol) -> None:
        state.last_tick_id = fields[self._tick_id] if self._tick_id else ""
        volume = fields[self._volume] if self._volume else ""
        state.last_volume = int(volume) if volume else state.last_volume

    def _trade(self, fields: list[str], state: WatchedSymbol, ts_init: int) -> TradeTick | None:
        tick_id = fields[self._tick_id] if self._tick_id else ""
        volume_txt = fields[self._volume] if self._volume else ""
        volume = int(volume_txt) if volume_txt else state.last_volume
        if self._contents:
            contents = fields[self._contents]
            is_trade = "C" in contents or "E" in contents
        else:
            is_trade = (tick_id != "" and tick_id != state.last_tick_id) or volume > state.last_volume >= 0
        state.last_volume = volume
        if not is_trade:
            return None
        if tick_id and tick_id == state.last_tick_id:
            self.counters.skipped += 1  # the same print repeated (e.g. a refresh): never twice
            return None
        price_txt = fields[self._price] if self._price else ""
        size_txt = fields[self._size] if self._size else ""
        if not price_txt or not size_txt:
            raise ValueError("trade without price or size")
        time_txt = fields[self._time] if self._time else ""
        date_txt = fields[self._date] if self._date else ""
        if len(time_txt) >= 8 and len(date_txt) == 10:
            ts_event = ET.to_utc_ns(
                int(date_txt[6:10]), int(date_txt[0:2]), int(date_txt[3:5]), self._ns_of_day(time_txt)
            )
        elif len(time_txt) >= 8:
            ts_event = self.day.resolve(self._ns_of_day(time_txt), ts_init)
        else:
            ts_event = ts_init
        state.last_tick_id = tick_id
        state.trade_seq += 1
        aggressor = (
            _AGGRESSOR.get(fields[self._aggressor], AggressorSide.NO_AGGRESSOR)
            if self._aggressor
            else AggressorSide.NO_AGGRESSOR
        )
        trade_id = TradeId(tick_id or f"{state.instrument_id.symbol.value}-{ts_event}-{state.trade_seq}")
        raw_px = state.prices.raw(price_txt)
        state.last_trade_ns = ts_event
        state.last_price_raw = raw_px
        return TradeTick.from_raw(
            state.instrument_id,
            raw_px,
            state.prices.precision,
            size_raw(size_txt),
            0,
            aggressor,
            trade_id,
            ts_event,
            ts_init,
        )


class FundamentalParser:
    """``F`` lines to a name → value mapping, by the announced ``S,FUNDAMENTAL FIELDNAMES`` list."""

    #: 6.1+ layout (57 names) used until the server announces its own list.
    DEFAULT_NAMES: tuple[str, ...] = (
        "Symbol", "Exchange ID", "PE", "Average Volume", "52 Week High", "52 Week Low", "Calendar Year High",
        "Calendar Year Low", "Dividend Yield", "Dividend Amount", "Dividend Rate", "Pay Date", "Ex-dividend Date",
        "Current Year EPS", "Next Year EPS", "Five-year Growth Percentage", "Fiscal Year End", "Company Name",
        "Root Option Symbol", "Percent Held By Institutions", "Beta", "Leaps", "Current Assets",
        "Current Liabilities", "Balance Sheet Date", "Long-term Debt", "Common Shares Outstanding",
        "Split Factor 1", "Split Factor 2", "Format Code", "Precision", "SIC", "Historical Volatility",
        "Security Type", "Listed Market", "52 Week High Date", "52 Week Low Date", "Calendar Year High Date",
        "Calendar Year Low Date", "Year End Close", "Maturity Date", "Coupon Rate", "Expiration Date",
        "Strike Price", "NAICS", "Exchange Root", "Option Premium Multiplier", "Option Multiple Deliverable",
        "Session Open Time", "Session Close Time", "Base Currency", "Contract Size", "Contract Months",
        "Minimum Tick Size", "First Delivery Date", "FIGI", "Security SubType",
    )  # fmt: skip

    def __init__(self) -> None:
        self.names: tuple[str, ...] = self.DEFAULT_NAMES

    def set_fieldnames(self, names: Sequence[str]) -> None:
        """Use the server's list (it starts with ``Symbol``)."""
        self.names = tuple(n.strip() for n in names)

    def parse(self, fields: list[str]) -> dict[str, str]:
        """``fields`` of an ``F`` line (``fields[0] == "F"``) by name; missing trailing values are ``""``."""
        values = fields[1:]
        return {name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(self.names)}


@dataclass(frozen=True)
class Fundamentals:
    """What the instrument provider needs from an ``F`` line of a futures contract."""

    symbol: str
    expiration: dt.date | None
    exchange_root: str
    tick_size: str
    contract_months: str
    description: str
    precision: int | None

    @classmethod
    def from_values(cls, values: dict[str, str]) -> "Fundamentals":
        """Build from :meth:`FundamentalParser.parse` output; empty or odd values become None."""
        expiry = values.get("Expiration Date", "")
        expiration = None
        if len(expiry) == 10 and expiry[2] == "/":
            y, m, d = parse_mdy(expiry)
            expiration = dt.date(y, m, d)
        precision_txt = values.get("Precision", "")
        return cls(
            symbol=values.get("Symbol", ""),
            expiration=expiration,
            exchange_root=values.get("Exchange Root", ""),
            tick_size=values.get("Minimum Tick Size", ""),
            contract_months=values.get("Contract Months", ""),
            description=values.get("Company Name", ""),
            precision=int(precision_txt) if precision_txt.isdigit() else None,
        )


# -- Level 2 --------------------------------------------------------------------------------------


_SIDES = {"B": OrderSide.BUY, "A": OrderSide.SELL}
_F_LAST = int(RecordFlag.F_LAST)
_F_SNAPSHOT = int(RecordFlag.F_SNAPSHOT)
_F_MBP = int(RecordFlag.F_MBP)


@dataclass
class DepthState:
    """Book state of one depth-watched symbol, kept so deletes carry prices and a side can be cleared."""

    symbol: str
    instrument_id: InstrumentId
    prices: PriceCodec
    levels: dict[OrderSide, dict[int, int]] = field(default_factory=lambda: {OrderSide.BUY: {}, OrderSide.SELL: {}})
    orders: dict[int, tuple[OrderSide, int, int]] = field(default_factory=dict)
    sequence: int = 0


class Level2Parser:
    """Protocol 6.2 depth lines (``WPL`` types 7/8/9, ``WOR`` types 0/3/4/5/6) to order book deltas.

    Every line becomes one ``OrderBookDeltas`` flagged ``F_LAST`` (there is no end-of-group marker
    on the wire); snapshot lines (6, 7) also carry ``F_SNAPSHOT``. Price-level deltas use the price
    as order id. ``S,CLEAR DEPTH,<sym>,<A|B>`` clears one side: it becomes a delete per resting
    level or order of that side, since nautilus' CLEAR action would wipe both sides.
    """

    def __init__(self) -> None:
        self.symbols: dict[str, DepthState] = {}
        self.counters = ParseCounters()
        self._seconds: dict[str, int] = {}

    def register(self, symbol: str, instrument_id: InstrumentId, price_precision: int) -> DepthState:
        """Parse depth lines of ``symbol`` into ``instrument_id`` deltas; state starts empty."""
        state = DepthState(symbol, instrument_id, PriceCodec(price_precision))
        self.symbols[symbol] = state
        return state

    def forget(self, symbol: str) -> None:
        """Stop parsing ``symbol``."""
        self.symbols.pop(symbol, None)

    def reset(self, symbol: str, ts_init: int) -> OrderBookDeltas | None:
        """A CLEAR of the whole book before a (re)subscription's snapshot; forgets the local state."""
        state = self.symbols.get(symbol)
        if state is None:
            return None
        state.levels = {OrderSide.BUY: {}, OrderSide.SELL: {}}
        state.orders.clear()
        state.sequence += 1
        delta = OrderBookDelta.clear(state.instrument_id, state.sequence, ts_init, ts_init)
        return OrderBookDeltas(state.instrument_id, [delta])

    def parse(self, fields: list[str], ts_init: int) -> OrderBookDeltas | None:
        """One split depth line (first field ``0``/``3``-``9``) to deltas; None when not for us."""
        state = self.symbols.get(fields[1]) if len(fields) > 1 else None
        if state is None:
            self.counters.unknown_symbol += 1
            return None
        try:
            kind = fields[0]
            if kind in ("7", "8"):
                return self._level(state, fields, ts_init, snapshot=kind == "7")
            if kind == "9":
                return self._level_delete(state, fields, ts_init)
            if kind in ("0", "3", "4", "6"):
                return self._order(state, fields, ts_init, snapshot=kind == "6")
            if kind == "5":
                return self._order_delete(state, fields, ts_init)
        except (ValueError, IndexError, KeyError):
            self.counters.malformed += 1
            return None
        self.counters.skipped += 1
        return None

    def clear_side(self, symbol: str, side_code: str, ts_init: int) -> OrderBookDeltas | None:
        """``S,CLEAR DEPTH``: delete every level and order of one side."""
        state = self.symbols.get(symbol)
        side = _SIDES.get(side_code.strip())
        if state is None or side is None:
            return None
        deltas: list[OrderBookDelta] = []
        p = state.prices.precision
        for price_raw in sorted(state.levels[side]):
            deltas.append(
                self._delta(
                    state,
                    BookAction.DELETE,
                    side,
                    price_raw,
                    0,
                    state.prices.level_id(price_raw),
                    _F_MBP,
                    ts_init,
                    ts_init,
                    p,
                )
            )
        state.levels[side].clear()
        for order_id, (o_side, price_raw, _) in sorted(state.orders.items()):
            if o_side == side:
                deltas.append(
                    self._delta(state, BookAction.DELETE, side, price_raw, 0, order_id, 0, ts_init, ts_init, p)
                )
        state.orders = {k: v for k, v in state.orders.items() if v[0] != side}
        if not deltas:
            return None
        return self._pack(state, deltas)

    def _ts(self, time_txt: str, date_txt: str, ts_init: int) -> int:
        """``HH:MM:SS.ffffff`` + ``YYYY-MM-DD`` (Eastern) to UTC ns; whole seconds are cached."""
        if len(time_txt) < 8 or len(date_txt) != 10:
            return ts_init
        key = date_txt + time_txt[:8]
        base = self._seconds.get(key)
        if base is None:
            if len(self._seconds) > 100_000:
                self._seconds.clear()
            base = ET.to_utc_ns(*parse_ymd(date_txt), parse_time_of_day(time_txt[:8]))
            self._seconds[key] = base
        frac = time_txt[9:]
        if not frac:
            return base
        return base + (int(frac) * 10 ** (9 - len(frac)) if len(frac) <= 9 else int(frac[:9]))

    def _delta(
        self,
        state: DepthState,
        action: BookAction,
        side: OrderSide,
        price_raw: int,
        size: int,
        order_id: int,
        flags: int,
        ts_event: int,
        ts_init: int,
        precision: int,
    ) -> OrderBookDelta:
        state.sequence += 1
        return OrderBookDelta.from_raw(
            state.instrument_id,
            action,
            side,
            price_raw,
            precision,
            size,
            0,
            order_id,
            flags,
            state.sequence,
            ts_event,
            ts_init,
        )

    @staticmethod
    def _pack(state: DepthState, deltas: list[OrderBookDelta]) -> OrderBookDeltas:
        last = deltas[-1]
        deltas[-1] = OrderBookDelta.from_raw(
            last.instrument_id,
            last.action,
            last.order.side,
            last.order.price.raw,
            last.order.price.precision,
            last.order.size.raw,
            last.order.size.precision,
            last.order.order_id,
            last.flags | _F_LAST,
            last.sequence,
            last.ts_event,
            last.ts_init,
        )
        return OrderBookDeltas(state.instrument_id, deltas)

    def _level(self, state: DepthState, f: list[str], ts_init: int, snapshot: bool) -> OrderBookDeltas:
        # 7|8,Sym,Side,Price,Size,OrderCount,Precision,Time,Date,
        side = _SIDES[f[2]]
        price_raw = state.prices.raw(f[3])
        size = size_raw(f[4])
        ts_event = self._ts(f[7], f[8], ts_init)
        book = state.levels[side]
        if size <= 0:
            book.pop(price_raw, None)
            action = BookAction.DELETE
        else:
            action = BookAction.UPDATE if price_raw in book else BookAction.ADD
            book[price_raw] = size
        flags = _F_LAST | _F_MBP | (_F_SNAPSHOT if snapshot else 0)
        delta = self._delta(
            state,
            action,
            side,
            price_raw,
            max(size, 0),
            state.prices.level_id(price_raw),
            flags,
            ts_event,
            ts_init,
            state.prices.precision,
        )
        return OrderBookDeltas(state.instrument_id, [delta])

    def _level_delete(self, state: DepthState, f: list[str], ts_init: int) -> OrderBookDeltas:
        # 9,Sym,Side,Price,Time,Date,
        side = _SIDES[f[2]]
        price_raw = state.prices.raw(f[3])
        state.levels[side].pop(price_raw, None)
        ts_event = self._ts(f[4], f[5], ts_init)
        flags = _F_LAST | _F_MBP
        delta = self._delta(
            state,
            BookAction.DELETE,
            side,
            price_raw,
            0,
            state.prices.level_id(price_raw),
            flags,
            ts_event,
            ts_init,
            state.prices.precision,
        )
        return OrderBookDeltas(state.instrument_id, [delta])

    def _order(self, state: DepthState, f: list[str], ts_init: int, snapshot: bool) -> OrderBookDeltas:
        # 0|3|4|6,Sym,OrderID,MMID,Side,Price,Size,OrderPriority,Precision,Time,Date,
        order_id = int(f[2])
        side = _SIDES[f[4]]
        price_raw = state.prices.raw(f[5])
        size = size_raw(f[6])
        ts_event = self._ts(f[9], f[10], ts_init)
        known = order_id in state.orders
        if size <= 0:
            state.orders.pop(order_id, None)
            action = BookAction.DELETE
        else:
            action = BookAction.UPDATE if known else BookAction.ADD
            state.orders[order_id] = (side, price_raw, size)
        flags = _F_LAST | (_F_SNAPSHOT if snapshot else 0)
        delta = self._delta(
            state, action, side, price_raw, max(size, 0), order_id, flags, ts_event, ts_init, state.prices.precision
        )
        return OrderBookDeltas(state.instrument_id, [delta])

    def _order_delete(self, state: DepthState, f: list[str], ts_init: int) -> OrderBookDeltas | None:
        # 5,Sym,OrderID,,Side,Time,Date,
        order_id = int(f[2])
        known = state.orders.pop(order_id, None)
        if known is None:
            self.counters.skipped += 1  # never seen (e.g. deleted before our snapshot): nothing to remove
            return None
        side, price_raw, _ = known
        ts_event = self._ts(f[5], f[6], ts_init)
        delta = self._delta(
            state, BookAction.DELETE, side, price_raw, 0, order_id, _F_LAST, ts_event, ts_init, state.prices.precision
        )
        return OrderBookDeltas(state.instrument_id, [delta])


# -- streaming bars (port 9400) ---------------------------------------------------------------------


@dataclass(frozen=True)
class BarRow:
    """One ``BH``/``BU``/``BC`` line: Open, High, Low, Last order, stamped at the bar's start."""

    request_id: str
    kind: str
    symbol: str
    start_ns: int
    open: str
    high: str
    low: str
    close: str
    cumulative_volume: int
    volume: int
    trades: int


_BAR_KINDS = frozenset(("BH", "BU", "BC"))


def parse_bar_fields(fields: list[str]) -> BarRow | None:
    """Split fields of a 9400 bar line (with or without a request id) to a row; None if not a bar."""
    if fields and fields[0] in _BAR_KINDS:
        rid, rest = "", fields
    elif len(fields) > 1 and fields[1] in _BAR_KINDS:
        rid, rest = fields[0], fields[1:]
    else:
        return None
    if len(rest) < 10:
        raise ValueError(f"bar line with {len(rest)} fields")
    return BarRow(
        request_id=rid,
        kind=rest[0],
        symbol=rest[1],
        start_ns=history_timestamp_ns(rest[2]),
        open=rest[3],
        high=rest[4],
        low=rest[5],
        close=rest[6],
        cumulative_volume=int(rest[7] or 0),
        volume=int(rest[8] or 0),
        trades=int(rest[9] or 0),
    )


def bar_from_row(row: BarRow, bar_type: BarType, prices: PriceCodec, interval_ns: int, ts_init: int) -> Bar:
    """A nautilus bar stamped at its close (``start + interval``), as the backtest's bars are."""
    close_ns = row.start_ns + interval_ns
    p = prices.precision
    return Bar(
        bar_type=bar_type,
        open=Price.from_raw(prices.raw(row.open), p),
        high=Price.from_raw(prices.raw(row.high), p),
        low=Price.from_raw(prices.raw(row.low), p),
        close=Price.from_raw(prices.raw(row.close), p),
        volume=Quantity.from_raw(row.volume * _SCALE, 0),
        ts_event=close_ns,
        ts_init=max(ts_init, close_ns),
    )


# -- history rows (port 9100), parsed in bulk --------------------------------------------------------


@dataclass(frozen=True)
class TickHistory:
    """Tick rows of one request as arrays, oldest first (``HTX``/``HTD``/``HTT`` with direction 1)."""

    ts_ns: IntArray
    price: FloatArray
    size: FloatArray
    total_volume: IntArray
    bid: FloatArray
    ask: FloatArray
    tick_id: list[str]
    basis: list[str]
    aggressor: npt.NDArray[np.uint8]

    def __len__(self) -> int:
        return len(self.ts_ns)

    def select(self, index: npt.NDArray[np.intp]) -> "TickHistory":
        """The rows at ``index``, in that order."""
        return TickHistory(
            ts_ns=self.ts_ns[index],
            price=self.price[index],
            size=self.size[index],
            total_volume=self.total_volume[index],
            bid=self.bid[index],
            ask=self.ask[index],
            tick_id=[self.tick_id[i] for i in index],
            basis=[self.basis[i] for i in index],
            aggressor=self.aggressor[index],
        )


@dataclass(frozen=True)
class BarHistory:
    """Interval or daily rows as arrays; ``ts_ns`` is the row's own stamp (Eastern → UTC)."""

    ts_ns: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __len__(self) -> int:
        return len(self.ts_ns)


def _frame(rows: Sequence[str], n_columns: int, dtypes: dict[int, Any] | None = None) -> pd.DataFrame:
    text = "\n".join(rows)
    dtype: Any = dtypes if dtypes is not None else str
    return pd.read_csv(
        io.StringIO(text),
        header=None,
        names=list(range(n_columns)),
        usecols=list(range(n_columns)),
        dtype=dtype,
        keep_default_na=False,
        na_values=[""],
        index_col=False,
    )


def eastern_series_to_utc_ns(stamps: pd.Series, fmt: str) -> IntArray:
    """Eastern wall-time strings to UTC ns, exactly as :class:`EasternTime` converts one.

    Parsed as naive times, then shifted by each calendar day's offset (one zone lookup per day);
    rows on a DST-change day take the exact per-row path.
    """
    naive = pd.to_datetime(stamps, format=fmt).to_numpy(dtype="datetime64[ns]").view(np.int64)
    days = naive // _DAY_NS
    unique, inverse = np.unique(days, return_inverse=True)
    shift = np.zeros(len(unique), dtype=np.int64)
    exact = np.zeros(len(unique), dtype=bool)
    for k, day in enumerate(unique.tolist()):
        date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
        midnight = ET._midnight.get((date.year, date.month, date.day), -1)
        if midnight == -1:
            midnight = ET._day((date.year, date.month, date.day))
        if midnight is None:
            exact[k] = True
        else:
            shift[k] = midnight - day * _DAY_NS
    result: IntArray = naive + shift[inverse]
    for i in np.flatnonzero(exact[inverse]):
        date = dt.date(1970, 1, 1) + dt.timedelta(days=int(days[i]))
        result[i] = ET.to_utc_ns(date.year, date.month, date.day, int(naive[i] - days[i] * _DAY_NS))
    return result


_TICK_DTYPES: dict[int, Any] = {
    0: str, 1: np.float64, 2: np.float64, 3: np.float64, 4: np.float64, 5: np.float64,
    6: str, 7: str, 8: str, 9: str, 10: np.float64, 11: str,
}  # fmt: skip


def parse_tick_rows(rows: Sequence[str]) -> TickHistory:
    """Tick rows ``Time,Last,LastSize,TotalVolume,Bid,Ask,TickID,Basis,MarketCenter,Conditions,Aggressor,DayCode,``."""
    if not rows:
        empty_f = np.zeros(0, dtype=np.float64)
        empty_i = np.zeros(0, dtype=np.int64)
        return TickHistory(empty_i, empty_f, empty_f, empty_i, empty_f, empty_f, [], [], np.zeros(0, dtype=np.uint8))
    df = _frame(rows, 12, _TICK_DTYPES)
    stamps = df[0]
    fmt = "%Y-%m-%d %H:%M:%S.%f" if len(stamps.iloc[0]) > 19 else "%Y-%m-%d %H:%M:%S"
    codes = np.nan_to_num(df[10].to_numpy(dtype=np.float64)).astype(np.int64)
    aggressor: npt.NDArray[np.uint8] = np.where((codes == 1) | (codes == 2), codes, 0).astype(np.uint8)
    return TickHistory(
        ts_ns=eastern_series_to_utc_ns(stamps, fmt),
        price=df[1].to_numpy(dtype=np.float64),
        size=df[2].to_numpy(dtype=np.float64),
        total_volume=np.nan_to_num(df[3].to_numpy(dtype=np.float64)).astype(np.int64),
        bid=df[4].to_numpy(dtype=np.float64),
        ask=df[5].to_numpy(dtype=np.float64),
        tick_id=df[6].fillna("").tolist(),
        basis=df[7].fillna("").tolist(),
        aggressor=aggressor,
    )


def parse_interval_rows(rows: Sequence[str]) -> BarHistory:
    """Interval rows ``Time,High,Low,Open,Close,TotalVolume,PeriodVolume,NumberOfTrades,`` (H,L,O,C order)."""
    if not rows:
        return _empty_bars()
    df = _frame(rows, 8)
    return BarHistory(
        ts_ns=eastern_series_to_utc_ns(df[0], "%Y-%m-%d %H:%M:%S"),
        high=pd.to_numeric(df[1]).to_numpy(dtype=np.float64),
        low=pd.to_numeric(df[2]).to_numpy(dtype=np.float64),
        open=pd.to_numeric(df[3]).to_numpy(dtype=np.float64),
        close=pd.to_numeric(df[4]).to_numpy(dtype=np.float64),
        volume=pd.to_numeric(df[6]).to_numpy(dtype=np.float64),
    )


def parse_daily_rows(rows: Sequence[str]) -> BarHistory:
    """Daily rows ``Date,High,Low,Open,Close,PeriodVolume,OpenInterest,``; ``ts_ns`` is local midnight."""
    if not rows:
        return _empty_bars()
    df = _frame(rows, 7)
    return BarHistory(
        ts_ns=eastern_series_to_utc_ns(df[0], "%Y-%m-%d"),
        high=pd.to_numeric(df[1]).to_numpy(dtype=np.float64),
        low=pd.to_numeric(df[2]).to_numpy(dtype=np.float64),
        open=pd.to_numeric(df[3]).to_numpy(dtype=np.float64),
        close=pd.to_numeric(df[4]).to_numpy(dtype=np.float64),
        volume=pd.to_numeric(df[5]).to_numpy(dtype=np.float64),
    )


def _empty_bars() -> BarHistory:
    f = np.zeros(0, dtype=np.float64)
    return BarHistory(np.zeros(0, dtype=np.int64), f, f, f, f, f)


def snap_to_tick(values: FloatArray, tick: float) -> FloatArray:
    """Prices moved exactly onto the tick grid (removes float noise before building Prices)."""
    result: FloatArray = np.rint(values / tick) * tick
    return result


def trade_ticks_from_history(
    history: TickHistory,
    instrument_id: InstrumentId,
    price_precision: int,
    tick_size: float,
    ts_init: IntArray | None = None,
) -> list[TradeTick]:
    """Trade ticks (TickID as trade id, aggressor kept) via nautilus' bulk constructor."""
    if not len(history):
        return []
    ts = np.ascontiguousarray(history.ts_ns, dtype=np.uint64)
    init = ts if ts_init is None else np.ascontiguousarray(ts_init, dtype=np.uint64)
    ids = [t if t else f"{instrument_id.symbol.value}-{i}" for i, t in enumerate(history.tick_id)]
    ticks: list[TradeTick] = TradeTick.from_raw_arrays_to_list(
        instrument_id,
        price_precision,
        0,
        np.ascontiguousarray(snap_to_tick(history.price, tick_size), dtype=np.float64),
        np.ascontiguousarray(history.size, dtype=np.float64),
        np.ascontiguousarray(history.aggressor, dtype=np.uint8),
        ids,
        ts,
        init,
    )
    return ticks


def quote_ticks_from_history(
    history: TickHistory,
    instrument_id: InstrumentId,
    price_precision: int,
    tick_size: float,
) -> list[QuoteTick]:
    """The bid and ask in force at each historical trade (sizes are not in IQFeed tick history: 0)."""
    keep = np.isfinite(history.bid) & np.isfinite(history.ask) & (history.bid > 0) & (history.ask > 0)
    if not keep.any():
        return []
    ts = np.ascontiguousarray(history.ts_ns[keep], dtype=np.uint64)
    zeros = np.zeros(int(keep.sum()), dtype=np.float64)
    quotes: list[QuoteTick] = QuoteTick.from_raw_arrays_to_list(
        instrument_id,
        price_precision,
        0,
        np.ascontiguousarray(snap_to_tick(history.bid[keep], tick_size)),
        np.ascontiguousarray(snap_to_tick(history.ask[keep], tick_size)),
        zeros,
        zeros.copy(),
        ts,
        ts,
    )
    return quotes


def bars_from_history(
    bar_type: BarType,
    instrument: Instrument,
    history: BarHistory,
    closes: IntArray,
    keep: npt.NDArray[np.bool_] | None = None,
) -> list[Bar]:
    """Bars of a bar history stamped at ``closes`` (``ts_event = ts_init = close``), prices on the tick grid."""
    tick = instrument.price_increment.as_double()
    p = instrument.price_precision
    select = np.ones(len(closes), dtype=bool) if keep is None else keep
    bars: list[Bar] = []
    o, h, low, c = (snap_to_tick(a, tick) for a in (history.open, history.high, history.low, history.close))
    for i in np.flatnonzero(select):
        ts = int(closes[i])
        bars.append(
            Bar(
                bar_type=bar_type,
                open=Price(float(o[i]), p),
                high=Price(float(h[i]), p),
                low=Price(float(low[i]), p),
                close=Price(float(c[i]), p),
                volume=Quantity(float(history.volume[i]), 0),
                ts_event=ts,
                ts_init=ts,
            ),
        )
    return bars


# -- option chains and news ---------------------------------------------------------------------------


_OPTION_RE = re.compile(r"^@?([A-Z]{1,6}?)([FGHJKMNQUVXZ])(\d{2})([CP])(\d+)$")
_MONTHS = "FGHJKMNQUVXZ"


@dataclass(frozen=True)
class OptionSymbol:
    """A futures-option symbol such as ``@ESZ25C600000`` (strike x 100)."""

    symbol: str
    root: str
    year: int
    month: int
    right: int  # +1 call, -1 put
    strike: float


def parse_option_symbol(symbol: str) -> OptionSymbol | None:
    """Decode a futures-option symbol; None for anything else (equity options, garbage)."""
    match = _OPTION_RE.match(symbol.strip())
    if match is None:
        return None
    root, month, yy, right, strike = match.groups()
    return OptionSymbol(
        symbol=symbol.strip(),
        root=root,
        year=2000 + int(yy),
        month=_MONTHS.index(month) + 1,
        right=1 if right == "C" else -1,
        strike=int(strike) / 100.0,
    )


def parse_chain_fields(fields: Iterable[str]) -> list[OptionSymbol]:
    """Symbols of a ``CFO`` row (calls ``:`` puts); entries that are not option symbols are skipped."""
    result: list[OptionSymbol] = []
    for item in fields:
        item = item.strip()
        if not item or item == ":":
            continue
        option = parse_option_symbol(item)
        if option is not None:
            result.append(option)
    return result


@dataclass(frozen=True)
class NewsItem:
    """One headline as IQFeed sends it (streaming ``N`` or ``NHL`` text rows)."""

    source: str
    story_id: str
    symbols: tuple[str, ...]
    ts_ns: int
    headline: str


def _rejoin(fields: list[str], start: int) -> str:
    rest = fields[start:]
    if rest and rest[-1] == "":
        rest = rest[:-1]  # the line's trailing comma, not part of the text
    return ",".join(rest).strip()


def parse_news_fields(fields: list[str]) -> NewsItem:
    """``N,<source>,<story id>,<sym:sym>,<YYYYMMDD HHMMSS>,<headline, commas and all>``."""
    if len(fields) < 6:
        raise ValueError(f"news line with {len(fields)} fields")
    symbols = tuple(s for s in fields[3].split(":") if s)
    return NewsItem(fields[1], fields[2], symbols, compact_timestamp_ns(fields[4]), _rejoin(fields, 5))


def parse_news_row(row: str) -> NewsItem:
    """An ``NHL`` text row after its request id and ``LN`` prefix: ``N,<source>,<id>,:syms:,<ts>,<headline>``."""
    return parse_news_fields(row.split(","))
