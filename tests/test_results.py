"""Backtest metrics against hand arithmetic on tiny constructed inputs, plus the files they land in.

Every expected number below is worked out in the test (or its comment) from the definitions in the
``mia_strategies.results`` docstring, never by calling the code under test a second time.
"""

import datetime as dt
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from mia_strategies import results
from mia_strategies.results import SUMMARY_KEYS
from mia_strategies.results import TRADE_COLUMNS
from mia_strategies.results import compute_summary
from mia_strategies.results import daily_returns
from mia_strategies.results import per_instrument
from mia_strategies.results import per_regime
from mia_strategies.results import per_regime_table
from mia_strategies.results import summary_table
from mia_strategies.results import write_report
from mia_strategies.results import write_summary
from mia_strategies.results import write_tables
from mia_strategies.sessions import trading_day


START = 100_000.0
SQRT252 = math.sqrt(252)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def series(points: list[tuple[str, float]]) -> pd.Series:
    return pd.Series([v for _, v in points], index=pd.DatetimeIndex([utc(t) for t, _ in points]), dtype=float)


def strict_json(text: str) -> object:
    def reject(constant: str) -> object:
        raise ValueError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def make_trades(rows: list[dict[str, object]]) -> pd.DataFrame:
    base: dict[str, object] = {
        "instrument_id": "ESZ25.GLBX",
        "root": "ES",
        "side": "LONG",
        "quantity": 1.0,
        "opened_ts": utc("2025-03-04 15:00"),
        "closed_ts": utc("2025-03-04 16:00"),
        "avg_px_open": 5000.0,
        "avg_px_close": 5001.0,
        "commissions": 2.5,
        "mae": -50.0,
        "mfe": 100.0,
        "mae_points": -1.0,
        "mfe_points": 2.0,
        "regime": "",
        "exit_reason": "target",
    }
    out = [{**base, "position_id": f"P-{i}", **row} for i, row in enumerate(rows)]
    return pd.DataFrame(out, columns=list(TRADE_COLUMNS))


EMPTY_FILLS = pd.DataFrame()

# A three-day path (March 2025, CST = UTC-6). Closing equity per day: 101,000 / 98,980 / 100,959.6,
# i.e. daily returns +1 %, -2 %, +2 % exactly. Day two dips intraday to 98,000 (the drawdown trough).
THREE_DAYS = series(
    [
        ("2025-03-03 16:00", 100_500.0),  # Mon 10:00 CT
        ("2025-03-03 21:00", 101_000.0),  # Mon 15:00 CT -> Monday's close (the peak)
        ("2025-03-04 16:00", 98_000.0),  # Tue 10:00 CT -> trough
        ("2025-03-04 21:00", 98_980.0),  # Tue 15:00 CT
        ("2025-03-05 21:00", 100_959.6),  # Wed 15:00 CT
    ]
)


# -- trading-day bucketing -------------------------------------------------------------------------


def test_daily_returns_bucket_by_cme_trading_day_across_1700_ct_and_weekend() -> None:
    equity = series(
        [
            ("2025-03-03 22:30", 100.0),  # Mon 16:30 CST -> Mon 3 Mar
            ("2025-03-03 23:00", 104.0),  # Mon 17:00 CST -> Tue 4 Mar (session reopened)
            ("2025-03-04 05:00", 110.0),  # Mon 23:00 CST, past UTC midnight -> still Tue 4 Mar
            ("2025-03-07 21:00", 121.0),  # Fri 15:00 CST -> Fri 7 Mar
            ("2025-03-07 23:30", 130.0),  # Fri 17:30 CST -> Mon 10 Mar
            ("2025-03-09 22:00", 125.0),  # Sun 17:00 CDT (DST began that morning) -> Mon 10 Mar
            ("2025-03-10 14:00", 99.825),  # Mon 09:00 CDT -> Mon 10 Mar
        ]
    )
    got = daily_returns(equity, 100.0)
    assert list(got.index) == [
        dt.date(2025, 3, 3),
        dt.date(2025, 3, 4),
        dt.date(2025, 3, 7),
        dt.date(2025, 3, 10),
    ]
    # last equity per day: 100, 110, 121, 99.825 against 100 (start), 100, 110, 121
    expected = [100 / 100 - 1, 110 / 100 - 1, 121 / 110 - 1, 99.825 / 121 - 1]
    assert got.to_numpy() == pytest.approx(expected, abs=1e-15)
    assert got.iloc[3] == pytest.approx(-0.175)


def test_daily_returns_first_day_measured_against_starting_balance() -> None:
    got = daily_returns(series([("2025-03-03 15:00", 95_000.0)]), START)
    assert got.to_numpy() == pytest.approx([-0.05])


def test_daily_returns_empty_and_bad_start() -> None:
    assert daily_returns(pd.Series(dtype=float), START).empty
    with pytest.raises(ValueError, match="starting_balance"):
        daily_returns(THREE_DAYS, 0.0)


def test_hourly_trading_day_cache_matches_sessions_everywhere() -> None:
    # Random stamps over two years (four DST switches, every weekday/weekend hour) plus stamps a
    # microsecond around the session boundaries: the per-hour shortcut must equal
    # sessions.trading_day stamp by stamp. (Within half a microsecond before 17:00 CT,
    # sessions.trading_day rounds through a float and says "next day"; the per-hour bucketing is
    # exact there, see the next test.)
    rng = np.random.default_rng(7)
    lo, hi = utc("2024-01-01").value, utc("2026-01-01").value
    stamps = rng.integers(lo, hi, 20_000)
    edges = ("2025-03-03 23:00", "2025-03-09 22:00", "2025-03-10 21:00", "2025-11-02 23:00")
    boundaries = [utc(t).value + d for t in edges for d in (-1000, 0, 1000)]
    ns = np.sort(np.concatenate([stamps, boundaries]))
    index = pd.DatetimeIndex(ns, tz="UTC")
    assert results._trading_days(index) == [trading_day(int(v)) for v in ns]


def test_bucketing_is_nanosecond_exact_at_1700_ct() -> None:
    last_ns_of_monday = utc("2025-03-03 23:00").value - 1  # 16:59:59.999999999 CST
    equity = pd.Series([101.0, 102.0], index=pd.DatetimeIndex([last_ns_of_monday, last_ns_of_monday + 1], tz="UTC"))
    got = daily_returns(equity, 100.0)
    assert list(got.index) == [dt.date(2025, 3, 3), dt.date(2025, 3, 4)]


# -- summary metrics on the three-day path ---------------------------------------------------------


def test_three_day_path_risk_metrics_by_hand() -> None:
    s = compute_summary(THREE_DAYS, make_trades([]), EMPTY_FILLS, starting_balance=START, total_events=0, elapsed_s=0)
    assert s["days"] == 3
    assert s["final_equity"] == pytest.approx(100_959.6)
    assert s["net_pnl"] == pytest.approx(959.6)
    assert s["total_return"] == pytest.approx(0.009596)
    # returns in percent: 1, -2, 2 -> mean 1/3 %, deviations 2/3, -7/3, 5/3, squares sum 78/9 = 26/3,
    # sample variance 13/3 %^2 = 13/30000.
    mean, std = 0.01 / 3, math.sqrt(13 / 30000)
    assert s["sharpe"] == pytest.approx(mean / std * SQRT252)
    assert s["sharpe"] == pytest.approx(2.54196, abs=1e-5)
    # downside deviation sqrt((0 + 0.02^2 + 0) / 3) = 0.02 / sqrt(3) -> sortino = sqrt(3)/6 * sqrt(252)
    assert s["sortino"] == pytest.approx(math.sqrt(756) / 6)
    # peak 101,000 (Mon close) to trough 98,000 (Tue intraday)
    assert s["max_drawdown"] == pytest.approx(3000 / 101_000)
    # 3 days -> worst max(1, floor(0.15)) = 1 day: -2 %
    assert s["cvar_95"] == pytest.approx(0.02)
    assert s["calmar"] == pytest.approx((1.009596**84 - 1) / (3000 / 101_000))


def test_drawdown_counts_starting_balance_as_first_peak() -> None:
    # never above the start: 100k -> 96k -> 99k; drawdown 4 % although the series' own peak is 99k
    equity = series([("2025-03-03 21:00", 96_000.0), ("2025-03-04 21:00", 99_000.0)])
    s = compute_summary(equity, make_trades([]), EMPTY_FILLS, starting_balance=START, total_events=0, elapsed_s=1)
    assert s["max_drawdown"] == pytest.approx(0.04)
    assert s["calmar"] == pytest.approx((0.99**126 - 1) / 0.04)  # 252 / 2 days = 126


@pytest.mark.parametrize(("n_days", "tail"), [(19, 1), (20, 1), (39, 1), (40, 2), (60, 3), (100, 5)])
def test_cvar_averages_worst_five_percent_of_days(n_days: int, tail: int) -> None:
    # day i (0-based) returns -(i + 1) / 1000 for the first `tail + 1` days, +0.5 % after; the worst
    # `tail` days are -(tail + 1)/1000 ... -2/1000, mean -(tail + 3) / 2000.
    returns = [-(i + 1) / 1000 if i <= tail else 0.005 for i in range(n_days)]
    days = pd.bdate_range("2025-01-06", periods=n_days)
    stamps = [utc(f"{d.date()} 20:00") for d in days]  # 14:00 CST/15:00 CDT: same calendar day
    equity = pd.Series(START * np.cumprod(1 + np.array(returns)), index=pd.DatetimeIndex(stamps))
    s = compute_summary(equity, make_trades([]), EMPTY_FILLS, starting_balance=START, total_events=0, elapsed_s=1)
    assert s["days"] == n_days
    worst = sorted(returns)[:tail]
    assert s["cvar_95"] == pytest.approx(-sum(worst) / tail)
    assert s["cvar_95"] == pytest.approx((tail + 3) / 2000)


def test_flat_equity_gives_undefined_ratios_not_infinities() -> None:
    equity = series([(f"2025-03-0{d} 20:00", START) for d in (3, 4, 5)])
    s = compute_summary(equity, make_trades([]), EMPTY_FILLS, starting_balance=START, total_events=10, elapsed_s=2)
    assert s["sharpe"] is None  # zero std
    assert s["sortino"] is None  # no losing day
    assert s["calmar"] is None  # zero drawdown
    assert s["max_drawdown"] == 0.0
    assert s["cvar_95"] == 0.0 and math.copysign(1, s["cvar_95"]) == 1  # not -0.0
    assert s["events_per_second"] == 5.0


def test_single_point_equity() -> None:
    s = compute_summary(
        series([("2025-03-03 20:00", 99_000.0)]),
        make_trades([]),
        EMPTY_FILLS,
        starting_balance=START,
        total_events=0,
        elapsed_s=0,
    )
    assert s["days"] == 1
    assert s["sharpe"] is None and s["sortino"] is None  # fewer than 2 days
    assert s["cvar_95"] == pytest.approx(0.01)
    assert s["max_drawdown"] == pytest.approx(0.01)
    assert s["calmar"] == pytest.approx((0.99**252 - 1) / 0.01)


# -- trade statistics ------------------------------------------------------------------------------


def test_trade_statistics_by_hand() -> None:
    trades = make_trades(
        [
            {"realized_pnl": 300.0, "mae": -40.0, "mfe": 350.0},
            {"realized_pnl": -100.0, "mae": -150.0, "mfe": 20.0},
            {"realized_pnl": 0.0, "mae": -10.0, "mfe": 10.0},  # scratch: not a win, not a loss
            {"realized_pnl": 200.0, "mae": 0.0, "mfe": 250.0},
            {"realized_pnl": -50.0, "mae": -60.0, "mfe": 0.0},
        ]
    )
    fills = pd.DataFrame({"commission": [2.5, 2.5, 1.25, 0.5]})
    s = compute_summary(pd.Series(dtype=float), trades, fills, starting_balance=START, total_events=0, elapsed_s=0)
    assert s["trades"] == 5
    assert s["profit_factor"] == pytest.approx(500 / 150)  # (300 + 200) / |-100 - 50|
    assert s["win_rate"] == pytest.approx(2 / 5)
    assert s["expectancy"] == pytest.approx(350 / 5)
    assert s["avg_mae"] == pytest.approx(-260 / 5)
    assert s["avg_mfe"] == pytest.approx(630 / 5)
    assert s["commissions"] == pytest.approx(6.75)  # from the fills
    # no equity series: final equity is start + realized
    assert s["final_equity"] == pytest.approx(100_350.0)
    assert s["total_return"] == pytest.approx(0.0035)
    assert s["days"] == 0 and s["sharpe"] is None and s["cvar_95"] is None


def test_commissions_fall_back_to_trades_and_no_loser_means_no_profit_factor() -> None:
    trades = make_trades([{"realized_pnl": 10.0, "commissions": 4.5}, {"realized_pnl": 20.0, "commissions": 1.0}])
    s = compute_summary(
        pd.Series(dtype=float), trades, EMPTY_FILLS, starting_balance=START, total_events=0, elapsed_s=0
    )
    assert s["commissions"] == pytest.approx(5.5)
    assert s["profit_factor"] is None
    assert s["win_rate"] == 1.0


def test_per_instrument_by_hand() -> None:
    trades = make_trades(
        [
            {
                "root": "NQ",
                "instrument_id": "NQZ25.GLBX",
                "realized_pnl": -80.0,
                "commissions": 2.0,
                "mae": -90.0,
                "mfe": 5.0,
            },
            {"root": "ES", "realized_pnl": 100.0, "commissions": 2.5, "mae": -20.0, "mfe": 120.0},
            {"root": "ES", "realized_pnl": -30.0, "commissions": 2.5, "mae": -40.0, "mfe": 10.0},
            {"root": "ES", "realized_pnl": 50.0, "commissions": 2.5, "mae": -30.0, "mfe": 80.0},
        ]
    )
    table = per_instrument(trades)
    assert list(table.index) == ["ES", "NQ"]
    assert list(table.columns) == ["trades", "net_pnl", "commissions", "win_rate", "avg_mae", "avg_mfe"]
    es, nq = table.loc["ES"], table.loc["NQ"]
    assert es["trades"] == 3 and nq["trades"] == 1
    assert es["net_pnl"] == pytest.approx(120.0) and nq["net_pnl"] == pytest.approx(-80.0)
    assert es["commissions"] == pytest.approx(7.5)
    assert es["win_rate"] == pytest.approx(2 / 3) and nq["win_rate"] == 0.0
    assert es["avg_mae"] == pytest.approx(-30.0) and es["avg_mfe"] == pytest.approx(70.0)
    assert per_instrument(pd.DataFrame()).empty


# -- empty inputs and files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "equity", [pd.Series(dtype=float), pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)]
)
def test_empty_run_produces_every_key_and_every_file(tmp_path: Path, equity: pd.Series) -> None:
    s = compute_summary(equity, pd.DataFrame(), pd.DataFrame(), starting_balance=START, total_events=0, elapsed_s=0.0)
    assert set(s) == set(SUMMARY_KEYS)
    assert s["total_return"] == 0.0 and s["final_equity"] == START and s["net_pnl"] == 0.0
    assert s["trades"] == 0 and s["days"] == 0 and s["commissions"] == 0.0
    assert s["max_drawdown"] == 0.0
    for key in ("sharpe", "sortino", "calmar", "cvar_95", "profit_factor", "win_rate", "expectancy"):
        assert s[key] is None, key
    assert s["events_per_second"] is None

    path = write_summary(tmp_path, s)
    assert strict_json(path.read_text()) == {k: s[k] for k in sorted(s)}
    write_tables(tmp_path, pd.DataFrame(), pd.DataFrame(), equity)
    assert (tmp_path / "positions.csv").read_text().strip() == ",".join(TRADE_COLUMNS)
    assert (tmp_path / "fills.csv").read_text().startswith("ts,instrument_id,")
    assert (tmp_path / "equity.csv").read_text().strip() == "ts,equity"
    report = write_report(tmp_path, equity, pd.DataFrame(), s).read_text()
    assert "no trades" in report and "no equity data" in report
    Console(record=True, width=100).print(summary_table(s))


def test_summary_json_is_strict_sorted_and_nulls_non_finite(tmp_path: Path) -> None:
    summary = {
        "zeta": 1,
        "sharpe": float("nan"),
        "calmar": float("inf"),
        "alpha": np.float64(0.25),
        "n": np.int64(3),
    }
    text = write_summary(tmp_path, summary).read_text()
    parsed = strict_json(text)
    assert parsed == {"alpha": 0.25, "calmar": None, "n": 3, "sharpe": None, "zeta": 1}
    assert list(parsed) == sorted(parsed)  # type: ignore[arg-type]
    assert "NaN" not in text and "Infinity" not in text
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temp file left


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_summary(tmp_path, {"total_return": 0.1})

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_summary(tmp_path, {"total_return": 0.2})
    assert strict_json((tmp_path / "summary.json").read_text()) == {"total_return": 0.1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_csv_round_trip_keeps_nanoseconds_floats_and_column_order(tmp_path: Path) -> None:
    trades = make_trades(
        [
            {
                "realized_pnl": 0.1 + 0.2,
                "avg_px_open": 4321.25,
                "mae": 1 / 3,
                "opened_ts": utc("2025-03-04 15:00:00.123456789"),
            },
            {"realized_pnl": -1e-17, "avg_px_open": 6000.0, "regime": "trend"},
        ]
    )
    trades.insert(0, "extra", ["a", "b"])  # unknown columns go after the known ones
    fills = pd.DataFrame(
        {
            "price": [4321.25, 4321.5],
            "ts": [utc("2025-03-04 15:00:00.000000001"), utc("2025-03-04 16:00")],
            "instrument_id": ["ESZ25.GLBX"] * 2,
            "client_order_id": ["O-1", "O-2"],
            "venue_order_id": ["V-1", "V-2"],
            "trade_id": ["T-1", "T-2"],
            "side": ["BUY", "SELL"],
            "quantity": [1.0, 1.0],
            "commission": [2.5, 2.5],
            "liquidity_side": ["TAKER", "MAKER"],
            "order_type": ["MARKET", "LIMIT"],
        }
    )
    write_tables(tmp_path, fills, trades, THREE_DAYS)

    # the file holds Python's shortest round-trip repr; pandas' default float parser is the lossy part
    assert "0.30000000000000004" in (tmp_path / "positions.csv").read_text()
    pos = pd.read_csv(tmp_path / "positions.csv", keep_default_na=False, float_precision="round_trip")
    assert list(pos.columns) == [*TRADE_COLUMNS, "extra"]
    assert pos["realized_pnl"].tolist() == [0.1 + 0.2, -1e-17]
    assert pos["mae"].tolist()[0] == 1 / 3
    assert pos["opened_ts"][0] == "2025-03-04T15:00:00.123456789Z"
    opened = pd.to_datetime(pos["opened_ts"], utc=True, format="ISO8601")
    assert opened[0] == trades["opened_ts"][0] and opened[0].value % 1000 == 789
    assert pos["regime"].tolist() == ["", "trend"]

    fl = pd.read_csv(tmp_path / "fills.csv", float_precision="round_trip")
    assert list(fl.columns) == list(results.FILL_COLUMNS)
    assert fl["ts"].tolist() == ["2025-03-04T15:00:00.000000001Z", "2025-03-04T16:00:00.000000000Z"]
    assert fl["price"].tolist() == [4321.25, 4321.5]

    eq = pd.read_csv(tmp_path / "equity.csv", float_precision="round_trip")
    assert list(eq.columns) == ["ts", "equity"]
    back = pd.Series(
        eq["equity"].to_numpy(), index=pd.DatetimeIndex(pd.to_datetime(eq["ts"], utc=True, format="ISO8601"))
    )
    pd.testing.assert_series_equal(back, THREE_DAYS, check_names=False, check_freq=False)


# -- report and console ----------------------------------------------------------------------------


def test_report_is_self_contained_and_holds_the_data(tmp_path: Path) -> None:
    trades = make_trades(
        [
            {"root": "ES", "realized_pnl": 412.5, "mae": -137.5, "mfe": 512.5},
            {"root": "NQ", "instrument_id": "NQZ25.GLBX", "realized_pnl": -260.0, "mae": -333.0, "mfe": 44.0},
        ]
    )
    s = compute_summary(THREE_DAYS, trades, EMPTY_FILLS, starting_balance=START, total_events=1000, elapsed_s=4)
    path = write_report(tmp_path, THREE_DAYS, trades, s, title="ES <test> run")
    text = path.read_text()
    assert path.name == "report.html"
    assert text.startswith("<!DOCTYPE html>")
    assert "ES &lt;test&gt; run" in text  # title escaped
    assert len(text) > 1_000_000 and "<script src=" not in text  # plotly.js inlined, no CDN
    assert "Plotly.newPlot" in text
    for value in ("100959.6", "98000.0", "101000.0"):  # equity points, readable in the trace data
        assert value in text
    assert '"2025-03-05 21:00:00"' in text
    assert '"x":["ES","NQ"]' in text.replace(" ", "")  # per-instrument bars
    assert "412.5" in text and "-260.0" in text
    assert "-137.5" in text and "512.5" in text  # MAE/MFE scatter
    assert '"name":"win"' in text and '"name":"loss"' in text
    assert "Drawdown (%)" in text and "MAE vs MFE" in text
    assert "+0.96%" in text  # summary table: total return 0.9596 %
    assert "P-0 ESZ25.GLBX target" in text  # hover label
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_report_decimation_keeps_extremes() -> None:
    rng = np.random.default_rng(1)
    values = START + np.cumsum(rng.normal(0, 50, 100_000))
    drawdown = results._drawdown_series(values, START)
    keep = results._decimate(values, drawdown)
    assert len(keep) <= results._MAX_PLOT_POINTS
    for pos in (0, len(values) - 1, int(np.argmin(values)), int(np.argmax(values)), int(np.argmax(drawdown))):
        assert pos in set(keep.tolist())
    assert np.all(np.diff(keep) > 0)


def test_summary_table_formats_for_a_trader() -> None:
    summary = {
        "total_return": 0.123456,
        "net_pnl": -1234.5,
        "sharpe": 1.2345,
        "sortino": None,
        "max_drawdown": 0.0567,
        "cvar_95": 0.0123,
        "profit_factor": float("nan"),
        "win_rate": 0.5,
        "expectancy": 12.345,
        "trades": 1234,
        "commissions": 98765.4321,
        "events_per_second": 1234567.8,
    }
    console = Console(record=True, width=100)
    console.print(summary_table(summary))
    rows = {}
    for line in console.export_text().splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 2:
            rows[cells[0]] = cells[1]
    assert rows == {
        "Total return": "+12.35%",
        "Net P&L": "-$1,234.50",
        "Sharpe": "1.23",
        "Sortino": "n/a",
        "Max drawdown": "5.67%",
        "CVaR 95% (daily)": "1.23%",
        "Profit factor": "n/a",
        "Win rate": "50.00%",
        "Expectancy / trade": "$12.35",
        "Trades": "1,234",
        "Commissions": "$98,765.43",
        "Events / s": "1,234,568",
    }


def test_per_regime_counts_time_and_trades_and_prints_undefined_values_as_a_dash():
    trades = pd.DataFrame(
        {"root": ["ES", "ES", "MNQ"], "regime": ["trend", "trend", ""], "realized_pnl": [100.0, -40.0, 5.0]}
    )
    bars = {"ES": {"trend": 30, "range": 60, "defensive": 10}, "MNQ": {"range": 4}}
    table = per_regime(trades, bars)
    es_trend = table.loc[("ES", "trend")]
    assert es_trend["bars"] == 30 and es_trend["time_share"] == pytest.approx(0.3)
    assert es_trend["trades"] == 2 and es_trend["net_pnl"] == pytest.approx(60.0) and es_trend["win_rate"] == 0.5
    assert table.loc[("ES", "range")]["trades"] == 0 and np.isnan(table.loc[("ES", "range")]["win_rate"])
    # a trade without a regime is counted as unknown, never dropped
    assert table.loc[("MNQ", "unknown")]["trades"] == 1 and table.loc[("MNQ", "unknown")]["bars"] == 0
    assert table["trades"].sum() == len(trades)
    # the JSON round trip of summary.json turns NaN into null: the table still prints
    records = json.loads(table.reset_index().to_json(orient="records"))
    console = Console(width=120, record=True)
    console.print(per_regime_table(pd.DataFrame(records).set_index(["root", "regime"])))
    text = console.export_text()
    assert "30.00%" in text and "$60.00" in text and " - " in text
