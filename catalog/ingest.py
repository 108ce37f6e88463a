"""``mia ingest csv``: validate a CSV of trades, quotes or bars completely, then write it atomically.

Every row is checked before anything is written, because a catalog with a few silently wrong
prices poisons every backtest that reads it. A file with bad rows raises one
:class:`DataValidationError` naming the first bad lines; nothing reaches the catalog. Good files
are written through a staging catalog beside the target (see :class:`catalog.store.StagedCatalog`).

Conventions:
- Naive timestamps are local times in ``CsvSpec.timezone`` and are converted to UTC with the zone
  database (DST included); local times that are ambiguous (the repeated hour in autumn) or do not
  exist (the skipped hour in spring) are bad rows. Aware timestamps are converted to UTC.
- Quotes need ``bid < ask`` strictly: a locked or crossed book is not a price anyone could trade
  at in a backtest that fills from quotes.
- Bars are stored stamped at their close (nautilus ``ts_event = ts_init = close``);
  ``bar_timestamp="open"`` shifts the file's times by ``bar_minutes``.
"""

import warnings
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pandas as pd
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.instruments import FuturesContract
from nautilus_trader.persistence.funcs import class_to_filename
from nautilus_trader.persistence.wranglers import BarDataWrangler
from nautilus_trader.persistence.wranglers import QuoteTickDataWrangler

from catalog.store import StagedCatalog
from catalog.store import file_intervals
from catalog.store import format_ns
from catalog.store import intervals_overlap
from mia_strategies.config import MarketsConfig
from mia_strategies.errors import DataValidationError
from mia_strategies.instruments import build_futures_contract
from mia_strategies.instruments import parse_contract_symbol


Kind = Literal["trades", "quotes", "bars"]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Our field names per kind, in the order they are reported.
FIELDS: dict[str, tuple[str, ...]] = {
    "trades": ("ts", "price", "size", "side", "trade_id"),
    "quotes": ("ts", "bid", "ask", "bid_size", "ask_size"),
    "bars": ("ts", "open", "high", "low", "close", "volume"),
}
#: Fields that may be absent from the file unless the mapping names them explicitly.
OPTIONAL_FIELDS: dict[str, frozenset[str]] = {"trades": frozenset({"side", "trade_id"})}

#: Catalog folder names (``data/<type>/``) of what we write.
QUOTE_TYPE = class_to_filename(QuoteTick)
TRADE_TYPE = class_to_filename(TradeTick)
BAR_TYPE = class_to_filename(Bar)
INSTRUMENT_TYPE = class_to_filename(FuturesContract)
DATA_TYPES: dict[str, str] = {"trades": TRADE_TYPE, "quotes": QUOTE_TYPE, "bars": BAR_TYPE}

_UNIX_UNITS = {"unix_s": 9, "unix_ms": 6, "unix_us": 3, "unix_ns": 0}
_SIDES: dict[str, int] = {
    "BUY": int(AggressorSide.BUYER),
    "B": int(AggressorSide.BUYER),
    "1": int(AggressorSide.BUYER),
    "+1": int(AggressorSide.BUYER),
    "BUYER": int(AggressorSide.BUYER),
    "SELL": int(AggressorSide.SELLER),
    "S": int(AggressorSide.SELLER),
    "-1": int(AggressorSide.SELLER),
    "SELLER": int(AggressorSide.SELLER),
    "": int(AggressorSide.NO_AGGRESSOR),
    "NONE": int(AggressorSide.NO_AGGRESSOR),
    "NO_AGGRESSOR": int(AggressorSide.NO_AGGRESSOR),
}
_GRID_TOLERANCE = 1e-6  # in ticks: accepts float noise such as 6850.2500000001, never 6850.10
_NS_PER_MINUTE = 60_000_000_000
_MAX_TRADE_ID = 36


@dataclass(frozen=True)
class CsvSpec:
    """How to read one CSV: what it holds, for which contract, and how its columns and times look.

    ``columns`` maps our field names (``FIELDS[kind]``) to the file's column names; unmapped fields
    use their own name (matched case-insensitively when unambiguous). For trades, ``side`` and
    ``trade_id`` may be absent (NO_AGGRESSOR, generated ids) unless mapped explicitly.
    ``timezone`` applies to naive stamps only. ``ts_format`` is a strptime format, ``unix_s`` /
    ``unix_ms`` / ``unix_us`` / ``unix_ns`` (UTC epoch, exact), or None for ISO 8601 (any precision,
    with or without offsets) falling back to pandas' own guess. ``bar_timestamp`` says whether
    the file stamps bars at their open or close; the catalog always gets the close.
    """

    kind: Kind
    instrument: str
    columns: Mapping[str, str] = field(default_factory=dict)
    timezone: str = "UTC"
    ts_format: str | None = None
    bar_minutes: int = 1
    bar_timestamp: Literal["open", "close"] = "open"
    delimiter: str = ","


@dataclass(frozen=True)
class BadRow:
    """A rejected row: 1-based line number in the file (the header is line 1) and why."""

    line: int
    reason: str


@dataclass(frozen=True)
class IngestResult:
    """What one ingestion wrote."""

    instrument_id: str
    kind: str
    rows: int
    start_ns: int
    end_ns: int


class CsvValidationError(DataValidationError):
    """Bad rows in a file; ``bad_rows`` holds the reported ones, ``bad_count`` all of them."""

    def __init__(self, message: str, bad_rows: list[BadRow], bad_count: int) -> None:
        super().__init__(message)
        self.bad_rows = bad_rows
        self.bad_count = bad_count


# -- row checks shared with the Lean importer ---------------------------------------------------


class RowChecks:
    """Collect vectorised row checks; format messages only for the rows that get reported.

    Each check is a boolean mask over the rows plus a function that explains one flagged row, so a
    million-row file with one bad price costs one numpy pass, not a million strings.
    """

    def __init__(self, n_rows: int) -> None:
        self.n_rows = n_rows
        self._checks: list[tuple[BoolArray, Callable[[int], str]]] = []

    def add(self, mask: BoolArray | pd.Series, explain: Callable[[int], str]) -> None:
        """Flag the rows where ``mask`` is true; ``explain(i)`` says why for row ``i``."""
        arr = np.asarray(mask, dtype=bool)
        if arr.any():
            self._checks.append((arr, explain))

    def bad_mask(self) -> BoolArray:
        """Rows flagged by any check."""
        bad = np.zeros(self.n_rows, dtype=bool)
        for mask, _ in self._checks:
            bad |= mask
        return bad

    def report(self, lines: IntArray, limit: int) -> tuple[list[BadRow], int]:
        """The first ``limit`` bad rows (all their reasons joined) and the number of bad rows."""
        bad_idx = np.flatnonzero(self.bad_mask())
        rows = [
            BadRow(int(lines[i]), ", ".join(explain(int(i)) for mask, explain in self._checks if mask[i]))
            for i in bad_idx[: max(limit, 0)]
        ]
        return rows, len(bad_idx)


def bad_rows_message(source: str, rows: list[BadRow], count: int, where: str = "line") -> str:
    """One line: ``SOURCE: N bad rows, nothing written: line 5: why; line 9: why; ... and K more``."""
    plural = "row" if count == 1 else "rows"
    shown = "; ".join(f"{where} {r.line}: {r.reason}" if where else r.reason for r in rows)
    more = f"; ... and {count - len(rows)} more" if count > len(rows) else ""
    text = f"{source}: {count} bad {plural}, nothing written: {shown}{more}"
    return " ".join(text.split())  # one line whatever the file held


def off_grid(values: FloatArray, step: float) -> BoolArray:
    """True where a finite value is not a whole number of ``step`` (within float noise)."""
    with np.errstate(invalid="ignore"):
        ratio = values / step
        result: BoolArray = np.abs(ratio - np.rint(ratio)) > _GRID_TOLERANCE
    return result & np.isfinite(values)


def snap(values: FloatArray, step: float) -> FloatArray:
    """Values moved onto the grid exactly (removes float noise before building nautilus Prices)."""
    result: FloatArray = np.rint(values / step) * step
    return result


def ohlc_inconsistent(o: FloatArray, h: FloatArray, low: FloatArray, c: FloatArray) -> BoolArray:
    """True where low <= open, close <= high does not hold (NaN rows are left to other checks)."""
    with np.errstate(invalid="ignore"):
        bad: BoolArray = (low > o) | (low > c) | (low > h) | (h < o) | (h < c)
    return bad


# -- parsing --------------------------------------------------------------------------------------


def _fail(source: str, problem: str) -> DataValidationError:
    return DataValidationError(" ".join(f"{source}: {problem}".split()))


def _check_spec(spec: CsvSpec, source: str) -> None:
    if spec.kind not in FIELDS:
        raise _fail(source, f"unknown kind {spec.kind!r}: use trades, quotes or bars")
    unknown = sorted(set(spec.columns) - set(FIELDS[spec.kind]))
    if unknown:
        raise _fail(
            source,
            f"unknown field(s) {', '.join(unknown)} in the column mapping for {spec.kind}: "
            f"fields are {', '.join(FIELDS[spec.kind])}",
        )
    if spec.bar_minutes < 1 or spec.bar_minutes > 1440:
        raise _fail(source, f"bar_minutes must be 1..1440, was {spec.bar_minutes}")
    if spec.bar_timestamp not in ("open", "close"):
        raise _fail(source, f"bar_timestamp must be open or close, was {spec.bar_timestamp!r}")
    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(source, f"unknown time zone {spec.timezone!r}: use an IANA name such as America/Chicago") from None
    if len(spec.delimiter) != 1:
        raise _fail(source, f"delimiter must be one character, was {spec.delimiter!r}")


def _read_csv(path: Path, spec: CsvSpec) -> pd.DataFrame:
    """All cells as stripped strings; index = 0-based data row (line = index + 2); blank lines dropped."""
    source = path.name
    if not path.is_file():
        raise _fail(str(path), "file not found")
    try:
        df = pd.read_csv(
            path,
            sep=spec.delimiter,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError:
        raise _fail(source, "file is empty, nothing written") from None
    except pd.errors.ParserError as exc:
        raise _fail(source, f"not a valid CSV ({str(exc).strip()}), nothing written") from None
    except UnicodeDecodeError:
        raise _fail(source, "not UTF-8 text, nothing written") from None
    df.columns = [str(c).strip() for c in df.columns]
    df = df.apply(lambda col: col.str.strip())
    blank = (df == "").all(axis=1)
    df = df[~blank]
    if df.empty:
        raise _fail(source, "no data rows (only a header), nothing written")
    return df


def _resolve_columns(df: pd.DataFrame, spec: CsvSpec, source: str) -> dict[str, str]:
    """Our field -> the file's column; optional fields absent from the file are left out."""
    by_lower: dict[str, list[str]] = {}
    for col in df.columns:
        by_lower.setdefault(col.lower(), []).append(col)
    resolved: dict[str, str] = {}
    missing: list[str] = []
    for name in FIELDS[spec.kind]:
        wanted = spec.columns.get(name, name)
        if wanted in df.columns:
            resolved[name] = wanted
        elif len(by_lower.get(wanted.lower(), [])) == 1:
            resolved[name] = by_lower[wanted.lower()][0]
        elif name in OPTIONAL_FIELDS.get(spec.kind, frozenset()) and name not in spec.columns:
            continue
        else:
            missing.append(wanted if wanted == name else f"{wanted} (for {name})")
    if missing:
        raise _fail(
            source,
            f"missing column(s) {', '.join(missing)}; the file has columns {', '.join(df.columns)} "
            "(map each field to one of them, e.g. price=Last)",
        )
    return resolved


def _parse_unix(raw: pd.Series, unit_digits: int) -> tuple[IntArray, BoolArray]:
    """Exact integer nanoseconds from decimal text in seconds/ms/us/ns since the epoch (UTC)."""
    parts = raw.str.extract(r"^(\d{1,19})(?:\.(\d+))?$")
    whole_txt = parts[0]
    frac_txt = parts[1].fillna("")
    ok = whole_txt.notna() & (frac_txt.str.len() <= unit_digits)
    whole = pd.to_numeric(whole_txt.where(ok, "0"), errors="coerce").astype("float64")
    ok &= whole < 9.2e18 / 10**unit_digits
    ints = pd.to_numeric(whole_txt.where(ok, "0")).astype("int64").to_numpy()
    frac = pd.to_numeric(frac_txt.where(ok, "").str.pad(unit_digits, side="right", fillchar="0").replace("", "0"))
    ns = ints * 10**unit_digits + frac.astype("int64").to_numpy()
    return ns.astype(np.int64), ~ok.to_numpy(dtype=bool)


def parse_times(raw: pd.Series, timezone: str, ts_format: str | None) -> tuple[IntArray, list[str | None]]:
    """UTC nanoseconds per row and, per row, None or why its time is bad.

    Naive times are localised in ``timezone`` (ambiguous/nonexistent local times are errors);
    aware times are converted to UTC; ``unix_*`` formats are exact integer arithmetic.
    """
    n = len(raw)
    reasons: list[str | None] = [None] * n
    values = raw.to_numpy(dtype=object)
    if ts_format in _UNIX_UNITS:
        ns, bad = _parse_unix(raw, _UNIX_UNITS[ts_format])
        for i in np.flatnonzero(bad):
            v = values[i]
            reasons[i] = "time is missing" if v == "" else f"cannot parse time {v!r} as {ts_format}"
        return ns, reasons
    parsed = _to_datetimes(raw, ts_format)
    unparsed = parsed.isna().to_numpy()
    ns = np.zeros(n, dtype=np.int64)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):  # every stamp carries the same offset
        aware = ~unparsed
        ns[aware] = _utc_ns(parsed)[aware]
        naive = None
    elif parsed.dtype == object:  # several offsets (-06:00/-05:00 across DST), maybe naive rows too
        aware = np.fromiter((getattr(x, "tzinfo", None) is not None for x in parsed), dtype=bool, count=n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ns[aware] = _utc_ns(pd.to_datetime(parsed.where(aware), utc=True))[aware]
            naive = pd.to_datetime(parsed.where(~aware))
    else:
        aware = np.zeros(n, dtype=bool)
        naive = parsed
    local_bad = np.zeros(n, dtype=bool)
    ambiguous = np.zeros(n, dtype=bool)
    if naive is not None:
        local = naive.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        use = ~aware & ~unparsed
        local_bad = use & local.isna().to_numpy()
        ns[use & ~local_bad] = _utc_ns(local)[use & ~local_bad]
        if local_bad.any():
            earlier = naive.dt.tz_localize(timezone, ambiguous=np.ones(n, dtype=bool), nonexistent="NaT")
            ambiguous = local_bad & earlier.notna().to_numpy()
    fmt = f" with format {ts_format!r}" if ts_format else ""
    for i in np.flatnonzero(unparsed | local_bad):
        v = values[i]
        if v == "":
            reasons[i] = "time is missing"
        elif unparsed[i]:
            reasons[i] = f"cannot parse time {v!r}{fmt}"
        elif ambiguous[i]:
            reasons[i] = f"local time {v} is ambiguous in {timezone} (repeated hour at the DST change)"
        else:
            reasons[i] = f"local time {v} does not exist in {timezone} (skipped hour at the DST change)"
    return ns, reasons


def _to_datetimes(raw: pd.Series, ts_format: str | None) -> pd.Series:
    """Parse with the given format; without one, ISO 8601 (any precision, offsets) else pandas' guess."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if ts_format is not None:
            return pd.to_datetime(raw, format=ts_format, errors="coerce")
        iso = pd.to_datetime(raw, format="ISO8601", errors="coerce")
        if iso.notna().any():
            return iso
        return pd.to_datetime(raw, errors="coerce")


def _utc_ns(stamps: pd.Series) -> IntArray:
    """Nanoseconds since the epoch of a datetime series (UTC if aware); NaT becomes a sentinel."""
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    result: IntArray = stamps.to_numpy(dtype="datetime64[ns]").view(np.int64)
    return result


def _numbers(df: pd.DataFrame, column: str, name: str, checks: RowChecks) -> FloatArray:
    """Float values of one column; empty or non-numeric cells are flagged."""
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    text = raw.to_numpy(dtype=object)
    bad = ~np.isfinite(values)
    checks.add(bad, lambda i: f"{name} is missing" if text[i] == "" else f"{name} {text[i]!r} is not a number")
    return values


def _order_checks(
    ns: IntArray, valid: BoolArray, lines: IntArray, raw: pd.Series, strict: bool, checks: RowChecks
) -> None:
    """Flag rows whose time is earlier than (or, for bars, equal to) the previous valid row's."""
    idx = np.flatnonzero(valid)
    if len(idx) < 2:
        return
    times = ns[idx]
    worse = times[1:] <= times[:-1] if strict else times[1:] < times[:-1]
    prev_of = dict(zip(idx[1:][worse].tolist(), idx[:-1][worse].tolist(), strict=True))
    mask = np.zeros(len(ns), dtype=bool)
    mask[idx[1:][worse]] = True
    text = raw.to_numpy(dtype=object)
    what = "is not after" if strict else "is earlier than"
    checks.add(mask, lambda i: f"time {text[i]} {what} line {lines[prev_of[i]]} ({text[prev_of[i]]})")


def _price_checks(
    values: FloatArray,
    text: npt.NDArray[np.object_],
    name: str,
    tick: float,
    tick_txt: str,
    checks: RowChecks,
) -> None:
    checks.add(off_grid(values, tick), lambda i: f"{name} {text[i]} is not on the {tick_txt} tick grid")
    with np.errstate(invalid="ignore"):
        checks.add(values <= 0, lambda i: f"{name} {text[i]} is not > 0")


def _size_checks(
    values: FloatArray,
    text: npt.NDArray[np.object_],
    name: str,
    step: float,
    allow_zero: bool,
    checks: RowChecks,
) -> None:
    with np.errstate(invalid="ignore"):
        too_small = values < 0 if allow_zero else values <= 0
    bound = ">= 0" if allow_zero else "> 0"
    checks.add(too_small, lambda i: f"{name} {text[i]} is not {bound}")
    unit = "a whole number of contracts" if step == 1 else f"a multiple of {step:g}"
    checks.add(off_grid(values, step) & ~too_small, lambda i: f"{name} {text[i]} is not {unit}")


@dataclass
class _Parsed:
    ns: IntArray
    columns: dict[str, FloatArray]
    sides: npt.NDArray[np.uint8] | None = None
    trade_ids: list[str] | None = None


def _validate(
    df: pd.DataFrame,
    spec: CsvSpec,
    cols: dict[str, str],
    instrument: FuturesContract,
    source: str,
    max_report: int,
) -> _Parsed:
    """Check every row; raise CsvValidationError listing the first bad lines, else return arrays."""
    lines = (df.index.to_numpy() + 2).astype(np.int64)
    checks = RowChecks(len(df))
    tick = float(instrument.price_increment)
    tick_txt = str(instrument.price_increment)
    size_step = float(instrument.size_increment)

    ts_raw = df[cols["ts"]]
    ns, time_reasons = parse_times(ts_raw, spec.timezone, spec.ts_format)
    time_bad = np.array([r is not None for r in time_reasons], dtype=bool)
    checks.add(time_bad, lambda i: str(time_reasons[i]))
    if spec.kind == "bars" and spec.bar_timestamp == "open":
        ns = ns + spec.bar_minutes * _NS_PER_MINUTE
    _order_checks(ns, ~time_bad, lines, ts_raw, spec.kind == "bars", checks)

    prices = {"trades": ("price",), "quotes": ("bid", "ask"), "bars": ("open", "high", "low", "close")}[spec.kind]
    sizes = {"trades": ("size",), "quotes": ("bid_size", "ask_size"), "bars": ("volume",)}[spec.kind]
    values: dict[str, FloatArray] = {}
    for name in prices:
        values[name] = _numbers(df, cols[name], name, checks)
        _price_checks(values[name], df[cols[name]].to_numpy(dtype=object), name, tick, tick_txt, checks)
    for name in sizes:
        values[name] = _numbers(df, cols[name], name, checks)
        _size_checks(values[name], df[cols[name]].to_numpy(dtype=object), name, size_step, name == "volume", checks)

    parsed = _Parsed(ns=ns, columns=values)
    if spec.kind == "quotes":
        bid, ask = values["bid"], values["ask"]
        with np.errstate(invalid="ignore"):
            checks.add(
                bid >= ask,
                lambda i: f"bid {df[cols['bid']].iloc[i]} is not below ask {df[cols['ask']].iloc[i]}",
            )
    elif spec.kind == "bars":
        o, h, low, c = values["open"], values["high"], values["low"], values["close"]
        text = {k: df[cols[k]].to_numpy(dtype=object) for k in ("open", "high", "low", "close")}
        checks.add(
            ohlc_inconsistent(o, h, low, c),
            lambda i: (
                f"OHLC inconsistent (open {text['open'][i]}, high {text['high'][i]}, low {text['low'][i]}, "
                f"close {text['close'][i]}): need low <= open, close <= high"
            ),
        )
    else:
        if "side" in cols:
            side_txt = df[cols["side"]].to_numpy(dtype=object)
            mapped = df[cols["side"]].str.upper().map(_SIDES)
            checks.add(
                mapped.isna().to_numpy(),
                lambda i: f"side {side_txt[i]!r} is not one of BUY/SELL/B/S/1/-1/buyer/seller or empty",
            )
            parsed.sides = np.asarray(mapped.fillna(0).to_numpy(), dtype=np.uint8)
        else:
            parsed.sides = np.zeros(len(df), dtype=np.uint8)
        generated = pd.Series(ns).astype(str) + "-" + pd.Series(ns).groupby(ns).cumcount().astype(str)
        if "trade_id" in cols:
            ids = df[cols["trade_id"]].reset_index(drop=True)
            id_txt = ids.to_numpy(dtype=object)
            checks.add(
                (ids.str.len() > _MAX_TRADE_ID).to_numpy(),
                lambda i: f"trade_id {id_txt[i]!r} is longer than {_MAX_TRADE_ID} characters",
            )
            parsed.trade_ids = ids.where(ids != "", generated).tolist()
        else:
            parsed.trade_ids = generated.tolist()

    rows, count = checks.report(lines, max_report)
    if count:
        raise CsvValidationError(bad_rows_message(source, rows, count), rows, count)
    for name in prices:
        values[name] = snap(values[name], tick)
    return parsed


# -- building and writing -------------------------------------------------------------------------


def bar_type_for(instrument_id: str, minutes: int) -> BarType:
    """``<ID>-<N>-MINUTE-LAST-EXTERNAL``: bars that come from outside, not aggregated by nautilus."""
    return BarType.from_str(f"{instrument_id}-{minutes}-MINUTE-LAST-EXTERNAL")


def build_bars(
    instrument: FuturesContract,
    bar_type: BarType,
    close_ns: IntArray,
    o: FloatArray,
    h: FloatArray,
    low: FloatArray,
    c: FloatArray,
    volume: FloatArray,
) -> list[Bar]:
    """Bars stamped at their close (``ts_event = ts_init = close``) via nautilus' BarDataWrangler."""
    frame = pd.DataFrame(
        {"open": o, "high": h, "low": low, "close": c, "volume": volume},
        index=pd.DatetimeIndex(pd.to_datetime(close_ns, unit="ns", utc=True), name="timestamp"),
    )
    bars: list[Bar] = BarDataWrangler(bar_type, instrument).process(frame)
    return bars


def build_quotes(
    instrument: FuturesContract,
    ts_ns: IntArray,
    bid: FloatArray,
    ask: FloatArray,
    bid_size: FloatArray,
    ask_size: FloatArray,
) -> list[QuoteTick]:
    """Quote ticks via nautilus' QuoteTickDataWrangler (``ts_event = ts_init``)."""
    frame = pd.DataFrame(
        {"bid_price": bid, "ask_price": ask, "bid_size": bid_size, "ask_size": ask_size},
        index=pd.DatetimeIndex(pd.to_datetime(ts_ns, unit="ns", utc=True), name="timestamp"),
    )
    quotes: list[QuoteTick] = QuoteTickDataWrangler(instrument).process(frame)
    return quotes


def build_trades(
    instrument: FuturesContract,
    ts_ns: IntArray,
    price: FloatArray,
    size: FloatArray,
    sides: npt.NDArray[np.uint8],
    trade_ids: list[str],
) -> list[TradeTick]:
    """Trade ticks with their aggressor side via the bulk constructor TradeTickDataWrangler uses.

    (The wrangler's own ``process`` maps every side other than BUY to SELLER, losing NO_AGGRESSOR.)
    """
    ts = np.ascontiguousarray(ts_ns, dtype=np.uint64)
    trades: list[TradeTick] = TradeTick.from_raw_arrays_to_list(
        instrument.id,
        instrument.price_precision,
        instrument.size_precision,
        np.ascontiguousarray(price, dtype=np.float64),
        np.ascontiguousarray(size, dtype=np.float64),
        np.ascontiguousarray(sides, dtype=np.uint8),
        trade_ids,
        ts,
        ts,
    )
    return trades


def instrument_in_catalog(catalog_path: Path, instrument_id: str) -> bool:
    """True when the catalog already has a definition file for ``instrument_id``."""
    return bool(file_intervals(catalog_path, INSTRUMENT_TYPE, instrument_id))


def _type_label(kind: str) -> str:
    return {"trades": "trade ticks", "quotes": "quote ticks", "bars": "bars"}[kind]


def ingest_csv(
    path: Path, catalog_path: Path, spec: CsvSpec, markets: MarketsConfig, max_report: int = 10
) -> IngestResult:
    """Validate every row of a CSV, then write the instrument (if new) and the data atomically.

    Raises DataValidationError (bad rows, missing columns, empty file), CatalogError (data
    overlapping what the catalog holds) or ConfigError (unknown contract); nothing is written then.
    """
    path = Path(path)
    catalog_path = Path(catalog_path)
    source = path.name
    contract = parse_contract_symbol(spec.instrument, markets)
    instrument = build_futures_contract(contract, markets)
    instrument_id = str(instrument.id)
    _check_spec(spec, source)

    df = _read_csv(path, spec)
    cols = _resolve_columns(df, spec, source)
    parsed = _validate(df, spec, cols, instrument, source, max_report)
    start_ns, end_ns = int(parsed.ns[0]), int(parsed.ns[-1])

    data_type = DATA_TYPES[spec.kind]
    bar_type = bar_type_for(instrument_id, spec.bar_minutes) if spec.kind == "bars" else None
    identifier = str(bar_type) if bar_type is not None else instrument_id
    for existing in file_intervals(catalog_path, data_type, identifier):
        if intervals_overlap(existing, (start_ns, end_ns)):
            raise _fail(
                source,
                f"catalog {catalog_path} already holds {_type_label(spec.kind)} for {identifier} from "
                f"{format_ns(existing[0])} to {format_ns(existing[1])}, overlapping this file's "
                f"{format_ns(start_ns)} to {format_ns(end_ns)}; nothing written (drop the overlapping rows "
                "from the file, or ingest into another catalog)",
            )

    v = parsed.columns
    data: list[Bar] | list[QuoteTick] | list[TradeTick]
    if bar_type is not None:
        data = build_bars(instrument, bar_type, parsed.ns, v["open"], v["high"], v["low"], v["close"], v["volume"])
    elif spec.kind == "quotes":
        data = build_quotes(instrument, parsed.ns, v["bid"], v["ask"], v["bid_size"], v["ask_size"])
    else:
        assert parsed.sides is not None and parsed.trade_ids is not None
        data = build_trades(instrument, parsed.ns, v["price"], v["size"], parsed.sides, parsed.trade_ids)

    with StagedCatalog(catalog_path) as staged:
        if not instrument_in_catalog(catalog_path, instrument_id):
            staged.catalog.write_data([instrument])
        staged.catalog.write_data(data)  # type: ignore[arg-type]
        staged.commit()
    return IngestResult(instrument_id, spec.kind, len(data), start_ns, end_ns)
