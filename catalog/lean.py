"""``mia ingest lean``: QuantConnect Lean futures minute zips into the catalog.

Format (see ``shared/data/README.md``): ``YYYYMMDD_trade.zip`` and ``YYYYMMDD_quote.zip`` each hold
one header-less CSV per contract, ``YYYYMMDD_es_minute_trade_201312.csv`` (201312 = ESZ13). Column 0
is milliseconds since midnight UTC of the file date and marks the bar's OPEN; prices are real.
- trade: ``ms,open,high,low,close,volume`` → EXTERNAL 1-minute LAST bars stamped at the close.
- quote: ``ms,bid o/h/l/c,bid_size,ask o/h/l/c,ask_size`` → one QuoteTick per minute at the bar
  close with the closing bid/ask and sizes, because MIA backtests fill from quotes, never from the
  bar that made the decision. Rows with a missing side or ``bid >= ask`` are skipped and counted.

Every row is validated like a CSV (tick grid, OHLC, whole sizes, minute times in order) before
anything is written, and the write is atomic. Re-running is safe: an instrument's day that the
catalog already holds (per data type) is skipped and counted, never duplicated.
"""

import datetime as dt
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.instruments import FuturesContract

from catalog.ingest import BAR_TYPE
from catalog.ingest import QUOTE_TYPE
from catalog.ingest import BadRow
from catalog.ingest import FloatArray
from catalog.ingest import IntArray
from catalog.ingest import RowChecks
from catalog.ingest import bad_rows_message
from catalog.ingest import bar_type_for
from catalog.ingest import build_bars
from catalog.ingest import build_quotes
from catalog.ingest import instrument_in_catalog
from catalog.ingest import off_grid
from catalog.ingest import ohlc_inconsistent
from catalog.ingest import snap
from catalog.store import StagedCatalog
from catalog.store import file_intervals
from catalog.store import intervals_overlap
from mia_strategies.config import MarketsConfig
from mia_strategies.errors import ConfigError
from mia_strategies.errors import DataValidationError
from mia_strategies.instruments import ContractRef
from mia_strategies.instruments import build_futures_contract
from mia_strategies.instruments import parse_contract_symbol


_ZIP_RE = re.compile(r"^(\d{8})_(trade|quote)\.zip$")
_MEMBER_RE = re.compile(r"^(\d{8})_([a-z0-9]+)_minute_(trade|quote)_(\d{4})(\d{2})\.csv$")
_NCOLS = {"trade": 6, "quote": 11}
_MS_PER_DAY = 86_400_000
_MS_PER_MINUTE = 60_000
_NS_PER_MS = 1_000_000
_MAX_REPORT = 10


@dataclass(frozen=True)
class LeanIngestResult:
    """What a Lean ingestion found and wrote.

    ``instruments`` lists every contract with usable rows in the source (written now or before);
    ``bars``/``quotes`` count rows written by this run; ``days`` counts source dates read;
    ``start_ns``/``end_ns`` span the usable source data (bar closes), written or already present;
    ``skipped_quotes`` counts quote rows dropped (a side missing or ``bid >= ask``);
    ``skipped_existing`` counts instrument-day-type chunks the catalog already held.
    """

    instruments: list[str]
    bars: int
    quotes: int
    days: int
    start_ns: int
    end_ns: int
    skipped_quotes: int = 0
    skipped_existing: int = 0


@dataclass
class _Chunk:
    """One contract's rows of one kind for one day, validated and ready to build."""

    contract: ContractRef
    kind: str
    ts_ns: IntArray
    values: dict[str, FloatArray] = field(default_factory=dict)


def _fail(problem: str) -> DataValidationError:
    return DataValidationError(" ".join(problem.split()))


def find_lean_days(source_dir: Path, root: str) -> tuple[Path, dict[str, dict[str, Path]]]:
    """The folder with the zips and ``{YYYYMMDD: {"trade"|"quote": zip}}``.

    Accepts the folder of zips itself, or a Lean data root that has ``minute/<root>/`` under it.
    """
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise _fail(f"{source_dir}: folder not found (pass the folder holding YYYYMMDD_trade.zip files)")
    candidates = [source_dir, source_dir / "minute" / root.lower(), source_dir / root.lower()]
    for folder in candidates:
        days: dict[str, dict[str, Path]] = {}
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                match = _ZIP_RE.match(path.name)
                if match and path.is_file():
                    days.setdefault(match.group(1), {})[match.group(2)] = path
        if days:
            return folder, dict(sorted(days.items()))
    raise _fail(
        f"{source_dir}: no Lean minute files (YYYYMMDD_trade.zip / YYYYMMDD_quote.zip) here or in "
        f"minute/{root.lower()}/ (pass the folder that holds them)",
    )


def _contract_of(member: str, zip_name: str, day: str, kind: str, root: str, markets: MarketsConfig) -> ContractRef:
    match = _MEMBER_RE.match(member)
    if match is None:
        raise _fail(f"{zip_name}: unexpected file {member} (expected {day}_{root.lower()}_minute_{kind}_YYYYMM.csv)")
    m_day, m_root, m_kind, year, month = match.groups()
    if m_root.upper() != root:
        raise _fail(f"{zip_name}/{member}: holds {m_root.upper()} data, not {root} (pass the matching root)")
    if m_day != day or m_kind != kind:
        raise _fail(f"{zip_name}/{member}: file name does not match its zip ({day}, {kind})")
    if not 1 <= int(month) <= 12:
        raise _fail(f"{zip_name}/{member}: bad contract month {year}{month}")
    ref = ContractRef(year=int(year), month=int(month), root=root)
    try:
        return parse_contract_symbol(ref.symbol, markets)
    except ConfigError as exc:
        raise _fail(f"{zip_name}/{member}: {exc}") from None


def _read_member(zf: zipfile.ZipFile, member: str, zip_name: str, kind: str) -> pd.DataFrame:
    try:
        with zf.open(member) as fh:
            frame = pd.read_csv(fh, header=None, dtype=np.float64)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (ValueError, pd.errors.ParserError) as exc:
        raise _fail(f"{zip_name}/{member}: not a Lean {kind} CSV ({str(exc).strip()})") from None
    if frame.shape[1] != _NCOLS[kind]:
        raise _fail(f"{zip_name}/{member}: {frame.shape[1]} columns, a Lean {kind} file has {_NCOLS[kind]}")
    return frame


def _time_checks(ms: FloatArray, checks: RowChecks) -> None:
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(ms) | (ms < 0) | (ms >= _MS_PER_DAY) | (ms % _MS_PER_MINUTE != 0)
    checks.add(bad, lambda i: f"time {ms[i]:g} ms is not a whole minute of the day")
    ok = np.flatnonzero(~bad)
    if len(ok) > 1:
        worse = ms[ok][1:] <= ms[ok][:-1]
        mask = np.zeros(len(ms), dtype=bool)
        mask[ok[1:][worse]] = True
        checks.add(mask, lambda i: f"time {ms[i]:g} ms is not after the previous row")


def _price_checks(values: FloatArray, name: str, tick: float, tick_txt: str, checks: RowChecks) -> None:
    checks.add(off_grid(values, tick), lambda i: f"{name} {values[i]:g} is not on the {tick_txt} tick grid")
    with np.errstate(invalid="ignore"):
        checks.add(values <= 0, lambda i: f"{name} {values[i]:g} is not > 0")


def _missing_check(values: FloatArray, name: str, checks: RowChecks) -> None:
    checks.add(np.isnan(values), lambda i: f"{name} is missing")


def _ohlc_checks(prefix: str, o: FloatArray, h: FloatArray, low: FloatArray, c: FloatArray, checks: RowChecks) -> None:
    checks.add(
        ohlc_inconsistent(o, h, low, c),
        lambda i: f"{prefix}OHLC inconsistent (open {o[i]:g}, high {h[i]:g}, low {low[i]:g}, close {c[i]:g})",
    )


def _whole_check(values: FloatArray, name: str, allow_zero: bool, checks: RowChecks) -> None:
    with np.errstate(invalid="ignore"):
        negative = values < 0 if allow_zero else values <= 0
    bound = ">= 0" if allow_zero else "> 0"
    checks.add(negative, lambda i: f"{name} {values[i]:g} is not {bound}")
    checks.add(off_grid(values, 1.0), lambda i: f"{name} {values[i]:g} is not a whole number")


def _validate_trade(frame: pd.DataFrame, tick: float, tick_txt: str, checks: RowChecks) -> dict[str, FloatArray]:
    cols = frame.to_numpy(dtype=np.float64)
    ms = cols[:, 0]
    _time_checks(ms, checks)
    names = ("open", "high", "low", "close", "volume")
    values = {name: cols[:, i + 1] for i, name in enumerate(names)}
    for name in names:
        _missing_check(values[name], name, checks)
    for name in names[:4]:
        _price_checks(values[name], name, tick, tick_txt, checks)
    _ohlc_checks("", values["open"], values["high"], values["low"], values["close"], checks)
    _whole_check(values["volume"], "volume", True, checks)
    values["ms"] = ms
    return values


def _validate_quote(
    frame: pd.DataFrame, tick: float, tick_txt: str, checks: RowChecks
) -> tuple[dict[str, FloatArray], npt.NDArray[np.bool_]]:
    """Validated quote columns and the mask of rows to keep (both sides present, bid < ask)."""
    cols = frame.to_numpy(dtype=np.float64)
    ms = cols[:, 0]
    _time_checks(ms, checks)
    values: dict[str, FloatArray] = {"ms": ms}
    present = np.ones(len(ms), dtype=bool)
    for side, first in (("bid", 1), ("ask", 6)):
        o, h, low, c, size = (cols[:, first + k] for k in range(5))
        with np.errstate(invalid="ignore"):
            side_present = np.isfinite(c) & (size > 0)
        for name, arr in (("open", o), ("high", h), ("low", low)):
            _missing_check(np.where(side_present, arr, 0.0), f"{side}_{name}", checks)
        for name, arr in (("open", o), ("high", h), ("low", low), ("close", c)):
            _price_checks(arr, f"{side}_{name}", tick, tick_txt, checks)
        _ohlc_checks(f"{side} ", o, h, low, c, checks)
        _whole_check(np.nan_to_num(size, nan=0.0), f"{side}_size", True, checks)
        present &= side_present
        values[side] = c
        values[f"{side}_size"] = size
    with np.errstate(invalid="ignore"):
        keep = present & (values["bid"] < values["ask"])
    return values, keep


def _day_start_ms(day: str) -> int:
    date = dt.datetime.strptime(day, "%Y%m%d").replace(tzinfo=dt.UTC)
    return int(date.timestamp()) * 1000


def ingest_lean_futures(
    source_dir: Path,
    catalog_path: Path,
    root: str,
    markets: MarketsConfig,
    progress: Callable[[int, int], None] | None = None,
) -> LeanIngestResult:
    """Validate every Lean minute file of ``root`` under ``source_dir``, then write them atomically.

    Writes each contract's definition (if new), its trade bars stamped at the close and one quote
    tick per minute; one parquet file per contract, day and type, so re-runs can skip what exists.
    Data is built in a staging catalog while validating and moved in only if every row passed.
    ``progress(done, total)`` is called after each source day is read. Raises DataValidationError
    (bad rows, unexpected files) or ConfigError (unknown root); the catalog is then unchanged.
    """
    root = root.upper()
    spec = markets.root(root)
    tick = float(spec.tick_size)
    tick_txt = str(spec.tick_size)
    folder, days = find_lean_days(Path(source_dir), root)
    catalog_path = Path(catalog_path)

    bad_rows: list[BadRow] = []
    bad_count = 0
    skipped_quotes = 0
    first_ns: int | None = None
    last_ns: int | None = None
    with StagedCatalog(catalog_path) as staged:
        writer = _Writer(staged, catalog_path, markets, tick)
        for done, (day, kinds) in enumerate(days.items(), start=1):
            day_ns = _day_start_ms(day) * _NS_PER_MS
            for kind, zip_path in sorted(kinds.items(), key=lambda kv: kv[0] != "trade"):
                try:
                    zf = zipfile.ZipFile(zip_path)
                except (zipfile.BadZipFile, OSError) as exc:
                    raise _fail(f"{zip_path.name}: not a readable zip ({exc})") from None
                with zf:
                    for member in sorted(zf.namelist()):
                        contract = _contract_of(member, zip_path.name, day, kind, root, markets)
                        frame = _read_member(zf, member, zip_path.name, kind)
                        if frame.empty:
                            continue
                        checks = RowChecks(len(frame))
                        if kind == "trade":
                            values = _validate_trade(frame, tick, tick_txt, checks)
                            keep = np.ones(len(frame), dtype=bool)
                        else:
                            values, keep = _validate_quote(frame, tick, tick_txt, checks)
                        lines = np.arange(1, len(frame) + 1, dtype=np.int64)
                        rows, count = checks.report(lines, _MAX_REPORT - len(bad_rows))
                        if count:
                            bad_count += count
                            prefix = f"{zip_path.name}/{member} line"
                            bad_rows.extend(BadRow(r.line, f"{prefix} {r.line}: {r.reason}") for r in rows)
                            continue
                        skipped_quotes += int((~keep).sum())
                        if not keep.any():
                            continue
                        close_ns = day_ns + (values["ms"][keep].astype(np.int64) + _MS_PER_MINUTE) * _NS_PER_MS
                        kept = {k: v[keep] for k, v in values.items() if k != "ms"}
                        first_ns = min(int(close_ns[0]), first_ns if first_ns is not None else int(close_ns[0]))
                        last_ns = max(int(close_ns[-1]), last_ns if last_ns is not None else int(close_ns[-1]))
                        if not bad_count:  # keep validating after a failure, but stop building
                            writer.write(_Chunk(contract, kind, close_ns, kept))
            if progress is not None:
                progress(done, len(days))
        if bad_count:
            raise DataValidationError(bad_rows_message(str(folder), bad_rows, bad_count, where=""))
        if first_ns is None or last_ns is None:
            raise _fail(f"{folder}: the Lean files hold no usable {root} rows, nothing written")
        staged.commit()

    return LeanIngestResult(
        instruments=[str(c.instrument_id(markets.venue)) for c in sorted(writer.contracts)],
        bars=writer.bars,
        quotes=writer.quotes,
        days=len(days),
        start_ns=first_ns,
        end_ns=last_ns,
        skipped_quotes=skipped_quotes,
        skipped_existing=writer.skipped_existing,
    )


class _Writer:
    """Stages chunks as they are validated: instrument definitions once, data unless already present."""

    def __init__(self, staged: StagedCatalog, catalog_path: Path, markets: MarketsConfig, tick: float) -> None:
        self.staged = staged
        self.catalog_path = catalog_path
        self.markets = markets
        self.tick = tick
        self.contracts: set[ContractRef] = set()
        self.instruments: dict[ContractRef, FuturesContract] = {}
        self.existing: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self.bars = 0
        self.quotes = 0
        self.skipped_existing = 0

    def write(self, chunk: _Chunk) -> None:
        """Stage one contract-day of bars or quotes, or count it as already in the catalog."""
        self.contracts.add(chunk.contract)
        instrument = self.instruments.get(chunk.contract)
        if instrument is None:
            instrument = build_futures_contract(chunk.contract, self.markets)
            self.instruments[chunk.contract] = instrument
            if not instrument_in_catalog(self.catalog_path, str(instrument.id)):
                self.staged.catalog.write_data([instrument])
        written = _write_chunk(self.staged, self.catalog_path, instrument, chunk, self.tick, self.existing)
        if written is None:
            self.skipped_existing += 1
        elif chunk.kind == "trade":
            self.bars += written
        else:
            self.quotes += written


def _write_chunk(
    staged: StagedCatalog,
    catalog_path: Path,
    instrument: FuturesContract,
    chunk: _Chunk,
    tick: float,
    existing: dict[tuple[str, str], list[tuple[int, int]]],
) -> int | None:
    """Stage one contract-day of bars or quotes; None when the catalog already covers that time."""
    instrument_id = str(instrument.id)
    if chunk.kind == "trade":
        bar_type = bar_type_for(instrument_id, 1)
        key = (BAR_TYPE, str(bar_type))
    else:
        key = (QUOTE_TYPE, instrument_id)
    if key not in existing:
        existing[key] = file_intervals(catalog_path, *key)
    interval = (int(chunk.ts_ns[0]), int(chunk.ts_ns[-1]))
    if any(intervals_overlap(interval, other) for other in existing[key]):
        return None
    v = chunk.values
    data: list[Bar] | list[QuoteTick]
    if chunk.kind == "trade":
        data = build_bars(
            instrument,
            bar_type,
            chunk.ts_ns,
            snap(v["open"], tick),
            snap(v["high"], tick),
            snap(v["low"], tick),
            snap(v["close"], tick),
            v["volume"],
        )
    else:
        data = build_quotes(
            instrument, chunk.ts_ns, snap(v["bid"], tick), snap(v["ask"], tick), v["bid_size"], v["ask_size"]
        )
    staged.catalog.write_data(data)  # type: ignore[arg-type]
    existing[key].append(interval)
    return len(data)
