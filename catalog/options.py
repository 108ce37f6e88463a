"""Option chains into ``OptionChainSnapshot`` data: QuantConnect Lean universe files and CBOE end-of-day files.

Lean option universes (``YYYYMMDD.csv``; header ``#expiry,strike,right,open,high,low,close,volume,
open_interest[,implied_volatility,delta,gamma,vega,theta,rho]``, the row with no expiry is the
underlying's own bar). Index universes carry IV and greeks; futures-option universes carry only
prices, so the importer solves Black's model (zero rates) for the IV of every option with a usable
close and derives delta and gamma from it. Missing open interest stays NaN (never zero).

When is a Lean file known? Its underlying row matches the session *after* the file date for the
futures-option files shipped with the project, and the file date itself for the index files, so
the importer stamps each file, by default, at the close of the next weekday after its date
(``as_of="next-close"``): possibly a day late, never early. ``as_of="close"`` stamps at the file
date's close for sources known to be end-of-day.

CBOE end-of-day files (the DataShop "Option EOD Summary" layout: ``underlying_symbol, quote_date,
root, expiration, strike, option_type, ..., implied_volatility_1545, delta_1545, gamma_1545, ...,
open_interest``) give one snapshot per quote date, stamped 15:45 ET, the time of their greeks.

Expiries are taken at 16:00 New York time of the expiry date. A file without an underlying price
gets the forward implied by put-call parity at its nearest expiry (``implied_underlying``).
"""

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from nautilus_trader.model.identifiers import InstrumentId

from catalog.store import StagedCatalog
from catalog.types import OptionChainSnapshot
from mia_strategies.errors import DataValidationError
from mia_strategies.features.options import black_delta
from mia_strategies.features.options import black_gamma
from mia_strategies.features.options import implied_vol


AsOf = Literal["close", "next-close"]
_NY = ZoneInfo("America/New_York")
_CHICAGO = ZoneInfo("America/Chicago")
_YEAR_NS = 365.0 * 86_400 * 1e9
_FILE_RE = re.compile(r"^(\d{8})\.csv$")
_LEAN_BASE = ("expiry", "strike", "right", "open", "high", "low", "close", "volume", "open_interest")
_CBOE_REQUIRED = ("quote_date", "expiration", "strike", "option_type")
_MAX_ERRORS = 5


@dataclass(frozen=True)
class _Rows:
    """One chain's rows as aligned arrays (before greeks are completed)."""

    expiries_ns: np.ndarray
    strikes: np.ndarray
    rights: np.ndarray
    prices: np.ndarray
    ivs: np.ndarray
    deltas: np.ndarray
    gammas: np.ndarray
    open_interest: np.ndarray
    volumes: np.ndarray


def _ns(value: dt.datetime) -> int:
    return int(pd.Timestamp(value).tz_convert("UTC").value)


def _expiry_ns(text: str) -> int:
    day = dt.datetime.strptime(text.strip()[:10].replace("-", ""), "%Y%m%d").date()
    return _ns(dt.datetime.combine(day, dt.time(16, 0), tzinfo=_NY))


def _close_of(day: dt.date, futures: bool) -> int:
    """The close of ``day``: 16:00 CT for futures (options) chains, 16:15 ET for index chains."""
    if futures:
        return _ns(dt.datetime.combine(day, dt.time(16, 0), tzinfo=_CHICAGO))
    return _ns(dt.datetime.combine(day, dt.time(16, 15), tzinfo=_NY))


def _next_weekday(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _float(text: str) -> float:
    text = (text or "").strip()
    if not text:
        return math.nan
    value = float(text)
    return value if math.isfinite(value) else math.nan


def _complete_greeks(rows: _Rows, underlying: float, ts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IV from prices where missing (Black, zero rates), then delta and gamma from IV where missing."""
    years = (rows.expiries_ns - ts) / _YEAR_NS
    ivs = rows.ivs.copy()
    if underlying > 0:
        for i in np.flatnonzero(~np.isfinite(ivs)):
            ivs[i] = implied_vol(
                float(rows.prices[i]), underlying, float(rows.strikes[i]), float(years[i]), int(rows.rights[i])
            )
    forward = np.full(len(ivs), underlying)
    deltas = np.where(
        np.isfinite(rows.deltas), rows.deltas, black_delta(forward, rows.strikes, ivs, years, rows.rights)
    )
    gammas = np.where(np.isfinite(rows.gammas), rows.gammas, black_gamma(forward, rows.strikes, ivs, years))
    return ivs, deltas, gammas


def implied_underlying(rows: _Rows, ts: int, min_days: float = 1.0) -> float:
    """Forward implied by put-call parity, ``F = K + C - P``, at the nearest expiry of at least ``min_days``.

    The median over the five strikes whose call and put prices are closest (the ones nearest the
    money); NaN when no strike has both prices. Used when a file carries no underlying price.
    """
    days = (rows.expiries_ns - ts) / (_YEAR_NS / 365.0)
    for expiry in np.unique(rows.expiries_ns[days >= min_days]):
        sel = (rows.expiries_ns == expiry) & np.isfinite(rows.prices) & (rows.prices > 0)
        calls = {
            float(k): float(p)
            for k, p, r in zip(rows.strikes[sel], rows.prices[sel], rows.rights[sel], strict=True)
            if r > 0
        }
        puts = {
            float(k): float(p)
            for k, p, r in zip(rows.strikes[sel], rows.prices[sel], rows.rights[sel], strict=True)
            if r < 0
        }
        pairs = sorted((abs(calls[k] - puts[k]), k + calls[k] - puts[k]) for k in calls.keys() & puts.keys())
        if pairs:
            return float(np.median([f for _, f in pairs[:5]]))
    return math.nan


def _snapshot(instrument_id: InstrumentId, underlying: float, source: str, rows: _Rows, ts: int) -> OptionChainSnapshot:
    if not underlying > 0:
        underlying = implied_underlying(rows, ts)
        source += "+parity-underlying"
    ivs, deltas, gammas = _complete_greeks(rows, underlying, ts)
    return OptionChainSnapshot(
        instrument_id=instrument_id,
        underlying_price=underlying,
        source=source,
        expiries_ns=rows.expiries_ns.astype(np.float64),
        strikes=rows.strikes,
        rights=rows.rights,
        implied_vols=ivs,
        deltas=deltas,
        gammas=gammas,
        open_interest=rows.open_interest,
        volumes=rows.volumes,
        ts_event=ts,
        ts_init=ts,
    )


# -- Lean universes -----------------------------------------------------------------------------


def load_lean_option_universe(
    path: Path | str,
    underlying: InstrumentId,
    *,
    as_of: AsOf = "next-close",
) -> OptionChainSnapshot:
    """One Lean universe file as a snapshot of ``underlying``'s chain (see the module docstring)."""
    path = Path(path)
    match = _FILE_RE.match(path.name)
    if match is None:
        raise DataValidationError(f"{path}: a Lean universe file is named YYYYMMDD.csv")
    day = dt.datetime.strptime(match.group(1), "%Y%m%d").date()
    futures = underlying.venue.value == "GLBX"
    stamp_day = _next_weekday(day) if as_of == "next-close" else day
    ts = _close_of(stamp_day, futures)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    lines = text.splitlines()
    if not lines:
        raise DataValidationError(f"{path}: empty file")
    header = [h.strip().lstrip("#").lower() for h in lines[0].split(",")]
    if tuple(header[: len(_LEAN_BASE)]) != _LEAN_BASE:
        raise DataValidationError(f"{path}: header must start with #{','.join(_LEAN_BASE)}")
    greek_cols: dict[str, int] = {n: header.index(n) for n in ("implied_volatility", "delta", "gamma") if n in header}
    underlying_px = math.nan
    cols: dict[str, list[float]] = {k: [] for k in ("e", "k", "r", "p", "iv", "d", "g", "oi", "v")}
    errors: list[str] = []
    for line_no, fields in enumerate(csv.reader(io.StringIO("\n".join(lines[1:]))), start=2):
        if not fields or not any(f.strip() for f in fields):
            continue
        try:
            if not fields[0].strip():
                underlying_px = _float(fields[6])
                continue
            right = fields[2].strip().upper()
            if right not in ("C", "P"):
                raise ValueError(f"right must be C or P, was {fields[2]!r}")
            cols["e"].append(float(_expiry_ns(fields[0])))
            cols["k"].append(_float(fields[1]))
            cols["r"].append(1.0 if right == "C" else -1.0)
            cols["p"].append(_float(fields[6]))
            cols["v"].append(_float(fields[7]))
            cols["oi"].append(_float(fields[8]) if len(fields) > 8 else math.nan)
            for key, name in (("iv", "implied_volatility"), ("d", "delta"), ("g", "gamma")):
                j = greek_cols.get(name)
                cols[key].append(_float(fields[j]) if j is not None and j < len(fields) else math.nan)
        except (ValueError, IndexError) as exc:
            errors.append(f"line {line_no}: {exc}")
    if errors:
        raise DataValidationError(f"{path}: " + "; ".join(errors[:_MAX_ERRORS]) + "; nothing loaded")
    if not cols["k"]:
        raise DataValidationError(f"{path}: no option rows")
    rows = _Rows(*(np.array(cols[k], dtype=np.float64) for k in ("e", "k", "r", "p", "iv", "d", "g", "oi", "v")))
    return _snapshot(underlying, underlying_px, "lean-universe", rows, ts)


def load_lean_option_universes(
    folder: Path | str,
    underlying: InstrumentId,
    *,
    as_of: AsOf = "next-close",
) -> list[OptionChainSnapshot]:
    """Every ``YYYYMMDD.csv`` of a Lean universe folder, in date order."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if _FILE_RE.match(p.name)) if folder.is_dir() else []
    if not files:
        raise DataValidationError(f"{folder}: no Lean universe files (YYYYMMDD.csv) here")
    return [load_lean_option_universe(p, underlying, as_of=as_of) for p in files]


# -- CBOE end-of-day --------------------------------------------------------------------------------


def load_cboe_option_eod(path: Path | str, underlying: InstrumentId) -> list[OptionChainSnapshot]:
    """A CBOE EOD summary file: one snapshot per quote date, stamped 15:45 ET (see the module docstring)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataValidationError(f"{path}: not a readable CSV ({exc.__class__.__name__})") from None
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = [c for c in _CBOE_REQUIRED if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{path}: missing columns {', '.join(missing)} (CBOE option EOD summary layout)")
    out: list[OptionChainSnapshot] = []
    for quote_date, group in frame.groupby("quote_date", sort=True):
        try:
            day = dt.date.fromisoformat(str(quote_date).strip()[:10])
            ts = _ns(dt.datetime.combine(day, dt.time(15, 45), tzinfo=_NY))
            out.append(_cboe_snapshot(group, underlying, ts))
        except ValueError as exc:
            raise DataValidationError(f"{path}: quote_date {quote_date}: {exc}; nothing loaded") from None
    if not out:
        raise DataValidationError(f"{path}: no option rows")
    return out


def _col(group: pd.DataFrame, name: str) -> np.ndarray:
    if name not in group.columns:
        return np.full(len(group), np.nan)
    return np.array([_float(x) for x in group[name]], dtype=np.float64)


def _cboe_snapshot(group: pd.DataFrame, underlying: InstrumentId, ts: int) -> OptionChainSnapshot:
    rights_raw = group["option_type"].str.strip().str.upper()
    if not rights_raw.isin(["C", "P"]).all():
        raise ValueError("option_type must be C or P")
    under = _col(group, "active_underlying_price_1545")
    if not np.isfinite(under).any():
        bid, ask = _col(group, "underlying_bid_1545"), _col(group, "underlying_ask_1545")
        under = 0.5 * (bid + ask)
    finite = under[np.isfinite(under)]
    underlying_px = float(np.median(finite)) if len(finite) else math.nan
    bid, ask = _col(group, "bid_1545"), _col(group, "ask_1545")
    mid = np.where(np.isfinite(bid) & np.isfinite(ask) & (ask > 0), 0.5 * (bid + ask), _col(group, "close"))
    rows = _Rows(
        expiries_ns=np.array([float(_expiry_ns(x)) for x in group["expiration"]]),
        strikes=_col(group, "strike"),
        rights=np.where(rights_raw.to_numpy() == "C", 1.0, -1.0),
        prices=mid,
        ivs=np.where(_col(group, "implied_volatility_1545") > 0, _col(group, "implied_volatility_1545"), np.nan),
        deltas=_col(group, "delta_1545"),
        gammas=_col(group, "gamma_1545"),
        open_interest=_col(group, "open_interest"),
        volumes=_col(group, "trade_volume"),
    )
    return _snapshot(underlying, underlying_px, "cboe-eod", rows, ts)


# -- catalog ------------------------------------------------------------------------------------------


def ingest_option_chains(snapshots: Iterable[OptionChainSnapshot], catalog_path: Path) -> int:
    """Write snapshots into the catalog atomically (one file per underlying); return the count."""
    items = sorted(snapshots, key=lambda s: (s.instrument_id.value, s.ts_init))
    if not items:
        raise DataValidationError("no option chain snapshots to write")
    with StagedCatalog(catalog_path) as staged:
        by_id: dict[str, list[OptionChainSnapshot]] = {}
        for snap in items:
            by_id.setdefault(snap.instrument_id.value, []).append(snap)
        for group in by_id.values():
            staged.catalog.write_data(group)
        staged.commit()
    return len(items)
