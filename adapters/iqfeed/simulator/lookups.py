"""Lookup-port (9100) requests of the simulator: history, chains, news and symbol search.

Each handler takes the request's arguments (the fields after the command name) and returns the
data rows without the ``<RID>,`` / ``LH,`` prefixes, or raises :class:`LookupFailure` with the
error text IQConnect would send (``!NO_DATA!``, ``Invalid symbol.``, ...). The session adds the
prefixes, the ``E`` line and the ``!ENDMSG!`` terminator, so those rules live in one place.
"""

import datetime as dt
import itertools
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from adapters.iqfeed.simulator import wire
from adapters.iqfeed.simulator.market import Market
from adapters.iqfeed.simulator.market import SymbolSpec


IntArray = npt.NDArray[np.int64]
_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS

NO_DATA = "!NO_DATA!"
INVALID_SYMBOL = "Invalid symbol."
UNAUTHORIZED = "Unauthorized user ID."
SYNTAX_ERROR = "!SYNTAX_ERROR!"
BAD_PARAMETERS = "Invalid number of parameters."


class LookupFailure(Exception):
    """An error reply: ``text`` is what follows ``E,``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class NewsStory:
    """One story the simulator can stream and serve."""

    story_id: str
    source: str
    ts_ns: int
    symbols: tuple[str, ...]
    headline: str
    text: str = ""


@dataclass(frozen=True)
class Request:
    """A parsed lookup request: command, padded arguments, request id (may be empty), protocol."""

    command: str
    args: list[str]
    request_id: str
    protocol: str

    def arg(self, i: int) -> str:
        """Argument ``i`` stripped (``""`` when absent)."""
        return self.args[i].strip() if i < len(self.args) else ""

    def int_arg(self, i: int, default: int | None = None) -> int | None:
        """Argument ``i`` as an int; ``default`` when empty; syntax error when not a number."""
        text = self.arg(i)
        if not text:
            return default
        try:
            return int(text)
        except ValueError:
            raise LookupFailure(SYNTAX_ERROR) from None


#: name → (number of arguments, position of RequestID among them).
LAYOUTS: dict[str, tuple[int, int]] = {
    "HTX": (5, 3),
    "HTD": (8, 6),
    "HTT": (9, 7),
    "HIX": (8, 4),
    "HID": (11, 7),
    "HIT": (12, 8),
    "HDX": (6, 3),
    "HDT": (7, 5),
    "HWX": (6, 3),
    "HMX": (6, 3),
    "CFU": (5, 4),
    "CFS": (5, 4),
    "CFO": (6, 5),
    "NHL": (6, 5),
    "NSY": (4, 3),
    "SBF": (5, 4),
}


def parse_request(line: str, protocol: str) -> Request:
    """Split a lookup line; too many arguments is ``Invalid number of parameters.``."""
    fields = line.split(",")
    command = fields[0].strip()
    layout = LAYOUTS.get(command)
    if layout is None:
        raise LookupFailure(SYNTAX_ERROR)
    count, rid_at = layout
    args = fields[1:]
    if len(args) > count:
        rid = args[rid_at].strip() if rid_at < len(args) else ""
        raise _WithRequestId(BAD_PARAMETERS, rid)
    args = args + [""] * (count - len(args))
    return Request(command, args, args[rid_at].strip(), protocol)


class _WithRequestId(LookupFailure):
    def __init__(self, text: str, request_id: str) -> None:
        super().__init__(text)
        self.request_id = request_id


# -- helpers ----------------------------------------------------------------------------------------


def _spec(market: Market, symbol: str) -> tuple[str, SymbolSpec]:
    if not symbol:
        raise LookupFailure(SYNTAX_ERROR)
    if len(symbol) > 30:
        raise LookupFailure(INVALID_SYMBOL)
    canonical = market.universe.resolve(symbol)
    if canonical is None:
        raise LookupFailure(INVALID_SYMBOL)
    if symbol in market.universe.unauthorized or canonical in market.universe.unauthorized:
        raise LookupFailure(UNAUTHORIZED)
    return canonical, market.universe.specs[canonical]


def _limit(cols: dict[str, IntArray], max_points: int | None, newest_first: bool) -> dict[str, IntArray]:
    n = len(cols["ts"])
    if max_points is not None and max_points < n:
        cols = {k: v[n - max_points :] for k, v in cols.items()}
    if newest_first:
        cols = {k: v[::-1] for k, v in cols.items()}
    return cols


def _in_filter(ts: IntArray, begin: dt.time | None, end: dt.time | None) -> npt.NDArray[np.bool_]:
    if begin is None and end is None:
        return np.ones(len(ts), dtype=bool)
    seconds = np.array([_eastern_seconds(int(t)) for t in ts], dtype=np.int64)
    lo = begin.hour * 3600 + begin.minute * 60 + begin.second if begin else 0
    hi = end.hour * 3600 + end.minute * 60 + end.second if end else 86_400
    result: npt.NDArray[np.bool_] = (seconds >= lo) & (seconds <= hi)
    return result


def _eastern_seconds(ts_ns: int) -> int:
    local = wire.to_eastern(ts_ns)
    return local.hour * 3600 + local.minute * 60 + local.second


def _max_points(request: Request, i: int) -> int | None:
    value = request.int_arg(i)
    if value is not None and value <= 0:
        raise LookupFailure(NO_DATA)
    return value


def _direction(request: Request, i: int) -> bool:
    """True for newest first (``0``, the default)."""
    return request.arg(i) != "1"


def _trading_day(ts_ns: int) -> dt.date:
    """The Globex day a time belongs to (from 18:00 ET the next day; weekends to Monday)."""
    local = wire.to_eastern(ts_ns)
    day = local.date()
    if local.hour >= 18:
        day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


# -- ticks ------------------------------------------------------------------------------------------


def _tick_rows(spec: SymbolSpec, cols: dict[str, IntArray], protocol: str) -> Iterator[str]:
    p, tick = spec.precision, spec.tick
    with_61 = protocol not in ("5.0", "5.1", "5.2", "6.0")
    n = len(cols["ts"])
    for start in range(0, n, 20_000):  # formatted in vectorised chunks: big downloads stay fast
        chunk = {k: v[start : start + 20_000] for k, v in cols.items()}
        times = wire.history_tick_times(chunk["ts"])
        prices = _formatted(chunk["price"], tick, p)
        bids = _formatted(chunk["bid"], tick, p)
        asks = _formatted(chunk["ask"], tick, p)
        days = _day_codes(chunk["ts"]) if with_61 else None
        for i in range(len(times)):
            row = (
                f"{times[i]},{prices[i]},{chunk['size'][i]},{chunk['total_volume'][i]},{bids[i]},{asks[i]},"
                f"{chunk['tick_id'][i]},C,{spec.listed_market},01"
            )
            if days is not None:
                row += f",{chunk['aggressor'][i]},{days[i]}"
            yield row + ","


def _formatted(ticks: IntArray, tick: float, precision: int) -> list[str]:
    """Prices in ticks as decimal text, formatting each distinct price once."""
    unique, inverse = np.unique(ticks, return_inverse=True)
    texts = [f"{int(v) * tick:.{precision}f}" for v in unique]
    return [texts[k] for k in inverse.reshape(-1)]


def _day_codes(ts: IntArray) -> list[int]:
    """Day of month of each stamp's Globex trading day (vectorised per hour)."""
    hours = ts // 3_600_000_000_000
    unique, inverse = np.unique(hours, return_inverse=True)
    codes = [_trading_day(int(h) * 3_600_000_000_000).day for h in unique]
    return [codes[k] for k in inverse.reshape(-1)]


def ticks(market: Market, request: Request) -> Iterator[str]:
    """``HTX``, ``HTD``, ``HTT``: trades with the bid/ask in force, in the requested direction."""
    r = request
    _, spec = _spec(market, r.arg(0))
    canonical = market.universe.resolve(r.arg(0))
    assert canonical is not None
    history = market.history[canonical]
    now = market.clock()
    if r.command == "HTX":
        cols = history.window(None, now)
        max_points, newest_first = _max_points(r, 1), _direction(r, 2)
    elif r.command == "HTD":
        days = r.int_arg(1)
        if days is None or days <= 0:
            raise LookupFailure(NO_DATA)
        first_day = _trading_day(now) - dt.timedelta(days=days - 1)
        start = wire.from_eastern(dt.datetime.combine(first_day - dt.timedelta(days=1), dt.time(18, 0)))
        cols = history.window(start, now)
        keep = _in_filter(cols["ts"], wire.parse_filter_time(r.arg(3)), wire.parse_filter_time(r.arg(4)))
        cols = {k: v[keep] for k, v in cols.items()}
        max_points, newest_first = _max_points(r, 2), _direction(r, 5)
    else:  # HTT
        begin = _request_time(r.arg(1))
        end = _request_time(r.arg(2))
        cols = history.window(begin, end if end is not None else now)
        keep = _in_filter(cols["ts"], wire.parse_filter_time(r.arg(4)), wire.parse_filter_time(r.arg(5)))
        cols = {k: v[keep] for k, v in cols.items()}
        max_points, newest_first = _max_points(r, 3), _direction(r, 6)
    cols = _limit(cols, max_points, newest_first)
    if not len(cols["ts"]):
        raise LookupFailure(NO_DATA)
    return _tick_rows(spec, cols, r.protocol)


def _request_time(text: str) -> int | None:
    try:
        return wire.parse_request_datetime(text)
    except ValueError:
        raise LookupFailure(SYNTAX_ERROR) from None


# -- interval and daily bars --------------------------------------------------------------------------


@dataclass(frozen=True)
class BarsArrays:
    """Aggregated bars: start times and OHLC in ticks, volumes, trade counts, cumulative volume."""

    start: IntArray
    open: IntArray
    high: IntArray
    low: IntArray
    close: IntArray
    volume: IntArray
    trades: IntArray
    total_volume: IntArray

    def __len__(self) -> int:
        return len(self.start)

    def select(self, mask: npt.NDArray[np.bool_] | slice) -> "BarsArrays":
        """A subset, same order."""
        return BarsArrays(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


def aggregate(cols: dict[str, IntArray], keys: IntArray) -> BarsArrays:
    """Group time-ordered trades by ``keys`` (each bar's start) into OHLCV bars."""
    if not len(keys):
        z = np.zeros(0, dtype=np.int64)
        return BarsArrays(z, z, z, z, z, z, z, z)
    change = np.flatnonzero(np.diff(keys)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(keys)]))
    price = cols["price"]
    return BarsArrays(
        start=keys[starts],
        open=price[starts],
        high=np.maximum.reduceat(price, starts),
        low=np.minimum.reduceat(price, starts),
        close=price[ends - 1],
        volume=np.add.reduceat(cols["size"], starts),
        trades=(ends - starts).astype(np.int64),
        total_volume=cols["total_volume"][ends - 1],
    )


def interval_bars(market: Market, symbol: str, interval_s: int, start: int | None, end: int | None) -> BarsArrays:
    """Time bars of ``interval_s`` seconds (aligned to the epoch) from trades in ``[start, end]``."""
    cols = market.history[symbol].window(start, end)
    interval_ns = interval_s * _NS
    keys = cols["ts"] - cols["ts"] % interval_ns
    return aggregate(cols, keys)


def _interval_rows(spec: SymbolSpec, bars: BarsArrays, interval_ns: int, label_at_begin: bool) -> Iterator[str]:
    p, tick = spec.precision, spec.tick
    for i in range(len(bars)):
        stamp = int(bars.start[i]) if label_at_begin else int(bars.start[i]) + interval_ns
        yield (
            f"{wire.history_bar_time(stamp)},{bars.high[i] * tick:.{p}f},{bars.low[i] * tick:.{p}f},"
            f"{bars.open[i] * tick:.{p}f},{bars.close[i] * tick:.{p}f},{bars.total_volume[i]},{bars.volume[i]},0,"
        )


def intervals(market: Market, request: Request) -> Iterator[str]:
    """``HIX``, ``HID``, ``HIT``: time bars in High,Low,Open,Close order, labelled at the end by default."""
    r = request
    canonical, spec = _spec(market, r.arg(0))
    interval = r.int_arg(1)
    if interval is None or interval <= 0:
        raise LookupFailure(SYNTAX_ERROR)
    now = market.clock()
    if r.command == "HIX":
        type_i, label_i = 6, 7
        bars = interval_bars(market, canonical, interval, None, now)
        max_points, newest_first = _max_points(r, 2), _direction(r, 3)
    elif r.command == "HID":
        type_i, label_i = 9, 10
        days = r.int_arg(2)
        if days is None or days <= 0:
            raise LookupFailure(NO_DATA)
        first_day = _trading_day(now) - dt.timedelta(days=days - 1)
        start = wire.from_eastern(dt.datetime.combine(first_day - dt.timedelta(days=1), dt.time(18, 0)))
        bars = interval_bars(market, canonical, interval, start, now)
        keep = _in_filter(bars.start, wire.parse_filter_time(r.arg(4)), wire.parse_filter_time(r.arg(5)))
        bars = bars.select(keep)
        max_points, newest_first = _max_points(r, 3), _direction(r, 6)
    else:  # HIT
        type_i, label_i = 10, 11
        begin, end = _request_time(r.arg(2)), _request_time(r.arg(3))
        bars = interval_bars(market, canonical, interval, begin, end if end is not None else now)
        keep = _in_filter(bars.start, wire.parse_filter_time(r.arg(5)), wire.parse_filter_time(r.arg(6)))
        bars = bars.select(keep)
        max_points, newest_first = _max_points(r, 4), _direction(r, 7)
    if r.arg(type_i) not in ("", "s"):
        raise LookupFailure(SYNTAX_ERROR)  # tick ("t") and volume ("v") intervals are not simulated
    label_at_begin = r.arg(label_i) == "1"
    interval_ns = interval * _NS
    complete = bars.start + interval_ns <= now
    bars = bars.select(complete)
    if max_points is not None and max_points < len(bars):
        bars = bars.select(slice(len(bars) - max_points, None))
    if newest_first:
        bars = bars.select(slice(None, None, -1))
    if not len(bars):
        raise LookupFailure(NO_DATA)
    return _interval_rows(spec, bars, interval_ns, label_at_begin)


def daily_bars(market: Market, symbol: str, start: int | None, end: int | None) -> tuple[list[dt.date], BarsArrays]:
    """One bar per Globex trading day (18:00 ET the evening before to 17:00 ET) from trades."""
    cols = market.history[symbol].window(start, end)
    days = [_trading_day(int(t)) for t in cols["ts"]]
    keys = np.array([d.toordinal() for d in days], dtype=np.int64)
    bars = aggregate(cols, keys)
    return [dt.date.fromordinal(int(k)) for k in bars.start], bars


def _daily_rows(spec: SymbolSpec, dates: list[dt.date], bars: BarsArrays, order: list[int]) -> Iterator[str]:
    p, tick = spec.precision, spec.tick
    for i in order:
        yield (
            f"{dates[i]:%Y-%m-%d},{bars.high[i] * tick:.{p}f},{bars.low[i] * tick:.{p}f},"
            f"{bars.open[i] * tick:.{p}f},{bars.close[i] * tick:.{p}f},{bars.volume[i]},0,"
        )


def dailies(market: Market, request: Request) -> Iterator[str]:
    """``HDX``, ``HDT``, ``HWX``, ``HMX``: daily (weekly, monthly) bars, today's partial bar included."""
    r = request
    canonical, spec = _spec(market, r.arg(0))
    now = market.clock()
    if r.command == "HDT":
        begin = _request_time(r.arg(1))
        end_day = _request_time(r.arg(2))
        dates, bars = daily_bars(market, canonical, None, now)
        lo = wire.to_eastern(begin).date() if begin is not None else dt.date.min
        hi = wire.to_eastern(end_day).date() if end_day is not None else dt.date.max
        keep = np.array([lo <= d <= hi for d in dates], dtype=bool)
        dates = [d for d, k in zip(dates, keep, strict=True) if k]
        bars = bars.select(keep)
        max_points, newest_first = _max_points(r, 3), _direction(r, 4)
    else:
        dates, bars = daily_bars(market, canonical, None, now)
        max_points, newest_first = _max_points(r, 1), _direction(r, 2)
        if r.command in ("HWX", "HMX"):
            dates, bars = _coarser(dates, bars, weekly=r.command == "HWX")
    order = list(range(len(dates)))
    if max_points is not None:
        order = order[-max_points:]
    if newest_first:
        order.reverse()
    if not order:
        raise LookupFailure(NO_DATA)
    return _daily_rows(spec, dates, bars, order)


def _coarser(dates: list[dt.date], bars: BarsArrays, weekly: bool) -> tuple[list[dt.date], BarsArrays]:
    if not dates:
        return dates, bars

    def key(d: dt.date) -> int:
        if weekly:
            return (d - dt.timedelta(days=d.weekday())).toordinal()
        return d.year * 100 + d.month

    keys = np.array([key(d) for d in dates], dtype=np.int64)
    change = np.flatnonzero(np.diff(keys)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(keys)]))
    merged = BarsArrays(
        start=bars.start[starts],
        open=bars.open[starts],
        high=np.maximum.reduceat(bars.high, starts),
        low=np.minimum.reduceat(bars.low, starts),
        close=bars.close[ends - 1],
        volume=np.add.reduceat(bars.volume, starts),
        trades=np.add.reduceat(bars.trades, starts),
        total_volume=bars.total_volume[ends - 1],
    )
    return [dates[int(e) - 1] for e in ends], merged


# -- chains -----------------------------------------------------------------------------------------------


def _root(symbol: str) -> str:
    return symbol.strip().lstrip("@").rstrip("#")


def futures_chain(market: Market, request: Request) -> Iterator[str]:
    """``CFU``/``CFS``: the listed contracts of a root, nearest first (one row)."""
    root = _root(request.arg(0))
    contracts = sorted(
        (s for s in market.universe.specs.values() if s.kind == "future" and s.root == root and s.expiration),
        key=lambda s: s.expiration or dt.date.max,
    )
    today = wire.to_eastern(market.clock()).date()
    contracts = [c for c in contracts if c.expiration is not None and c.expiration >= today]
    months = request.arg(1)
    if months:
        contracts = [c for c in contracts if c.symbol[-3] in months]
    near = request.int_arg(3)
    if near is not None and near > 0:
        contracts = contracts[:near]
    if not contracts:
        raise LookupFailure(NO_DATA)
    if request.command == "CFS":
        pairs = [f"{a.symbol}-{b.symbol.lstrip('@')}" for a, b in itertools.pairwise(contracts)]
        if not pairs:
            raise LookupFailure(NO_DATA)
        return iter([",".join(pairs) + ","])
    return iter([",".join(c.symbol for c in contracts) + ","])


#: Strike spacing (points) of the simulated futures options by root.
STRIKE_STEP = {"ES": 5.0, "MES": 5.0, "NQ": 25.0, "MNQ": 25.0}


def options_chain(market: Market, request: Request, strikes_each_side: int = 10) -> Iterator[str]:
    """``CFO``: calls, ``:``, puts of the near contracts, strikes around the last price (strike x 100)."""
    root = _root(request.arg(0))
    sides = request.arg(1) or "pc"
    if not set(sides) <= {"p", "c"}:
        raise LookupFailure(SYNTAX_ERROR)
    contracts = sorted(
        (s for s in market.universe.specs.values() if s.kind == "future" and s.root == root and s.expiration),
        key=lambda s: s.expiration or dt.date.max,
    )
    months = request.arg(2)
    if months:
        contracts = [c for c in contracts if c.symbol[-3] in months]
    near = request.int_arg(4)
    contracts = contracts[: near if near and near > 0 else 1]
    if not contracts:
        raise LookupFailure(NO_DATA)
    step = STRIKE_STEP.get(root, 5.0)
    calls: list[str] = []
    puts: list[str] = []
    for spec in contracts:
        book = market.book(spec.symbol)
        ref = (book.last.price if book.last is not None else book.bid) * spec.tick
        center = round(ref / step) * step
        for k in range(-strikes_each_side, strikes_each_side + 1):
            strike = round((center + k * step) * 100)
            if "c" in sides:
                calls.append(f"{spec.symbol}C{strike}")
            if "p" in sides:
                puts.append(f"{spec.symbol}P{strike}")
    return iter([",".join([*calls, ":", *puts]) + ","])


# -- news and symbols -----------------------------------------------------------------------------------


def _story_matches(story: NewsStory, sources: set[str], symbols: set[str]) -> bool:
    if sources and story.source not in sources:
        return False
    return not symbols or bool(symbols & set(story.symbols))


def headlines(stories: list[NewsStory], request: Request) -> Iterator[str]:
    """``NHL``: newest first, text (``t``) or XML (``x``) rows."""
    sources = {s for s in request.arg(0).split(":") if s}
    symbols = {s for s in request.arg(1).split(":") if s}
    fmt = request.arg(2) or "t"
    if fmt not in ("t", "x"):
        raise LookupFailure(SYNTAX_ERROR)
    limit = request.int_arg(3, 1000) or 1000
    day = request.arg(4)
    found = [s for s in stories if _story_matches(s, sources, symbols)]
    if day:
        found = [s for s in found if wire.news_time(s.ts_ns, compact=True)[:8] == day]
    found = sorted(found, key=lambda s: s.ts_ns, reverse=True)[:limit]
    if not found:
        raise LookupFailure(NO_DATA)
    if fmt == "x":
        return _headlines_xml(found)
    return iter(
        f"N,{s.source},{s.story_id},:{':'.join(s.symbols)}:,{wire.news_time(s.ts_ns, compact=True)},{s.headline}"
        for s in found
    )


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _headlines_xml(found: list[NewsStory]) -> Iterator[str]:
    yield "<news_headlines>"
    for s in found:
        yield "<news_headline>"
        yield f"<id>{s.story_id}</id>"
        yield f"<source>{_xml(s.source)}</source>"
        yield f"<timestamp>{wire.news_time(s.ts_ns, compact=True)}</timestamp>"
        yield f"<symbols>:{':'.join(s.symbols)}:</symbols>"
        yield f"<text>{_xml(s.headline)}</text>"
        yield "</news_headline>"
    yield "</news_headlines>"


def story(stories: list[NewsStory], request: Request) -> Iterator[str]:
    """``NSY``: one story's text (text format) or XML."""
    wanted = request.arg(0)
    fmt = request.arg(1) or "t"
    for s in stories:
        if s.story_id == wanted:
            body = s.text or s.headline
            if fmt == "x":
                return iter(
                    [
                        "<news_stories><news_story><is_link>N</is_link>",
                        f"<story_text>{_xml(body)}</story_text>",
                        f"<symbols>:{':'.join(s.symbols)}:</symbols></news_story></news_stories>",
                    ],
                )
            return iter([body])
    raise LookupFailure(NO_DATA)


def symbol_search(market: Market, request: Request) -> Iterator[str]:
    """``SBF,[s|d],[search],[e|t],[ids]``: symbols or descriptions containing the search text."""
    field_kind = request.arg(0) or "s"
    text = request.arg(1).upper()
    if field_kind not in ("s", "d") or not text:
        raise LookupFailure(SYNTAX_ERROR)
    rows = []
    for spec in sorted(market.universe.specs.values(), key=lambda s: s.symbol):
        haystack = spec.symbol if field_kind == "s" else spec.description
        if text in haystack.upper():
            rows.append(f"{spec.symbol},{spec.listed_market},{spec.security_type},{spec.description},")
    if not rows:
        raise LookupFailure(NO_DATA)
    return iter(rows)


Handler = Callable[[Request], Iterator[str]]
