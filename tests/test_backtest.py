"""`mia backtest` end to end on a seeded demo catalog: outputs, determinism, rolls, fills, bad input."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from conftest import run_mia
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from mia_strategies import sessions
from mia_strategies.backtest import plan_backtest
from mia_strategies.backtest import run_backtest
from mia_strategies.config import BacktestConfig
from mia_strategies.config import FillModelSettings
from mia_strategies.config import VenueSettings
from mia_strategies.errors import CatalogError
from mia_strategies.errors import ConfigError


CONFIG = REPO / "config"
SUMMARY_KEYS = {
    "total_return", "sharpe", "sortino", "calmar", "max_drawdown", "cvar_95", "profit_factor",
    "win_rate", "expectancy", "trades", "commissions", "total_events", "elapsed_s", "events_per_second",
}  # fmt: skip
ROLL_NS = pd.Timestamp("2025-12-11 14:30", tz="UTC").value
HOLD = ("mia_test_strategies:HoldThroughRoll", "mia_test_strategies:HoldThroughRollConfig")


def _quote_arrays(catalog: ParquetDataCatalog, instrument_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps, bids and asks of every quote of one contract, from the catalog itself."""
    quotes = catalog.quote_ticks(instrument_ids=[instrument_id])
    ts = np.array([q.ts_event for q in quotes], dtype=np.int64)
    bid = np.array([q.bid_price.as_double() for q in quotes])
    ask = np.array([q.ask_price.as_double() for q in quotes])
    return ts, bid, ask


def _plan(catalog: Path, out: Path, **config_updates):
    config = BacktestConfig(**config_updates)
    return plan_backtest(config, CONFIG, catalog=catalog, out=out)


def _no_slip() -> VenueSettings:
    return VenueSettings(fill_model=FillModelSettings(prob_slippage=0.0))


@pytest.fixture(scope="module")
def default_run(roll_week_catalog, tmp_path_factory):
    """The shipped config (the MIA strategy with its actors) on the roll week, without slippage."""
    out = tmp_path_factory.mktemp("bt") / "run"
    return run_backtest(_plan(roll_week_catalog, out, venue=_no_slip()))


def test_cli_backtest_writes_the_run_folder(roll_week_catalog, tmp_path):
    out = tmp_path / "run"
    result = run_mia("backtest", "--catalog", str(roll_week_catalog), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "sharpe" in result.stdout.lower() and str(out) in result.stdout.replace("\n", "")
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["trades"] > 0 and summary["total_events"] > 10_000
    fills = pd.read_csv(out / "fills.csv")
    positions = pd.read_csv(out / "positions.csv")
    assert {"mae", "mfe", "mae_points", "mfe_points", "exit_reason"} <= set(positions.columns)
    assert len(positions) == summary["trades"]
    assert set(fills["instrument_id"]) <= {"ESZ25.GLBX", "ESH26.GLBX", "MNQZ25.GLBX", "MNQH26.GLBX"}
    report = (out / "report.html").read_text()
    assert "plotly" in report.lower() and "ES" in report
    assert json.loads((out / "run.json").read_text())["instruments"] == ["ES", "MNQ"]


def test_summary_is_consistent_with_trades_and_fills(default_run):
    summary, trades, fills = default_run.summary, default_run.trades, default_run.fills
    assert summary["trades"] == len(trades) > 0
    assert summary["commissions"] == pytest.approx(fills["commission"].sum())
    # every trade's commission is its fills' commission; P&L in points x multiplier minus commissions
    mult = trades["root"].map({"ES": 50.0, "MNQ": 2.0})
    sign = np.where(trades["side"] == "LONG", 1.0, -1.0)
    gross = sign * (trades["avg_px_close"] - trades["avg_px_open"]) * trades["quantity"] * mult
    assert np.allclose(gross - trades["commissions"], trades["realized_pnl"], atol=1e-6)
    assert (trades["mae"] <= 0).all() and (trades["mfe"] >= 0).all()
    # MAE/MFE bracket the realised move in points
    move = sign * (trades["avg_px_close"] - trades["avg_px_open"])
    assert ((trades["mae_points"] <= move + 1e-9) & (move <= trades["mfe_points"] + 1e-9)).all()
    # the accounting identity when flat at the end: equity change = realised P&L net of commissions
    final = default_run.equity.iloc[-1]
    if (trades["closed_ts"].max() <= default_run.equity.index[-1]) and summary["net_pnl"] is not None:
        assert final - 100_000 == pytest.approx(trades["realized_pnl"].sum(), abs=0.01)


def test_same_config_gives_identical_fills_and_positions(roll_week_catalog, tmp_path, default_run):
    again = run_backtest(_plan(roll_week_catalog, tmp_path / "again", venue=_no_slip()))
    pd.testing.assert_frame_equal(again.fills, default_run.fills)
    pd.testing.assert_frame_equal(again.trades, default_run.trades)


def test_entries_fill_from_quotes_after_the_decision_not_at_the_bar(roll_week_catalog, default_run):
    catalog = ParquetDataCatalog(str(roll_week_catalog))
    fills = default_run.fills
    entries = fills[fills["order_type"] == "MARKET"]
    assert len(entries) > 0
    checked = 0
    for instrument_id, group in entries.groupby("instrument_id"):
        ts, bid, ask = _quote_arrays(catalog, instrument_id)
        for _, order in group.groupby("client_order_id"):
            fill = order.iloc[0]
            fill_ns = pd.Timestamp(fill["ts"]).value
            # decisions happen on whole minutes; fills come strictly later (latency), against the
            # quote in force when the order arrived: the last one before the fill's event time
            assert fill_ns % 60_000_000_000 != 0
            i = np.searchsorted(ts, fill_ns, side="left") - 1
            buy = fill["side"] == "BUY"
            expected = ask[i] if buy else bid[i]
            # the first lot fills at the touch; lots beyond the displayed size walk the book
            best = order["price"].min() if buy else order["price"].max()
            assert best == pytest.approx(expected), (instrument_id, fill["ts"])
            checked += len(order)
    assert checked == len(entries)


def test_roll_policy_roll_moves_the_position_into_the_next_contract(roll_week_catalog, tmp_path):
    plan = dataclasses.replace(_plan(roll_week_catalog, tmp_path / "roll"), strategy_impl=HOLD)
    outcome = run_backtest(plan)
    trades = outcome.trades.set_index("instrument_id")
    for old, new in (("ESZ25.GLBX", "ESH26.GLBX"), ("MNQZ25.GLBX", "MNQH26.GLBX")):
        at_roll = outcome.trades[(outcome.trades["instrument_id"] == old) & (outcome.trades["exit_reason"] == "roll")]
        assert len(at_roll) == 1, trades
        closed = at_roll["closed_ts"].iloc[0].value
        assert ROLL_NS <= closed < ROLL_NS + 60_000_000_000
        reopened = outcome.trades[outcome.trades["instrument_id"] == new]["opened_ts"].min().value
        assert ROLL_NS <= reopened < ROLL_NS + 60_000_000_000
        # nothing opens on the old contract after its roll
        opened_old = outcome.trades[outcome.trades["instrument_id"] == old]["opened_ts"]
        assert (opened_old.map(lambda t: t.value) < ROLL_NS).all()
    assert outcome.summary["rolls"] == 2


def test_roll_policy_close_only_closes(roll_week_catalog, tmp_path):
    plan = dataclasses.replace(
        _plan(roll_week_catalog, tmp_path / "close", roll_policy="close"),
        strategy_impl=HOLD,
    )
    outcome = run_backtest(plan)
    trades = outcome.trades
    rolled = trades[trades["exit_reason"] == "roll"]
    assert set(rolled["instrument_id"]) == {"ESZ25.GLBX", "MNQZ25.GLBX"}
    new_opens = trades[trades["instrument_id"].isin(["ESH26.GLBX", "MNQH26.GLBX"])]["opened_ts"]
    # no reopen at the roll: the next entry waits for the next decision bar after it
    assert (new_opens.map(lambda t: t.value) >= ROLL_NS + 60_000_000_000).all()


def test_bars_follow_cme_sessions_with_no_empty_bars(roll_week_catalog, tmp_path):
    plan = dataclasses.replace(_plan(roll_week_catalog, tmp_path / "bars"), strategy_impl=HOLD)
    outcome = run_backtest(plan)
    bars = outcome.strategy.bars
    assert len(bars) > 1000
    for bar in bars:
        assert bar.volume.as_double() > 0
        assert bar.ts_event % 60_000_000_000 == 0  # stamped at the minute close
        assert sessions.is_open(bar.ts_event - 1), pd.Timestamp(bar.ts_event, tz="UTC")
    # flat before every daily halt: no position is open across a session close
    for _, trade in outcome.trades.iterrows():
        assert sessions.trading_day(trade["opened_ts"].value) == sessions.trading_day(trade["closed_ts"].value - 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--catalog", "{missing}"], "nope"),
        (["--catalog", "{empty}"], "empty"),
        (["--catalog", "{catalog}", "--instruments", "ZZ"], "unknown instrument 'ZZ'"),
        (["--catalog", "{catalog}", "--instruments", "NQ"], "has no NQ contracts"),
        (["--catalog", "{catalog}", "--start", "2030-01-01", "--end", "2030-01-02"], "no data between"),
        (["--catalog", "{catalog}", "--start", "yesterday-ish"], "--start"),
        (["--catalog", "{catalog}", "--config", "{bad_yaml}"], "fix the YAML syntax"),
        (["--catalog", "{catalog}", "--out", "{nonempty}"], "is not empty"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(roll_week_catalog, tmp_path, args, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    bad_yaml = tmp_path / "backtest.yaml"
    bad_yaml.write_text("venue: [1,\n")
    nonempty = tmp_path / "nonempty"
    nonempty.mkdir()
    (nonempty / "keep.txt").write_text("mine")
    values = {
        "missing": str(tmp_path / "nope"),
        "empty": str(empty),
        "catalog": str(roll_week_catalog),
        "bad_yaml": str(bad_yaml),
        "nonempty": str(nonempty),
    }
    out = tmp_path / "out"
    filled = [a.format(**values) for a in args]
    if "--out" not in filled:
        filled += ["--out", str(out)]
    result = run_mia("backtest", *filled)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert (nonempty / "keep.txt").read_text() == "mine" and len(list(nonempty.iterdir())) == 1


def test_plan_rejects_unknown_root_before_running(roll_week_catalog, tmp_path):
    with pytest.raises(ConfigError):
        plan_backtest(BacktestConfig(instruments=["XYZ"]), CONFIG, catalog=roll_week_catalog, out=tmp_path / "x")
    with pytest.raises(CatalogError):
        plan_backtest(BacktestConfig(), CONFIG, catalog=tmp_path / "missing", out=tmp_path / "x")


def test_stops_fill_at_the_market_when_it_gaps_through_them(roll_week_catalog, default_run):
    """A protective stop fills like a CME stop: at the bid/ask of the quote that triggers it, not at
    its trigger price (nautilus's L1 default), so gaps cost what they cost."""
    catalog = ParquetDataCatalog(str(roll_week_catalog))
    stops = default_run.fills[default_run.fills["order_type"] == "STOP_MARKET"]
    assert len(stops) > 20
    gaps = 0
    for instrument_id, group in stops.groupby("instrument_id"):
        ts, bid, ask = _quote_arrays(catalog, instrument_id)
        for _, fill in group.iterrows():
            i = np.searchsorted(ts, pd.Timestamp(fill["ts"]).value, side="right") - 1
            buy = fill["side"] == "BUY"
            assert fill["price"] == pytest.approx(ask[i] if buy else bid[i])
            previous = ask[i - 1] if buy else bid[i - 1]
            gaps += abs(previous - (ask[i] if buy else bid[i])) > 0.25 + 1e-9
    assert gaps > 0  # the demo data does gap through stops, so the check above is not vacuous


@pytest.mark.slow
def test_first_backtest_builds_the_demo_catalog_with_a_progress_bar(tmp_path):
    """The README's main job: `mia backtest` with no arguments builds the demo on first use."""
    catalog = tmp_path / "catalog"
    result = run_mia("backtest", "--out", str(tmp_path / "run"), cwd=tmp_path, env={"MIA_CATALOG": str(catalog)})
    assert result.returncode == 0, result.stderr
    assert "building the seeded demo catalog" in result.stdout
    assert "demo data" in result.stdout  # the progress bar's label
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["total_events"] > 500_000 and summary["trades"] > 100 and summary["rolls"] == 2
    # a second run reuses the catalog
    again = run_mia("backtest", "--out", str(tmp_path / "run2"), cwd=tmp_path, env={"MIA_CATALOG": str(catalog)})
    assert again.returncode == 0 and "building" not in again.stdout
    assert json.loads((tmp_path / "run2" / "summary.json").read_text())["trades"] == summary["trades"]
