"""IQConnect wire formats for the simulator: field tables, Eastern time stamps, line builders.

Written from ``shared/docs/iqfeed-protocol.md`` (sections 1-5 and the simulator spec in 7), not
from the project's client: the simulator must be a second, independent reading of the protocol.
Every server line ends ``\\r\\n``; data and system lines carry a trailing comma except the
``*FIELDNAMES`` lists, ``S,SERVER CONNECTED`` and ``n,<sym>``.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt


EASTERN = ZoneInfo("America/New_York")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

#: Protocol versions IQConnect accepts in ``S,SET PROTOCOL``.
PROTOCOLS = ("5.0", "5.1", "5.2", "6.0", "6.1", "6.2")

#: Every Level 1 update field name of protocol 6.1/6.2 (the DTN spelling, ``7 Day Yield``).
ALL_UPDATE_FIELDS: tuple[str, ...] = (
    "Symbol", "Exchange ID", "Last", "Change", "Percent Change", "Total Volume", "High", "Low", "Bid", "Ask",
    "Bid Size", "Ask Size", "Tick", "Range", "Open Interest", "Open", "Close", "Spread", "Settle", "Delay",
    "Restricted Code", "Net Asset Value", "Average Maturity", "7 Day Yield", "Extended Trading Change",
    "Extended Trading Difference", "Price-Earnings Ratio", "Percent Off Average Volume", "Bid Change",
    "Ask Change", "Change From Open", "Market Open", "Volatility", "Market Capitalization",
    "Fraction Display Code", "Decimal Precision", "Days to Expiration", "Previous Day Volume", "Open Range 1",
    "Close Range 1", "Open Range 2", "Close Range 2", "Number of Trades Today", "VWAP", "TickID",
    "Financial Status Indicator", "Settlement Date", "Bid Market Center", "Ask Market Center",
    "Available Regions", "Last Size", "Last Time", "Last Market Center", "Most Recent Trade",
    "Most Recent Trade Size", "Most Recent Trade Time", "Most Recent Trade Conditions",
    "Most Recent Trade Market Center", "Extended Trade", "Extended Trade Size", "Extended Trade Time",
    "Extended Trade Market Center", "Message Contents", "Ask Time", "Bid Time", "Last Date",
    "Extended Trade Date", "Most Recent Trade Date", "Most Recent Trade Aggressor", "Most Recent Trade Day Code",
)  # fmt: skip

#: Protocol 6.0 lacks the two 6.1 additions.
UPDATE_FIELDS_60: tuple[str, ...] = tuple(
    n for n in ALL_UPDATE_FIELDS if n not in ("Most Recent Trade Aggressor", "Most Recent Trade Day Code")
)

#: The fieldset every new Level 1 connection starts with.
DEFAULT_UPDATE_FIELDS: tuple[str, ...] = (
    "Symbol", "Most Recent Trade", "Most Recent Trade Size", "Most Recent Trade Time",
    "Most Recent Trade Market Center", "Total Volume", "Bid", "Bid Size", "Ask", "Ask Size", "Open", "High", "Low",
    "Close", "Message Contents", "Most Recent Trade Conditions",
)  # fmt: skip

#: The 57 fundamental field names of protocol 6.1+, in wire order.
FUNDAMENTAL_FIELDS: tuple[str, ...] = (
    "Symbol", "Exchange ID", "PE", "Average Volume", "52 Week High", "52 Week Low", "Calendar Year High",
    "Calendar Year Low", "Dividend Yield", "Dividend Amount", "Dividend Rate", "Pay Date", "Ex-dividend Date",
    "Current Year EPS", "Next Year EPS", "Five-year Growth Percentage", "Fiscal Year End", "Company Name",
    "Root Option Symbol", "Percent Held By Institutions", "Beta", "Leaps", "Current Assets", "Current Liabilities",
    "Balance Sheet Date", "Long-term Debt", "Common Shares Outstanding", "Split Factor 1", "Split Factor 2",
    "Format Code", "Precision", "SIC", "Historical Volatility", "Security Type", "Listed Market",
    "52 Week High Date", "52 Week Low Date", "Calendar Year High Date", "Calendar Year Low Date", "Year End Close",
    "Maturity Date", "Coupon Rate", "Expiration Date", "Strike Price", "NAICS", "Exchange Root",
    "Option Premium Multiplier", "Option Multiple Deliverable", "Session Open Time", "Session Close Time",
    "Base Currency", "Contract Size", "Contract Months", "Minimum Tick Size", "First Delivery Date", "FIGI",
    "Security SubType",
)  # fmt: skip


def to_eastern(ts_ns: int) -> dt.datetime:
    """UTC ns to an aware US/Eastern datetime (microsecond resolution, floored)."""
    return (_EPOCH + dt.timedelta(microseconds=ts_ns // 1000)).astimezone(EASTERN)


def from_eastern(local: dt.datetime) -> int:
    """A naive Eastern wall time (``fold`` respected) to UTC ns."""
    aware = local.replace(tzinfo=EASTERN) if local.tzinfo is None else local
    delta = aware.astimezone(dt.UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def l1_time(ts_ns: int) -> str:
    """``HH:MM:SS.ffffff`` (Eastern, 6-digit microseconds) as Level 1 sends it."""
    return to_eastern(ts_ns).strftime("%H:%M:%S.%f")


def l1_date(ts_ns: int) -> str:
    """``MM/DD/YYYY`` (Eastern)."""
    return to_eastern(ts_ns).strftime("%m/%d/%Y")


def depth_time_date(ts_ns: int) -> tuple[str, str]:
    """Level 2 ``HH:MM:SS.ffffff`` and ``YYYY-MM-DD`` (Eastern)."""
    local = to_eastern(ts_ns)
    return local.strftime("%H:%M:%S.%f"), local.strftime("%Y-%m-%d")


def history_tick_time(ts_ns: int) -> str:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` (Eastern)."""
    return to_eastern(ts_ns).strftime("%Y-%m-%d %H:%M:%S.%f")


def history_bar_time(ts_ns: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (Eastern)."""
    return to_eastern(ts_ns).strftime("%Y-%m-%d %H:%M:%S")


def timestamp_line(ts_ns: int) -> str:
    """``T,YYYYMMDD HH:MM:SS`` (one-second resolution, no trailing comma)."""
    return "T," + to_eastern(ts_ns).strftime("%Y%m%d %H:%M:%S")


def news_time(ts_ns: int, compact: bool = False) -> str:
    """``YYYYMMDD HHMMSS`` (streaming) or ``YYYYMMDDHHMMSS`` (lookup rows)."""
    return to_eastern(ts_ns).strftime("%Y%m%d%H%M%S" if compact else "%Y%m%d %H%M%S")


def stats_time(ts_ns: int) -> str:
    """``Nov 20 02:30PM`` as ``S,STATS`` shows times."""
    return to_eastern(ts_ns).strftime("%b %d %I:%M%p")


def parse_request_datetime(text: str) -> int | None:
    """``CCYYMMDD[ HHmmSS]`` (Eastern) to UTC ns; None when empty."""
    text = text.strip()
    if not text:
        return None
    if len(text) == 8:
        local = dt.datetime.strptime(text, "%Y%m%d")
    else:
        local = dt.datetime.strptime(text.replace(":", ""), "%Y%m%d %H%M%S")
    return from_eastern(local)


def parse_filter_time(text: str) -> dt.time | None:
    """``HHmmSS`` filter time; None when empty."""
    text = text.strip().replace(":", "")
    if not text:
        return None
    return dt.time(int(text[0:2]), int(text[2:4]), int(text[4:6] or 0))


def eastern_wall_ns(ts_ns: "npt.NDArray[np.int64]") -> "npt.NDArray[np.int64]":
    """UTC ns to Eastern wall-clock ns (as if Eastern were UTC), vectorised: one zone lookup per hour."""
    hours = ts_ns // 3_600_000_000_000
    unique, inverse = np.unique(hours, return_inverse=True)
    offsets = np.array(
        [int(to_eastern(int(h) * 3_600_000_000_000).utcoffset().total_seconds()) * 1_000_000_000 for h in unique],  # type: ignore[union-attr]
        dtype=np.int64,
    )
    result: npt.NDArray[np.int64] = ts_ns + offsets[inverse]
    return result


def history_tick_times(ts_ns: "npt.NDArray[np.int64]") -> "npt.NDArray[np.str_]":
    """``YYYY-MM-DD HH:MM:SS.ffffff`` Eastern for many stamps at once (history rows)."""
    local = eastern_wall_ns(ts_ns).astype("datetime64[ns]").astype("datetime64[us]")
    text: npt.NDArray[np.str_] = np.char.replace(np.datetime_as_string(local, unit="us"), "T", " ")
    return text


def price(value: float, precision: int) -> str:
    """A price with the instrument's decimals (IQFeed pads: ``6012.25`` for a 2-decimal contract)."""
    return f"{value:.{precision}f}"
