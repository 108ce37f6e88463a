"""IQFeed history into the Parquet catalog (``mia ingest iqfeed``): batched, resumable, idempotent.

A download is planned as batches: for every contract, one batch per Globex session of trade ticks
(``HTT``) and of 1-minute bars (``HIT``), and one batch of daily bars (``HDT``) over the whole
range. Each batch is written atomically (a staging catalog moved in on success, see
``catalog.store.StagedCatalog``), so an interrupted download leaves only whole batches behind. A
batch whose time range already holds data of its type in the catalog is skipped: running the same
download again writes nothing, and a re-run after an interruption continues where it stopped.
Sessions that have not closed yet are not downloaded (they would be skipped forever once partly
written).

IQFeed sends interval and daily rows in High, Low, Open, Close order; bars are requested labelled at
their end and stored stamped at their close (``ts_event = ts_init = close``), daily bars at the
session close (16:00 CT). Tick rows keep their µs Eastern time (converted to UTC exactly), TickID
(as trade id) and aggressor.
"""

import asyncio
import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.core.data import Data
from nautilus_trader.core.datetime import unix_nanos_to_iso8601
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.instruments import FuturesContract
from nautilus_trader.model.objects import FIXED_PRECISION
from nautilus_trader.model.objects import FIXED_PRECISION_BYTES
from nautilus_trader.persistence.funcs import class_to_filename
from nautilus_trader.persistence.funcs import urisafe_identifier
from nautilus_trader.serialization.arrow.serializer import ArrowSerializer

from adapters.iqfeed.client import ConnectionOptions
from adapters.iqfeed.client import IQFeedConnectionError
from adapters.iqfeed.client import IQFeedConnectionLost
from adapters.iqfeed.client import IQFeedError
from adapters.iqfeed.client import IQFeedInvalidSymbolError
from adapters.iqfeed.client import IQFeedNoDataError
from adapters.iqfeed.client import IQFeedProtocolError
from adapters.iqfeed.client import IQFeedTimeoutError
from adapters.iqfeed.client import IQFeedUnauthorizedError
from adapters.iqfeed.client import LookupClient
from adapters.iqfeed.client import ReconnectPolicy
from adapters.iqfeed.parsing import TickHistory
from adapters.iqfeed.parsing import bars_from_history
from adapters.iqfeed.parsing import format_request_date
from adapters.iqfeed.parsing import format_request_datetime
from adapters.iqfeed.parsing import parse_daily_rows
from adapters.iqfeed.parsing import parse_interval_rows
from adapters.iqfeed.parsing import parse_tick_rows
from adapters.iqfeed.parsing import quote_ticks_from_history
from adapters.iqfeed.parsing import trade_ticks_from_history
from adapters.iqfeed.parsing import utc_ns_to_eastern
from catalog.ingest import BAR_TYPE
from catalog.ingest import QUOTE_TYPE
from catalog.ingest import TRADE_TYPE
from catalog.ingest import instrument_in_catalog
from catalog.store import StagedCatalog
from catalog.store import file_intervals
from mia_strategies import sessions
from mia_strategies.config import MarketsConfig
from mia_strategies.errors import CatalogError
from mia_strategies.errors import ConfigError
from mia_strategies.errors import MiaError
from mia_strategies.instruments import ContractRef
from mia_strategies.instruments import activation_ns
from mia_strategies.instruments import build_futures_contract
from mia_strategies.instruments import contract_windows
from mia_strategies.instruments import expiry_ns
from mia_strategies.instruments import parse_contract_symbol


_log = logging.getLogger("adapters.iqfeed")
_NS = 1_000_000_000
KINDS = ("ticks", "quotes", "bars", "daily")
_RETRIES = 3
#: Completed batches, kept beside the catalog's ``data`` folder (nautilus never reads it).
MANIFEST = ".iqfeed-ingest.json"


class IQFeedIngestError(MiaError):
    """The download cannot go on (IQConnect unreachable, not entitled, unknown symbol)."""


@dataclass(frozen=True)
class Batch:
    """One unit of download and write: a request kind, a contract, a time range and what it yields.

    ``ticks`` batches (``HTT``, one Globex session) yield trade ticks and/or quotes (the bid and ask
    in force at each trade), ``bars`` batches (``HIT``, one session) 1-minute bars, and the ``daily``
    batch (``HDT``) one bar per session of the range.
    """

    kind: str  # "ticks" | "bars" | "daily"
    contract: ContractRef
    start_ns: int
    end_ns: int
    outputs: tuple[str, ...]
    label: str

    @property
    def symbol(self) -> str:
        """The IQFeed symbol."""
        return f"@{self.contract.symbol}"

    @property
    def key(self) -> str:
        """Identity of the batch in the manifest."""
        return f"{self.kind}|{'+'.join(self.outputs)}|{self.contract.symbol}|{self.start_ns}|{self.end_ns}"


@dataclass
class IngestReport:
    """What a download did: batches written, skipped (already done) and empty, rows per kind."""

    batches: int = 0
    written: int = 0
    skipped: int = 0
    empty: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    instruments: list[str] = field(default_factory=list)


class Manifest:
    """The batches already downloaded into a catalog (written atomically after each batch)."""

    def __init__(self, catalog_path: Path) -> None:
        self.path = catalog_path / MANIFEST
        self.done: dict[str, dict[str, object]] = {}
        if self.path.exists():
            try:
                self.done = dict(json.loads(self.path.read_text(encoding="utf-8")).get("done", {}))
            except (OSError, ValueError):
                _log.warning("iqfeed ingest: unreadable %s; every batch will be checked again", self.path)

    def record(self, batch: Batch, rows: int) -> None:
        """Mark ``batch`` done."""
        self.done[batch.key] = {"rows": rows, "label": batch.label, "at": dt.datetime.now(dt.UTC).isoformat()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": 1, "done": self.done}, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


def resolve_contracts(names: Sequence[str], start_ns: int, end_ns: int, markets: MarketsConfig) -> list[ContractRef]:
    """Contracts named directly (``ESZ25``, ``@ESZ25``) or by root (every contract the roll calendar makes active)."""
    contracts: list[ContractRef] = []
    for raw in names:
        name = raw.strip().lstrip("@").upper()
        if not name:
            continue
        if name in markets.roots:
            contracts.extend(w.contract for w in contract_windows(name, start_ns, end_ns, markets))
        else:
            contracts.append(parse_contract_symbol(name, markets))
    if not contracts:
        raise ConfigError("--instruments: name roots (ES,MNQ) or contracts (ESZ25,MNQH26)")
    return sorted(set(contracts))


def plan_batches(
    contracts: Sequence[ContractRef],
    start_ns: int,
    end_ns: int,
    kinds: Sequence[str],
    markets: MarketsConfig,
    now_ns: int,
) -> list[Batch]:
    """Every batch of the download: per contract, whole sessions oldest first, then its daily bars.

    Sessions are whole Globex sessions (the range is rounded out to them) that overlap the range
    and the contract's listing, and that have closed by ``now_ns``.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ConfigError(f"--kinds {','.join(unknown)}: use {', '.join(KINDS)}")
    tick_outputs = tuple(k for k in ("ticks", "quotes") if k in kinds)
    batches: list[Batch] = []
    for ref in contracts:
        spec = markets.root(ref.root)
        lo = max(start_ns, activation_ns(ref, spec))
        hi = min(end_ns, expiry_ns(ref, spec) + 1, now_ns)
        if hi <= lo:
            continue
        days = []
        for day, _, _ in sessions.sessions_between(lo, hi):
            open_ns, close_ns = sessions.session_bounds(day)
            if close_ns <= now_ns:
                days.append((day, open_ns, close_ns))
        for day, open_ns, close_ns in days:
            if tick_outputs:
                batches.append(
                    Batch("ticks", ref, open_ns, close_ns, tick_outputs, f"{ref.symbol} {'+'.join(tick_outputs)} {day}")
                )
            if "bars" in kinds:
                batches.append(Batch("bars", ref, open_ns, close_ns, ("bars",), f"{ref.symbol} bars {day}"))
        if "daily" in kinds and days:
            batches.append(Batch("daily", ref, days[0][1], days[-1][2], ("daily",), f"{ref.symbol} daily"))
    return batches


def _identifier(output: str, instrument_id: str) -> tuple[str, str]:
    """Catalog type folder and identifier of one output kind."""
    if output == "ticks":
        return TRADE_TYPE, instrument_id
    if output == "quotes":
        return QUOTE_TYPE, instrument_id
    if output == "bars":
        return BAR_TYPE, f"{instrument_id}-1-MINUTE-LAST-EXTERNAL"
    return BAR_TYPE, f"{instrument_id}-1-DAY-LAST-EXTERNAL"


def _session_close_ns(day: dt.date) -> int:
    if day.weekday() >= 5:
        day += dt.timedelta(days=7 - day.weekday())
    return sessions.session_bounds(day)[1]


Outputs = dict[str, list[Data] | TickHistory]


async def download_batch(client: LookupClient, batch: Batch, instrument: FuturesContract) -> Outputs:
    """The batch's data by output kind, time-ordered (empty when IQFeed has none).

    Ticks and quotes stay as arrays (:class:`TickHistory`) until they are written.
    """
    symbol = batch.symbol
    begin, end = format_request_datetime(batch.start_ns), format_request_datetime(batch.end_ns)
    try:
        if batch.kind == "ticks":
            rows = await client.request(f"HTT,{symbol},{begin},{end},,,,1,{{rid}},5000")
        elif batch.kind == "bars":
            rows = await client.request(f"HIT,{symbol},60,{begin},{end},,,,1,{{rid}},5000,s,0")
        else:
            first, last = format_request_date(batch.start_ns), format_request_date(batch.end_ns)
            rows = await client.request(f"HDT,{symbol},{first},{last},,1,{{rid}},5000")
    except IQFeedNoDataError:
        return {}
    if batch.kind == "ticks":
        history = parse_tick_rows(rows)
        keep = (history.ts_ns >= batch.start_ns) & (history.ts_ns < batch.end_ns)
        history = history.select(np.flatnonzero(keep)[np.argsort(history.ts_ns[keep], kind="stable")])
        out: dict[str, list[Data] | TickHistory] = {}
        if "ticks" in batch.outputs:
            out["ticks"] = history
        if "quotes" in batch.outputs:
            out["quotes"] = history.select(quote_changes(history))
        return out
    if batch.kind == "bars":
        intervals = parse_interval_rows(rows)
        keep = (intervals.ts_ns > batch.start_ns) & (intervals.ts_ns <= batch.end_ns)
        bar_type = BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL")
        bars: list[Bar] = bars_from_history(bar_type, instrument, intervals, intervals.ts_ns, keep)
        by_close: list[Data] = sorted(bars, key=lambda b: b.ts_event)
        return {"bars": by_close}
    daily = parse_daily_rows(rows)
    dates = [utc_ns_to_eastern(int(ts)).date() for ts in daily.ts_ns]
    closes = np.array([_session_close_ns(d) for d in dates], dtype=np.int64)
    bar_type = BarType.from_str(f"{instrument.id}-1-DAY-LAST-EXTERNAL")
    keep = (closes > batch.start_ns) & (closes <= batch.end_ns)
    daily_bars = bars_from_history(bar_type, instrument, daily, closes, keep)
    daily_by_close: list[Data] = sorted(daily_bars, key=lambda b: b.ts_event)
    return {"daily": daily_by_close}


def quote_changes(history: TickHistory) -> npt.NDArray[np.intp]:
    """Rows whose bid or ask differs from the previous row's: one quote per change of the touch."""
    bid, ask = history.bid, history.ask
    valid = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0)
    changed = np.ones(len(bid), dtype=bool)
    changed[1:] = (bid[1:] != bid[:-1]) | (ask[1:] != ask[:-1])
    return np.flatnonzero(changed & valid)


async def _download_with_retries(client: LookupClient, batch: Batch, instrument: FuturesContract) -> Outputs:
    for attempt in range(1, _RETRIES + 1):
        try:
            return await download_batch(client, batch, instrument)
        except (IQFeedConnectionLost, IQFeedTimeoutError) as exc:
            if attempt == _RETRIES:
                raise IQFeedIngestError(f"{batch.label}: {exc} ({_RETRIES} attempts); run again to resume") from None
            _log.warning("iqfeed ingest: %s failed (%s), retrying", batch.label, exc)
            await client.wait_connected(30.0)
    return {}


def gap_runs(ts: npt.NDArray[np.int64], existing: Sequence[tuple[int, int]]) -> list[npt.NDArray[np.intp]]:
    """Indices of ``ts`` outside the ``existing`` file intervals, split so no run straddles one.

    Each run can become one catalog file without overlapping a file that is already there (nautilus
    requires disjoint files per type and identifier); data already covered is never written twice.
    """
    if not len(ts):
        return []
    if not existing:
        return [np.arange(len(ts))]
    intervals = sorted(existing)
    starts = np.array([iv[0] for iv in intervals], dtype=np.int64)
    ends = np.array([iv[1] for iv in intervals], dtype=np.int64)
    slot = np.searchsorted(ends, ts, side="left")  # intervals before ``slot`` all ended before ts
    inside = (slot < len(intervals)) & (starts[np.minimum(slot, len(intervals) - 1)] <= ts)
    keep = np.flatnonzero(~inside)
    return [keep[slot[keep] == k] for k in np.unique(slot[keep])]


class _ArrowTicks:
    """Trade and quote tick files built straight from arrays, in nautilus's own Parquet layout.

    ``write_data`` spends most of its time on per-object bookkeeping; building the Arrow table from
    the arrays is several times faster. The first table of each kind and instrument is checked
    against nautilus's serializer on a sample of the same ticks, and any difference switches that
    instrument to the object path, so the files are always what nautilus itself would write.
    """

    def __init__(self) -> None:
        self.checked: dict[tuple[str, str], bool] = {}

    def write(self, catalog: Any, output: str, history: TickHistory, instrument: FuturesContract) -> None:
        key = (output, instrument.id.value)
        if key not in self.checked:
            sample = history.select(np.arange(min(64, len(history))))
            self.checked[key] = self._same_as_nautilus(output, sample, instrument)
        if self.checked[key]:
            cls = TradeTick if output == "ticks" else QuoteTick
            table = self.table(output, history, instrument)
            base = str(catalog.path).rstrip("/")
            folder = f"{base}/data/{class_to_filename(cls)}/{urisafe_identifier(instrument.id.value)}"
            os.makedirs(folder, exist_ok=True)
            first, last = int(history.ts_ns[0]), int(history.ts_ns[-1])
            name = "_".join(unix_nanos_to_iso8601(t).replace(":", "-").replace(".", "-") for t in (first, last))
            pq.write_table(table, f"{folder}/{name}.parquet", row_group_size=catalog.max_rows_per_group)
        else:
            catalog.write_data(self.objects(output, history, instrument))

    @staticmethod
    def objects(output: str, history: TickHistory, instrument: FuturesContract) -> list[Data]:
        tick = instrument.price_increment.as_double()
        if output == "ticks":
            return list(trade_ticks_from_history(history, instrument.id, instrument.price_precision, tick))
        return list(quote_ticks_from_history(history, instrument.id, instrument.price_precision, tick))

    @staticmethod
    def table(output: str, history: TickHistory, instrument: FuturesContract) -> pa.Table:
        tick = Decimal(str(instrument.price_increment))
        price_scale, size_scale = int(tick * 10**FIXED_PRECISION), 10**FIXED_PRECISION
        binary = pa.binary(FIXED_PRECISION_BYTES)
        metadata = {
            "instrument_id": instrument.id.value,
            "price_precision": str(instrument.price_precision),
            "size_precision": str(instrument.size_precision),
        }
        ts = pa.array(history.ts_ns.astype(np.uint64))
        step = float(tick)
        if output == "ticks":
            schema = pa.schema(
                [
                    pa.field("price", binary, nullable=False),
                    pa.field("size", binary, nullable=False),
                    pa.field("aggressor_side", pa.uint8(), nullable=False),
                    pa.field("trade_id", pa.string(), nullable=False),
                    pa.field("ts_event", pa.uint64(), nullable=False),
                    pa.field("ts_init", pa.uint64(), nullable=False),
                ],
                metadata=metadata,
            )
            ids = [t if t else f"{instrument.id.symbol.value}-{i}" for i, t in enumerate(history.tick_id)]
            columns = [
                _fixed(np.rint(history.price / step).astype(np.int64), price_scale),
                _fixed(np.rint(history.size).astype(np.int64), size_scale),
                pa.array(history.aggressor.astype(np.uint8)),
                pa.array(ids, type=pa.string()),
                ts,
                ts,
            ]
            return pa.Table.from_arrays(columns, schema=schema)
        schema = pa.schema(
            [
                pa.field("bid_price", binary, nullable=False),
                pa.field("ask_price", binary, nullable=False),
                pa.field("bid_size", binary, nullable=False),
                pa.field("ask_size", binary, nullable=False),
                pa.field("ts_event", pa.uint64(), nullable=False),
                pa.field("ts_init", pa.uint64(), nullable=False),
            ],
            metadata=metadata,
        )
        zeros = np.zeros(len(history), dtype=np.int64)
        columns = [
            _fixed(np.rint(history.bid / step).astype(np.int64), price_scale),
            _fixed(np.rint(history.ask / step).astype(np.int64), price_scale),
            _fixed(zeros, size_scale),
            _fixed(zeros, size_scale),
            ts,
            ts,
        ]
        return pa.Table.from_arrays(columns, schema=schema)

    def _same_as_nautilus(self, output: str, sample: TickHistory, instrument: FuturesContract) -> bool:
        try:
            ours = self.table(output, sample, instrument)
            objects = self.objects(output, sample, instrument)
            batch = ArrowSerializer.serialize_batch(objects, TradeTick if output == "ticks" else QuoteTick)
            theirs = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
            return bool(ours.equals(theirs, check_metadata=True))
        except (ValueError, TypeError, KeyError, pa.ArrowException):
            return False


def _fixed(units: npt.NDArray[np.int64], scale: int) -> pa.FixedSizeBinaryArray:
    """Whole units times ``scale`` as nautilus fixed-point raw values (16-byte little-endian)."""
    width = FIXED_PRECISION_BYTES
    unique, inverse = np.unique(units, return_inverse=True)
    raw = b"".join((int(v) * scale).to_bytes(width, "little", signed=True) for v in unique)
    lookup = np.frombuffer(raw, dtype=np.uint8).reshape(len(unique), width)
    buffer = lookup[inverse.reshape(-1)].tobytes()
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(units), [None, pa.py_buffer(buffer)])


_ARROW = _ArrowTicks()


def _write(catalog_path: Path, outputs: Outputs, instrument: FuturesContract) -> dict[str, int]:
    """Write what is not there yet (atomically); rows written per output kind."""
    written: dict[str, int] = {}
    with StagedCatalog(catalog_path) as staged:
        for output, data in outputs.items():
            data_type, identifier = _identifier(output, instrument.id.value)
            existing = file_intervals(catalog_path, data_type, identifier)
            if isinstance(data, TickHistory):
                for run in gap_runs(data.ts_ns, existing):
                    _ARROW.write(staged.catalog, output, data.select(run), instrument)
                    written[output] = written.get(output, 0) + len(run)
            else:
                ts = np.array([d.ts_init for d in data], dtype=np.int64)
                for run in gap_runs(ts, existing):
                    staged.catalog.write_data([data[i] for i in run])
                    written[output] = written.get(output, 0) + len(run)
        if written and not instrument_in_catalog(catalog_path, instrument.id.value):
            staged.catalog.write_data([instrument])
        staged.commit()
    return written


async def ingest_async(
    catalog_path: Path,
    batches: Sequence[Batch],
    markets: MarketsConfig,
    host: str,
    port: int,
    progress: Callable[[int, int], None] | None = None,
    request_timeout: float = 60.0,
) -> IngestReport:
    """Download and write every batch the manifest does not list as done."""
    report = IngestReport(batches=len(batches))
    client = LookupClient(
        host,
        port,
        request_timeout=request_timeout,
        options=ConnectionOptions(client_name="MIA-INGEST", reconnect=ReconnectPolicy(0.25, 5.0)),
    )
    try:
        await client.start(required=True)
    except IQFeedProtocolError as exc:
        raise IQFeedIngestError(str(exc)) from None
    except IQFeedConnectionError as exc:
        raise IQFeedIngestError(f"{exc}: start IQConnect (or `mia iqfeed-sim`) or pass --host/--lookup-port") from None
    manifest = Manifest(catalog_path)
    instruments: dict[str, FuturesContract] = {}
    try:
        for i, batch in enumerate(batches, start=1):
            instrument = instruments.get(batch.contract.symbol)
            if instrument is None:
                instrument = instruments[batch.contract.symbol] = build_futures_contract(batch.contract, markets)
            if batch.key in manifest.done:
                report.skipped += 1
            else:
                try:
                    outputs = await _download_with_retries(client, batch, instrument)
                except IQFeedUnauthorizedError:
                    raise IQFeedIngestError(f"{batch.symbol}: the IQFeed login is not entitled to this data") from None
                except IQFeedInvalidSymbolError:
                    raise IQFeedIngestError(f"{batch.symbol}: IQFeed does not know this symbol") from None
                except IQFeedError as exc:
                    raise IQFeedIngestError(f"{batch.label}: {exc}") from None
                written = _write(catalog_path, outputs, instrument) if any(len(v) for v in outputs.values()) else {}
                if written:
                    report.written += 1
                    for output, rows in written.items():
                        report.rows[output] += rows
                    if instrument.id.value not in report.instruments:
                        report.instruments.append(instrument.id.value)
                else:
                    report.empty += 1
                manifest.record(batch, sum(written.values()))
            if progress is not None:
                progress(i, len(batches))
    finally:
        await client.stop()
    return report


def ingest_iqfeed(
    catalog_path: Path,
    instruments: Sequence[str],
    start_ns: int,
    end_ns: int,
    markets: MarketsConfig,
    *,
    kinds: Sequence[str] = KINDS,
    host: str = "127.0.0.1",
    port: int = 9100,
    now_ns: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    request_timeout: float = 60.0,
) -> IngestReport:
    """Plan and run a download (blocking): ``mia ingest iqfeed``."""
    if end_ns <= start_ns:
        raise ConfigError("--end must be after --start")
    if catalog_path.exists() and not catalog_path.is_dir():
        raise CatalogError(f"catalog {catalog_path} is not a folder: pass the catalog folder with --catalog")
    now = now_ns if now_ns is not None else dt.datetime.now(dt.UTC).timestamp() * 1e9
    contracts = resolve_contracts(instruments, start_ns, end_ns, markets)
    batches = plan_batches(contracts, start_ns, end_ns, kinds, markets, int(now))
    return asyncio.run(ingest_async(catalog_path, batches, markets, host, port, progress, request_timeout))
