"""catalog.store: default path, opening, fast summaries from file names and footers, staged writes."""

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.instruments import FuturesContract
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from rich.console import Console

from catalog.store import CatalogEntry
from catalog.store import StagedCatalog
from catalog.store import catalog_has_data
from catalog.store import data_range
from catalog.store import default_catalog_path
from catalog.store import format_ns
from catalog.store import open_catalog
from catalog.store import parse_file_interval
from catalog.store import render_summary
from catalog.store import summarize
from mia_strategies.config import MarketsConfig
from mia_strategies.config import load_markets
from mia_strategies.errors import CatalogError
from mia_strategies.errors import MiaError
from mia_strategies.instruments import build_futures_contract
from mia_strategies.instruments import parse_contract_symbol


REPO = Path(__file__).resolve().parents[1]
T0 = pd.Timestamp("2024-01-02 14:30", tz="UTC").value
MIN = 60_000_000_000


@pytest.fixture(scope="module")
def markets() -> MarketsConfig:
    return load_markets(REPO / "config" / "markets.yaml")


def _quotes(instrument: FuturesContract, start_ns: int, n: int) -> list[QuoteTick]:
    return [
        QuoteTick(
            instrument.id,
            Price(4800 + 0.25 * (i % 4), 2),
            Price(4800.25 + 0.25 * (i % 4), 2),
            Quantity.from_int(5),
            Quantity.from_int(7),
            start_ns + i * MIN,
            start_ns + i * MIN,
        )
        for i in range(n)
    ]


def _trades(instrument: FuturesContract, start_ns: int, n: int) -> list[TradeTick]:
    return [
        TradeTick(
            instrument.id,
            Price(4800.5, 2),
            Quantity.from_int(1),
            AggressorSide.BUYER,
            TradeId(str(i)),
            start_ns + i * 1_000_000_000,
            start_ns + i * 1_000_000_000,
        )
        for i in range(n)
    ]


def _bars(instrument: FuturesContract, start_ns: int, n: int) -> list[Bar]:
    bar_type = BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL")
    p = Price(4800, 2)
    return [
        Bar(bar_type, p, p, p, p, Quantity.from_int(10), start_ns + i * MIN, start_ns + i * MIN)
        for i in range(1, n + 1)
    ]


@pytest.fixture
def filled(tmp_path: Path, markets: MarketsConfig) -> Path:
    """A catalog written with nautilus itself: two contracts, quotes in two files, trades, bars."""
    path = tmp_path / "cat"
    catalog = ParquetDataCatalog(str(path))
    esh = build_futures_contract(parse_contract_symbol("ESH24", markets), markets)
    mnq = build_futures_contract(parse_contract_symbol("MNQH24", markets), markets)
    catalog.write_data([esh, mnq])
    catalog.write_data(_quotes(esh, T0, 1500))
    catalog.write_data(_quotes(esh, T0 + 2000 * MIN, 10))
    catalog.write_data(_quotes(mnq, T0 + 5 * MIN, 3))
    catalog.write_data(_trades(esh, T0, 4))
    catalog.write_data(_bars(esh, T0, 30))
    return path


def test_default_catalog_path_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MIA_CATALOG", raising=False)
    assert default_catalog_path() == Path("data/catalog")
    monkeypatch.setenv("MIA_CATALOG", str(tmp_path / "elsewhere"))
    assert default_catalog_path() == tmp_path / "elsewhere"
    monkeypatch.setenv("MIA_CATALOG", "")
    assert default_catalog_path() == Path("data/catalog")


def test_missing_and_empty_catalog_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert not catalog_has_data(missing)
    with pytest.raises(CatalogError) as exc:
        open_catalog(missing)
    message = str(exc.value)
    assert "not found" in message and "mia backtest" in message and "mia ingest" in message
    assert "\n" not in message
    assert isinstance(exc.value, MiaError)

    empty = tmp_path / "empty"
    (empty / "data" / "quote_tick" / "ESH24.GLBX").mkdir(parents=True)
    assert not catalog_has_data(empty)
    with pytest.raises(CatalogError, match="holds no data"):
        open_catalog(empty)

    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(CatalogError, match="not a folder"):
        open_catalog(a_file)


def test_open_catalog_reads_back(filled: Path) -> None:
    assert catalog_has_data(filled)
    catalog = open_catalog(filled)
    assert len(catalog.quote_ticks(instrument_ids=["ESH24.GLBX"])) == 1510
    assert {str(i.id) for i in catalog.instruments()} == {"ESH24.GLBX", "MNQH24.GLBX"}


def test_summarize_counts_rows_ranges_and_types(filled: Path) -> None:
    entries = summarize(filled)
    by_key = {(e.data_type, e.identifier): e for e in entries}
    assert [(e.data_type, e.identifier) for e in entries] == sorted(by_key)
    assert set(by_key) == {
        ("bar", "ESH24.GLBX-1-MINUTE-LAST-EXTERNAL"),
        ("futures_contract", "ESH24.GLBX"),
        ("futures_contract", "MNQH24.GLBX"),
        ("quote_tick", "ESH24.GLBX"),
        ("quote_tick", "MNQH24.GLBX"),
        ("trade_tick", "ESH24.GLBX"),
    }
    quotes = by_key[("quote_tick", "ESH24.GLBX")]
    assert quotes == CatalogEntry("quote_tick", "ESH24.GLBX", T0, T0 + 2009 * MIN, 1510, 2)
    assert by_key[("trade_tick", "ESH24.GLBX")].rows == 4
    assert by_key[("trade_tick", "ESH24.GLBX")].end_ns == T0 + 3_000_000_000
    bars = by_key[("bar", "ESH24.GLBX-1-MINUTE-LAST-EXTERNAL")]
    assert (bars.rows, bars.start_ns, bars.end_ns) == (30, T0 + MIN, T0 + 30 * MIN)
    assert by_key[("futures_contract", "ESH24.GLBX")].rows == 1


def test_summarize_empty_and_missing(tmp_path: Path) -> None:
    assert summarize(tmp_path / "missing") == []
    (tmp_path / "c" / "data").mkdir(parents=True)
    assert summarize(tmp_path / "c") == []


def test_data_range(filled: Path) -> None:
    assert data_range(filled, "quote_tick", ["ESH24.GLBX"]) == (T0, T0 + 2009 * MIN)
    assert data_range(filled, "quote_tick", ["MNQH24.GLBX"]) == (T0 + 5 * MIN, T0 + 7 * MIN)
    assert data_range(filled, "quote_tick", ["ESH24.GLBX", "MNQH24.GLBX"]) == (T0, T0 + 2009 * MIN)
    assert data_range(filled, "quote_tick", []) is None
    assert data_range(filled, "quote_tick", ["NQH24.GLBX"]) is None
    assert data_range(filled, "trade_tick", ["MNQH24.GLBX"]) is None
    assert data_range(filled, "order_book_delta", ["ESH24.GLBX"]) is None
    assert data_range(filled, "bar", ["ESH24.GLBX-1-MINUTE-LAST-EXTERNAL"]) == (T0 + MIN, T0 + 30 * MIN)


def test_file_names_parse_to_their_interval(filled: Path) -> None:
    files = sorted((filled / "data" / "quote_tick" / "ESH24.GLBX").glob("*.parquet"))
    assert files[0].name == "2024-01-02T14-30-00-000000000Z_2024-01-03T15-29-00-000000000Z.parquet"
    assert parse_file_interval(files[0]) == (T0, T0 + 1499 * MIN)
    assert parse_file_interval(Path("part-0.parquet")) is None


def test_foreign_file_names_fall_back_to_footer_statistics(tmp_path: Path) -> None:
    folder = tmp_path / "cat" / "data" / "custom_signal"
    folder.mkdir(parents=True)
    table = pa.table({"value": [1.0, 2.0, 3.0], "ts_init": pa.array([T0 + 5, T0, T0 + 9], pa.uint64())})
    pq.write_table(table, folder / "part-0.parquet")
    [entry] = summarize(tmp_path / "cat")
    assert entry == CatalogEntry("custom_signal", "", T0, T0 + 9, 3, 1)


def test_render_summary_formats_times_and_thousands(filled: Path) -> None:
    console = Console(width=200, record=True)
    console.print(render_summary(summarize(filled)))
    text = console.export_text()
    assert "1,510" in text
    assert "2024-01-02T14:30:00Z" in text
    assert "ESH24.GLBX-1-MINUTE-LAST-EXTERNAL" in text
    assert format_ns(T0 + 1500) == "2024-01-02T14:30:00.0000015Z"
    assert format_ns(None) == "-"


def test_staged_catalog_commit_and_cleanup(tmp_path: Path, markets: MarketsConfig) -> None:
    target = tmp_path / "cat"
    esh = build_futures_contract(parse_contract_symbol("ESH24", markets), markets)
    with StagedCatalog(target) as staged:
        staged.catalog.write_data(_quotes(esh, T0, 5))
        assert staged.staging.parent == tmp_path
        assert staged.commit() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat"]
    assert summarize(target)[0].rows == 5

    # an overlapping staged file is refused and nothing moves; the staging folder is gone afterwards
    before = sorted(p.relative_to(target) for p in target.rglob("*"))
    with pytest.raises(CatalogError, match="overlapping"), StagedCatalog(target) as staged:
        staged.catalog.write_data([esh])
        staged.catalog.write_data(_quotes(esh, T0 + 4 * MIN, 3))
        staged.commit()
    assert sorted(p.relative_to(target) for p in target.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat"]

    # an exception while building also leaves no staging folder behind
    with pytest.raises(RuntimeError), StagedCatalog(target) as staged:
        staged.catalog.write_data(_quotes(esh, T0 + 100 * MIN, 3))
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat"]
