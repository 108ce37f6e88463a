"""Types every family shares: the bar input, the instrument's identity, its bar history and session.

A bar is stamped at its close (``ts_event``) and covers ``(close - length, close]``; the session it
belongs to is the Globex trading day of the instant just before its close, so the bar that ends at
the 16:00 CT halt belongs to that day and the first bar after the 17:00 CT reopen to the next one.
"""

import datetime as dt
import math
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING

import numpy as np

from mia_strategies import sessions
from mia_strategies.features.rolling import NAN
from mia_strategies.features.rolling import FloatArray
from mia_strategies.features.rolling import Ring


if TYPE_CHECKING:
    from mia_strategies.features.shared import SharedInputs


NS_PER_MINUTE = 60_000_000_000
NS_PER_DAY = 86_400 * 1_000_000_000
#: Bars of history every instrument keeps (the longest technical window is 390 bars + 1).
HISTORY_BARS = 512
#: Largest price or size accepted. Nautilus cannot represent more than about 1e10, so anything larger
#: is corrupt input, and keeping it out means products of a few inputs can never overflow.
MAX_INPUT = 1e12
#: Smallest positive price or size accepted (nautilus's finest increment is 1e-16): keeps ratios
#: and logs of inputs away from underflow to 0.
MIN_INPUT = 1e-16


def valid_price(x: float) -> bool:
    """A price the families can use: finite, within ``[MIN_INPUT, MAX_INPUT]`` (NaN fails)."""
    return MIN_INPUT <= x <= MAX_INPUT


def valid_size(x: float) -> bool:
    """A size or volume the families can use: 0, or within ``[MIN_INPUT, MAX_INPUT]`` (NaN fails)."""
    return x == 0.0 or MIN_INPUT <= x <= MAX_INPUT


@dataclass(frozen=True, slots=True)
class BarInput:
    """One closed decision bar as plain floats (the same values online and offline)."""

    ts_event: int
    ts_init: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def is_valid(self) -> bool:
        """Prices in range with ``low <= open, close <= high`` and a volume in range (see ``valid_price``)."""
        o, h, lo, c = self.open, self.high, self.low, self.close
        if not (valid_price(lo) and valid_price(h) and valid_size(self.volume)):
            return False
        return lo <= o <= h and lo <= c <= h


@dataclass(frozen=True)
class InstrumentInfo:
    """What the families know about the instrument: ids, root, tick, roll and expiry times."""

    instrument_id: str
    root: str
    tick_size: float = 0.25
    roll_ns: int | None = None
    expiry_ns: int | None = None
    previous_roll_ns: int | None = None
    multiplier: float = 1.0


@dataclass(frozen=True)
class SessionInfo:
    """Constants of one Globex trading day, computed once per session."""

    day: dt.date
    open_ns: int
    close_ns: int
    rth_open_ns: int
    rth_close_ns: int
    weekday: int
    month: int
    is_month_end: bool
    is_opex_week: bool
    is_quad_witching: bool

    @staticmethod
    def of(day: dt.date) -> "SessionInfo":
        """The session of trading day ``day`` (a weekday)."""
        open_ns, close_ns = sessions.session_bounds(day)
        tz = sessions.EXCHANGE_TZ
        rth_open = sessions.to_ns(dt.datetime.combine(day, sessions.RTH_OPEN, tzinfo=tz))
        rth_close = sessions.to_ns(dt.datetime.combine(day, sessions.RTH_CLOSE, tzinfo=tz))
        third_friday = _third_friday(day.year, day.month)
        next_weekday = day + dt.timedelta(days=1)
        while next_weekday.weekday() >= 5:
            next_weekday += dt.timedelta(days=1)
        return SessionInfo(
            day=day,
            open_ns=open_ns,
            close_ns=close_ns,
            rth_open_ns=rth_open,
            rth_close_ns=rth_close,
            weekday=day.weekday(),
            month=day.month,
            is_month_end=next_weekday.month != day.month,
            is_opex_week=third_friday - dt.timedelta(days=4) <= day <= third_friday,
            is_quad_witching=day == third_friday and day.month in (3, 6, 9, 12),
        )


def _third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    offset = (4 - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 14)


class BarHistory:
    """The instrument's recent bars and its session statistics, updated once per bar before the families.

    ``logret`` holds ``ln(close / previous close)`` (NaN for the first bar). Session fields describe
    the trading day of the newest bar; ``prev_session_*`` the last day seen before it.
    """

    def __init__(self, capacity: int = HISTORY_BARS) -> None:
        self.open = Ring(capacity)
        self.high = Ring(capacity)
        self.low = Ring(capacity)
        self.close = Ring(capacity)
        self.volume = Ring(capacity)
        self.logret = Ring(capacity)
        self.count = 0
        self.last_ts = 0
        self.prev_ts = 0
        self.session: SessionInfo | None = None
        self.new_session = False
        self.session_bars = 0
        self.session_open_px = NAN
        self.session_high = NAN
        self.session_low = NAN
        self.session_pv = 0.0
        self.session_vol = 0.0
        self.prev_session_close = NAN
        self.prev_session_open = NAN
        self.prev_session_day: dt.date | None = None
        self._session_cache: dict[dt.date, SessionInfo] = {}

    def update(self, bar: BarInput) -> None:
        """Append a validated bar and roll the session statistics."""
        prev_close = self.close.newest()
        self.open.push(bar.open)
        self.high.push(bar.high)
        self.low.push(bar.low)
        self.close.push(bar.close)
        self.volume.push(bar.volume)
        self.logret.push(math.log(bar.close / prev_close) if prev_close == prev_close else NAN)
        self.count += 1
        self.prev_ts = self.last_ts
        self.last_ts = bar.ts_event
        self._update_session(bar, prev_close)

    def _session_for(self, ts_ns: int) -> SessionInfo:
        """The session of a bar closing at ``ts_ns`` (cached: a session lookup costs microseconds)."""
        current = self.session
        if current is not None and current.open_ns < ts_ns <= current.close_ns:
            return current
        day = sessions.trading_day(ts_ns - 1)
        info = self._session_cache.get(day)
        if info is None:
            info = SessionInfo.of(day)
            if len(self._session_cache) > 64:
                self._session_cache.clear()
            self._session_cache[day] = info
        return info

    def _update_session(self, bar: BarInput, prev_close: float) -> None:
        info = self._session_for(bar.ts_event)
        self.new_session = self.session is None or info.day != self.session.day
        if self.new_session:
            if self.session is not None:
                self.prev_session_close = prev_close
                self.prev_session_open = self.session_open_px
                self.prev_session_day = self.session.day
            self.session = info
            self.session_bars = 0
            self.session_open_px = bar.open
            self.session_high = bar.high
            self.session_low = bar.low
            self.session_pv = 0.0
            self.session_vol = 0.0
        else:
            self.session_high = max(self.session_high, bar.high)
            self.session_low = min(self.session_low, bar.low)
        self.session_bars += 1
        typical = (bar.high + bar.low + bar.close) / 3.0
        self.session_pv += typical * bar.volume
        self.session_vol += bar.volume


@dataclass
class BarContext:
    """Everything a family reads at a bar close: the bar, history, instrument, shared inputs, outputs so far."""

    bar: BarInput
    hist: BarHistory
    info: InstrumentInfo
    shared: "SharedInputs"
    full: FloatArray
    index: dict[str, int]
    extras: dict[str, float] = field(default_factory=dict)


def nan_vector(n: int) -> FloatArray:
    """A fresh vector of ``n`` NaNs."""
    return np.full(n, np.nan)
