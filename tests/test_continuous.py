"""Back-adjusted continuous series: stitched at the roll calendar's times with the right gaps."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mia_strategies.config import load_markets
from research.continuous import back_adjusted


MARKETS = load_markets(Path(__file__).resolve().parents[1] / "config" / "markets.yaml")
ROLL = pd.Timestamp("2025-12-11 14:30", tz="UTC")


def _bars(start: str, periods: int, first_close: float) -> pd.DataFrame:
    index = pd.date_range(start, periods=periods, freq="1min", tz="UTC")
    close = first_close + np.arange(periods) * 0.25
    return pd.DataFrame(
        {"open": close, "high": close + 0.5, "low": close - 0.5, "close": close, "volume": 10.0},
        index=index,
    )


def _pair():
    # both contracts trade an hour either side of the roll; ESH26 is 55 points above ESZ25
    old = _bars("2025-12-11 13:30", 121, 6800.0)
    new = old.copy()
    for col in ("open", "high", "low", "close"):
        new[col] = new[col] + 55.0
    return old, new


def test_difference_adjustment_shifts_history_by_the_roll_gap():
    old, new = _pair()
    series = back_adjusted({"ESZ25": old, "ESH26": new}, "ES", MARKETS, "difference")
    before = series[series.index < ROLL]
    after = series[series.index >= ROLL]
    assert set(before["contract"]) == {"ESZ25"} and set(after["contract"]) == {"ESH26"}
    assert (before["adjustment"] == 55.0).all() and (after["adjustment"] == 0.0).all()
    # the last segment keeps real, tradable prices
    pd.testing.assert_series_equal(after["close"], new.loc[new.index >= ROLL, "close"], check_names=False)
    # adjusted old prices equal old + 55 exactly; the join is seamless
    assert np.allclose(before["close"].to_numpy(), old.loc[old.index < ROLL, "close"].to_numpy() + 55.0)
    assert series.index.is_monotonic_increasing and not series.index.has_duplicates


def test_ratio_adjustment_preserves_returns():
    old, new = _pair()
    series = back_adjusted({"ESZ25": old, "ESH26": new}, "ES", MARKETS, "ratio")
    before = series[series.index < ROLL]
    gap_ratio = float(new.loc[new.index <= ROLL, "close"].iloc[-1] / old.loc[old.index <= ROLL, "close"].iloc[-1])
    assert before["adjustment"].iloc[0] == pytest.approx(gap_ratio)
    raw = old.loc[old.index < ROLL, "close"]
    assert np.allclose(before["close"].pct_change().dropna(), raw.pct_change().dropna())


def test_appending_bars_before_the_next_roll_changes_no_past_value():
    old, new = _pair()
    base = back_adjusted({"ESZ25": old, "ESH26": new}, "ES", MARKETS)
    longer = pd.concat([new, _bars("2025-12-11 15:31", 60, float(new["close"].iloc[-1]) + 0.25)])
    extended = back_adjusted({"ESZ25": old, "ESH26": longer}, "ES", MARKETS)
    pd.testing.assert_frame_equal(extended.loc[base.index], base)
