"""Online = offline: the feature actor inside a real BacktestNode against the offline catalog replay.

Every feature of every decision bar must agree to 1e-9 (NaN only against NaN) on the seeded demo
catalog (ES and MNQ across the December 2025 roll, quotes and trades), on real CME ES data shipped in
tests/data (Lean minute bars and quotes, with ES futures-option chains, VIX, news and the macro
calendar), and, when the shared data folder is present, on more real ES data with SPY and VIX.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.config import ImportableActorConfig
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import InstrumentId

from catalog.lean import ingest_lean_futures
from catalog.macro import ingest_macro_calendar
from catalog.news import ingest_news
from catalog.options import ingest_option_chains
from catalog.options import load_lean_option_universes
from catalog.types import FeatureVector
from mia_strategies.backtest import plan_backtest
from mia_strategies.backtest import run_backtest
from mia_strategies.config import BacktestConfig
from mia_strategies.config import load_backtest
from mia_strategies.features.reference import ingest_reference_bars
from mia_strategies.features.reference import load_lean_equity_minute
from mia_strategies.features.reference import load_vix_daily
from mia_strategies.features.registry import registry
from mia_strategies.features.sets import load_feature_sets
from research.features import build_features
from research.features import compare_vectors
from research.features import plan_features
from research.features import run_feature_backtest


REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "data" / "features"
LEAN_SLICE = REPO / "tests" / "data" / "lean_es"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CALENDAR = REPO / "config" / "macro_calendar.csv"
MINUTE_NS = 60_000_000_000


class VectorRecorderConfig(ActorConfig, frozen=True):
    """No settings: it records what the bus delivers."""


class VectorRecorder(Actor):
    """A subscriber like any strategy: counts the FeatureVectors it receives over the message bus."""

    received: list[FeatureVector] = []  # noqa: RUF012 - read back by the test after the run

    def on_start(self) -> None:
        VectorRecorder.received = []
        self.subscribe_data(DataType(FeatureVector))

    def on_data(self, data: Data) -> None:
        if isinstance(data, FeatureVector):
            VectorRecorder.received.append(data)


@pytest.fixture(scope="module")
def feature_sets():
    return load_feature_sets(REPO / "config" / "feature_sets.yaml")


@pytest.fixture(scope="module")
def backtest_cfg():
    return load_backtest(REPO / "config" / "backtest.yaml")


def _parity(plan, feature_sets, markets, **actor_overrides):
    offline = build_features(plan, feature_sets, markets)
    online = run_feature_backtest(plan, **actor_overrides)
    report = compare_vectors(offline, online.vectors, feature_sets)
    return offline, online, report


def _assert_parity(report, minimum_bars: int) -> None:
    assert report.compared >= minimum_bars
    assert not report.only_offline, f"bars only offline: {report.only_offline[:5]}"
    assert not report.only_online, f"bars only online: {report.only_online[:5]}"
    assert not report.mismatches, f"{len(report.mismatches)} mismatches, first: {report.mismatches[:5]}"


def _defined(offline, feature_sets) -> set[str]:
    """Feature names that are not NaN on at least one bar."""
    names = feature_sets.resolve(offline.rows[0][1]).names
    matrix = np.vstack([r[4] for r in offline.rows])
    return {n for n, ok in zip(names, np.isfinite(matrix).any(axis=0), strict=True) if ok}


def test_demo_catalog_actor_equals_offline_build_for_every_feature(
    roll_week_catalog, markets, feature_sets, backtest_cfg
):
    # Arrange: ES and MNQ around the ESZ25 -> ESH26 roll (2025-12-11 14:30 UTC), whole registry
    cfg, base = backtest_cfg
    plan = plan_features(
        cfg,
        base,
        feature_sets,
        catalog=roll_week_catalog,
        instruments=["ES", "MNQ"],
        start="2025-12-10T20:00",
        end="2025-12-11T18:00",
        set_name="training",
        macro_calendar=CALENDAR,
    )
    recorder = ImportableActorConfig(
        actor_path="test_features_parity:VectorRecorder",
        config_path="test_features_parity:VectorRecorderConfig",
        config={},
    )
    # Act
    offline = build_features(plan, feature_sets, markets)
    online = run_feature_backtest(plan, extra_actors=[recorder])
    report = compare_vectors(offline, online.vectors, feature_sets)
    # Assert
    _assert_parity(report, minimum_bars=1500)
    contracts = {b.instrument_id for b in plan.bars}
    assert {"ESZ25.GLBX", "ESH26.GLBX", "MNQZ25.GLBX", "MNQH26.GLBX"} <= contracts
    assert {r[0] for r in offline.rows} == contracts
    assert len(VectorRecorder.received) == len(online.vectors)  # every vector reached a bus subscriber
    for vector in online.vectors:
        assert vector.ts_event == vector.ts_init and vector.ts_event % MINUTE_NS == 0  # the bar's close
        assert vector.feature_set in ("ES.training", "MNQ.training")
        assert len(vector.values) == len(registry().specs)
    defined = _defined(offline, feature_sets)
    for family in ("session", "technical", "dynamic", "orderflow", "macro", "composite"):
        names = {s.name for s in registry().by_family(family)}
        depth = {n for n in names if n.startswith("depth_")}
        assert names - depth <= defined | {"atr_dynamic_1170", "atr_percentile_1170", "rv_percentile_1170"}, family


@pytest.fixture(scope="module")
def es_2020_catalog(tmp_path_factory, markets) -> Path:
    """Real ES 2020-01-05/06 (ESH20) with its option chains, VIX, news and the macro calendar."""
    path = tmp_path_factory.mktemp("es2020") / "catalog"
    ingest_lean_futures(FIXTURES / "es_2020", path, "ES", markets)
    ingest_option_chains(load_lean_option_universes(FIXTURES / "fop_esh20", InstrumentId.from_str("ESH20.GLBX")), path)
    ingest_reference_bars(load_vix_daily(FIXTURES / "vix" / "vix_daily_slice.csv"), path, "2019-06-01", "2020-01-31")
    ingest_news(FIXTURES / "news" / "headlines.csv", path)
    ingest_macro_calendar(CALENDAR, path)
    return path


def test_real_es_with_options_vix_news_and_macro_actor_equals_offline(
    es_2020_catalog, markets, feature_sets, backtest_cfg
):
    # Arrange: the inference set (what strategies consume), VIX and chains preloaded 60 days back
    cfg, base = backtest_cfg
    plan = plan_features(
        cfg,
        base,
        feature_sets,
        catalog=es_2020_catalog,
        instruments=["ES"],
        set_name="inference",
        macro_calendar=CALENDAR,
        history_days=60,
    )
    # Act
    offline, _, report = _parity(plan, feature_sets, markets)
    # Assert
    _assert_parity(report, minimum_bars=1000)
    defined = _defined(offline, feature_sets)
    must = {
        "vix_level", "vix_zscore_20d", "call_iv_atm", "put_iv_atm", "option_skew", "call_wall_distance",
        "news_sentiment_score", "news_impact_score", "minutes_to_next_high_impact", "event_volatility_impact",
        "orderflow_imbalance", "atr_dynamic", "bid_ask_imbalance",
    }  # fmt: skip
    assert {"vix_level", "call_iv_atm", "news_sentiment_score", "minutes_to_next_high_impact"} <= defined
    assert must - {"call_wall_distance"} <= defined
    assert "gex" not in defined  # the futures-option files carry no open interest: NaN, never zero


def test_lean_slice_across_the_2013_roll_actor_equals_offline(tmp_path, markets, feature_sets, backtest_cfg):
    # Arrange: the shipped Lean slice (ESZ13 before, ESH14 after the 2013-12-12 roll)
    catalog = tmp_path / "catalog"
    ingest_lean_futures(LEAN_SLICE, catalog, "ES", markets)
    cfg, base = backtest_cfg
    plan = plan_features(cfg, base, feature_sets, catalog=catalog, instruments=["ES"], set_name="training")
    # Act
    _, _, report = _parity(plan, feature_sets, markets)
    # Assert
    _assert_parity(report, minimum_bars=2000)


def _shared_catalog(tmp_path: Path, markets, days: list[str] | None) -> Path:
    es = SHARED / "es_lean_minute" / "minute" / "es"
    if not es.is_dir():
        pytest.skip(f"real data not found at {SHARED} (the shared data folder sits beside the repository)")
    source = es
    if days is not None:
        source = tmp_path / "es"
        source.mkdir()
        for day in days:
            for kind in ("trade", "quote"):
                (source / f"{day}_{kind}.zip").write_bytes((es / f"{day}_{kind}.zip").read_bytes())
    catalog = tmp_path / "catalog"
    ingest_lean_futures(source, catalog, "ES", markets)
    ingest_reference_bars(load_vix_daily(SHARED / "vix_daily" / "vix-daily.csv"), catalog, "2013-01-01", "2020-12-31")
    ingest_reference_bars(load_lean_equity_minute(SHARED / "spy_lean" / "minute" / "spy"), catalog)
    return catalog


@pytest.mark.realdata
def test_shared_es_with_spy_and_vix_bounded_slice_actor_equals_offline(tmp_path, markets, feature_sets, backtest_cfg):
    # Arrange: two real sessions with SPY minute bars and VIX: the ES-SPY pairs are formed
    catalog = _shared_catalog(tmp_path, markets, ["20131007", "20131008"])
    cfg, base = backtest_cfg
    plan = plan_features(
        cfg, base, feature_sets, catalog=catalog, instruments=["ES"], set_name="training", history_days=30
    )
    # Act
    offline, _, report = _parity(plan, feature_sets, markets)
    # Assert
    _assert_parity(report, minimum_bars=2000)
    assert {"es_spy_corr_60", "es_spy_basis_bps", "es_spy_beta_60", "spy_ret_5", "vix_level"} <= _defined(
        offline, feature_sets
    )


@pytest.mark.slow
@pytest.mark.realdata
def test_all_shared_es_data_with_chains_spy_vix_actor_equals_offline(tmp_path, markets, feature_sets, backtest_cfg):
    # Arrange: all 16 real ES sessions (2013 and 2020), SPY, VIX and the ES futures-option chains
    catalog = _shared_catalog(tmp_path, markets, None)
    chains = SHARED / "option_universes" / "lean_es_fop_universe"
    snaps = load_lean_option_universes(chains / "202003", InstrumentId.from_str("ESH20.GLBX"))
    snaps += load_lean_option_universes(chains / "202006", InstrumentId.from_str("ESM20.GLBX"))
    ingest_option_chains(snaps, catalog)
    cfg, base = backtest_cfg
    plan = plan_features(
        cfg, base, feature_sets, catalog=catalog, instruments=["ES"], set_name="training", macro_calendar=CALENDAR
    )
    # Act
    offline, _, report = _parity(plan, feature_sets, markets)
    # Assert
    _assert_parity(report, minimum_bars=15000)
    assert {"es_spy_corr_60", "vix_es_correlation", "call_iv_atm", "option_skew"} <= _defined(offline, feature_sets)


def _depth_snapshots(catalog_path: Path, instrument_id: str, start_ns: int, minutes: int, seed: int) -> list:
    """Synthetic 10-level books every 20 s around the contract's own quotes (the demo has no depth)."""
    from nautilus_trader.model.data import BookOrder
    from nautilus_trader.model.data import OrderBookDepth10
    from nautilus_trader.model.enums import OrderSide
    from nautilus_trader.model.objects import Price
    from nautilus_trader.model.objects import Quantity
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    catalog = ParquetDataCatalog(str(catalog_path))
    quotes = catalog.quote_ticks(instrument_ids=[instrument_id], start=start_ns, end=start_ns + minutes * MINUTE_NS)
    assert quotes, "the demo holds quotes to anchor the books on"
    rng = np.random.default_rng(seed)
    iid = InstrumentId.from_str(instrument_id)
    out = []
    next_ts = start_ns
    for q in quotes:
        if q.ts_event < next_ts:
            continue
        bid, ask = q.bid_price.as_double(), q.ask_price.as_double()
        bids = [
            BookOrder(OrderSide.BUY, Price(bid - 0.25 * i, 2), Quantity(int(rng.integers(1, 200)), 0), 0)
            for i in range(10)
        ]
        asks = [
            BookOrder(OrderSide.SELL, Price(ask + 0.25 * i, 2), Quantity(int(rng.integers(1, 200)), 0), 0)
            for i in range(10)
        ]
        out.append(OrderBookDepth10(iid, bids, asks, [1] * 10, [1] * 10, 0, 0, q.ts_event, q.ts_init))
        next_ts = q.ts_event + 20_000_000_000
    return out


def test_depth_snapshots_actor_equals_offline_for_the_depth_features(tmp_path, markets, feature_sets, backtest_cfg):
    # Arrange: a light demo day of ES with 10-level books added for the active contract
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from catalog.demo import generate_demo_catalog

    path = tmp_path / "catalog"
    generate_demo_catalog(path, markets, roots=("ES",), trading_days=3, intensity=0.1, seed=5)
    start_ns = 1_765_310_400_000_000_000  # 2025-12-09 20:00 UTC
    books = _depth_snapshots(path, "ESZ25.GLBX", start_ns, 300, seed=3)
    ParquetDataCatalog(str(path)).write_data(books)
    cfg, base = backtest_cfg
    plan = plan_features(
        cfg,
        base,
        feature_sets,
        catalog=path,
        instruments=["ES"],
        start="2025-12-09T20:00",
        end="2025-12-10T01:00",
        set_name="training",
    )
    # Act
    offline, _online, report = _parity(plan, feature_sets, markets)
    # Assert: the depth features are defined (the books arrived both ways) and agree everywhere
    assert plan.depth_instruments == ["ESZ25.GLBX"]
    _assert_parity(report, minimum_bars=120)
    depth_names = {s.name for s in registry().by_family("orderflow") if s.name.startswith("depth_")}
    assert depth_names <= _defined(offline, feature_sets)


def test_mia_backtest_feeds_the_feature_actor_what_the_catalog_holds(es_2020_catalog, tmp_path):
    """`mia backtest` loads VIX, chains, news and macro events for the feature actor, as the offline build does."""
    plan = plan_backtest(
        BacktestConfig(instruments=["ES"]), REPO / "config", catalog=es_2020_catalog, out=tmp_path / "r"
    )
    kinds = {str(d.data_cls) for d in plan.feature_data}
    assert any("OptionChainSnapshot" in k for k in kinds) and any("NewsHeadline" in k for k in kinds)
    assert any(d.bar_types and "VIX" in d.bar_types[0] for d in plan.feature_data)
    outcome = run_backtest(plan)
    book = outcome.strategy._features  # what the strategy and the risk actor read
    iid = plan.slots[0].instrument_id
    last = int(pd.Timestamp(outcome.equity.index[-1]).value)
    for name in ("vix_level", "call_iv_atm", "news_sentiment_score", "minutes_to_next_high_impact"):
        value = book.get(iid, name, last)
        assert value is not None and np.isfinite(value), name
