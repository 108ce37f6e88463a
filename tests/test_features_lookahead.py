"""No look-ahead: appending future data (ticks, depth, bars, chains, news, VIX, calendar) never changes a past value.

Property tests drive the feature hub with random event streams cut at a random time, then with the
same prefix followed by random future events, and require every vector up to the cut to be
bit-identical. Calendar entries that only become known after the cut are part of the future even
though the calendar file is loaded at start. On real data, the offline build over a shorter range
must reproduce the longer build's values bar for bar, and a daily VIX close is used only from its
16:15 ET timestamp on.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from nautilus_trader.model.identifiers import InstrumentId

from catalog.lean import ingest_lean_futures
from catalog.news import ingest_news
from catalog.options import ingest_option_chains
from catalog.options import load_lean_option_universes
from catalog.types import MacroEvent
from catalog.types import NewsHeadline
from catalog.types import OptionChainSnapshot
from mia_strategies.config import load_backtest
from mia_strategies.config import load_markets
from mia_strategies.features.core import BarInput
from mia_strategies.features.engine import FeatureHub
from mia_strategies.features.reference import ingest_reference_bars
from mia_strategies.features.reference import load_vix_daily
from mia_strategies.features.sets import load_feature_sets
from research.features import build_features
from research.features import plan_features


REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "data" / "features"
MIN = 60_000_000_000
T0 = 1_765_202_400_000_000_000  # 2025-12-08 14:00 UTC (RTH)
ES = "ESZ25.GLBX"
VIX = "VIX.CBOE-1-DAY-LAST-EXTERNAL"
SPY = "SPY.ARCA-1-MINUTE-LAST-EXTERNAL"
FEATURE_SETS = load_feature_sets(REPO / "config" / "feature_sets.yaml")
MARKETS = load_markets(REPO / "config" / "markets.yaml")


def _events(draw, start_min: int, minutes: int, price0: float, seed_label: str) -> list[tuple]:
    """A random, time-ordered stream over ``minutes`` whole minutes from ``start_min``: ticks, bars, extras."""
    events: list[tuple] = []
    price = price0
    for m in range(start_min, start_min + minutes):
        base = T0 + m * MIN
        n_ticks = draw(st.integers(0, 6), label=f"{seed_label}ticks{m}")
        offsets = sorted(draw(st.lists(st.integers(1, MIN - 1), min_size=n_ticks, max_size=n_ticks), label="offs"))
        high = low = open_ = price
        volume = 0.0
        for off in offsets:
            kind = draw(st.sampled_from(["quote", "trade", "quote", "depth"]))
            price = max(100.0, price + 0.25 * draw(st.integers(-3, 3)))
            if kind == "quote":
                spread = 0.25 * draw(st.integers(1, 3))
                sizes = draw(st.tuples(st.integers(1, 300), st.integers(1, 300)))
                events.append(
                    ("quote", base + off, price - spread / 2, price + spread / 2, float(sizes[0]), float(sizes[1]))
                )
            elif kind == "depth":
                levels = draw(st.integers(0, 10))
                sizes = draw(st.lists(st.integers(1, 400), min_size=2 * levels, max_size=2 * levels))
                bids = [(price - 0.25 * (i + 1), float(sizes[i])) for i in range(levels)]
                asks = [(price + 0.25 * i, float(sizes[levels + i])) for i in range(levels)]
                events.append(("depth", base + off, bids, asks))
            else:
                size = float(draw(st.integers(1, 40)))
                events.append(("trade", base + off, price, size, draw(st.sampled_from([0, 1, 2]))))
                volume += size
            high, low = max(high, price), min(low, price)
        events.append(("bar", base + MIN, BarInput(base + MIN, base + MIN, open_, high, low, price, volume)))
        if draw(st.integers(0, 9)) == 0:
            events.append(
                (
                    "spy",
                    base + MIN,
                    BarInput(base + MIN, base + MIN, price / 10, price / 10 + 0.1, price / 10 - 0.1, price / 10, 1e5),
                )
            )
        if draw(st.integers(0, 29)) == 0:
            events.append(
                (
                    "vix",
                    base + MIN,
                    BarInput(base + MIN, base + MIN, 15.0, 16.0, 14.0, float(draw(st.integers(10, 40))), 0.0),
                )
            )
        if draw(st.integers(0, 14)) == 0:
            events.append(
                (
                    "news",
                    base + MIN // 2,
                    draw(
                        st.sampled_from(
                            ["Stocks rally on strong data", "Markets plunge on war fears", "Fed holds rates"]
                        )
                    ),
                )
            )
        if draw(st.integers(0, 29)) == 0:
            strikes = np.arange(price - 50.0, price + 50.1, 10.0)
            n = len(strikes)
            chain = OptionChainSnapshot(
                instrument_id=InstrumentId.from_str(ES),
                underlying_price=price,
                expiries_ns=np.full(2 * n, float(base + 20 * 1440 * MIN)),
                strikes=np.concatenate([strikes, strikes]),
                rights=np.concatenate([np.ones(n), -np.ones(n)]),
                implied_vols=np.full(2 * n, draw(st.floats(0.1, 0.4))),
                deltas=np.full(2 * n, np.nan),
                gammas=np.full(2 * n, np.nan),
                open_interest=np.array([float(draw(st.integers(0, 5000))) for _ in range(2 * n)]),
                volumes=np.full(2 * n, 10.0),
                ts_event=base + MIN // 3,
                ts_init=base + MIN // 3,
            )
            events.append(("chain", base + MIN // 3, chain))
    events.sort(key=lambda e: e[1])
    return events


def _run(events: list[tuple], calendar: list[MacroEvent]) -> dict[int, np.ndarray]:
    hub = FeatureHub(FEATURE_SETS, {"ES": "ES.training"}, MARKETS, calendar)
    hub.register(ES, 0.25)
    out: dict[int, np.ndarray] = {}
    for event in events:
        kind = event[0]
        if kind == "quote":
            hub.on_quote(ES, *event[1:])
        elif kind == "trade":
            hub.on_trade(ES, *event[1:])
        elif kind == "depth":
            hub.on_depth(ES, *event[1:])
        elif kind == "bar":
            values = hub.on_bar(ES, event[2])
            if values is not None:
                out[event[1]] = values.copy()
        elif kind == "spy":
            hub.on_reference_bar(SPY, event[2])
        elif kind == "vix":
            hub.on_reference_bar(VIX, event[2])
        elif kind == "news":
            hub.on_news(
                NewsHeadline(source="reuters", headline=event[2], symbols="", ts_event=event[1], ts_init=event[1])
            )
        elif kind == "chain":
            hub.on_chain(event[2])
    return out


def _macro(ts: int, known: int, name: str) -> MacroEvent:
    return MacroEvent(name=name, importance=3, ts_event=ts, ts_init=known)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_appending_future_events_never_changes_past_vectors(data):
    # Arrange: a random past, a random future, and calendar entries known before / after the cut
    past_minutes = data.draw(st.integers(20, 70), label="past")
    past = _events(data.draw, 0, past_minutes, 6800.0, "p")
    cut = T0 + past_minutes * MIN
    last_px = next(e[2].close for e in reversed(past) if e[0] == "bar")
    future = _events(data.draw, past_minutes, data.draw(st.integers(1, 30), label="future"), last_px, "f")
    known_before = [_macro(cut + 90 * MIN, T0 - 1440 * MIN, "CPI: consumer price index")]
    surprise_at = cut + data.draw(st.integers(1, 120), label="surprise") * MIN
    known_after = [_macro(surprise_at + 30 * MIN, surprise_at, "FOMC: unscheduled rate cut")]
    # Act
    before = _run(past, known_before)
    after = _run(past + future, known_before + known_after)
    # Assert
    assert before, "the past holds bars"
    for ts, values in before.items():
        assert ts <= cut
        np.testing.assert_array_equal(after[ts], values)  # bit-identical, NaN where NaN


def test_macro_event_known_later_is_invisible_before_it_is_known():
    # Arrange: an unscheduled release at 15:00 that became known at 14:30
    release, known = T0 + 60 * MIN, T0 + 30 * MIN
    calendar = [_macro(release, known, "FOMC: unscheduled rate cut")]
    bars = [
        ("bar", T0 + m * MIN, BarInput(T0 + m * MIN, T0 + m * MIN, 6800.0, 6801.0, 6799.0, 6800.0, 10.0))
        for m in range(1, 60)
    ]
    # Act
    vectors = _run(bars, calendar)
    names = FEATURE_SETS.resolve("ES.training").names
    col = names.index("minutes_to_next_fomc")
    # Assert
    for ts, values in vectors.items():
        if ts < known:
            assert math.isnan(values[col])
        else:
            assert values[col] == (release - ts) / MIN


@pytest.fixture(scope="module")
def es_2020(tmp_path_factory, markets) -> Path:
    path = tmp_path_factory.mktemp("la") / "catalog"
    ingest_lean_futures(FIXTURES / "es_2020", path, "ES", markets)
    ingest_option_chains(load_lean_option_universes(FIXTURES / "fop_esh20", InstrumentId.from_str("ESH20.GLBX")), path)
    ingest_reference_bars(load_vix_daily(FIXTURES / "vix" / "vix_daily_slice.csv"), path, "2019-06-01", "2020-01-31")
    ingest_news(FIXTURES / "news" / "headlines.csv", path)
    return path


def _build(catalog: Path, markets, end: str | None):
    cfg, base = load_backtest(REPO / "config" / "backtest.yaml")
    plan = plan_features(
        cfg,
        base,
        FEATURE_SETS,
        catalog=catalog,
        instruments=["ES"],
        end=end,
        set_name="training",
        macro_calendar=REPO / "config" / "macro_calendar.csv",
        history_days=30,
    )
    return {(r[0], r[2]): r[4] for r in build_features(plan, FEATURE_SETS, markets).rows}


@pytest.fixture(scope="module")
def full_build(es_2020, markets):
    return _build(es_2020, markets, None)


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(cut_minutes=st.integers(30, 1300))
def test_real_data_build_to_any_cut_matches_the_full_build(es_2020, full_build, markets, cut_minutes):
    # Arrange: the real session of 2020-01-06, cut somewhere inside it
    full = full_build
    start = min(ts for _, ts in full)
    cut_ns = start + cut_minutes * MIN
    # Act
    part = _build(es_2020, markets, pd.Timestamp(cut_ns, tz="UTC").isoformat())
    # Assert: every bar of the shorter build is in the full one, with identical values
    assert part
    for key, values in part.items():
        assert key[1] <= cut_ns
        np.testing.assert_array_equal(full[key], values)


def test_daily_vix_close_is_used_only_from_its_timestamp(full_build):
    # Arrange: 2020-01-06, VIX closed at 13.85 (16:15 ET = 21:15 UTC); the previous close was 14.02
    rows = full_build
    names = FEATURE_SETS.resolve("ES.training").names
    col = names.index("vix_level")
    at = {ts: v[col] for (_, ts), v in rows.items()}
    close_ts = 1_578_345_300_000_000_000  # 2020-01-06 21:15 UTC
    before = max(ts for ts in at if ts < close_ts)
    # Act / Assert
    assert at[before] == pytest.approx(14.02)
    assert at[close_ts] == pytest.approx(13.85)  # the close stamped 21:15 is known at the 21:15 bar
