"""The features are the formulas of docs/features.md: checked against independent pandas/numpy references.

The incremental states (running sums, Wilder recursions, sorted windows) are driven with real ES
minute bars (the shipped Lean slice) and compared, feature by feature, with straightforward batch
computations written here from the documented formulas. Order-flow features are checked on
hand-made quote and trade sequences whose values can be worked out on paper.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from scipy import stats

from catalog.lean import ingest_lean_futures
from mia_strategies.features.core import BarInput
from mia_strategies.features.engine import FeatureHub
from mia_strategies.features.sets import load_feature_sets


REPO = Path(__file__).resolve().parents[1]
FEATURE_SETS = load_feature_sets(REPO / "config" / "feature_sets.yaml")
NAMES = FEATURE_SETS.resolve("ES.training").names
MIN = 60_000_000_000


@pytest.fixture(scope="module")
def es_bars(tmp_path_factory, markets) -> pd.DataFrame:
    """Real ESH14 minute bars of 2013-12-18 (the shipped Lean slice), as a frame."""
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    path = tmp_path_factory.mktemp("formulas") / "catalog"
    ingest_lean_futures(REPO / "tests" / "data" / "lean_es", path, "ES", markets)
    bars = ParquetDataCatalog(str(path)).bars(bar_types=["ESH14.GLBX-1-MINUTE-LAST-EXTERNAL"])
    frame = pd.DataFrame(
        {
            "ts": [b.ts_event for b in bars],
            "open": [b.open.as_double() for b in bars],
            "high": [b.high.as_double() for b in bars],
            "low": [b.low.as_double() for b in bars],
            "close": [b.close.as_double() for b in bars],
            "volume": [b.volume.as_double() for b in bars],
        },
    )
    frame = frame[frame.ts >= pd.Timestamp("2013-12-17T23:00", tz="UTC").value].reset_index(drop=True)
    assert len(frame) > 1000
    return frame


@pytest.fixture(scope="module")
def computed(es_bars, markets) -> pd.DataFrame:
    """Our features for every bar (bars only: no ticks, so order-flow quote/trade features are NaN)."""
    hub = FeatureHub(FEATURE_SETS, {"ES": "ES.training"}, markets)
    hub.register("ESH14.GLBX")
    rows = []
    for r in es_bars.itertuples(index=False):
        values = hub.on_bar("ESH14.GLBX", BarInput(r.ts, r.ts, r.open, r.high, r.low, r.close, r.volume))
        assert values is not None
        rows.append(values)
    return pd.DataFrame(np.vstack(rows), columns=list(NAMES))


def _check(ours: pd.Series, reference: pd.Series, rtol: float = 1e-9, atol: float = 1e-12) -> None:
    a = ours.to_numpy(dtype=float)
    b = reference.to_numpy(dtype=float)
    defined = np.isfinite(a)
    assert defined.sum() > 100, f"{ours.name}: too few defined values"
    np.testing.assert_array_equal(defined, np.isfinite(b), err_msg=f"{ours.name}: warm-up differs from the reference")
    np.testing.assert_allclose(a[defined], b[defined], rtol=rtol, atol=atol, err_msg=str(ours.name))


def _wilder(x: pd.Series, n: int) -> pd.Series:
    """Mean of the first n values, then (prev (n-1) + x) / n (NaN values before the series starts are skipped)."""
    out = np.full(len(x), np.nan)
    vals = x.to_numpy()
    start = int(np.argmax(np.isfinite(vals)))
    acc = None
    for i in range(start, len(vals)):
        k = i - start + 1
        if k == n:
            acc = vals[start : i + 1].mean()
        elif k > n:
            acc = (acc * (n - 1) + vals[i]) / n
        if acc is not None:
            out[i] = acc
    return pd.Series(out)


def test_returns_and_moving_average_distances(es_bars, computed):
    c = es_bars.close
    for h in (1, 5, 15, 60, 390):
        _check(computed[f"ret_{h}"], np.log(c / c.shift(h)))
    for n in (5, 20, 200, 390):
        _check(computed[f"sma_dist_{n}"], c / c.rolling(n).mean() - 1)
    for n in (10, 50):
        ema = c.ewm(span=n, adjust=False).mean()
        ref = (c / ema - 1).where(np.arange(len(c)) >= n - 1)
        _check(computed[f"ema_dist_{n}"], ref)


def test_rsi_atr_adx_macd_follow_wilder_and_ema_definitions(es_bars, computed):
    c, h, lo = es_bars.close, es_bars.high, es_bars.low
    change = c.diff()
    for n in (6, 14):
        gain = _wilder(change.clip(lower=0), n)
        loss = _wilder((-change).clip(lower=0), n)
        rsi = 100 - 100 / (1 + gain / loss)
        rsi = rsi.where(loss != 0, np.where(gain == 0, 50.0, 100.0)).where(gain.notna())
        _check(computed[f"rsi_{n}"], rsi)
    tr = pd.concat([h - lo, (h - c.shift()).abs(), (lo - c.shift()).abs()], axis=1).max(axis=1)
    tr.iloc[0] = h.iloc[0] - lo.iloc[0]
    for n in (7, 14, 50):
        _check(computed[f"atr_{n}"], _wilder(tr, n))
        _check(computed[f"atr_{n}_pct"], _wilder(tr, n) / c)
    # ADX(14): Wilder sums of TR and directional moves, Wilder average of DX
    n = 14
    up, down = h.diff(), -lo.diff()
    plus = np.where((up > down) & (up > 0), up, 0.0)
    minus = np.where((down > up) & (down > 0), down, 0.0)
    s_tr, s_p, s_m = [], [], []
    for i in range(1, len(c)):
        k = i
        if k <= n:
            s_tr.append((s_tr[-1] if s_tr else 0) + tr.iloc[i])
            s_p.append((s_p[-1] if s_p else 0) + plus[i])
            s_m.append((s_m[-1] if s_m else 0) + minus[i])
        else:
            s_tr.append(s_tr[-1] - s_tr[-1] / n + tr.iloc[i])
            s_p.append(s_p[-1] - s_p[-1] / n + plus[i])
            s_m.append(s_m[-1] - s_m[-1] / n + minus[i])
    s_tr, s_p, s_m = (pd.Series([np.nan, *x]) for x in (s_tr, s_p, s_m))
    valid = pd.Series(np.arange(len(c)) >= n)
    pdi = (100 * s_p / s_tr).where(valid)
    mdi = (100 * s_m / s_tr).where(valid)
    dx = (100 * (pdi - mdi).abs() / (pdi + mdi)).fillna(0).where(valid)
    _check(computed["plus_di_14"], pdi)
    _check(computed["minus_di_14"], mdi)
    _check(computed["adx_14"], _wilder(dx, n))
    fast, slow = c.ewm(span=12, adjust=False).mean(), c.ewm(span=26, adjust=False).mean()
    macd = (fast - slow) / c
    signal = macd.ewm(span=9, adjust=False).mean()
    warm = np.arange(len(c)) >= 26 + 9 - 1
    _check(computed["macd_12_26_9"], macd.where(warm))
    _check(computed["macd_hist_12_26_9"], (macd - signal).where(warm), atol=1e-12)


def test_volatility_estimators(es_bars, computed):
    o, h, lo, c = es_bars.open, es_bars.high, es_bars.low, es_bars.close
    r = np.log(c / c.shift())
    for n in (5, 30, 390):
        _check(computed[f"rv_{n}"], r.rolling(n).std(ddof=1), rtol=1e-7, atol=1e-14)
    hl = np.log(h / lo)
    co = np.log(c / o)
    for n in (10, 60, 240):
        _check(computed[f"parkinson_{n}"], np.sqrt((hl**2).rolling(n).mean() / (4 * math.log(2))), rtol=1e-8)
        gk = (0.5 * hl**2 - (2 * math.log(2) - 1) * co**2).rolling(n).mean()
        _check(computed[f"garman_klass_{n}"], np.sqrt(gk), rtol=1e-8)
        rs = (np.log(h / c) * np.log(h / o) + np.log(lo / c) * np.log(lo / o)).rolling(n).mean()
        _check(computed[f"rogers_satchell_{n}"], np.sqrt(rs), rtol=1e-8)
    for n in (10, 20, 50):
        mean, std = c.rolling(n).mean(), c.rolling(n).std(ddof=0)
        _check(computed[f"bb_width_{n}"], 4 * std / mean, rtol=1e-7)
        pctb = ((c - (mean - 2 * std)) / (4 * std)).where(std > 0, 0.5).where(mean.notna())  # flat window: 0.5
        _check(computed[f"bb_pctb_{n}"], pctb, rtol=1e-6, atol=1e-9)
    for n in (60, 240):
        sd = c.rolling(n).std(ddof=0)
        z = ((c - c.rolling(n).mean()) / sd).where(sd > 0, 0.0).where(sd.notna())
        _check(computed[f"zscore_close_{n}"], z, rtol=1e-6, atol=1e-9)
    atr = computed["atr_14"]
    z = (atr - atr.rolling(390).mean()) / atr.rolling(390).std(ddof=0)
    _check(computed["atr_dynamic"], z, rtol=1e-6, atol=1e-9)
    rank = atr.rolling(390).apply(lambda w: ((w < w[-1]).sum() + 0.5 * (w == w[-1]).sum()) / len(w), raw=True)
    _check(computed["atr_percentile_390"], rank)
    _check(computed["rv_ratio_5_60"], computed["rv_5"] / computed["rv_60"])


def test_oscillators_trend_strength_and_shape(es_bars, computed):
    h, lo, c, v = es_bars.high, es_bars.low, es_bars.close, es_bars.volume
    for n in (14, 28):
        hh, ll = h.rolling(n).max(), lo.rolling(n).min()
        k = (100 * (c - ll) / (hh - ll)).where(hh > ll, 50.0).where(hh.notna())
        _check(computed[f"stoch_k_{n}"], k)
        _check(computed[f"stoch_d_{n}"], k.rolling(3).mean())
    tp = (h + lo + c) / 3
    for n in (14, 50):
        mad = tp.rolling(n).apply(lambda w: np.abs(w - w.mean()).mean(), raw=True)
        _check(computed[f"cci_{n}"], (tp - tp.rolling(n).mean()) / (0.015 * mad), rtol=1e-7, atol=1e-9)
    for n in (10, 60, 120):
        er = (c - c.shift(n)).abs() / c.diff().abs().rolling(n).sum()
        _check(
            computed[f"efficiency_ratio_{n}"], er.fillna(0).where(er.notna() | (c.diff().abs().rolling(n).sum() == 0))
        )
    lc = np.log(c).to_numpy()
    for n in (10, 60, 120):
        windows = sliding_window_view(lc, n)
        x = np.arange(n) - (n - 1) / 2
        yc = windows - windows.mean(axis=1, keepdims=True)
        slope = yc @ x / (x @ x)
        syy = (yc * yc).sum(axis=1)
        r2 = np.where(syy > 0, slope**2 * (x @ x) / np.where(syy > 0, syy, 1), 0.0)
        pad = np.full(n - 1, np.nan)
        _check(computed[f"linreg_slope_{n}"], pd.Series(np.concatenate([pad, slope])), rtol=1e-6, atol=1e-12)
        _check(computed[f"linreg_r2_{n}"], pd.Series(np.concatenate([pad, r2])), rtol=1e-6, atol=1e-9)
    for n in (20, 390):
        hh, ll = h.rolling(n).max(), lo.rolling(n).min()
        _check(computed[f"donchian_pos_{n}"], ((c - ll) / (hh - ll)).where(hh > ll, 0.5).where(hh.notna()))
    _check(computed["hh_dist_60"], np.log(h.rolling(60).max() / c))
    lv = np.log1p(v)
    _check(computed["vol_zscore_60"], (lv - lv.rolling(60).mean()) / lv.rolling(60).std(ddof=0), rtol=1e-6, atol=1e-9)
    pos = (tp * v).where(tp > tp.shift(), 0.0).where(tp.shift().notna())
    neg = (tp * v).where(tp < tp.shift(), 0.0).where(tp.shift().notna())
    mfi = 100 - 100 / (1 + pos.rolling(14).sum() / neg.rolling(14).sum())
    _check(computed["mfi_14"], mfi, rtol=1e-8)
    rng = h - lo
    _check(computed["close_location"], ((c - lo) / rng).where(rng > 0, 0.5))
    _check(computed["body_ratio"], ((c - es_bars.open) / rng).where(rng > 0, 0.0))


def test_return_moments_liquidity_and_robust_volume(es_bars, computed):
    c, v = es_bars.close, es_bars.volume
    r = np.log(c / c.shift())
    rv = r.to_numpy()
    for n in (30, 120):
        windows = sliding_window_view(rv[1:], n)  # the first return is undefined
        pad = np.full(n, np.nan)
        _check(
            computed[f"skew_{n}"], pd.Series(np.concatenate([pad, stats.skew(windows, axis=1)])), rtol=1e-5, atol=1e-7
        )
        kurt = stats.kurtosis(windows, axis=1)
        _check(computed[f"kurt_{n}"], pd.Series(np.concatenate([pad, kurt])), rtol=1e-5, atol=1e-7)
    for n in (30, 60):
        a = sliding_window_view(rv[2:], n)
        b = sliding_window_view(rv[1:-1], n)
        ac = np.array([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b, strict=True)])
        _check(
            computed[f"autocorr1_{n}"], pd.Series(np.concatenate([np.full(n + 1, np.nan), ac])), rtol=1e-6, atol=1e-9
        )
    amihud = (r.abs() / (v * c) * 1e6).where(v > 0)
    ok = (v > 0).astype(float).where(r.notna())
    ref = amihud.fillna(0).where(r.notna()).rolling(30).sum() / ok.rolling(30).sum()
    _check(computed["amihud_30"], ref, rtol=1e-8)
    dc = c.diff()
    cov = (dc * dc.shift()).rolling(30).mean() - dc.rolling(30).mean() * dc.shift().rolling(30).mean()
    roll = (2 * np.sqrt(-cov.clip(upper=0)) / c * 1e4).where(cov.notna())
    _check(computed["roll_spread_30"], roll, rtol=1e-6, atol=1e-9)
    x = np.log1p(v)
    med = x.shift().rolling(60).median()
    iqr = x.shift().rolling(60).quantile(0.75) - x.shift().rolling(60).quantile(0.25)
    _check(computed["volume_anomaly"], ((x - med) / (iqr / 1.349)).where(iqr > 0, 0.0).where(med.notna()), rtol=1e-9)


def test_session_vwap_and_time_features(es_bars, computed):
    ts = pd.to_datetime(es_bars.ts, unit="ns", utc=True).dt.tz_convert("America/Chicago")
    day = (
        ts - pd.Timedelta(minutes=1) + pd.Timedelta(hours=7)
    ).dt.date  # the session opening 17:00 CT belongs to the next day
    tp = (es_bars.high + es_bars.low + es_bars.close) / 3
    pv = (tp * es_bars.volume).groupby(day).cumsum()
    vol = es_bars.volume.groupby(day).cumsum()
    _check(computed["vwap_dist_session"], es_bars.close / (pv / vol) - 1)
    session_open = pd.to_datetime(day.astype(str)).dt.tz_localize("America/Chicago") - pd.Timedelta(hours=7)
    minutes = (ts - session_open).dt.total_seconds() / 60
    _check(computed["minutes_since_session_open"], minutes)
    rth = (ts.dt.time > pd.Timestamp("08:30").time()) & (ts.dt.time <= pd.Timestamp("15:00").time())
    _check(computed["is_rth"], rth.astype(float))
    weekday = pd.to_datetime(day.astype(str)).dt.weekday.astype(float)
    assert set(weekday) == {2.0, 3.0}  # Wednesday 2013-12-18, then Thursday's session from 17:00 CT
    _check(computed["day_of_week"], weekday)
    # ESH14 rolls 8 days before its 2014-03-21 09:30 ET expiry
    roll = pd.Timestamp("2014-03-13T09:30", tz="America/New_York").value
    _check(computed["roll_proximity_days"], (roll - es_bars.ts) / 86_400e9)


# -- order flow on hand-made ticks ------------------------------------------------------------------


def _hub(markets):
    hub = FeatureHub(FEATURE_SETS, {"ES": "ES.training"}, markets)
    hub.register("ESZ25.GLBX")
    return hub


T0 = 1_765_202_400_000_000_000  # 2025-12-08 14:00 UTC, a whole minute


def _bar(hub, minute: int, close: float = 6800.0) -> dict[str, float]:
    ts = T0 + minute * MIN
    values = hub.on_bar("ESZ25.GLBX", BarInput(ts, ts, close, close + 0.25, close - 0.25, close, 10.0))
    return dict(zip(NAMES, values, strict=True))


def test_order_flow_imbalance_and_time_weighted_book(markets):
    hub = _hub(markets)
    s = 1_000_000_000
    # bid 6800.00 x 10, ask 6800.25 x 20 from t = 0; the bid size grows to 30 at t = 15 s; the ask lifts at 45 s
    hub.on_quote("ESZ25.GLBX", T0 + 0 * s, 6800.0, 6800.25, 10.0, 20.0)
    hub.on_quote("ESZ25.GLBX", T0 + 15 * s, 6800.0, 6800.25, 30.0, 20.0)
    hub.on_quote("ESZ25.GLBX", T0 + 45 * s, 6800.0, 6800.50, 30.0, 5.0)
    v = _bar(hub, 1)
    # OFI events: +30 - 10 (bid size up at the same price); then bid again +30 - 30 = 0, ask up: -0 + 20
    e1 = 30.0 - 10.0
    e2 = (30.0 - 30.0) + 20.0
    assert v["orderflow_imbalance"] == pytest.approx((e1 + e2) / (abs(e1) + abs(e2)))
    imbalance = (15 * (10 - 20) / 30 + 30 * (30 - 20) / 50 + 15 * (30 - 5) / 35) / 60
    assert v["bid_ask_imbalance"] == pytest.approx(imbalance)
    depth = (15 * 15 + 30 * 25 + 15 * 17.5) / 60
    assert v["l1_depth_mean"] == pytest.approx(depth)
    assert v["ofi_1"] == pytest.approx((e1 + e2) / depth)
    assert v["spread_mean"] == pytest.approx((45 * 1 + 15 * 2) / 60)
    assert v["spread_max"] == 2.0
    assert v["spread_min_share"] == pytest.approx(45 / 60)
    assert v["bid_ask_imbalance_last"] == pytest.approx(25 / 35)
    assert v["quote_velocity"] == 3.0
    assert math.isnan(v["trade_aggressiveness"])  # no trade seen yet: missing, not zero


def test_trade_classification_uses_aggressor_then_quote_then_tick_rule(markets):
    hub = _hub(markets)
    hub.on_quote("ESZ25.GLBX", T0 + 1, 6800.0, 6800.5, 10.0, 10.0)
    hub.on_trade("ESZ25.GLBX", T0 + 2, 6800.5, 3.0, 1)  # buyer by flag
    hub.on_trade("ESZ25.GLBX", T0 + 3, 6800.0, 1.0, 2)  # seller by flag
    hub.on_trade("ESZ25.GLBX", T0 + 4, 6800.5, 2.0, 0)  # above the mid: buyer
    hub.on_trade("ESZ25.GLBX", T0 + 5, 6800.25, 4.0, 0)  # at the mid, below the last price: seller (tick rule)
    v = _bar(hub, 1)
    assert v["trade_aggressiveness"] == pytest.approx((5.0 - 5.0) / 10.0)
    assert v["tick_rule_imbalance"] == pytest.approx(0.0)
    assert v["trade_velocity"] == 4.0
    assert v["avg_trade_size"] == pytest.approx(2.5)


def _calm_book(hub, bars: int) -> None:
    """Bars of a quiet book, 10 x 10 at 6800.00 / 6800.25: the reference depth becomes 10."""
    for m in range(bars):
        hub.on_quote("ESZ25.GLBX", T0 + m * MIN + 1, 6800.0, 6800.25, 10.0, 10.0)
        hub.on_trade("ESZ25.GLBX", T0 + m * MIN + 2, 6800.25, 1.0, 1)
        _bar(hub, m + 1)


def test_large_order_added_and_pulled_untraded_is_spoofing(markets):
    hub = _hub(markets)
    _calm_book(hub, 5)
    t = T0 + 5 * MIN
    hub.on_quote("ESZ25.GLBX", t + 1_000, 6800.0, 6800.25, 60.0, 10.0)  # +50 at the bid (> 3 x 10)
    hub.on_quote("ESZ25.GLBX", t + 500_000_000, 6800.0, 6800.25, 10.0, 10.0)  # pulled within 0.5 s
    v = _bar(hub, 6)
    assert v["spoof_events"] == 1.0
    assert v["spoofing_score"] == pytest.approx(1.0)


def test_large_order_that_trades_is_not_spoofing(markets):
    hub = _hub(markets)
    _calm_book(hub, 5)
    t = T0 + 5 * MIN
    hub.on_quote("ESZ25.GLBX", t + 1_000, 6800.0, 6800.25, 60.0, 10.0)
    hub.on_trade("ESZ25.GLBX", t + 2_000, 6800.0, 40.0, 2)  # sellers hit the large bid
    hub.on_quote("ESZ25.GLBX", t + 3_000, 6800.0, 6800.25, 20.0, 10.0)
    v = _bar(hub, 6)
    assert v["spoof_events"] == 0.0
    assert v["spoofing_score"] == 0.0


def test_absent_inputs_are_nan_never_zero(markets):
    hub = _hub(markets)
    v = _bar(hub, 1)
    absent = (
        "orderflow_imbalance", "trade_velocity", "depth_imbalance_5", "vix_level", "es_spy_corr_60",
        "call_iv_atm", "gex", "news_sentiment_score", "news_impact_score", "minutes_to_next_high_impact",
    )  # fmt: skip
    for name in absent:
        assert math.isnan(v[name]), name
    assert v["minutes_since_session_open"] > 0  # the clock is always known


def test_invalid_inputs_are_skipped_and_reported(markets):
    hub = _hub(markets)
    _bar(hub, 1)
    ts = T0 + 2 * MIN
    assert hub.on_bar("ESZ25.GLBX", BarInput(ts, ts, float("nan"), 1.0, 1.0, 1.0, 1.0)) is None
    assert hub.on_bar("ESZ25.GLBX", BarInput(ts, ts, 6800.0, 6799.0, 6801.0, 6800.0, 1.0)) is None  # high < low
    hub.on_quote("ESZ25.GLBX", ts, float("nan"), 6800.25, 10.0, 10.0)
    hub.on_quote("ESZ25.GLBX", ts, 6800.5, 6800.25, 10.0, 10.0)  # crossed
    hub.on_trade("ESZ25.GLBX", ts, 6800.0, float("inf"), 1)
    warnings = hub.drain_warnings()
    assert len(warnings) == 5 and all("ESZ25.GLBX" in w for w in warnings)
    assert hub.stats.rejected_bars == 2 and hub.instruments["ESZ25.GLBX"].bars == 1
    v = _bar(hub, 3)
    assert math.isnan(v["orderflow_imbalance"])  # the bad quotes never entered the state


def _weekdays(start: str, count: int) -> list[pd.Timestamp]:
    days = pd.bdate_range(start, periods=count)
    return [pd.Timestamp(d.date()) for d in days]


@pytest.mark.parametrize("gap", [False, True])
def test_vix_es_correlation_pairs_same_day_returns_and_skips_data_gaps(markets, gap):
    # Arrange: one ESH26 bar a day at 14:00 CT and the VIX close at 16:15 ET, 40 weekdays of Jan-Feb 2026
    rng = np.random.default_rng(7)
    days = _weekdays("2026-01-05", 40)
    es = 6900.0 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
    vix = 18.0 * np.exp(np.cumsum(-0.8 * np.diff(np.log(es), prepend=np.log(es[0])) + rng.normal(0, 0.005, len(days))))
    missing = set(range(12, 15)) if gap else set()  # ES data lost for three days (VIX still there)
    hub = FeatureHub(FEATURE_SETS, {"ES": "ES.training"}, markets)
    hub.register("ESH26.GLBX")
    col = NAMES.index("vix_es_correlation")
    seen: list[float] = []
    for i, day in enumerate(days):
        es_ts = (day + pd.Timedelta(hours=20)).value  # 14:00 CT
        vix_ts = (day + pd.Timedelta(hours=21, minutes=15)).value  # 16:15 ET
        if i not in missing:
            px = float(es[i])
            values = hub.on_bar("ESH26.GLBX", BarInput(es_ts, es_ts, px, px + 1.0, px - 1.0, px, 100.0))
            assert values is not None
            seen.append(values[col])
        v = float(vix[i])
        hub.on_reference_bar("VIX.CBOE-1-DAY-LAST-EXTERNAL", BarInput(vix_ts, vix_ts, v, v + 0.5, v - 0.5, v, 0.0))
    # Act: the reference at the last bar, from the completed days before it
    es_ret = pd.Series(np.log(es), index=range(len(days))).drop(sorted(missing)).diff()
    vix_chg = pd.Series(np.diff(np.log(vix), prepend=np.nan))
    consecutive = [i for i in es_ret.index[1:-1] if i - 1 not in missing]  # exclude the last (not completed)
    chosen = consecutive[-20:]
    expected = float(np.corrcoef(es_ret[chosen], vix_chg[chosen])[0, 1])
    # Assert
    assert seen[-1] == pytest.approx(expected, rel=1e-9)
    assert expected < -0.5  # the series were built to move against each other
    assert all(math.isnan(x) for x in seen[:10])  # fewer than 10 paired days: missing, not zero
