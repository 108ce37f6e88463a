"""catalog.lean: QuantConnect Lean ES minute zips (real data slice in tests/data/lean_es) → catalog."""

import io
import shutil
import time
import zipfile
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.lean import LeanIngestResult
from catalog.lean import ingest_lean_futures
from catalog.store import summarize
from mia_strategies.config import MarketsConfig
from mia_strategies.config import load_markets
from mia_strategies.errors import ConfigError
from mia_strategies.errors import DataValidationError


REPO = Path(__file__).resolve().parents[1]
SLICE = REPO / "tests" / "data" / "lean_es"
SHARED_ES = Path(__file__).resolve().parents[2] / "shared" / "data" / "es_lean_minute" / "minute" / "es"
TICK = Decimal("0.25")
MINUTE_NS = 60_000_000_000


@pytest.fixture(scope="module")
def markets() -> MarketsConfig:
    return load_markets(REPO / "config" / "markets.yaml")


def raw_rows(folder: Path, kind: str) -> dict[str, pd.DataFrame]:
    """Every member CSV of the ``kind`` zips, read independently of the importer."""
    frames: dict[str, pd.DataFrame] = {}
    for zpath in sorted(folder.glob(f"*_{kind}.zip")):
        with zipfile.ZipFile(zpath) as zf:
            for name in zf.namelist():
                frames[name] = pd.read_csv(io.BytesIO(zf.read(name)), header=None)
    return frames


def usable_quotes(frame: pd.DataFrame) -> pd.Series:
    """Rows with both sides present and bid < ask: what the importer should keep."""
    return frame[4].notna() & frame[9].notna() & (frame[5] > 0) & (frame[10] > 0) & (frame[4] < frame[9])


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, markets: MarketsConfig) -> tuple[Path, LeanIngestResult]:
    cat = tmp_path_factory.mktemp("lean") / "catalog"
    calls: list[tuple[int, int]] = []
    result = ingest_lean_futures(SLICE, cat, "ES", markets, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    return cat, result


def test_slice_is_small_and_attributed() -> None:
    zips = sorted(p.name for p in SLICE.glob("*.zip"))
    assert zips == [f"{d}_{k}.zip" for d in ("20131006", "20131202", "20131218") for k in ("quote", "trade")]
    assert sum(p.stat().st_size for p in SLICE.iterdir()) < 400_000
    text = (SLICE / "ATTRIBUTION.md").read_text()
    assert "QuantConnect/Lean" in text and "Apache-2.0" in text


def test_result_counts_match_the_raw_files(ingested: tuple[Path, LeanIngestResult]) -> None:
    _, result = ingested
    trades = raw_rows(SLICE, "trade")
    quotes = raw_rows(SLICE, "quote")
    n_quote_rows = sum(len(f) for f in quotes.values())
    n_usable = sum(int(usable_quotes(f).sum()) for f in quotes.values())
    assert result.bars == sum(len(f) for f in trades.values()) == 4595
    assert result.quotes == n_usable == 9039
    assert result.skipped_quotes == n_quote_rows - n_usable == 88
    assert result.days == 3
    assert result.skipped_existing == 0
    assert result.instruments == ["ESZ13.GLBX", "ESH14.GLBX", "ESM14.GLBX", "ESU14.GLBX", "ESZ14.GLBX"]
    assert result.start_ns == pd.Timestamp("2013-10-06 19:01", tz="UTC").value  # pre-open quotes
    assert result.end_ns == pd.Timestamp("2013-12-19 00:00", tz="UTC").value  # close of the 23:59 bar


def test_instruments_are_real_es_contracts(ingested: tuple[Path, LeanIngestResult]) -> None:
    cat, _ = ingested
    instruments = {str(i.id): i for i in ParquetDataCatalog(str(cat)).instruments()}
    assert {"ESZ13.GLBX", "ESH14.GLBX"} <= set(instruments)
    for inst in instruments.values():
        assert int(inst.multiplier) == 50
        assert inst.price_increment.as_decimal() == TICK
    assert pd.Timestamp(instruments["ESZ13.GLBX"].expiration_ns, tz="UTC") == pd.Timestamp("2013-12-20 14:30", tz="UTC")
    assert pd.Timestamp(instruments["ESH14.GLBX"].expiration_ns, tz="UTC") == pd.Timestamp("2014-03-21 13:30", tz="UTC")


def test_bars_stamped_at_close_with_file_values(ingested: tuple[Path, LeanIngestResult]) -> None:
    cat, _ = ingested
    catalog = ParquetDataCatalog(str(cat))
    trades = raw_rows(SLICE, "trade")
    for member, contract in (
        ("20131202_es_minute_trade_201312.csv", "ESZ13"),
        ("20131218_es_minute_trade_201403.csv", "ESH14"),
    ):
        raw = trades[member]
        day = pd.Timestamp(member[:8], tz="UTC").value
        start, end = day, day + 86_400 * 10**9
        bars = [
            b for b in catalog.bars(bar_types=[f"{contract}.GLBX-1-MINUTE-LAST-EXTERNAL"]) if start < b.ts_init <= end
        ]
        assert len(bars) == len(raw)
        first = raw.iloc[0]
        assert bars[0].ts_init == bars[0].ts_event == day + int(first[0]) * 1_000_000 + MINUTE_NS
        assert [float(bars[0].open), float(bars[0].high), float(bars[0].low), float(bars[0].close)] == list(first[1:5])
        assert int(bars[0].volume) == int(first[5])
        assert [b.ts_init for b in bars] == [day + int(ms) * 1_000_000 + MINUTE_NS for ms in raw[0]]


def test_roll_visible_in_volume(ingested: tuple[Path, LeanIngestResult]) -> None:
    """ESZ13 is the front month on 2013-12-02; by 2013-12-18 (after the 12-12 roll) ESH14 is."""
    cat, _ = ingested
    catalog = ParquetDataCatalog(str(cat))

    def volume(contract: str, day: str) -> int:
        start = pd.Timestamp(day, tz="UTC").value
        bars = catalog.bars(bar_types=[f"{contract}.GLBX-1-MINUTE-LAST-EXTERNAL"])
        return sum(int(b.volume) for b in bars if start < b.ts_init <= start + 86_400 * 10**9)

    assert volume("ESZ13", "2013-12-02") > 100 * volume("ESH14", "2013-12-02")
    assert volume("ESH14", "2013-12-18") > 5 * volume("ESZ13", "2013-12-18")


def test_every_price_on_grid_and_quotes_not_crossed(ingested: tuple[Path, LeanIngestResult]) -> None:
    cat, result = ingested
    catalog = ParquetDataCatalog(str(cat))
    bars = catalog.bars()
    quotes = catalog.quote_ticks()
    assert (len(bars), len(quotes)) == (result.bars, result.quotes)
    for b in bars:
        for p in (b.open, b.high, b.low, b.close):
            assert p.as_decimal() % TICK == 0
        assert b.low <= b.open <= b.high and b.low <= b.close <= b.high
    for q in quotes:
        assert q.bid_price.as_decimal() % TICK == 0 and q.ask_price.as_decimal() % TICK == 0
        assert q.bid_price < q.ask_price
        assert int(q.bid_size) > 0 and int(q.ask_size) > 0
        assert q.ts_init % MINUTE_NS == 0  # one quote per minute, at the bar close


def test_quotes_are_bar_closes(ingested: tuple[Path, LeanIngestResult]) -> None:
    cat, _ = ingested
    raw = raw_rows(SLICE, "quote")["20131202_es_minute_quote_201312.csv"]
    raw = raw[usable_quotes(raw)]
    day = pd.Timestamp("2013-12-02", tz="UTC").value
    quotes = [
        q
        for q in ParquetDataCatalog(str(cat)).quote_ticks(instrument_ids=["ESZ13.GLBX"])
        if day < q.ts_init <= day + 86_400 * 10**9
    ]
    assert len(quotes) == len(raw)
    got = [(q.ts_init, float(q.bid_price), float(q.ask_price), int(q.bid_size), int(q.ask_size)) for q in quotes]
    want = [
        (day + int(r[0]) * 1_000_000 + MINUTE_NS, float(r[4]), float(r[9]), int(r[5]), int(r[10]))
        for r in raw.itertuples(index=False, name=None)
    ]
    assert got == want


def test_rerun_is_idempotent(ingested: tuple[Path, LeanIngestResult], markets: MarketsConfig) -> None:
    cat, first = ingested
    entries = summarize(cat)
    before = tree(cat)
    again = ingest_lean_futures(SLICE, cat, "ES", markets)
    assert (again.bars, again.quotes) == (0, 0)
    assert again.skipped_existing == sum(e.files for e in entries if e.data_type in ("bar", "quote_tick"))
    assert again.instruments == first.instruments
    assert tree(cat) == before
    assert sorted(p.name for p in cat.parent.iterdir()) == ["catalog"]  # no staging folder left


def test_partial_rerun_adds_only_new_days(tmp_path: Path, markets: MarketsConfig) -> None:
    first_day = tmp_path / "src1"
    first_day.mkdir()
    for name in ("20131006_trade.zip", "20131006_quote.zip"):
        shutil.copy(SLICE / name, first_day / name)
    cat = tmp_path / "catalog"
    one = ingest_lean_futures(first_day, cat, "ES", markets)
    assert one.days == 1 and one.bars == 128
    full = ingest_lean_futures(SLICE, cat, "ES", markets)
    assert full.bars == 4595 - one.bars
    assert full.quotes == 9039 - one.quotes
    assert full.skipped_existing == 2 + 5  # 2 trade and 5 quote contract-days of 2013-10-06
    assert sum(e.rows for e in summarize(cat) if e.data_type == "bar") == 4595


def test_lean_data_root_is_accepted(tmp_path: Path, markets: MarketsConfig) -> None:
    nested = tmp_path / "lean" / "minute" / "es"
    nested.mkdir(parents=True)
    shutil.copy(SLICE / "20131006_trade.zip", nested)
    result = ingest_lean_futures(tmp_path / "lean", tmp_path / "catalog", "es", markets)
    assert result.bars == 128 and result.quotes == 0


def _zip(path: Path, members: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)


def test_bad_rows_rejected_and_nothing_written(tmp_path: Path, markets: MarketsConfig) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SLICE / "20131006_quote.zip", src)
    _zip(
        src / "20131007_trade.zip",
        {
            "20131007_es_minute_trade_201312.csv": (
                "0,1680,1680.25,1679.75,1680,10\n"
                "60000,1680.10,1680.25,1679.75,1680,10\n"
                "90000,1680,1680.25,1679.75,1680,10\n"
                "180000,1680,1679.75,1679.75,1680,10\n"
            ),
        },
    )
    cat = tmp_path / "catalog"
    before = tree(tmp_path)
    with pytest.raises(DataValidationError) as exc:
        ingest_lean_futures(src, cat, "ES", markets)
    message = str(exc.value)
    assert "3 bad rows, nothing written" in message
    assert (
        "20131007_trade.zip/20131007_es_minute_trade_201312.csv line 2: open 1680.1 is not on the 0.25 tick grid"
        in message
    )
    assert "line 3: time 90000 ms is not a whole minute of the day" in message
    assert "line 4: OHLC inconsistent" in message
    assert "\n" not in message
    assert tree(tmp_path) == before


def test_wrong_root_empty_folder_and_unknown_root(tmp_path: Path, markets: MarketsConfig) -> None:
    with pytest.raises(DataValidationError, match="holds ES data, not NQ"):
        ingest_lean_futures(SLICE, tmp_path / "c", "NQ", markets)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataValidationError, match="no Lean minute files"):
        ingest_lean_futures(tmp_path / "empty", tmp_path / "c", "ES", markets)
    with pytest.raises(DataValidationError, match="folder not found"):
        ingest_lean_futures(tmp_path / "missing", tmp_path / "c", "ES", markets)
    with pytest.raises(ConfigError, match="unknown instrument"):
        ingest_lean_futures(SLICE, tmp_path / "c", "ZZ", markets)
    assert not (tmp_path / "c").exists()


def test_unlisted_contract_month_rejected(tmp_path: Path, markets: MarketsConfig) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _zip(src / "20131007_trade.zip", {"20131007_es_minute_trade_201401.csv": "0,1680,1680,1680,1680,1\n"})
    with pytest.raises(DataValidationError, match="lists only months HMUZ"):
        ingest_lean_futures(src, tmp_path / "c", "ES", markets)


@pytest.mark.realdata
def test_full_shared_es_data(tmp_path: Path, markets: MarketsConfig) -> None:
    if not SHARED_ES.is_dir():
        pytest.skip(f"real data not found at {SHARED_ES} (the shared data folder sits beside the repository)")
    started = time.perf_counter()
    result = ingest_lean_futures(SHARED_ES, tmp_path / "catalog", "ES", markets)
    elapsed = time.perf_counter() - started
    trades = raw_rows(SHARED_ES, "trade")
    quotes = raw_rows(SHARED_ES, "quote")
    assert result.days == 16
    assert result.bars == sum(len(f) for f in trades.values())
    assert result.quotes == sum(int(usable_quotes(f).sum()) for f in quotes.values())
    assert result.quotes + result.skipped_quotes == sum(len(f) for f in quotes.values())
    assert {"ESZ13.GLBX", "ESH14.GLBX", "ESH20.GLBX", "ESM20.GLBX"} <= set(result.instruments)
    assert result.end_ns == pd.Timestamp("2020-01-07 00:00", tz="UTC").value
    print(f"full ES Lean data: {result} in {elapsed:.2f}s")
    again = ingest_lean_futures(SHARED_ES, tmp_path / "catalog", "ES", markets)
    assert (again.bars, again.quotes) == (0, 0)
