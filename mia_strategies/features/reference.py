"""Reference series for the cross-market features: the CBOE VIX daily file and Lean equity minute bars (SPY).

Both become EXTERNAL bars of their own instruments, stamped at their close so nothing is seen
before it happened: a VIX daily close at 16:15 New York time of its date (``VIX.CBOE-1-DAY-LAST-
EXTERNAL``), a Lean minute bar (column 0 = its open in ms after midnight New York time, prices x
10,000) at its open + 1 minute (``SPY.ARCA-1-MINUTE-LAST-EXTERNAL``). A backtest that replays them
needs a data-only venue for ``CBOE``/``ARCA`` (``research.features.reference_venue_configs``).
"""

import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Symbol
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.instruments import IndexInstrument
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.persistence.funcs import class_to_filename

from catalog.store import StagedCatalog
from catalog.store import file_intervals
from mia_strategies.errors import DataValidationError


_NY = ZoneInfo("America/New_York")
_ZIP_RE = re.compile(r"^(\d{8})_trade\.zip$")
VIX_BAR_TYPE = "VIX.CBOE-1-DAY-LAST-EXTERNAL"


def index_instrument(symbol: str, venue: str = "CBOE") -> IndexInstrument:
    """A cash index (VIX, VIX3M, VIX9D, SPX) quoted to the cent."""
    return IndexInstrument(
        instrument_id=InstrumentId.from_str(f"{symbol}.{venue}"),
        raw_symbol=Symbol(symbol),
        currency=USD,
        price_precision=2,
        size_precision=0,
        price_increment=Price.from_str("0.01"),
        size_increment=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
    )


def equity_instrument(symbol: str, venue: str = "ARCA") -> Equity:
    """An exchange-traded fund or share quoted to the cent (SPY, QQQ)."""
    return Equity(
        instrument_id=InstrumentId.from_str(f"{symbol}.{venue}"),
        raw_symbol=Symbol(symbol),
        currency=USD,
        price_precision=2,
        price_increment=Price.from_str("0.01"),
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
    )


def _bars(instrument: Instrument, bar_type: BarType, frame: pd.DataFrame) -> list[Bar]:
    """Bars from a frame with ts (ns), open, high, low, close, volume; validated, sorted."""
    bad = (frame[["open", "high", "low", "close"]] <= 0).any(axis=1) | frame[
        ["open", "high", "low", "close", "volume"]
    ].isna().any(axis=1)
    bad |= (frame["low"] > frame[["open", "close"]].min(axis=1)) | (
        frame["high"] < frame[["open", "close"]].max(axis=1)
    )
    if bad.any():
        first = frame[bad].iloc[0]
        raise DataValidationError(
            f"{instrument.id}: {int(bad.sum())} bars with missing, non-positive or inconsistent OHLC "
            f"(first at {pd.Timestamp(int(first['ts']), tz='UTC')}); nothing written",
        )
    frame = frame.sort_values("ts", kind="stable")
    if frame["ts"].duplicated().any():
        raise DataValidationError(f"{instrument.id}: two bars share a timestamp; nothing written")
    precision = instrument.price_precision
    ts = frame["ts"].to_numpy(dtype=np.int64).tolist()
    columns = [frame[c].to_numpy(dtype=np.float64).tolist() for c in ("open", "high", "low", "close", "volume")]
    return [
        Bar(
            bar_type,
            Price(round(o, precision), precision),
            Price(round(h, precision), precision),
            Price(round(lo, precision), precision),
            Price(round(c, precision), precision),
            Quantity(Decimal(int(v)), 0),
            t,
            t,
        )
        for t, o, h, lo, c, v in zip(ts, *columns, strict=True)
    ]


@dataclass(frozen=True)
class ReferenceSeries:
    """A reference instrument, its bars, and how many source rows had to be repaired."""

    instrument: Instrument
    bars: list[Bar]
    repaired: int = 0


def load_vix_daily(path: Path | str, symbol: str = "VIX") -> ReferenceSeries:
    """The CBOE daily file (``DATE,OPEN,HIGH,LOW,CLOSE``) as daily bars stamped 16:15 New York time.

    Some early rows (1992-2006) have an open outside their own high-low range; the features use
    the close only, so high and low are widened to include open and close and the count is reported.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path}: not a readable CSV ({exc.__class__.__name__})") from None
    frame.columns = [c.strip().lower() for c in frame.columns]
    if not {"date", "open", "high", "low", "close"} <= set(frame.columns):
        raise DataValidationError(f"{path}: expected the header DATE,OPEN,HIGH,LOW,CLOSE")
    try:
        days = pd.to_datetime(frame["date"], format="%Y-%m-%d")
    except ValueError as exc:
        raise DataValidationError(f"{path}: bad DATE ({exc})") from None
    close_time = [pd.Timestamp(dt.datetime.combine(d.date(), dt.time(16, 15), tzinfo=_NY)).value for d in days]
    data = pd.DataFrame(
        {
            "ts": close_time,
            "open": frame["open"].astype(float),
            "high": frame["high"].astype(float),
            "low": frame["low"].astype(float),
            "close": frame["close"].astype(float),
            "volume": 0,
        },
    )
    body = data[["open", "close"]]
    repaired = int(((data["high"] < body.max(axis=1)) | (data["low"] > body.min(axis=1))).sum())
    data["high"] = data[["high", "open", "close"]].max(axis=1)
    data["low"] = data[["low", "open", "close"]].min(axis=1)
    instrument = index_instrument(symbol)
    bars = _bars(instrument, BarType.from_str(f"{instrument.id}-1-DAY-LAST-EXTERNAL"), data)
    return ReferenceSeries(instrument, bars, repaired)


def load_lean_equity_minute(folder: Path | str, symbol: str = "SPY", venue: str = "ARCA") -> ReferenceSeries:
    """Lean equity minute trade zips (``YYYYMMDD_trade.zip``) as 1-minute bars stamped at their close."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if _ZIP_RE.match(p.name)) if folder.is_dir() else []
    if not files:
        raise DataValidationError(f"{folder}: no Lean minute files (YYYYMMDD_trade.zip)")
    frames = []
    for path in files:
        day = dt.datetime.strptime(path.name[:8], "%Y%m%d").date()
        midnight = pd.Timestamp(dt.datetime.combine(day, dt.time(0, 0), tzinfo=_NY)).value
        try:
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.namelist() if m.endswith(".csv")]
                raw = zf.read(members[0]) if members else b""
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataValidationError(f"{path}: not a readable zip ({exc})") from None
        if not raw:
            continue
        frame = pd.read_csv(io.BytesIO(raw), header=None)
        if frame.shape[1] != 6:
            raise DataValidationError(f"{path}: {frame.shape[1]} columns, a Lean trade file has 6")
        frames.append(
            pd.DataFrame(
                {
                    "ts": midnight + (frame[0].astype("int64") + 60_000) * 1_000_000,
                    "open": frame[1] / 10_000.0,
                    "high": frame[2] / 10_000.0,
                    "low": frame[3] / 10_000.0,
                    "close": frame[4] / 10_000.0,
                    "volume": frame[5],
                },
            ),
        )
    instrument = equity_instrument(symbol, venue)
    data = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["ts", "open", "high", "low", "close", "volume"])
    )
    return ReferenceSeries(
        instrument, _bars(instrument, BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL"), data)
    )


def ingest_reference_bars(
    series: ReferenceSeries, catalog_path: Path, start: str | None = None, end: str | None = None
) -> int:
    """Write the instrument (if new) and its bars (optionally clipped to ``[start, end]``) atomically."""
    instrument, bars = series.instrument, series.bars
    lo = pd.Timestamp(start, tz="UTC").value if start else None
    hi = pd.Timestamp(end, tz="UTC").value if end else None
    kept = [b for b in bars if (lo is None or b.ts_init >= lo) and (hi is None or b.ts_init <= hi)]
    if not kept:
        raise DataValidationError(f"{instrument.id}: no bars in the requested range, nothing written")
    known = bool(file_intervals(catalog_path, class_to_filename(type(instrument)), str(instrument.id)))
    with StagedCatalog(catalog_path) as staged:
        if not known:
            staged.catalog.write_data([instrument])
        staged.catalog.write_data(kept)
        staged.commit()
    return len(kept)
