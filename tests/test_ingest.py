"""catalog.ingest: CSV trades/quotes/bars with column mapping, time zones and full validation."""

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.ingest import BadRow
from catalog.ingest import CsvSpec
from catalog.ingest import CsvValidationError
from catalog.ingest import IngestResult
from catalog.ingest import ingest_csv
from catalog.store import summarize
from mia_strategies.config import MarketsConfig
from mia_strategies.config import load_markets
from mia_strategies.errors import DataValidationError
from mia_strategies.errors import MiaError


REPO = Path(__file__).resolve().parents[1]


def utc(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


@pytest.fixture(scope="module")
def markets() -> MarketsConfig:
    return load_markets(REPO / "config" / "markets.yaml")


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    return tmp_path / "catalog"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under the test's tmp folder with size and mtime: "nothing written" means equal."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


TRADES_SPRING = """
Time,Last,Qty,Aggressor,TradeID,Venue
2025-03-09 01:59:58,6850.25,1,BUY,t1,X
2025-03-09 01:59:59,6850.2500000001,2,S,,X
2025-03-09 03:00:00,6850.50,3,,t3,X
2025-03-09 03:00:00,6850.75,4,seller,t4,X
2025-03-09 03:00:01,6851.00,5,-1,t5,X
"""

TRADE_SPEC = CsvSpec(
    kind="trades",
    instrument="ESH25",
    columns={"ts": "Time", "price": "Last", "size": "Qty", "side": "Aggressor", "trade_id": "TradeID"},
    timezone="America/Chicago",
)


# -- good files ----------------------------------------------------------------------------------


def test_trades_across_spring_dst_change(tmp_path: Path, cat: Path, markets: MarketsConfig) -> None:
    path = write(tmp_path, "trades.csv", TRADES_SPRING)
    result = ingest_csv(path, cat, TRADE_SPEC, markets)
    # 01:59:59 CST = 07:59:59 UTC; the clock then jumps to 03:00 CDT = 08:00:00 UTC
    assert result == IngestResult("ESH25.GLBX", "trades", 5, utc("2025-03-09 07:59:58"), utc("2025-03-09 08:00:01"))
    trades = ParquetDataCatalog(str(cat)).trade_ticks(instrument_ids=["ESH25.GLBX"])
    assert [t.ts_init for t in trades] == [
        utc("2025-03-09 07:59:58"),
        utc("2025-03-09 07:59:59"),
        utc("2025-03-09 08:00:00"),
        utc("2025-03-09 08:00:00"),
        utc("2025-03-09 08:00:01"),
    ]
    assert all(t.ts_event == t.ts_init for t in trades)
    assert [t.price.as_decimal() for t in trades] == [
        Decimal(x) for x in ("6850.25", "6850.25", "6850.50", "6850.75", "6851.00")
    ]
    assert [int(t.size) for t in trades] == [1, 2, 3, 4, 5]
    assert [t.aggressor_side for t in trades] == [
        AggressorSide.BUYER,
        AggressorSide.SELLER,
        AggressorSide.NO_AGGRESSOR,
        AggressorSide.SELLER,
        AggressorSide.SELLER,
    ]
    assert trades[0].trade_id.value == "t1"
    assert trades[1].trade_id.value  # generated for the empty cell
    instruments = ParquetDataCatalog(str(cat)).instruments()
    assert [str(i.id) for i in instruments] == ["ESH25.GLBX"]
    assert int(instruments[0].multiplier) == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog", "trades.csv"]  # no staging left


def test_trades_without_side_or_id_columns(tmp_path: Path, cat: Path, markets: MarketsConfig) -> None:
    path = write(tmp_path, "t.csv", "ts,price,size\n2025-01-02 14:30:00,5900,1\n2025-01-02 14:30:00,5900.25,2\n")
    ingest_csv(path, cat, CsvSpec(kind="trades", instrument="ESH25.GLBX"), markets)
    trades = ParquetDataCatalog(str(cat)).trade_ticks()
    assert [t.aggressor_side for t in trades] == [AggressorSide.NO_AGGRESSOR] * 2
    assert len({t.trade_id.value for t in trades}) == 2


def test_quotes_with_utc_offsets_and_semicolons(tmp_path: Path, cat: Path, markets: MarketsConfig) -> None:
    text = """
when;BidPrice;AskPrice;BidQty;AskQty
2025-03-09T01:59:00-06:00;6850.00;6850.25;10;12
2025-03-09T03:00:00-05:00;6850.25;6850.50;11;13
2025-03-09T03:00:00.5-05:00;6850.25;6850.75;1;2
"""
    spec = CsvSpec(
        kind="quotes",
        instrument="ESH25",
        columns={"ts": "when", "bid": "BidPrice", "ask": "AskPrice", "bid_size": "BidQty", "ask_size": "AskQty"},
        timezone="Asia/Tokyo",  # ignored: the stamps carry their own offsets
        delimiter=";",
    )
    result = ingest_csv(write(tmp_path, "q.csv", text), cat, spec, markets)
    assert result.rows == 3
    quotes = ParquetDataCatalog(str(cat)).quote_ticks(instrument_ids=["ESH25.GLBX"])
    assert [q.ts_init for q in quotes] == [
        utc("2025-03-09 07:59:00"),
        utc("2025-03-09 08:00:00"),
        utc("2025-03-09 08:00:00.5"),
    ]
    assert [(str(q.bid_price), str(q.ask_price), int(q.bid_size), int(q.ask_size)) for q in quotes] == [
        ("6850.00", "6850.25", 10, 12),
        ("6850.25", "6850.50", 11, 13),
        ("6850.25", "6850.75", 1, 2),
    ]


def test_naive_and_aware_rows_in_one_file(tmp_path: Path, cat: Path, markets: MarketsConfig) -> None:
    text = "ts,price,size\n2025-03-09T01:59:00,6850,1\n2025-03-09T03:00:00-05:00,6850,1\n2025-03-09T09:00:00Z,6850,1\n"
    spec = CsvSpec(kind="trades", instrument="ESH25", timezone="America/Chicago")
    ingest_csv(write(tmp_path, "m.csv", text), cat, spec, markets)
    stamps = [t.ts_init for t in ParquetDataCatalog(str(cat)).trade_ticks()]
    assert stamps == [utc("2025-03-09 07:59"), utc("2025-03-09 08:00"), utc("2025-03-09 09:00")]


def test_bars_open_stamped_across_autumn_dst_change(tmp_path: Path, cat: Path, markets: MarketsConfig) -> None:
    text = """
Date Time,O,H,L,C,Vol
2025-11-02 00:50:00,6900.00,6901.00,6899.75,6900.50,120
2025-11-02 00:55:00,6900.50,6900.50,6900.00,6900.25,0
2025-11-02 02:00:00,6901.00,6902.25,6900.75,6902.00,75
"""
    spec = CsvSpec(
        kind="bars",
        instrument="ESZ25",
        columns={"ts": "Date Time", "open": "O", "high": "H", "low": "L", "close": "C", "volume": "Vol"},
        timezone="America/Chicago",
        bar_minutes=5,
        bar_timestamp="open",
    )
    result = ingest_csv(write(tmp_path, "bars.csv", text), cat, spec, markets)
    # 00:50 CDT = 05:50 UTC, closes 05:55; 02:00 CST (after the repeated hour) = 08:00 UTC, closes 08:05
    assert (result.start_ns, result.end_ns) == (utc("2025-11-02 05:55"), utc("2025-11-02 08:05"))
    bar_type = BarType.from_str("ESZ25.GLBX-5-MINUTE-LAST-EXTERNAL")
    bars = ParquetDataCatalog(str(cat)).bars(bar_types=[str(bar_type)])
    assert [b.ts_init for b in bars] == [utc("2025-11-02 05:55"), utc("2025-11-02 06:00"), utc("2025-11-02 08:05")]
    assert all(b.ts_event == b.ts_init and b.bar_type == bar_type for b in bars)
    assert [(str(b.open), str(b.high), str(b.low), str(b.close), int(b.volume)) for b in bars] == [
        ("6900.00", "6901.00", "6899.75", "6900.50", 120),
        ("6900.50", "6900.50", "6900.00", "6900.25", 0),
        ("6901.00", "6902.25", "6900.75", "6902.00", 75),
    ]


def test_bars_close_stamped_unix_ms(tmp_path: Path, cat: Path, markets: MarketsConfig) -> None:
    t1 = utc("2025-06-02 13:31")
    ms = t1 // 10**6
    text = (
        f"ts,open,high,low,close,volume\n{ms},6000,6001,5999.5,6000.75,10\n{ms + 60_000},6000.75,6001,6000,6000.5,3\n"
    )
    spec = CsvSpec(kind="bars", instrument="ESM25", ts_format="unix_ms", bar_timestamp="close")
    ingest_csv(write(tmp_path, "b.csv", text), cat, spec, markets)
    bars = ParquetDataCatalog(str(cat)).bars(bar_types=["ESM25.GLBX-1-MINUTE-LAST-EXTERNAL"])
    assert [b.ts_init for b in bars] == [t1, t1 + 60 * 10**9]


def test_unix_seconds_with_fraction_and_strptime_format(tmp_path: Path, markets: MarketsConfig) -> None:
    base = utc("2025-06-02 13:31")
    text = f"ts,price,size\n{base // 10**9}.25,6000,1\n{base // 10**9 + 1},6000.25,1\n"
    spec = CsvSpec(kind="trades", instrument="ESM25", ts_format="unix_s")
    ingest_csv(write(tmp_path, "s.csv", text), tmp_path / "c1", spec, markets)
    stamps = [t.ts_init for t in ParquetDataCatalog(str(tmp_path / "c1")).trade_ticks()]
    assert stamps == [base + 250_000_000, base + 1_000_000_000]

    text = "ts,price,size\n02/06/2025 08:31:00,6000,1\n"
    spec = CsvSpec(kind="trades", instrument="ESM25", ts_format="%d/%m/%Y %H:%M:%S", timezone="America/Chicago")
    ingest_csv(write(tmp_path, "f.csv", text), tmp_path / "c2", spec, markets)
    assert [t.ts_init for t in ParquetDataCatalog(str(tmp_path / "c2")).trade_ticks()] == [base]


def test_instrument_written_once_per_catalog(tmp_path: Path, cat: Path, markets: MarketsConfig) -> None:
    ingest_csv(write(tmp_path, "t.csv", TRADES_SPRING), cat, TRADE_SPEC, markets)
    quotes = "ts,bid,ask,bid_size,ask_size\n2025-03-10 10:00,6850,6850.25,1,1\n"
    ingest_csv(write(tmp_path, "q.csv", quotes), cat, CsvSpec(kind="quotes", instrument="ESH25"), markets)
    entries = {(e.data_type, e.identifier): e for e in summarize(cat)}
    assert entries[("futures_contract", "ESH25.GLBX")].files == 1
    assert entries[("quote_tick", "ESH25.GLBX")].rows == 1


# -- bad rows: everything checked, nothing written ---------------------------------------------

HEADERS = {
    "trades": "ts,price,size,side",
    "quotes": "ts,bid,ask,bid_size,ask_size",
    "bars": "ts,open,high,low,close,volume",
}
GOOD = {
    "trades": "2025-03-10 10:00:00,6850.25,1,B",
    "quotes": "2025-03-10 10:00:00,6850.00,6850.25,1,1",
    "bars": "2025-03-10 10:00:00,6850,6851,6849.5,6850.5,10",
}


@pytest.mark.parametrize(
    ("kind", "bad", "reason"),
    [
        ("trades", "2025-03-10 10:00:02,6850.10,1,B", "price 6850.10 is not on the 0.25 tick grid"),
        ("trades", "2025-03-10 09:59:00,6850.25,1,B", "is earlier than line 3"),
        ("trades", "2025-03-10 10:00:02,6850.25,0,B", "size 0 is not > 0"),
        ("trades", "2025-03-10 10:00:02,6850.25,1.5,B", "size 1.5 is not a whole number of contracts"),
        ("trades", "2025-03-10 10:00:02,6850.25,1,X", "side 'X' is not one of"),
        ("trades", "not-a-time,6850.25,1,B", "cannot parse time 'not-a-time'"),
        ("trades", ",6850.25,1,B", "time is missing"),
        ("trades", "2025-03-10 10:00:02,abc,1,B", "price 'abc' is not a number"),
        ("trades", "2025-03-10 10:00:02,,1,B", "price is missing"),
        ("trades", "2025-03-09 02:30:00,6850.25,1,B", "does not exist in America/Chicago"),
        ("quotes", "2025-03-10 10:00:02,6850.25,6850.25,1,1", "bid 6850.25 is not below ask 6850.25"),
        ("quotes", "2025-03-10 10:00:02,6850.50,6850.25,1,1", "bid 6850.50 is not below ask 6850.25"),
        ("quotes", "2025-03-10 10:00:02,6850.00,6850.25,0,1", "bid_size 0 is not > 0"),
        ("quotes", "2025-03-10 10:00:02,6850.00,6850.30,1,1", "ask 6850.30 is not on the 0.25 tick grid"),
        ("bars", "2025-03-10 10:01:00,6850,6849,6849.5,6850.5,10", "OHLC inconsistent"),
        ("bars", "2025-03-10 10:01:00,6850,6851,6850.25,6850.5,10", "OHLC inconsistent"),
        ("bars", "2025-03-10 10:01:00,6850,6851,6849.5,6851.25,10", "OHLC inconsistent"),
        ("bars", "2025-03-10 10:01:00,6850,6851,6849.5,6850.5,-1", "volume -1 is not >= 0"),
        ("bars", "2025-03-10 10:00:00,6850,6851,6849.5,6850.5,10", "is not after line 3"),
    ],
)
def test_bad_row_rejected_and_nothing_written(
    tmp_path: Path, markets: MarketsConfig, kind: str, bad: str, reason: str
) -> None:
    cat = tmp_path / "catalog"
    # a catalog that already holds something, so "unchanged" is a real check
    seed = write(tmp_path, "seed.csv", f"{HEADERS[kind]}\n{GOOD[kind].replace('03-10', '03-03')}\n")
    spec = CsvSpec(kind=kind, instrument="ESH25", timezone="America/Chicago")  # type: ignore[arg-type]
    ingest_csv(seed, cat, spec, markets)
    path = write(tmp_path, "bad.csv", f"{HEADERS[kind]}\n\n{GOOD[kind]}\n{bad}\n")
    before = snapshot(tmp_path)
    with pytest.raises(CsvValidationError) as exc:
        ingest_csv(path, cat, spec, markets)
    message = str(exc.value)
    assert message.startswith("bad.csv: 1 bad row, nothing written: line 4: ")
    assert reason in message
    assert "\n" not in message
    assert exc.value.bad_rows[0].line == 4  # header = 1, blank line = 2, good row = 3
    assert isinstance(exc.value, DataValidationError)
    assert snapshot(tmp_path) == before


def test_ambiguous_local_time_is_a_bad_row(tmp_path: Path, cat: Path, markets: MarketsConfig) -> None:
    text = "ts,price,size\n2025-11-02 00:59:00,6900,1\n2025-11-02 01:30:00,6900,1\n2025-11-02 02:00:00,6900,1\n"
    spec = CsvSpec(kind="trades", instrument="ESZ25", timezone="America/Chicago")
    with pytest.raises(CsvValidationError) as exc:
        ingest_csv(write(tmp_path, "a.csv", text), cat, spec, markets)
    assert exc.value.bad_rows == [
        BadRow(3, "local time 2025-11-02 01:30:00 is ambiguous in America/Chicago (repeated hour at the DST change)"),
    ]
    assert not cat.exists()


def test_many_bad_rows_are_summarised(tmp_path: Path, cat: Path, markets: MarketsConfig) -> None:
    rows = [f"2025-03-10 10:00:{i:02d},6850.1{i % 10},1" for i in range(15)]
    rows[0] = "2025-03-10 10:00:00,6850.25,1"
    path = write(tmp_path, "prices.csv", "ts,price,size\n" + "\n".join(rows) + "\n")
    with pytest.raises(CsvValidationError) as exc:
        ingest_csv(path, cat, CsvSpec(kind="trades", instrument="ESH25"), markets, max_report=3)
    message = str(exc.value)
    assert message.startswith("prices.csv: 14 bad rows, nothing written: line 3: price 6850.11 is not on the 0.25")
    assert message.endswith("; ... and 11 more")
    assert [r.line for r in exc.value.bad_rows] == [3, 4, 5]
    assert exc.value.bad_count == 14


def test_missing_columns_named_with_file_columns(tmp_path: Path, cat: Path, markets: MarketsConfig) -> None:
    path = write(tmp_path, "q.csv", "time,Bid,offer,bs\n2025-03-10 10:00,1,2,3\n")
    spec = CsvSpec(kind="quotes", instrument="ESH25", columns={"ts": "time", "ask": "Ask"})
    with pytest.raises(DataValidationError) as exc:
        ingest_csv(path, cat, spec, markets)
    message = str(exc.value)
    assert "missing column(s) Ask (for ask), bid_size, ask_size" in message  # "Bid" matched case-insensitively
    assert "the file has columns time, Bid, offer, bs" in message
    assert not cat.exists()


def test_optional_trade_column_named_explicitly_must_exist(tmp_path: Path, cat: Path, markets: MarketsConfig) -> None:
    path = write(tmp_path, "t.csv", "ts,price,size\n2025-03-10 10:00,6850,1\n")
    spec = CsvSpec(kind="trades", instrument="ESH25", columns={"side": "Aggressor"})
    with pytest.raises(DataValidationError, match=r"missing column\(s\) Aggressor \(for side\)"):
        ingest_csv(path, cat, spec, markets)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "file is empty"), ("ts,price,size\n", "no data rows"), ("ts,price,size\n\n\n", "no data rows")],
)
def test_empty_files(tmp_path: Path, cat: Path, markets: MarketsConfig, text: str, problem: str) -> None:
    path = tmp_path / "e.csv"
    path.write_text(text)
    with pytest.raises(DataValidationError, match=problem):
        ingest_csv(path, cat, CsvSpec(kind="trades", instrument="ESH25"), markets)
    assert not cat.exists()


def test_missing_file_and_bad_spec(tmp_path: Path, cat: Path, markets: MarketsConfig) -> None:
    with pytest.raises(DataValidationError, match="file not found"):
        ingest_csv(tmp_path / "nope.csv", cat, CsvSpec(kind="trades", instrument="ESH25"), markets)
    path = write(tmp_path, "t.csv", "ts,price,size\n2025-03-10 10:00,6850,1\n")
    with pytest.raises(DataValidationError, match="unknown field"):
        ingest_csv(path, cat, CsvSpec(kind="trades", instrument="ESH25", columns={"px": "price"}), markets)
    with pytest.raises(DataValidationError, match="unknown time zone"):
        ingest_csv(path, cat, CsvSpec(kind="trades", instrument="ESH25", timezone="Mars/Olympus"), markets)


def test_overlap_with_catalog_rejected(tmp_path: Path, cat: Path, markets: MarketsConfig) -> None:
    ingest_csv(write(tmp_path, "t.csv", TRADES_SPRING), cat, TRADE_SPEC, markets)
    overlapping = "Time,Last,Qty\n2025-03-09 03:00:01,6851.00,1\n2025-03-09 03:05:00,6851.00,1\n"
    before = snapshot(tmp_path)
    spec = CsvSpec(
        kind="trades",
        instrument="ESH25",
        columns={"ts": "Time", "price": "Last", "size": "Qty"},
        timezone="America/Chicago",
    )
    with pytest.raises(DataValidationError) as exc:
        ingest_csv(write(tmp_path, "more.csv", overlapping), cat, spec, markets)
    message = str(exc.value)
    assert "already holds trade ticks for ESH25.GLBX" in message
    assert "overlapping" in message and "nothing written" in message
    before["more.csv"] = snapshot(tmp_path)["more.csv"]
    assert snapshot(tmp_path) == before

    later = "Time,Last,Qty\n2025-03-09 03:00:02,6851.00,1\n"
    ingest_csv(write(tmp_path, "later.csv", later), cat, spec, markets)
    [trades] = [e for e in summarize(cat) if e.data_type == "trade_tick"]
    assert (trades.rows, trades.files) == (6, 2)


@pytest.mark.parametrize("symbol", ["XYZZ25", "ESF25", "ES", "MNQ2025"])
def test_unknown_contract(tmp_path: Path, cat: Path, markets: MarketsConfig, symbol: str) -> None:
    path = write(tmp_path, "t.csv", "ts,price,size\n2025-03-10 10:00,6850,1\n")
    with pytest.raises(MiaError) as exc:
        ingest_csv(path, cat, CsvSpec(kind="trades", instrument=symbol), markets)
    assert "\n" not in str(exc.value)
    assert not cat.exists()
