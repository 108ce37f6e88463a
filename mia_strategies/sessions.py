"""CME Globex hours for equity-index futures, as pure functions of a UTC timestamp.

Globex trades Sunday 17:00 CT to Friday 16:00 CT with a daily halt 16:00-17:00 CT (Monday to
Thursday). A trading day is named by the date it closes on: the session that opens Sunday 17:00
CT is Monday's. Regular trading hours (RTH) are 08:30-15:00 CT. Exchange holidays are not modelled:
data simply has none on those days, and no bar is built without trades.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd


EXCHANGE_TZ = ZoneInfo("America/Chicago")
SESSION_OPEN = dt.time(17, 0)
SESSION_CLOSE = dt.time(16, 0)
RTH_OPEN = dt.time(8, 30)
RTH_CLOSE = dt.time(15, 0)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_local(ts_ns: int) -> dt.datetime:
    """UTC nanoseconds to exchange-local time, floored to the microsecond (never rounded up)."""
    return (_EPOCH + dt.timedelta(microseconds=ts_ns // 1000)).astimezone(EXCHANGE_TZ)


def to_ns(local: dt.datetime) -> int:
    """Exchange-local (aware) time to UTC nanoseconds."""
    return int(pd.Timestamp(local).tz_convert("UTC").value)


def trading_day(ts_ns: int) -> dt.date:
    """The trading day a timestamp belongs to (at or after 17:00 CT counts for the next day)."""
    local = to_local(ts_ns)
    day = local.date()
    if local.time() >= SESSION_OPEN:
        day += dt.timedelta(days=1)
    while day.weekday() >= 5:  # a Friday-evening or Saturday stamp belongs to Monday
        day += dt.timedelta(days=1)
    return day


def session_bounds(day: dt.date) -> tuple[int, int]:
    """Open and close (UTC ns) of the Globex session of trading day ``day`` (a weekday)."""
    if day.weekday() >= 5:
        raise ValueError(f"{day} is a weekend day, which has no session")
    prev = day - dt.timedelta(days=1)  # Monday's session opens Sunday 17:00 CT
    open_local = dt.datetime.combine(prev, SESSION_OPEN, tzinfo=EXCHANGE_TZ)
    close_local = dt.datetime.combine(day, SESSION_CLOSE, tzinfo=EXCHANGE_TZ)
    return to_ns(open_local), to_ns(close_local)


def is_open(ts_ns: int) -> bool:
    """Whether Globex trades at ``ts_ns`` (closed in the daily halt and over the weekend)."""
    start, end = session_bounds(trading_day(ts_ns))
    return start <= ts_ns < end


def is_rth(ts_ns: int) -> bool:
    """Whether ``ts_ns`` falls in regular trading hours, 08:30-15:00 CT on a weekday."""
    local = to_local(ts_ns)
    return local.weekday() < 5 and RTH_OPEN <= local.time() < RTH_CLOSE


def next_close_ns(ts_ns: int) -> int:
    """The close (daily halt or Friday close) of the session containing or following ``ts_ns``."""
    _, end = session_bounds(trading_day(ts_ns))
    return end


def sessions_between(start_ns: int, end_ns: int) -> list[tuple[dt.date, int, int]]:
    """Every trading session overlapping ``[start_ns, end_ns)`` as (day, open_ns, close_ns), clipped."""
    out: list[tuple[dt.date, int, int]] = []
    day = trading_day(start_ns)
    last = trading_day(end_ns)
    while day <= last:
        if day.weekday() < 5:
            s, e = session_bounds(day)
            s, e = max(s, start_ns), min(e, end_ns)
            if s < e:
                out.append((day, s, e))
        day += dt.timedelta(days=1)
    return out
