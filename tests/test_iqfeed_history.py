"""``mia ingest iqfeed`` against the simulator: lossless, resumable, idempotent; same backtest fills."""

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO
from conftest import run_mia
from iqfeed_fixtures import simulator_thread
from iqfeed_fixtures import trade_key
from iqfeed_fixtures import write_trades_catalog
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from adapters.iqfeed.history import Batch
from adapters.iqfeed.history import ingest_iqfeed
from adapters.iqfeed.history import plan_batches
from adapters.iqfeed.history import resolve_contracts
from adapters.iqfeed.simulator import SimulatorSource
from mia_strategies import sessions
from mia_strategies.backtest import plan_backtest
from mia_strategies.backtest import run_backtest
from mia_strategies.config import BacktestConfig
from mia_strategies.config import FillModelSettings
from mia_strategies.config import VenueSettings
from mia_strategies.errors import ConfigError
from mia_strategies.instruments import ContractRef


pytestmark = pytest.mark.timeout(300)
START = "2025-12-09"
END = "2025-12-12"
NOW = pd.Timestamp("2026-01-15", tz="UTC").value


@pytest.fixture(scope="module")
def source_catalog(roll_week_catalog, tmp_path_factory) -> Path:
    """The roll week as IQFeed can hold it: µs trades and the touch at each trade (see the fixture)."""
    path = tmp_path_factory.mktemp("iqsrc") / "catalog"
    write_trades_catalog(roll_week_catalog, path, with_quotes=True)
    return path


def _ns(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


def _trades(path: Path) -> list:
    return ParquetDataCatalog(str(path)).trade_ticks()


def _quote_key(q) -> tuple:
    return (q.instrument_id.value, q.ts_event, q.bid_price.raw, q.ask_price.raw, q.bid_size.raw, q.ask_size.raw)


def test_plan_covers_closed_sessions_of_every_active_contract(markets):
    contracts = resolve_contracts(["ES", "MNQH26"], _ns(START), _ns(END), markets)
    assert [c.symbol for c in contracts] == ["ESZ25", "ESH26", "MNQH26"]
    batches = plan_batches(contracts, _ns(START), _ns(END), ["ticks", "quotes", "bars", "daily"], markets, NOW)
    ticks = [b for b in batches if b.kind == "ticks" and b.contract.symbol == "ESZ25"]
    days = [sessions.trading_day(b.start_ns) for b in ticks]
    assert [d.isoformat() for d in days] == ["2025-12-09", "2025-12-10", "2025-12-11", "2025-12-12"]
    assert all((b.start_ns, b.end_ns) == sessions.session_bounds(d) for b, d in zip(ticks, days, strict=True))
    assert sum(b.kind == "daily" for b in batches) == 3
    assert all(b.outputs == ("ticks", "quotes") for b in batches if b.kind == "ticks")
    # a session that has not closed yet is never planned (it would be skipped forever once written)
    now = _ns("2025-12-10 20:00")
    later = plan_batches(contracts, _ns(START), _ns(END), ["ticks"], markets, now)
    assert max(b.end_ns for b in later) <= now
    with pytest.raises(ConfigError, match="--kinds"):
        plan_batches(contracts, _ns(START), _ns(END), ["depth"], markets, NOW)


def test_ingest_is_lossless_resumable_and_idempotent(markets, source_catalog, tmp_path):
    target = tmp_path / "catalog"
    with simulator_thread(markets, SimulatorSource(catalog=source_catalog, rate=0)) as sim:
        port = sim.ports["lookup"]
        # first a part of the range (an "interrupted" download), then all of it
        first = ingest_iqfeed(
            target, ["ES", "MNQ"], _ns(START), _ns("2025-12-10 12:00"), markets, port=port, now_ns=NOW
        )
        rest = run_mia(
            "ingest", "iqfeed", "--instruments", "ES,MNQ", "--start", START, "--end", END,
            "--lookup-port", str(port), "--catalog", str(target), timeout=240,
        )  # fmt: skip
        again = ingest_iqfeed(target, ["ES", "MNQ"], _ns(START), _ns(END), markets, port=port, now_ns=NOW)
    assert rest.returncode == 0, rest.stderr[-2000:]
    assert first.written > 0 and "already in the catalog" in rest.stdout
    assert again.written == 0 and again.skipped == again.batches - again.empty

    # the range is rounded out to whole Globex sessions
    lo = sessions.session_bounds(sessions.trading_day(_ns(START)))[0]
    hi = sessions.session_bounds(sessions.trading_day(_ns(END) - 1))[1]
    source = [t for t in _trades(source_catalog) if lo <= t.ts_event < hi]
    ingested = _trades(target)
    assert sorted(map(trade_key, ingested)) == sorted(map(trade_key, source))
    assert all(t.trade_id.value.isdigit() for t in ingested)  # IQFeed TickIDs
    source_quotes = ParquetDataCatalog(str(source_catalog)).quote_ticks()
    source_quotes = [q for q in source_quotes if lo <= q.ts_event < hi]
    quotes = ParquetDataCatalog(str(target)).quote_ticks()
    assert len(quotes) > 100 and sorted(map(_quote_key, quotes)) == sorted(map(_quote_key, source_quotes))

    catalog = ParquetDataCatalog(str(target))
    minute = [b for b in catalog.bars() if "MINUTE" in str(b.bar_type)]
    daily = [b for b in catalog.bars() if "DAY" in str(b.bar_type)]
    # 1-minute bars are the source trades aggregated and stamped at the close (IQFeed's H,L,O,C mapped)
    es = "ESZ25.GLBX"
    trades = pd.DataFrame(
        [(t.ts_event, t.price.as_double(), t.size.as_double()) for t in source if t.instrument_id.value == es],
        columns=["ts", "price", "size"],
    )
    close = (trades["ts"] // 60_000_000_000 + 1) * 60_000_000_000
    expected = trades.groupby(close).agg(
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("size", "sum"),
    )
    got = pd.DataFrame(
        [
            (
                b.ts_event,
                b.open.as_double(),
                b.high.as_double(),
                b.low.as_double(),
                b.close.as_double(),
                b.volume.as_double(),
            )
            for b in minute
            if b.bar_type.instrument_id.value == es
        ],
        columns=["ts", "open", "high", "low", "close", "volume"],
    ).set_index("ts")
    pd.testing.assert_frame_equal(got.sort_index(), expected.rename_axis("ts"), check_dtype=False)
    assert all(b.ts_event == b.ts_init for b in minute)
    # daily bars at the 16:00 CT session close of each trading day
    es_daily = sorted((b for b in daily if b.bar_type.instrument_id.value == es), key=lambda b: b.ts_event)
    assert [sessions.to_local(b.ts_event).strftime("%Y-%m-%d %H:%M") for b in es_daily][:2] == [
        "2025-12-09 16:00",
        "2025-12-10 16:00",
    ]


def test_backtest_on_ingested_data_fills_like_the_source(markets, source_catalog, tmp_path):
    target = tmp_path / "catalog"
    with simulator_thread(markets, SimulatorSource(catalog=source_catalog, rate=0)) as sim:
        report = ingest_iqfeed(
            target,
            ["ES", "MNQ"],
            _ns(START),
            _ns(END),
            markets,
            kinds=["ticks", "quotes"],
            port=sim.ports["lookup"],
            now_ns=NOW,
        )
    assert report.rows["ticks"] > 1000

    def backtest(catalog: Path, name: str):
        config = BacktestConfig(venue=VenueSettings(fill_model=FillModelSettings(prob_slippage=0.0)))
        plan = plan_backtest(config, REPO / "config", catalog=catalog, start=START, end=END, out=tmp_path / name)
        return run_backtest(plan)

    direct, ingested = backtest(source_catalog, "direct"), backtest(target, "ingested")
    columns = ["ts", "instrument_id", "side", "quantity", "price", "commission", "order_type"]
    assert len(direct.fills) > 0
    pd.testing.assert_frame_equal(ingested.fills[columns], direct.fills[columns])
    assert ingested.summary["net_pnl"] == direct.summary["net_pnl"]
    assert json.loads((tmp_path / "ingested" / "summary.json").read_text())["trades"] == direct.summary["trades"]


def test_ingest_errors_are_one_line(markets, source_catalog, tmp_path):
    result = run_mia(
        "ingest", "iqfeed", "--instruments", "ES", "--start", START, "--end", END,
        "--lookup-port", "1", "--catalog", str(tmp_path / "c"), timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach IQConnect lookup port" in lines[0] and "mia iqfeed-sim" in lines[0]
    assert not (tmp_path / "c").exists()
    with simulator_thread(markets, SimulatorSource(catalog=source_catalog, rate=0)) as sim:
        sim.call(lambda s: s.market.universe.unauthorized.add("@ESZ25"))
        from adapters.iqfeed.history import IQFeedIngestError

        with pytest.raises(IQFeedIngestError, match="not entitled"):
            ingest_iqfeed(
                tmp_path / "c", ["ESZ25"], _ns(START), _ns(END), markets, port=sim.ports["lookup"], now_ns=NOW
            )
    bad = run_mia("ingest", "iqfeed", "--instruments", "ES", "--start", END, "--end", START, timeout=60)
    assert bad.returncode == 2 and "--end" in bad.stderr


def test_batch_keys_tell_every_batch_apart(markets):
    """The manifest is keyed by ``Batch.key``: two batches sharing a key would skip one of them forever."""
    batch = Batch("ticks", ContractRef(2025, 12, "ES"), 0, 1, ("ticks", "quotes"), "ESZ25 ticks 2025-12-09")
    assert batch.symbol == "@ESZ25"
    assert batch.key == "ticks|ticks+quotes|ESZ25|0|1"
    contracts = resolve_contracts(["ES", "MNQ"], _ns(START), _ns(END), markets)
    batches = plan_batches(contracts, _ns(START), _ns(END), ["ticks", "quotes", "bars", "daily"], markets, NOW)
    assert len({b.key for b in batches}) == len(batches)
    # asking for trades only is another batch than trades and quotes: adding quotes later downloads again
    trades_only = plan_batches(contracts, _ns(START), _ns(END), ["ticks"], markets, NOW)
    assert not {b.key for b in trades_only} & {b.key for b in batches}
