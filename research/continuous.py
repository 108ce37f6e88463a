"""Back-adjusted continuous futures series for research (never for execution).

Each bar is taken from the contract the roll calendar makes active at its timestamp. At each roll
the older history is shifted by the gap between the new and the old contract at the roll
(``difference``: add new − old, so point moves and P&L in points are preserved) or scaled by their
ratio (``ratio``: percentage returns are preserved). The last segment is never adjusted, so the
series ends at real, tradable prices. The gap is measured from the last close of each contract at
or before the roll time, so no price after the roll leaks into earlier values.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from nautilus_trader.model.data import BarType
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from mia_strategies.config import MarketsConfig
from mia_strategies.errors import CatalogError
from mia_strategies.instruments import contract_windows
from mia_strategies.instruments import parse_contract_symbol


PRICE_COLUMNS = ("open", "high", "low", "close")


def back_adjusted(
    bars: Mapping[str, pd.DataFrame],
    root: str,
    markets: MarketsConfig,
    method: Literal["difference", "ratio"] = "difference",
) -> pd.DataFrame:
    """Stitch per-contract bars (symbol → OHLCV frame on a UTC index) into one adjusted series.

    Returns the stitched frame with the original OHLCV columns adjusted, plus ``contract`` (the
    source contract) and ``adjustment`` (added points, or the multiplier for ``ratio``).
    """
    frames = {sym: df.sort_index() for sym, df in bars.items() if not df.empty}
    if not frames:
        return pd.DataFrame(columns=[*PRICE_COLUMNS, "volume", "contract", "adjustment"])
    start = min(int(df.index[0].value) for df in frames.values())
    end = max(int(df.index[-1].value) for df in frames.values())
    pieces: list[pd.DataFrame] = []
    gaps: list[float] = []
    previous: pd.DataFrame | None = None
    for window in contract_windows(root, start, end, markets):
        df = frames.get(window.contract.symbol)
        if df is None:
            continue
        lo = pd.Timestamp(window.active_from_ns, tz="UTC")
        hi = pd.Timestamp(window.active_to_ns, tz="UTC")
        segment = df[(df.index >= lo) & (df.index < hi)].copy()
        if segment.empty:
            continue
        segment["contract"] = window.contract.symbol
        if previous is not None and pieces:
            gaps.append(_roll_gap(previous, df, lo, method))
        pieces.append(segment)
        previous = df
    out_parts: list[pd.DataFrame] = []
    for i, segment in enumerate(pieces):
        later = gaps[i:]
        if method == "difference":
            adjustment = float(np.sum(later)) if later else 0.0
            for col in PRICE_COLUMNS:
                segment[col] = segment[col] + adjustment
        else:
            adjustment = float(np.prod(later)) if later else 1.0
            for col in PRICE_COLUMNS:
                segment[col] = segment[col] * adjustment
        segment["adjustment"] = adjustment
        out_parts.append(segment)
    return pd.concat(out_parts).sort_index()


def _roll_gap(old: pd.DataFrame, new: pd.DataFrame, roll_at: pd.Timestamp, method: str) -> float:
    """New − old (or new / old) from each contract's last close at or before the roll."""
    old_close = old.loc[old.index <= roll_at, "close"]
    new_close = new.loc[new.index <= roll_at, "close"]
    if old_close.empty or new_close.empty:
        # No overlap: compare the old contract's last close with the new one's first close.
        old_px = float(old["close"].iloc[-1]) if old_close.empty else float(old_close.iloc[-1])
        new_px = float(new["close"].iloc[0]) if new_close.empty else float(new_close.iloc[-1])
    else:
        old_px, new_px = float(old_close.iloc[-1]), float(new_close.iloc[-1])
    return new_px - old_px if method == "difference" else new_px / old_px


def contract_bars(catalog_path: Path, instrument_id: str, minutes: int = 1) -> pd.DataFrame:
    """OHLCV bars stamped at their close: external 1-minute bars if present, else built from trades."""
    catalog = ParquetDataCatalog(str(catalog_path))
    bar_type = BarType.from_str(f"{instrument_id}-1-MINUTE-LAST-EXTERNAL")
    bars = catalog.bars(bar_types=[str(bar_type)])
    if bars:
        frame = pd.DataFrame(
            {
                "open": [b.open.as_double() for b in bars],
                "high": [b.high.as_double() for b in bars],
                "low": [b.low.as_double() for b in bars],
                "close": [b.close.as_double() for b in bars],
                "volume": [b.volume.as_double() for b in bars],
            },
            index=pd.to_datetime([b.ts_event for b in bars], utc=True),
        )
        if minutes == 1:
            return frame
        return _resample(frame, minutes)
    trades = catalog.trade_ticks(instrument_ids=[instrument_id])
    if not trades:
        return pd.DataFrame(columns=[*PRICE_COLUMNS, "volume"])
    ticks = pd.DataFrame(
        {"price": [t.price.as_double() for t in trades], "size": [t.size.as_double() for t in trades]},
        index=pd.to_datetime([t.ts_event for t in trades], utc=True),
    )
    ohlc = ticks["price"].resample(f"{minutes}min", label="right", closed="left").ohlc()
    ohlc["volume"] = ticks["size"].resample(f"{minutes}min", label="right", closed="left").sum()
    return ohlc.dropna()


def _resample(frame: pd.DataFrame, minutes: int) -> pd.DataFrame:
    rule = f"{minutes}min"
    agg = frame.resample(rule, label="right", closed="right").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"},
    )
    return agg.dropna()


def load_continuous(
    catalog_path: Path,
    root: str,
    markets: MarketsConfig,
    minutes: int = 1,
    method: Literal["difference", "ratio"] = "difference",
) -> pd.DataFrame:
    """Back-adjusted continuous bars of ``root`` from every contract of it in the catalog."""
    catalog = ParquetDataCatalog(str(catalog_path))
    frames: dict[str, pd.DataFrame] = {}
    for instrument in catalog.instruments():
        symbol = instrument.id.symbol.value
        try:
            ref = parse_contract_symbol(symbol, markets)
        except Exception:
            continue
        if ref.root == root:
            frames[symbol] = contract_bars(catalog_path, instrument.id.value, minutes)
    if not frames:
        raise CatalogError(f"catalog {catalog_path} has no {root} contracts for a continuous series")
    return back_adjusted(frames, root, markets, method)
