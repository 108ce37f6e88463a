"""The seeded demo catalog: what it writes, that it is realistic, deterministic, and safe to build.

Everything is read back through nautilus' ``ParquetDataCatalog`` so the tests prove what a backtest
will see, not what the generator meant to write.
"""

import datetime as dt
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog import demo
from catalog.demo import DEMO_START
from catalog.demo import DemoSummary
from catalog.demo import generate_demo_catalog
from mia_strategies import sessions
from mia_strategies.config import MarketsConfig
from mia_strategies.config import load_markets
from mia_strategies.errors import CatalogError


ROOT = Path(__file__).resolve().parents[1]
TICK = 0.25
#: Thursday 11 Dec (the ESZ25 -> ESH26 roll, 14:30 UTC), Friday 12 and Monday 15 Dec 2025.
ROLL_START = "2025-12-10"


@dataclass
class Quotes:
    ts: np.ndarray
    ts_init: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray

    @property
    def mid(self) -> np.ndarray:
        return (self.bid + self.ask) / 2.0


@dataclass
class Trades:
    ts: np.ndarray
    ts_init: np.ndarray
    price: np.ndarray
    size: np.ndarray
    buyer: np.ndarray
    trade_id: list[str]


def read_quotes(path: Path, instrument_id: str) -> Quotes:
    ticks = ParquetDataCatalog(str(path)).quote_ticks(instrument_ids=[instrument_id])
    return Quotes(
        ts=np.array([q.ts_event for q in ticks], dtype=np.int64),
        ts_init=np.array([q.ts_init for q in ticks], dtype=np.int64),
        bid=np.array([q.bid_price.as_double() for q in ticks]),
        ask=np.array([q.ask_price.as_double() for q in ticks]),
        bid_size=np.array([q.bid_size.as_double() for q in ticks]),
        ask_size=np.array([q.ask_size.as_double() for q in ticks]),
    )


def read_trades(path: Path, instrument_id: str) -> Trades:
    ticks = ParquetDataCatalog(str(path)).trade_ticks(instrument_ids=[instrument_id])
    return Trades(
        ts=np.array([t.ts_event for t in ticks], dtype=np.int64),
        ts_init=np.array([t.ts_init for t in ticks], dtype=np.int64),
        price=np.array([t.price.as_double() for t in ticks]),
        size=np.array([t.size.as_double() for t in ticks]),
        buyer=np.array([t.aggressor_side == AggressorSide.BUYER for t in ticks]),
        trade_id=[str(t.trade_id) for t in ticks],
    )


def minute_mids(quotes: Quotes, mask: np.ndarray | None = None) -> pd.Series:
    """Last mid of every minute with a quote (no forward fill across silent minutes)."""
    keep = slice(None) if mask is None else mask
    index = pd.to_datetime(quotes.ts[keep], unit="ns", utc=True)
    return pd.Series(quotes.mid[keep], index=index).resample("1min").last().dropna()


def rth_mask(ts: np.ndarray) -> np.ndarray:
    local = pd.to_datetime(ts, unit="ns", utc=True).tz_convert(sessions.EXCHANGE_TZ)
    minutes = local.hour * 60 + local.minute
    return np.asarray((minutes >= 8 * 60 + 30) & (minutes < 15 * 60))


@pytest.fixture(scope="module")
def markets() -> MarketsConfig:
    return load_markets(ROOT / "config" / "markets.yaml")


@pytest.fixture(scope="module")
def roll_demo(tmp_path_factory: pytest.TempPathFactory, markets: MarketsConfig) -> DemoSummary:
    """Three sparse sessions: the roll day, the Friday, the weekend, the Monday."""
    path = tmp_path_factory.mktemp("roll") / "catalog"
    return generate_demo_catalog(path, markets, start=ROLL_START, trading_days=3, intensity=0.05)


@pytest.fixture(scope="module")
def dense_demo(tmp_path_factory: pytest.TempPathFactory, markets: MarketsConfig) -> DemoSummary:
    """Two busier sessions from the default start, for return statistics."""
    path = tmp_path_factory.mktemp("dense") / "catalog"
    return generate_demo_catalog(path, markets, trading_days=2, intensity=0.4)


# -- what is written ------------------------------------------------------------------------------


def test_roll_demo_holds_both_contracts_of_each_root(roll_demo: DemoSummary) -> None:
    assert roll_demo.instruments == ["ESZ25.GLBX", "ESH26.GLBX", "MNQZ25.GLBX", "MNQH26.GLBX"]
    catalog = ParquetDataCatalog(str(roll_demo.path))
    instruments = {str(i.id): i for i in catalog.instruments()}
    assert set(instruments) == set(roll_demo.instruments)
    assert int(instruments["ESH26.GLBX"].multiplier) == 50
    assert int(instruments["MNQZ25.GLBX"].multiplier) == 2
    assert float(instruments["ESZ25.GLBX"].price_increment) == TICK
    quotes = sum(len(read_quotes(roll_demo.path, i).ts) for i in roll_demo.instruments)
    trades = sum(len(read_trades(roll_demo.path, i).ts) for i in roll_demo.instruments)
    assert (quotes, trades) == (roll_demo.quotes, roll_demo.trades)
    assert 0.3 <= trades / quotes <= 0.5


def test_both_contracts_trade_around_the_roll(roll_demo: DemoSummary, markets: MarketsConfig) -> None:
    roll = pd.Timestamp("2025-12-11 14:30", tz="UTC").value
    for root, spread in (("ES", 55.0), ("MNQ", 230.0)):
        front = read_quotes(roll_demo.path, f"{root}Z25.GLBX")
        back = read_quotes(roll_demo.path, f"{root}H26.GLBX")
        day = 4 * 3600 * 10**9
        for q in (front, back):  # both quote in the hours before and after the roll
            assert ((q.ts > roll - day) & (q.ts < roll)).sum() > 20
            assert ((q.ts > roll) & (q.ts < roll + day)).sum() > 20
        # the expiring contract has no data on Monday; the deferred one keeps going
        monday = pd.Timestamp("2025-12-14 23:00", tz="UTC").value
        assert front.ts.max() < monday < back.ts.max()
        # activity follows the roll: the front is busier before it, the deferred after it
        assert (front.ts < roll).sum() > 2 * ((back.ts < roll) & (back.ts >= front.ts.min())).sum()
        assert (back.ts >= roll).sum() > 2 * (front.ts >= roll).sum()
        # the deferred contract trades at the calendar spread above the front
        both = pd.concat([minute_mids(front), minute_mids(back)], axis=1, join="inner").dropna()
        assert len(both) > 30
        gap = both.iloc[:, 1] - both.iloc[:, 0]
        assert abs(gap.median() - spread) < 0.05 * spread
        assert gap.std() < 0.05 * spread


def test_only_globex_hours_and_one_weekend(roll_demo: DemoSummary) -> None:
    stamps = []
    for iid in roll_demo.instruments:
        stamps.append(read_quotes(roll_demo.path, iid).ts)
        stamps.append(read_trades(roll_demo.path, iid).ts)
    every = np.unique(np.concatenate(stamps))
    assert all(sessions.is_open(int(t)) for t in every)
    days = {sessions.trading_day(int(t)) for t in every}
    assert days == {dt.date(2025, 12, 11), dt.date(2025, 12, 12), dt.date(2025, 12, 15)}
    local = pd.to_datetime(every, unit="ns", utc=True).tz_convert(sessions.EXCHANGE_TZ)
    assert not ((local.hour == 16) & (local.weekday < 5)).any()  # the daily halt
    assert not (local.weekday == 5).any()  # Saturday
    assert roll_demo.start_ns <= every[0] and every[-1] < roll_demo.end_ns


def test_quotes_are_on_the_tick_grid_with_tight_spreads(roll_demo: DemoSummary) -> None:
    sizes: dict[str, float] = {}
    for iid in roll_demo.instruments:
        q = read_quotes(roll_demo.path, iid)
        assert len(q.ts) > 500
        for prices in (q.bid, q.ask):
            assert np.all(np.abs(prices / TICK - np.round(prices / TICK)) < 1e-9)
        spread = np.round((q.ask - q.bid) / TICK)
        assert spread.min() >= 1 and spread.max() <= 3
        assert (spread == 1).mean() > 0.85
        assert (spread > 1).any()
        assert np.all(q.bid_size >= 1) and np.all(q.ask_size >= 1)
        assert np.all(q.bid_size == np.round(q.bid_size))
        assert np.all(np.diff(q.ts) > 0)
        assert np.array_equal(q.ts, q.ts_init)
        sizes[iid] = float(np.median(np.concatenate([q.bid_size, q.ask_size])))
    assert sizes["ESZ25.GLBX"] > sizes["MNQZ25.GLBX"]
    assert sizes["ESH26.GLBX"] > sizes["MNQH26.GLBX"]


def test_realistic_levels(roll_demo: DemoSummary) -> None:
    for iid, low, high in (("ESH26.GLBX", 6300, 7500), ("MNQH26.GLBX", 23000, 28000)):
        mid = read_quotes(roll_demo.path, iid).mid
        assert low < mid.min() and mid.max() < high


def test_trades_hit_the_prevailing_quote(roll_demo: DemoSummary) -> None:
    for iid in roll_demo.instruments:
        q = read_quotes(roll_demo.path, iid)
        t = read_trades(roll_demo.path, iid)
        assert len(t.ts) > 100
        assert np.all(np.diff(t.ts) > 0)
        assert np.array_equal(t.ts, t.ts_init)
        assert len(set(t.trade_id)) == len(t.trade_id)
        assert np.all(t.size >= 1) and np.all(t.size == np.round(t.size))
        j = np.searchsorted(q.ts, t.ts, side="right") - 1
        assert np.all(j >= 0)
        assert sessions.trading_day(int(q.ts[j[0]])) == sessions.trading_day(int(t.ts[0]))
        assert np.array_equal(t.price[t.buyer], q.ask[j[t.buyer]])
        assert np.array_equal(t.price[~t.buyer], q.bid[j[~t.buyer]])
        shown = np.where(t.buyer, q.ask_size[j], q.bid_size[j])
        assert np.all(t.size <= shown)
        assert 0.3 < t.buyer.mean() < 0.7


# -- market structure ------------------------------------------------------------------------------


def test_es_and_mnq_returns_are_correlated(dense_demo: DemoSummary) -> None:
    es = read_quotes(dense_demo.path, "ESZ25.GLBX")
    nq = read_quotes(dense_demo.path, "MNQZ25.GLBX")
    mids = pd.concat(
        [minute_mids(es, rth_mask(es.ts)), minute_mids(nq, rth_mask(nq.ts))],
        axis=1,
        join="inner",
    )
    returns = pd.DataFrame(np.log(mids.to_numpy()), index=mids.index).diff().dropna()
    returns = returns[returns.index.to_series().diff() == pd.Timedelta(minutes=1)]
    assert len(returns) > 500
    x, y = returns.to_numpy().T
    assert np.corrcoef(x, y)[0, 1] > 0.6
    beta = np.cov(x, y)[0, 1] / np.var(x, ddof=1)
    assert 0.9 < beta < 1.5


def test_high_vol_stretches_are_more_volatile_than_ranges(dense_demo: DemoSummary) -> None:
    es = read_quotes(dense_demo.path, "ESZ25.GLBX")
    mids = minute_mids(es)
    returns = pd.Series(np.log(mids.to_numpy()), index=mids.index).diff()
    returns = returns[returns.index.to_series().diff() == pd.Timedelta(minutes=1)]
    stamps = pd.DatetimeIndex(returns.index).tz_convert(None).to_numpy().astype(np.int64)
    by_regime: dict[str, list[float]] = {"range": [], "high_vol": []}
    for span in dense_demo.regimes:
        if span.regime in by_regime:
            # whole minutes inside the span (the return ending at t covers t-1min..t)
            inside = (stamps >= span.start_ns + 60 * 10**9) & (stamps <= span.end_ns - 60 * 10**9)
            by_regime[span.regime].extend(returns.to_numpy()[inside])
    assert len(by_regime["high_vol"]) > 60 and len(by_regime["range"]) > 300
    assert np.std(by_regime["high_vol"]) > 2.0 * np.std(by_regime["range"])


def test_regime_schedule_covers_the_sessions(dense_demo: DemoSummary) -> None:
    spans = dense_demo.regimes
    assert {s.regime for s in spans} == {"trend_up", "trend_down", "range", "high_vol"}
    assert spans[0].start_ns == dense_demo.start_ns and spans[-1].end_ns == dense_demo.end_ns
    for a, b in itertools.pairwise(spans):
        assert a.start_ns < a.end_ns <= b.start_ns
        if a.end_ns < b.start_ns:  # only the daily halt separates spans
            assert b.start_ns - a.end_ns == 3600 * 10**9
    for span in spans:
        assert sessions.is_open(span.start_ns) and sessions.is_open(span.end_ns - 1)
        assert (span.end_ns - span.start_ns) <= 240 * 60 * 10**9


def test_trends_drift_and_ranges_revert(dense_demo: DemoSummary) -> None:
    es = read_quotes(dense_demo.path, "ESZ25.GLBX")
    moves: dict[str, list[float]] = {"trend_up": [], "trend_down": []}
    for span in dense_demo.regimes:
        if span.regime in moves and span.end_ns - span.start_ns >= 40 * 60 * 10**9:
            inside = (es.ts >= span.start_ns) & (es.ts < span.end_ns)
            if inside.sum() > 20:
                mid = es.mid[inside]
                moves[span.regime].append(mid[-1] - mid[0])
    assert moves["trend_up"] and moves["trend_down"]
    assert np.mean(moves["trend_up"]) > 0 > np.mean(moves["trend_down"])


# -- determinism and safety ------------------------------------------------------------------------


def _fingerprint(path: Path, instrument_ids: list[str]) -> list[tuple[np.ndarray, ...]]:
    out: list[tuple[np.ndarray, ...]] = []
    for iid in instrument_ids:
        q = read_quotes(path, iid)
        t = read_trades(path, iid)
        out.append((q.ts, q.bid, q.ask, q.bid_size, q.ask_size, t.ts, t.price, t.size, t.buyer))
    return out


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path, markets: MarketsConfig) -> None:
    def build(name: str, seed: int) -> DemoSummary:
        return generate_demo_catalog(tmp_path / name, markets, trading_days=2, intensity=0.03, seed=seed)

    a, b, c = build("a", 11), build("b", 11), build("c", 12)
    assert a.instruments == b.instruments == c.instruments
    assert (a.quotes, a.trades, a.regimes) == (b.quotes, b.trades, b.regimes)
    fa, fb, fc = (_fingerprint(s.path, a.instruments) for s in (a, b, c))
    for xa, xb in zip(fa, fb, strict=True):
        assert all(np.array_equal(u, v) for u, v in zip(xa, xb, strict=True))
    assert a.regimes != c.regimes
    for xa, xc in zip(fa, fc, strict=True):  # every instrument's quotes and prices differ
        assert not np.array_equal(xa[0], xc[0])
        assert not np.array_equal(xa[1][:50], xc[1][:50])
    # the trade ids are the same strings every time too
    assert read_trades(a.path, "ESZ25.GLBX").trade_id == read_trades(b.path, "ESZ25.GLBX").trade_id


def test_a_longer_demo_extends_a_shorter_one(tmp_path: Path, markets: MarketsConfig) -> None:
    short = generate_demo_catalog(tmp_path / "s", markets, roots=("ES",), trading_days=1, intensity=0.02)
    long = generate_demo_catalog(tmp_path / "l", markets, roots=("ES",), trading_days=2, intensity=0.02)
    assert long.regimes[: len(short.regimes)] == short.regimes
    qs, ql = read_quotes(short.path, "ESZ25.GLBX"), read_quotes(long.path, "ESZ25.GLBX")
    first = ql.ts < short.end_ns
    assert np.array_equal(qs.ts, ql.ts[first]) and np.array_equal(qs.bid, ql.bid[first])


def test_direct_tables_match_nautilus_serialization(roll_demo: DemoSummary, markets: MarketsConfig) -> None:
    days = demo._demo_sessions(demo._parse_start(ROLL_START), 1)
    schedule = demo._RegimeSchedule.generate(days, 3)
    plan = demo._plan_contracts("MNQ", days, markets)
    paths = demo._LatentPaths(days, schedule, 3)
    for contract in plan.contracts:
        quotes, trades = demo._contract_day(days[0], 0, plan, contract, paths, schedule, 3, 0.02)
        assert len(quotes.ts) > 64 and len(trades.ts) > 64
        writer = demo._TickWriter(ParquetDataCatalog(str(roll_demo.path)))
        assert writer._same_as_nautilus(contract.instrument, quotes, trades)


def test_wrangler_fallback_writes_the_same_ticks(
    tmp_path: Path,
    markets: MarketsConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def build(name: str) -> DemoSummary:
        return generate_demo_catalog(
            tmp_path / name, markets, roots=("MNQ",), start=ROLL_START, trading_days=1, intensity=0.02
        )

    fast = build("fast")
    monkeypatch.setattr(demo._TickWriter, "_same_as_nautilus", lambda *args: False)
    slow = build("slow")
    assert fast.instruments == slow.instruments == ["MNQZ25.GLBX", "MNQH26.GLBX"]
    fingerprints = _fingerprint(fast.path, fast.instruments), _fingerprint(slow.path, slow.instruments)
    for xa, xb in zip(*fingerprints, strict=True):
        assert all(np.array_equal(u, v) for u, v in zip(xa, xb, strict=True))


def test_refuses_a_folder_that_holds_anything(tmp_path: Path, markets: MarketsConfig) -> None:
    target = tmp_path / "catalog"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(CatalogError) as err:
        generate_demo_catalog(target, markets, trading_days=1, intensity=0.01)
    message = str(err.value)
    assert "not empty" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog"]
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(CatalogError):
        generate_demo_catalog(a_file, markets, trading_days=1, intensity=0.01)


def test_builds_into_an_empty_folder_and_reports_progress(tmp_path: Path, markets: MarketsConfig) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    calls: list[tuple[int, int]] = []
    summary = generate_demo_catalog(
        target,
        markets,
        roots=("ES",),
        trading_days=2,
        intensity=0.01,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert summary.path == target and (target / "data").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # no temporary folder left
    totals = {total for _, total in calls}
    assert len(totals) == 1
    total = totals.pop()
    assert total == 2 + 1  # ESZ25 on each day, then the final rename
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert calls[0] == (0, total) and calls[-1] == (total, total)


def test_an_interrupted_build_leaves_nothing(tmp_path: Path, markets: MarketsConfig) -> None:
    def stop(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_demo_catalog(tmp_path / "catalog", markets, trading_days=2, intensity=0.01, progress=stop)
    assert list(tmp_path.iterdir()) == []


# -- the default build ------------------------------------------------------------------------------


@pytest.mark.slow
def test_default_build(tmp_path: Path, markets: MarketsConfig) -> None:
    summary = generate_demo_catalog(tmp_path / "catalog", markets)
    assert DEMO_START == "2025-12-07"
    assert summary.instruments == ["ESZ25.GLBX", "ESH26.GLBX", "MNQZ25.GLBX", "MNQH26.GLBX"]
    assert 800_000 <= summary.quotes + summary.trades <= 1_500_000
    assert 0.3 <= summary.trades / summary.quotes <= 0.5
    days = sorted({sessions.trading_day(s.start_ns) for s in summary.regimes})
    assert days == [dt.date(2025, 12, d) for d in (8, 9, 10, 11, 12, 15)]
    assert summary.start_ns == pd.Timestamp("2025-12-07 17:00", tz=sessions.EXCHANGE_TZ).value
    assert summary.end_ns == pd.Timestamp("2025-12-15 16:00", tz=sessions.EXCHANGE_TZ).value
    gaps = [b.start_ns - a.end_ns for a, b in itertools.pairwise(summary.regimes)]
    assert sum(g > 24 * 3600 * 10**9 for g in gaps) == 1  # exactly one weekend
    catalog = ParquetDataCatalog(str(summary.path))
    es_h = catalog.quote_ticks(instrument_ids=["ESH26.GLBX"])
    assert sessions.trading_day(es_h[0].ts_event) == dt.date(2025, 12, 10)  # one session before the roll
    es_z = catalog.trade_ticks(instrument_ids=["ESZ25.GLBX"])
    assert sessions.trading_day(es_z[-1].ts_event) == dt.date(2025, 12, 12)  # one session after it
